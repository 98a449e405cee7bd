package imageservice

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-sh/skiff/internal/container/image"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites the file with
// -update. Escapes are written as \e so that the files read as text.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, "\x1b", `\e`)
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", p, diff)
	}
}

const (
	digestA = "sha256:aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001"
	digestB = "sha256:bbbbbbbbbbbb0000000000000000000000000000000000000000000000000002"
	digestC = "sha256:cccccccccccc0000000000000000000000000000000000000000000000000003"
	imageID = "sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"
)

// snapshots replays a pull the way the store reports one: layers listed
// as waiting, one already present, one downloaded in several steps, one
// whose blob was stored and only needs unpacking.
func pullSnapshots(ref string) []image.Progress {
	layers := func(a, b, c image.LayerProgress) image.Progress {
		p := image.Progress{Ref: ref, Layers: []image.LayerProgress{a, b, c}}
		for _, l := range p.Layers {
			p.Done += l.Done
			p.Total += l.Total
		}
		return p
	}
	a := func(st image.LayerState, done int64) image.LayerProgress {
		return image.LayerProgress{Digest: digestA, State: st, Done: done, Total: 734_003}
	}
	b := func(st image.LayerState, done int64) image.LayerProgress {
		return image.LayerProgress{Digest: digestB, State: st, Done: done, Total: 4_194_304}
	}
	c := func(st image.LayerState, done int64) image.LayerProgress {
		return image.LayerProgress{Digest: digestC, State: st, Done: done, Total: 512}
	}
	W, D, X, C, E := image.LayerWaiting, image.LayerDownloading, image.LayerExtracting, image.LayerComplete, image.LayerExists
	return []image.Progress{
		layers(a(W, 0), b(W, 0), c(W, 0)),
		layers(a(E, 734_003), b(W, 0), c(W, 0)),
		layers(a(E, 734_003), b(D, 0), c(W, 0)),
		layers(a(E, 734_003), b(D, 1_048_576), c(X, 0)),
		layers(a(E, 734_003), b(D, 1_048_576), c(C, 512)),
		layers(a(E, 734_003), b(D, 2_097_152), c(C, 512)),
		layers(a(E, 734_003), b(D, 3_145_728), c(C, 512)),
		layers(a(E, 734_003), b(D, 4_194_304), c(C, 512)),
		layers(a(E, 734_003), b(C, 4_194_304), c(C, 512)),
	}
}

func TestDisplay_Golden(t *testing.T) {
	pulled := Image{
		ID: imageID, RepoTags: []string{"registry.test:5000/app:1"}, Size: 4_929_819 + 1_024,
		Layers: make([]Layer, 3),
	}
	imported := []Image{
		{ID: imageID, RepoTags: []string{"docker.io/library/app:1", "skiff.test/app:2"}, Size: 4_930_843, Layers: make([]Layer, 3)},
		{ID: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Size: 1_536, Layers: make([]Layer, 1)},
	}
	tests := []struct {
		name   string
		cfg    DisplayConfig
		feed   []image.Progress
		result []Image
	}{
		{name: "pull_terminal", cfg: DisplayConfig{Terminal: true, Width: 100},
			feed: pullSnapshots("registry.test:5000/app:1"), result: []Image{pulled}},
		{name: "pull_plain", feed: pullSnapshots("registry.test:5000/app:1"), result: []Image{pulled}},
		{name: "pull_terminal_narrow", cfg: DisplayConfig{Terminal: true, Width: 40},
			feed: pullSnapshots("registry.test:5000/app:1")[6:], result: []Image{pulled}},
		{name: "import_terminal", cfg: DisplayConfig{Terminal: true, Import: true, Width: 100},
			feed: append(pullSnapshots("skiff.test/app:2")[6:], image.Progress{
				Ref:    "sha256:feedfeedfeed0000000000000000000000000000000000000000000000000000",
				Layers: []image.LayerProgress{{Digest: digestC, State: image.LayerExists, Done: 512, Total: 512}},
				Done:   512, Total: 512,
			}),
			result: imported},
		{name: "import_plain", cfg: DisplayConfig{Import: true},
			feed: pullSnapshots("skiff.test/app:2"), result: imported[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			d := NewDisplay(&out, tt.cfg)
			for _, p := range tt.feed {
				d.Update(p)
			}
			d.Done(tt.result...)
			golden(t, tt.name+".golden", out.String())
		})
	}
}

func TestDisplay_TerminalLinesFitTheWidth(t *testing.T) {
	for _, width := range []int{1, 10, 33, 80} {
		var out bytes.Buffer
		d := NewDisplay(&out, DisplayConfig{Terminal: true, Width: width})
		for _, p := range pullSnapshots("registry.test:5000/a/very/long/repository/name/that/goes/on:and-a-long-tag") {
			d.Update(p)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			// Drop the escapes: they take no columns.
			for _, esc := range []string{"\x1b[2K", "\x1b[3F", "\x1b[4F"} {
				line = strings.ReplaceAll(line, esc, "")
			}
			if n := len([]rune(line)); n > width-1 && n > 0 {
				t.Errorf("width %d: line of %d columns: %q", width, n, line)
			}
		}
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"}, {1, "1B"}, {999, "999B"}, {1000, "1kB"}, {1_460, "1.46kB"}, {12_345, "12.3kB"},
		{999_499, "999kB"}, {999_600, "1MB"}, {1_460_000, "1.46MB"}, {4_194_304, "4.19MB"},
		{3_000_000_000, "3GB"}, {1 << 62, "4.61EB"},
	}
	for _, tt := range tests {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteTable_Golden(t *testing.T) {
	stored := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	imgs := []Image{
		{ID: imageID, RepoTags: []string{"docker.io/library/app:1", "skiff.test/app:2"},
			RepoDigests: []string{"docker.io/library/app@sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"},
			Size:        4_930_843, Stored: stored},
		{ID: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			RepoDigests: []string{"registry.test:5000/pinned@sha256:e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2"},
			Size:        1_536, Stored: stored},
		{ID: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", Size: 999, Stored: stored},
		{ID: "sha256:5555555555555555555555555555555555555555555555555555555555555555", RepoTags: []string{"localhost:5000/ns/app:v1.2"}, Size: 12_345_678},
	}
	tests := []struct {
		name string
		opts TableOptions
		imgs []Image
	}{
		{name: "table", imgs: imgs},
		{name: "table_digests", opts: TableOptions{Digests: true}, imgs: imgs},
		{name: "table_notrunc", opts: TableOptions{Digests: true, NoTrunc: true}, imgs: imgs},
		{name: "table_quiet", opts: TableOptions{Quiet: true}, imgs: imgs},
		{name: "table_empty", imgs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteTable(&out, tt.imgs, tt.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".golden", out.String())
		})
	}
}
