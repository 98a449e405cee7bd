package image

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// benchImage builds a ~100 MB (uncompressed) image of five layers, each
// half incompressible random files and half compressible text.
func benchImage(b *testing.B) *testimage.Image {
	b.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	var layers []testimage.Layer
	for l := range 5 {
		var entries []testimage.Entry
		entries = append(entries, testimage.Entry{Path: fmt.Sprintf("layer%d", l), Kind: testimage.Dir})
		for f := range 4 { // 4 x 2.5 MiB random
			data := make([]byte, 5<<19)
			for i := 0; i < len(data); i += 8 {
				v := rng.Uint64()
				for j := 0; j < 8 && i+j < len(data); j++ {
					data[i+j] = byte(v >> (8 * j))
				}
			}
			entries = append(entries, testimage.Entry{Path: fmt.Sprintf("layer%d/random%d.bin", l, f), Content: data})
		}
		for f := range 40 { // 40 x 256 KiB text
			var data []byte
			for i := 0; len(data) < 256<<10; i++ {
				data = fmt.Appendf(data, "layer %d file %d line %d: the quick brown fox jumps over the lazy dog %d\n", l, f, i, rng.IntN(1000))
			}
			entries = append(entries, testimage.Entry{Path: fmt.Sprintf("layer%d/text/%d.txt", l, f), Content: data[:256<<10]})
		}
		layers = append(layers, testimage.Layer{Entries: entries})
	}
	return testimage.Build(b, testimage.Spec{Layers: layers})
}

// BenchmarkPullUnpack pulls a ~100 MB, five-layer image from an in-process
// registry into a fresh store, and, as the peer in the same run, extracts
// the same layer blobs with the system tools (gzip -dc | tar -x, one layer
// after the other). It reports both rates over uncompressed bytes and their
// ratio (skiff/tar; above 1 means skiff is faster). "skiff-sync" is the
// store's default mode, which also fsyncs every blob and syncfs's every layer.
//
//	go test -run '^$' -bench PullUnpack -benchtime 3x ./internal/container/image/
func BenchmarkPullUnpack(b *testing.B) {
	testutil.RequireRoot(b)
	for _, tool := range []string{"tar", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed", tool)
		}
	}
	img := benchImage(b)
	reg := testimage.NewRegistry(b, testimage.RegistryOptions{})
	ref := img.Push(b, reg, "bench/big:1")

	var raw int64
	blobDir := b.TempDir()
	var blobs []string
	layers, err := img.V1().Layers()
	if err != nil {
		b.Fatal(err)
	}
	for i, l := range layers {
		rc, _ := l.Uncompressed()
		n, _ := io.Copy(io.Discard, rc)
		raw += n
		rc, _ = l.Compressed()
		p := filepath.Join(blobDir, fmt.Sprintf("layer%d.tar.gz", i))
		f, _ := os.Create(p)
		io.Copy(f, rc)
		f.Close()
		blobs = append(blobs, p)
	}
	mb := float64(raw) / (1 << 20)

	var skiffT, syncT, tarT time.Duration
	b.ResetTimer()
	for range b.N {
		for _, sync := range []bool{false, true} {
			s, err := New(Config{Root: b.TempDir(), NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := s.Pull(b.Context(), ref, nil, nil); err != nil {
				b.Fatal(err)
			}
			if sync {
				syncT += time.Since(start)
			} else {
				skiffT += time.Since(start)
			}
		}
		start := time.Now()
		for _, blob := range blobs {
			dir := filepath.Join(b.TempDir(), "x")
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", `gzip -dc "$1" | tar -x -C "$2"`, "sh", blob, dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tar: %v\n%s", err, out)
			}
		}
		tarT += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N)
	skiffRate := mb * n / skiffT.Seconds()
	syncRate := mb * n / syncT.Seconds()
	tarRate := mb * n / tarT.Seconds()
	b.ReportMetric(skiffRate, "skiff-MB/s")
	b.ReportMetric(syncRate, "skiff-sync-MB/s")
	b.ReportMetric(tarRate, "tar-MB/s")
	b.ReportMetric(skiffRate/tarRate, "skiff/tar")
	b.Logf("image %.1f MB uncompressed, %.1f MB compressed, %d layers: skiff pull+unpack %.0f MB/s (%.0f MB/s with sync), gzip|tar %.0f MB/s, ratio %.2f",
		mb, float64(img.CompressedSize())/(1<<20), len(blobs), skiffRate, syncRate, tarRate, skiffRate/tarRate)
}
