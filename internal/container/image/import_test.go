package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

func TestImport_Archives(t *testing.T) {
	layered := testimage.Layered(t)
	dockerish := testimage.Build(t, testimage.Spec{Docker: true, Base: testimage.Toolbox(t), Layers: []testimage.Layer{
		{Compression: testimage.Uncompressed, Entries: []testimage.Entry{{Path: "u", Content: []byte("u")}}},
	}})
	tests := []struct {
		name     string
		write    func(t *testing.T, dir string) string // returns the path to import
		reader   bool                                  // import through Import(io.Reader)
		want     *testimage.Image
		wantTags []string
	}{
		{name: "DockerSave", want: layered, wantTags: []string{"docker.io/library/layered:1", "skiff.test/layered:2"},
			write: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "img.tar")
				layered.WriteDockerArchive(t, p, "layered:1", "skiff.test/layered:2")
				return p
			}},
		{name: "DockerSaveFromReader", reader: true, want: layered, wantTags: []string{"docker.io/library/layered:1"},
			write: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "img.tar")
				layered.WriteDockerArchive(t, p, "layered:1")
				return p
			}},
		{name: "DockerSaveUncompressedLayers", want: dockerish, wantTags: []string{"docker.io/library/dockerish:1"},
			write: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "img.tar")
				dockerish.WriteDockerArchive(t, p, "dockerish:1")
				return p
			}},
		{name: "DockerSaveGzipped", reader: true, want: layered, wantTags: []string{"docker.io/library/layered:1"},
			write: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "img.tar")
				layered.WriteDockerArchive(t, p, "layered:1")
				return gzipFile(t, p)
			}},
		{name: "OCIArchive", want: layered, wantTags: []string{"skiff.test/layered:1"},
			write: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "img.tar")
				layered.WriteOCIArchive(t, p, "skiff.test/layered:1")
				return p
			}},
		{name: "OCILayoutDir", want: layered, wantTags: []string{"docker.io/library/layered:3"},
			write: func(t *testing.T, dir string) string {
				layered.WriteOCILayout(t, dir, "layered:3")
				return dir
			}},
		{name: "OCILayoutWithBareTagIsUnnamed", want: layered,
			write: func(t *testing.T, dir string) string {
				layered.WriteOCILayout(t, dir, "latest")
				return dir
			}},
		{name: "OCIArchiveOfMultiArchIndex", want: testimage.MultiArch(t).ForArch(hostArch()), wantTags: []string{"skiff.test/multi:1"},
			write: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "img.tar")
				testimage.MultiArch(t).WriteOCIArchive(t, p, "skiff.test/multi:1")
				return p
			}},
		{name: "LegacyDockerSaveWithSymlinkedLayer", want: duplicateLayers(t), wantTags: []string{"docker.io/library/dup:1"},
			write: func(t *testing.T, dir string) string { return legacyDockerSave(t, dir, duplicateLayers(t), "dup:1") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Config{})
			p := tc.write(t, t.TempDir())
			var imgs []*Image
			var err error
			if tc.reader {
				f, ferr := os.Open(p)
				if ferr != nil {
					t.Fatal(ferr)
				}
				defer f.Close()
				imgs, err = s.Import(t.Context(), f, nil)
			} else {
				imgs, err = s.ImportPath(t.Context(), p, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != 1 {
				t.Fatalf("imported %d images, want 1", len(imgs))
			}
			checkImage(t, imgs[0], tc.want)
			if diff := cmp.Diff(tc.wantTags, imgs[0].RepoTags); diff != "" {
				t.Errorf("RepoTags (-want +got):\n%s", diff)
			}
			if tmp, _ := os.ReadDir(filepath.Join(s.cfg.Root, tmpDir)); len(tmp) != 0 {
				t.Errorf("import left %d entries in tmp", len(tmp))
			}
		})
	}
}

func hostArch() string {
	s := Config{}
	return s.withDefaults().Platform.Architecture
}

func gzipFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	out := p + ".gz"
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// duplicateLayers is a Docker image with one uncompressed layer twice.
func duplicateLayers(t *testing.T) *testimage.Image {
	l := testimage.Layer{Compression: testimage.Uncompressed, Entries: testimage.BaseEntries()}
	return testimage.Build(t, testimage.Spec{Docker: true, Layers: []testimage.Layer{l, l}})
}

// legacyDockerSave writes the format of `docker save` before Docker 25:
// <id>/layer.tar per layer (the duplicate a symlink), <config hex>.json and
// manifest.json.
func legacyDockerSave(t *testing.T, dir string, img *testimage.Image, tag string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data []byte) {
		h.Size = int64(len(data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	raw, err := img.V1().RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfgName := strings.TrimPrefix(img.ID(), "sha256:") + ".json"
	add(&tar.Header{Name: cfgName, Typeflag: tar.TypeReg}, raw)
	layers, _ := img.V1().Layers()
	var names []string
	for i, l := range layers {
		name := strings.Repeat(string(rune('a'+i)), 8)
		names = append(names, name+"/layer.tar")
		add(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		if i > 0 {
			add(&tar.Header{Name: name + "/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../" + names[0]}, nil)
			continue
		}
		rc, _ := l.Uncompressed()
		data, _ := io.ReadAll(rc)
		add(&tar.Header{Name: name + "/layer.tar", Typeflag: tar.TypeReg}, data)
	}
	manifest, _ := json.Marshal([]dockerSaveEntry{{Config: cfgName, RepoTags: []string{tag}, Layers: names}})
	add(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg}, manifest)
	tw.Close()
	p := filepath.Join(dir, "legacy.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImport_BadArchives(t *testing.T) {
	img := testimage.Toolbox(t)
	tests := []struct {
		name  string
		data  func(t *testing.T) []byte
		want  error
		isDir bool
	}{
		{name: "NotATar", want: errAny, data: func(t *testing.T) []byte { return []byte("hello, this is not an archive") }},
		{name: "EmptyTar", want: ErrUnsupported, data: func(t *testing.T) []byte { return tarOf(t, nil) }},
		{name: "TruncatedArchive", want: errAny, data: func(t *testing.T) []byte {
			b := archiveBytes(t, img)
			return b[:len(b)/2]
		}},
		{name: "DotDotEntry", want: ErrUnsafeLayer, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"../manifest.json": "[]"})
		}},
		{name: "ManifestNamesFileOutside", want: ErrUnsafeLayer, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"manifest.json": `[{"Config":"../../etc/passwd","RepoTags":["x:1"],"Layers":[]}]`})
		}},
		{name: "ManifestNotJSON", want: errAny, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"manifest.json": `{`})
		}},
		{name: "MissingLayerFile", want: errAny, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"manifest.json": `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]`, "c.json": `{"rootfs":{"type":"layers","diff_ids":[]}}`})
		}},
		{name: "LayerCountMismatch", want: errAny, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"manifest.json": `[{"Config":"c.json","RepoTags":["x:1"],"Layers":[]}]`, "c.json": `{"rootfs":{"type":"layers","diff_ids":["sha256:` + strings.Repeat("a", 64) + `"]}}`})
		}},
		{name: "OCIIndexNamesMissingBlob", want: ErrNotFound, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("b", 64) + `","size":10}]}`})
		}},
		{name: "OCIIndexBadDigest", want: errAny, data: func(t *testing.T) []byte {
			return tarOf(t, map[string]string{"index.json": `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x","size":10}]}`})
		}},
		{name: "OCIBlobCorrupted", want: ErrDigestMismatch, data: func(t *testing.T) []byte {
			dir := t.TempDir()
			img.WriteOCILayout(t, dir, "skiff.test/x:1")
			l := img.LayerDigests()[1]
			p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(l, "sha256:"))
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o644)
			return tarDirBytes(t, dir)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Config{})
			_, err := s.Import(t.Context(), bytes.NewReader(tc.data(t)), nil)
			if err == nil || (tc.want != errAny && !errors.Is(err, tc.want)) {
				t.Fatalf("Import = %v, want %v", err, tc.want)
			}
			assertEmpty(t, s)
		})
	}
	t.Run("MissingPath", func(t *testing.T) {
		s := newStore(t, Config{})
		if _, err := s.ImportPath(t.Context(), filepath.Join(t.TempDir(), "nope.tar"), nil); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ImportPath = %v, want ErrNotExist", err)
		}
	})
}

func archiveBytes(t *testing.T, img *testimage.Image) []byte {
	p := filepath.Join(t.TempDir(), "a.tar")
	img.WriteDockerArchive(t, p, "x:1")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))})
		tw.Write([]byte(content))
	}
	tw.Close()
	return buf.Bytes()
}

func tarDirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	files := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			b, _ := os.ReadFile(p)
			files[rel] = string(b)
		}
		return nil
	})
	return tarOf(t, files)
}
