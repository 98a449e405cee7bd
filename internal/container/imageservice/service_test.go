package imageservice_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/imageservice"
	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// harness is a real image store served by the image service on a unix
// socket, and a client dialed to it.
type harness struct {
	store  *image.Store
	root   string // the store's
	client *imageservice.Client
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	testutil.RequireRoot(t)
	// Not t.TempDir: a unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "imgsvc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &harness{root: filepath.Join(dir, "images")}
	h.store, err = image.New(image.Config{Root: h.root, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := imageservice.NewServer(imageservice.Config{Store: h.store})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	srv.Register(gs)
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	h.client, err = imageservice.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.client.Close() })
	return h
}

// assertEmpty checks that the store holds no image and no content, and
// that no work is left in its tmp dir. A server may still be unwinding a
// call its client gave up on, so the files get a while to go.
func (h *harness) assertEmpty(t *testing.T) {
	t.Helper()
	if imgs := h.store.List(); len(imgs) != 0 {
		t.Errorf("store lists %d images, want none", len(imgs))
	}
	var left []string
	for i := 0; i < 200; i++ {
		left = left[:0]
		for _, d := range []string{"blobs/sha256", "layers/sha256", "tmp"} {
			entries, _ := os.ReadDir(filepath.Join(h.root, d))
			for _, e := range entries {
				left = append(left, d+"/"+e.Name())
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Errorf("store left content behind: %v", left)
}

// bigImage has a small layer and one of 3 MiB that does not compress, so
// a pull or import reports bytes along the way.
func bigImage(t *testing.T) *testimage.Image {
	t.Helper()
	big := make([]byte, 3<<20)
	rnd := rand.New(rand.NewChaCha8([32]byte{'s', 'k', 'i', 'f', 'f'}))
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	return testimage.Build(t, testimage.Spec{Layers: []testimage.Layer{
		{Entries: []testimage.Entry{{Path: "etc/hello", Content: []byte("hello\n")}}},
		{Entries: []testimage.Entry{{Path: "data/big", Content: big}}},
	}, Config: v1.Config{Cmd: []string{"/bin/true"}}})
}

func smallImage(t *testing.T, content string) *testimage.Image {
	t.Helper()
	return testimage.Build(t, testimage.Spec{Layers: []testimage.Layer{
		{Entries: []testimage.Entry{{Path: "etc/hello", Content: []byte("hello\n")}}},
		{Entries: []testimage.Entry{{Path: "etc/which", Content: []byte(content)}}},
	}, Config: v1.Config{Cmd: []string{"/bin/true"}}})
}

// recorder keeps every progress snapshot a client reports.
type recorder struct{ got []image.Progress }

func (r *recorder) report(p image.Progress) { r.got = append(r.got, p) }

// final checks that the last snapshot of ref has every layer done.
func (r *recorder) final(t *testing.T, ref string, layers int) {
	t.Helper()
	var last *image.Progress
	for i := range r.got {
		if r.got[i].Ref == ref {
			last = &r.got[i]
		}
	}
	if last == nil {
		t.Fatalf("no progress for %s; got %d snapshots", ref, len(r.got))
	}
	if len(last.Layers) != layers {
		t.Fatalf("last progress of %s has %d layers, want %d", ref, len(last.Layers), layers)
	}
	for _, l := range last.Layers {
		if l.State != image.LayerComplete && l.State != image.LayerExists {
			t.Errorf("layer %s ends %s", l.Digest, l.State)
		}
	}
	if last.Done != last.Total || last.Total == 0 {
		t.Errorf("last progress %d/%d bytes", last.Done, last.Total)
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestService_ImportsArchives(t *testing.T) {
	img := bigImage(t)
	tests := []struct {
		name     string
		archive  func(t *testing.T, dir string) []byte
		wantTags []string
		wantRef  string // the Ref of the progress; "" for any of wantTags
	}{
		// The archive lists its tags in any order; progress names the
		// first.
		{name: "DockerSave", wantTags: []string{"docker.io/library/app:1", "skiff.test/app:2"},
			archive: func(t *testing.T, dir string) []byte {
				p := filepath.Join(dir, "a.tar")
				img.WriteDockerArchive(t, p, "app:1", "skiff.test/app:2")
				return readFile(t, p)
			}},
		{name: "OCIArchive", wantTags: []string{"skiff.test/app:3"}, wantRef: "skiff.test/app:3",
			archive: func(t *testing.T, dir string) []byte {
				p := filepath.Join(dir, "a.tar")
				img.WriteOCIArchive(t, p, "skiff.test/app:3")
				return readFile(t, p)
			}},
		{name: "GzippedDockerSave", wantTags: []string{"docker.io/library/app:4"}, wantRef: "docker.io/library/app:4",
			archive: func(t *testing.T, dir string) []byte {
				p := filepath.Join(dir, "a.tar")
				img.WriteDockerArchive(t, p, "app:4")
				return gzipBytes(t, readFile(t, p))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var rec recorder
			got, err := h.client.Import(context.Background(), bytes.NewReader(tt.archive(t, t.TempDir())), rec.report)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].ID != img.ID() {
				t.Fatalf("imported %+v, want one image %s", got, img.ID())
			}
			if diff := cmp.Diff(tt.wantTags, got[0].RepoTags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			if len(got[0].Layers) != 2 || got[0].Size < 3<<20 || got[0].Stored.IsZero() {
				t.Errorf("image reported as %+v", got[0])
			}
			ref := tt.wantRef
			for _, p := range rec.got {
				if ref == "" && slices.Contains(tt.wantTags, p.Ref) {
					ref = p.Ref
				}
			}
			rec.final(t, ref, 2)
			listed, err := h.client.List(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, listed); diff != "" {
				t.Errorf("List differs from what Import returned (-import +list):\n%s", diff)
			}
		})
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingReader gives data, then fails.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestService_ImportRejectsBadArchives(t *testing.T) {
	img := bigImage(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "a.tar")
	img.WriteDockerArchive(t, p, "app:1")
	whole := readFile(t, p)
	var noManifest bytes.Buffer
	tw := tar.NewWriter(&noManifest)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	readFailure := errors.New("disk on fire")
	tests := []struct {
		name    string
		r       io.Reader
		wantErr string
		wantIs  error
	}{
		{name: "Empty", r: bytes.NewReader(nil), wantErr: "import"},
		{name: "NotATarball", r: strings.NewReader(strings.Repeat("this is not an archive\n", 100)), wantErr: "import"},
		{name: "Truncated", r: bytes.NewReader(whole[:len(whole)/2]), wantErr: "import"},
		{name: "NoManifest", r: bytes.NewReader(noManifest.Bytes()), wantErr: "import"},
		{name: "ReadFailureCancels", r: &failingReader{data: whole[:len(whole)/2], err: readFailure},
			wantErr: "read archive: disk on fire", wantIs: readFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			got, err := h.client.Import(context.Background(), tt.r, nil)
			if err == nil {
				t.Fatalf("Import succeeded with %+v", got)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if errors.Is(err, imageservice.ErrUnavailable) {
				t.Errorf("a bad archive reads as an unreachable runtime: %v", err)
			}
			h.assertEmpty(t)
		})
	}
}

func TestService_Pull(t *testing.T) {
	img := bigImage(t)
	tests := []struct {
		name string
		opts testimage.RegistryOptions
		auth func(r *testimage.Registry) *image.AuthConfig
	}{
		{name: "Anonymous"},
		{name: "BasicAuth", opts: testimage.RegistryOptions{Auth: testimage.AuthBasic},
			auth: func(r *testimage.Registry) *image.AuthConfig {
				return &image.AuthConfig{Username: r.Username, Password: r.Password}
			}},
		{name: "TokenAuth", opts: testimage.RegistryOptions{Auth: testimage.AuthBearer},
			auth: func(r *testimage.Registry) *image.AuthConfig {
				return &image.AuthConfig{Username: r.Username, Password: r.Password}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			reg := testimage.NewRegistry(t, tt.opts)
			ref := img.Push(t, reg, "team/app:1")
			var auth *image.AuthConfig
			if tt.auth != nil {
				auth = tt.auth(reg)
			}
			var rec recorder
			got, err := h.client.Pull(context.Background(), ref, auth, rec.report)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != img.ID() || !slices.Contains(got.RepoTags, ref) {
				t.Errorf("pulled %+v, want %s tagged %s", got, img.ID(), ref)
			}
			rec.final(t, ref, 2)
			// The server sends the latest snapshot whenever the stream can
			// take one, so how many arrive depends on timing; they never
			// go backwards.
			for i := 1; i < len(rec.got); i++ {
				if rec.got[i].Done < rec.got[i-1].Done {
					t.Errorf("progress went back from %d to %d bytes", rec.got[i-1].Done, rec.got[i].Done)
				}
			}
			listed, err := h.client.List(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != 1 || listed[0].ID != img.ID() {
				t.Errorf("List(%s) = %+v", ref, listed)
			}
		})
	}
}

func TestService_PullFailuresAreClearAndLeaveNothing(t *testing.T) {
	img := smallImage(t, "a")
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	img.Push(t, reg, "team/app:1")
	authReg := testimage.NewRegistry(t, testimage.RegistryOptions{Auth: testimage.AuthBasic})
	authRef := img.Push(t, authReg, "team/app:1")
	corruptReg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	corruptRef := img.Push(t, corruptReg, "team/app:1")
	corruptReg.CorruptBlob(img.LayerDigests()[1])
	tests := []struct {
		name    string
		ref     string
		auth    *image.AuthConfig
		wantIs  error
		wantErr string
	}{
		{name: "RegistryDown", ref: testimage.DownAddr(t) + "/team/app:1", wantErr: "connection refused"},
		{name: "UnknownImage", ref: reg.Ref("team/nothing:1"), wantIs: image.ErrNotFound},
		{name: "UnknownTag", ref: reg.Ref("team/app:2"), wantIs: image.ErrNotFound},
		{name: "WrongPassword", ref: authRef, auth: &image.AuthConfig{Username: "skiff", Password: "wrong"}, wantIs: image.ErrUnauthorized},
		{name: "NoCredentials", ref: authRef, wantIs: image.ErrUnauthorized},
		{name: "CorruptLayer", ref: corruptRef, wantIs: image.ErrDigestMismatch},
		{name: "BadReference", ref: "Not A Reference", wantIs: image.ErrInvalidReference},
		{name: "EmptyReference", ref: "", wantIs: imageservice.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			got, err := h.client.Pull(context.Background(), tt.ref, tt.auth, nil)
			if err == nil {
				t.Fatalf("Pull(%q) succeeded with %+v", tt.ref, got)
			}
			t.Logf("error: %v", err)
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if tt.ref != "" && !strings.Contains(err.Error(), tt.ref) {
				t.Errorf("error %q does not name %q", err, tt.ref)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if errors.Is(err, imageservice.ErrUnavailable) {
				t.Errorf("a failed pull reads as an unreachable runtime: %v", err)
			}
			h.assertEmpty(t)
		})
	}
}

func TestService_PullCanceledByTheClientLeavesNothing(t *testing.T) {
	h := newHarness(t)
	img := bigImage(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := img.Push(t, reg, "team/app:1")
	reg.StallBlob(img.LayerDigests()[1])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := h.client.Pull(ctx, ref, nil, func(p image.Progress) {
		for _, l := range p.Layers {
			if l.State == image.LayerDownloading && l.Done > 0 {
				cancel() // half the stalled blob arrived
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pull = %v, want context.Canceled", err)
	}
	h.assertEmpty(t)
}

func TestService_RemoveAndGC(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	a, b := smallImage(t, "a"), smallImage(t, "b") // they share their first layer
	dir := t.TempDir()
	for _, x := range []struct {
		img  *testimage.Image
		tags []string
	}{{a, []string{"app:a", "app:a2"}}, {b, []string{"app:b"}}} {
		p := filepath.Join(dir, "x.tar")
		x.img.WriteDockerArchive(t, p, x.tags...)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.client.Import(ctx, f, nil); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	steps := []struct {
		name      string
		ref       string
		want      imageservice.RemoveResult
		wantBlobs int // freed
		wantIs    error
	}{
		{name: "UntagKeepsTheImage", ref: "app:a", want: imageservice.RemoveResult{ID: a.ID()}},
		{name: "LastTagDeletesTheImageAndItsOwnContent", ref: "docker.io/library/app:a2",
			want: imageservice.RemoveResult{ID: a.ID(), Deleted: true}, wantBlobs: 3}, // config, manifest, own layer
		{name: "UnknownIsNotFound", ref: "app:a", wantIs: image.ErrNotFound},
		{name: "ByIDPrefix", ref: strings.TrimPrefix(b.ID(), "sha256:")[:12],
			want: imageservice.RemoveResult{ID: b.ID(), Deleted: true}, wantBlobs: 4},
		{name: "EmptyIsInvalid", ref: "", wantIs: imageservice.ErrInvalid},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := h.client.Remove(ctx, st.ref)
			if st.wantIs != nil {
				if !errors.Is(err, st.wantIs) {
					t.Fatalf("Remove(%q) = %+v, %v; want %v", st.ref, got, err, st.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != st.want.ID || got.Deleted != st.want.Deleted {
				t.Errorf("Remove(%q) = %+v, want %+v", st.ref, got, st.want)
			}
			if got.Freed.Blobs != st.wantBlobs {
				t.Errorf("Remove(%q) freed %+v, want %d blobs", st.ref, got.Freed, st.wantBlobs)
			}
		})
	}
	h.assertEmpty(t)

	t.Run("GCFreesWhatTheCRIRemoveLeft", func(t *testing.T) {
		p := filepath.Join(dir, "x.tar")
		a.WriteDockerArchive(t, p, "app:a")
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := h.client.Import(ctx, f, nil); err != nil {
			t.Fatal(err)
		}
		if err := h.store.Remove("app:a"); err != nil { // what the CRI's RemoveImage does
			t.Fatal(err)
		}
		freed, err := h.client.GC(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if freed.Blobs != 4 || freed.Layers != 2 || freed.Bytes == 0 {
			t.Errorf("GC freed %+v, want 4 blobs and 2 layers", freed)
		}
		if again, err := h.client.GC(ctx); err != nil || again != (image.GCResult{}) {
			t.Errorf("second GC = %+v, %v; want nothing freed", again, err)
		}
		h.assertEmpty(t)
	})
}

func TestService_ListFilters(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	a := smallImage(t, "a")
	p := filepath.Join(t.TempDir(), "a.tar")
	a.WriteDockerArchive(t, p, "app:a")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := h.client.Import(ctx, f, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ref  string
		want []string
	}{
		{name: "All", ref: "", want: []string{a.ID()}},
		{name: "ByShortName", ref: "app:a", want: []string{a.ID()}},
		{name: "ByID", ref: a.ID(), want: []string{a.ID()}},
		{name: "UnknownListsNothing", ref: "app:zzz", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.client.List(ctx, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, img := range got {
				ids = append(ids, img.ID)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("List(%q) (-want +got):\n%s", tt.ref, diff)
			}
		})
	}
}
