package testimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestBuild_IsDeterministic(t *testing.T) {
	a, b := Toolbox(t), Toolbox(t)
	if a.Digest() != b.Digest() || a.ID() != b.ID() {
		t.Errorf("two Toolbox images differ: %s/%s vs %s/%s", a.Digest(), a.ID(), b.Digest(), b.ID())
	}
}

func TestBuild_ImagesAreValid(t *testing.T) {
	for label, img := range map[string]*Image{
		"Toolbox": Toolbox(t),
		"Layered": Layered(t),
		"Docker": Build(t, Spec{Docker: true, Layers: []Layer{{Entries: BaseEntries()}, {Compression: Uncompressed,
			Entries: []Entry{{Path: "x", Content: []byte("x")}}}}}),
	} {
		t.Run(label, func(t *testing.T) {
			// validate reads every layer as gzip; Layered and Docker have
			// zstd and uncompressed layers, so check those fast.
			if err := validate.Image(img.V1(), validate.Fast); err != nil {
				t.Error(err)
			}
		})
	}
	if err := validate.Index(MultiArch(t).V1()); err != nil {
		t.Errorf("MultiArch: %v", err)
	}
}

func TestBuild_RejectsBadSpec(t *testing.T) {
	for label, spec := range map[string]Spec{
		"EmptyPath":          {Layers: []Layer{{Entries: []Entry{{Path: ""}}}}},
		"UnknownKind":        {Layers: []Layer{{Entries: []Entry{{Path: "x", Kind: Kind(99)}}}}},
		"UnknownCompression": {Layers: []Layer{{Compression: Compression(9)}}},
	} {
		t.Run(label, func(t *testing.T) {
			if _, err := build(spec); err == nil {
				t.Error("build succeeded, want an error")
			}
		})
	}
}

func TestLayered_LayersHoldWhiteoutsAndOpaqueDir(t *testing.T) {
	img := Layered(t)
	layers, err := img.V1().Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 6 {
		t.Fatalf("got %d layers, want 6", len(layers))
	}
	got := tarNames(t, layers[3])
	want := []string{"data/.wh.gone.txt", "data/.wh.olddir", "data/added.txt", "opq/", "opq/.wh..wh..opq", "opq/new.txt", "sticky/"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer 4 entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"etc/layer5"}, tarNames(t, layers[4])); diff != "" {
		t.Errorf("zstd layer entries (-want +got):\n%s", diff)
	}
}

func tarNames(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	sort.Strings(names)
	return names
}

func TestImage_RoundTrips(t *testing.T) {
	img := Layered(t)
	t.Run("OCILayout", func(t *testing.T) {
		dir := t.TempDir()
		img.WriteOCILayout(t, dir, "skiff.test/layered:1")
		Toolbox(t).WriteOCILayout(t, dir, "skiff.test/toolbox:1")
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Manifests) != 2 {
			t.Fatalf("index has %d manifests, want 2", len(m.Manifests))
		}
		if got := m.Manifests[0].Annotations[RefNameAnnotation]; got != "skiff.test/layered:1" {
			t.Errorf("ref name = %q", got)
		}
		back, err := idx.Image(m.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(back, validate.Fast); err != nil {
			t.Fatal(err)
		}
		if d, _ := back.Digest(); d.String() != img.Digest() {
			t.Errorf("digest = %s, want %s", d, img.Digest())
		}
	})
	t.Run("OCIArchive", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "img.tar")
		img.WriteOCIArchive(t, file, "skiff.test/layered:1")
		dir := t.TempDir()
		if out, err := exec.Command("tar", "-xf", file, "-C", dir).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := idx.Digest(); d.String() == "" {
			t.Fatal("no index digest")
		}
		back, err := idx.Image(mustHash(v1.NewHash(img.Digest())))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(back, validate.Fast); err != nil {
			t.Error(err)
		}
	})
	t.Run("DockerArchive", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "img.tar")
		img.WriteDockerArchive(t, file, "skiff.test/layered:1", "skiff.test/layered:latest")
		tag, _ := name.NewTag("skiff.test/layered:1")
		back, err := tarball.ImageFromPath(file, &tag)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(back, validate.Fast); err != nil {
			t.Fatal(err)
		}
		if id, _ := back.ConfigName(); id.String() != img.ID() {
			t.Errorf("ID = %s, want %s", id, img.ID())
		}
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
		if err != nil {
			t.Fatal(err)
		}
		tags := append([]string(nil), m[0].RepoTags...)
		sort.Strings(tags)
		if diff := cmp.Diff([]string{"skiff.test/layered:1", "skiff.test/layered:latest"}, tags); diff != "" {
			t.Errorf("RepoTags (-want +got):\n%s", diff)
		}
	})
	t.Run("MultiArchOCILayout", func(t *testing.T) {
		idx := MultiArch(t)
		dir := t.TempDir()
		idx.WriteOCILayout(t, dir, "skiff.test/multi:1")
		back, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := back.IndexManifest()
		inner, err := back.ImageIndex(m.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := inner.Digest(); d.String() != idx.Digest() {
			t.Errorf("index digest = %s, want %s", d, idx.Digest())
		}
	})
}

func TestMultiArch_ImagesDifferPerPlatform(t *testing.T) {
	idx := MultiArch(t)
	amd, arm := idx.ForArch("amd64"), idx.ForArch("arm64")
	if amd == nil || arm == nil {
		t.Fatal("missing platform image")
	}
	if amd.DiffIDs()[1] == arm.DiffIDs()[1] {
		t.Error("the platform layers are equal, want them to differ")
	}
	if host := idx.ForArch(runtime.GOARCH); host != nil && len(host.DiffIDs()) != 3 {
		t.Errorf("host image has %d layers, want 3 (with the toolbox)", len(host.DiffIDs()))
	}
}

func TestRegistry_PushAndPull(t *testing.T) {
	img := Toolbox(t)
	tests := []struct {
		name string
		opts RegistryOptions
		auth func(r *Registry) authn.Authenticator
	}{
		{name: "AnonymousPlainHTTP", opts: RegistryOptions{}},
		{name: "AnonymousHTTPS", opts: RegistryOptions{TLS: true}},
		{name: "PlainHTTPOn127002", opts: RegistryOptions{IP: "127.0.0.2"}},
		{name: "BasicAuth", opts: RegistryOptions{Auth: AuthBasic}},
		{name: "BearerWithPassword", opts: RegistryOptions{TLS: true, Auth: AuthBearer}},
		{name: "BearerWithRegistryToken", opts: RegistryOptions{Auth: AuthBearer}, auth: func(r *Registry) authn.Authenticator {
			return authn.FromConfig(authn.AuthConfig{RegistryToken: r.Token})
		}},
		{name: "BearerWithIdentityToken", opts: RegistryOptions{Auth: AuthBearer}, auth: func(r *Registry) authn.Authenticator {
			return authn.FromConfig(authn.AuthConfig{IdentityToken: r.IdentityToken})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := NewRegistry(t, tc.opts)
			ref := img.Push(t, reg, "test/toolbox:1")
			a := reg.Authenticator()
			if tc.auth != nil {
				a = tc.auth(reg)
			}
			got := pull(t, reg, ref, a)
			if err := validate.Image(got); err != nil {
				t.Fatal(err)
			}
			if d, _ := got.Digest(); d.String() != img.Digest() {
				t.Errorf("digest = %s, want %s", d, img.Digest())
			}
		})
	}
}

func pull(t *testing.T, reg *Registry, ref string, a authn.Authenticator) v1.Image {
	t.Helper()
	var nopts []name.Option
	if reg.opts.IP != "" && !reg.opts.TLS {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithAuth(a), remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRegistry_RefusesBadCredentials(t *testing.T) {
	for label, mode := range map[string]Auth{"Basic": AuthBasic, "Bearer": AuthBearer} {
		t.Run(label, func(t *testing.T) {
			reg := NewRegistry(t, RegistryOptions{Auth: mode})
			ref := Toolbox(t).Push(t, reg, "test/toolbox:1")
			r, _ := name.ParseReference(ref)
			for _, a := range []authn.Authenticator{
				authn.Anonymous,
				authn.FromConfig(authn.AuthConfig{Username: reg.Username, Password: "wrong"}),
			} {
				if _, err := remote.Image(r, remote.WithAuth(a)); err == nil {
					t.Error("pull succeeded with bad credentials")
				}
			}
		})
	}
}

func TestRegistry_HTTPSNeedsTheCA(t *testing.T) {
	reg := NewRegistry(t, RegistryOptions{TLS: true})
	ref := Toolbox(t).Push(t, reg, "test/toolbox:1")
	r, _ := name.ParseReference(ref)
	if _, err := remote.Image(r); err == nil {
		t.Fatal("pull without the CA succeeded")
	}
	if pem, err := os.ReadFile(reg.CAFile); err != nil || !bytes.Equal(pem, reg.CAPEM) {
		t.Errorf("CAFile does not hold CAPEM: %v", err)
	}
}

func TestRegistry_CorruptBlobFailsVerification(t *testing.T) {
	reg := NewRegistry(t, RegistryOptions{})
	img := Toolbox(t)
	ref := img.Push(t, reg, "test/toolbox:1")
	bad := img.LayerDigests()[1]
	reg.CorruptBlob(bad)
	got := pull(t, reg, ref, authn.Anonymous)
	l, err := got.LayerByDigest(mustHash(v1.NewHash(bad)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Error("reading a corrupt blob succeeded, want a digest error")
	}
	if reg.BlobGets() == 0 {
		t.Error("BlobGets = 0")
	}
}

func TestRegistry_CorruptManifestFailsByDigest(t *testing.T) {
	reg := NewRegistry(t, RegistryOptions{})
	img := Toolbox(t)
	img.Push(t, reg, "test/toolbox:1")
	reg.CorruptManifest(img.Digest())
	r, _ := name.ParseReference(reg.Ref("test/toolbox@" + img.Digest()))
	if _, err := remote.Image(r); err == nil {
		t.Error("pull of a corrupt manifest by digest succeeded")
	}
}

func TestRegistry_DownIsRefused(t *testing.T) {
	for label, host := range map[string]func(t testing.TB) string{
		"NeverUp": DownAddr,
		"Closed": func(t testing.TB) string {
			reg := NewRegistry(t, RegistryOptions{})
			reg.Close()
			return reg.Host
		},
	} {
		t.Run(label, func(t *testing.T) {
			r, _ := name.ParseReference(host(t) + "/test/x:1")
			if _, err := remote.Image(r, remote.WithRetryBackoff(remote.Backoff{Steps: 1})); err == nil {
				t.Error("pull from a down registry succeeded")
			}
		})
	}
}
