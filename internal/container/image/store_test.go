package image

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// newStore opens a store in a temp dir. Unpacking needs root.
func newStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	testutil.RequireRoot(t)
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	cfg.NoSync = true
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertEmpty checks that the store holds no image, blob, layer or
// leftover work: what a failed operation on an empty store must leave.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	if imgs := s.List(); len(imgs) != 0 {
		t.Errorf("store lists %d images, want none", len(imgs))
	}
	for _, d := range []string{blobsDir, layersDir, tmpDir} {
		entries, err := os.ReadDir(filepath.Join(s.cfg.Root, d))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s is not empty: %v", d, names)
		}
	}
}

func TestPull_FromRegistry(t *testing.T) {
	img := testimage.Toolbox(t)
	tests := []struct {
		name  string
		opts  testimage.RegistryOptions
		cfg   func(r *testimage.Registry) Registries
		auth  func(r *testimage.Registry) *AuthConfig
		wantE error
	}{
		{name: "Anonymous"},
		{name: "BasicAuth", opts: testimage.RegistryOptions{Auth: testimage.AuthBasic},
			auth: func(r *testimage.Registry) *AuthConfig {
				return &AuthConfig{Username: r.Username, Password: r.Password}
			}},
		{name: "BasicAuthFromAuthField", opts: testimage.RegistryOptions{Auth: testimage.AuthBasic},
			auth: func(r *testimage.Registry) *AuthConfig {
				return &AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte(r.Username + ":" + r.Password))}
			}},
		{name: "BasicAuthMissingIsUnauthorized", opts: testimage.RegistryOptions{Auth: testimage.AuthBasic}, wantE: ErrUnauthorized},
		{name: "BasicAuthWrongIsUnauthorized", opts: testimage.RegistryOptions{Auth: testimage.AuthBasic},
			auth:  func(r *testimage.Registry) *AuthConfig { return &AuthConfig{Username: r.Username, Password: "nope"} },
			wantE: ErrUnauthorized},
		{name: "BearerTokenFlow", opts: testimage.RegistryOptions{Auth: testimage.AuthBearer},
			auth: func(r *testimage.Registry) *AuthConfig {
				return &AuthConfig{Username: r.Username, Password: r.Password}
			}},
		{name: "BearerRegistryToken", opts: testimage.RegistryOptions{Auth: testimage.AuthBearer},
			auth: func(r *testimage.Registry) *AuthConfig { return &AuthConfig{RegistryToken: r.Token} }},
		{name: "BearerIdentityToken", opts: testimage.RegistryOptions{Auth: testimage.AuthBearer},
			auth: func(r *testimage.Registry) *AuthConfig { return &AuthConfig{IdentityToken: r.IdentityToken} }},
		{name: "BearerWithoutCredentialsIsUnauthorized", opts: testimage.RegistryOptions{Auth: testimage.AuthBearer}, wantE: ErrUnauthorized},
		{name: "CredentialsFromRegistriesConfig", opts: testimage.RegistryOptions{Auth: testimage.AuthBasic},
			cfg: func(r *testimage.Registry) Registries {
				return Registries{Configs: map[string]HostConfig{r.Host: {Auth: &AuthConfig{Username: r.Username, Password: r.Password}}}}
			}},
		{name: "PlainHTTPNeedsConfig", opts: testimage.RegistryOptions{IP: "127.0.0.2"}, wantE: errAny},
		{name: "PlainHTTPWithPlainHTTPConfig", opts: testimage.RegistryOptions{IP: "127.0.0.2"},
			cfg: func(r *testimage.Registry) Registries {
				return Registries{Configs: map[string]HostConfig{r.Host: {PlainHTTP: true}}}
			}},
		{name: "PlainHTTPWithHTTPMirrorEndpointOfItself", opts: testimage.RegistryOptions{IP: "127.0.0.2"},
			cfg: func(r *testimage.Registry) Registries {
				return Registries{Mirrors: map[string]Mirror{r.Host: {Endpoints: []string{"http://" + r.Host}}}}
			}},
		{name: "HTTPSUnknownCAFails", opts: testimage.RegistryOptions{IP: "127.0.0.2", TLS: true}, wantE: errAny},
		{name: "HTTPSWithCAFile", opts: testimage.RegistryOptions{IP: "127.0.0.2", TLS: true, Auth: testimage.AuthBearer},
			cfg: func(r *testimage.Registry) Registries {
				return Registries{Configs: map[string]HostConfig{r.Host: {TLS: &TLSConfig{CAFile: r.CAFile}}}}
			},
			auth: func(r *testimage.Registry) *AuthConfig {
				return &AuthConfig{Username: r.Username, Password: r.Password}
			}},
		{name: "HTTPSInsecureSkipVerify", opts: testimage.RegistryOptions{IP: "127.0.0.2", TLS: true},
			cfg: func(r *testimage.Registry) Registries {
				return Registries{Configs: map[string]HostConfig{r.Host: {TLS: &TLSConfig{InsecureSkipVerify: true}}}}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := testimage.NewRegistry(t, tc.opts)
			ref := img.Push(t, reg, "test/toolbox:1")
			cfg := Config{}
			if tc.cfg != nil {
				cfg.Registries = tc.cfg(reg)
			}
			s := newStore(t, cfg)
			var auth *AuthConfig
			if tc.auth != nil {
				auth = tc.auth(reg)
			}
			got, err := s.Pull(t.Context(), ref, auth, nil)
			if tc.wantE != nil {
				if err == nil || (tc.wantE != errAny && !errors.Is(err, tc.wantE)) {
					t.Fatalf("Pull error = %v, want %v", err, tc.wantE)
				}
				assertEmpty(t, s)
				return
			}
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if got.ID != img.ID() {
				t.Errorf("ID = %s, want %s", got.ID, img.ID())
			}
			if diff := cmp.Diff([]string{reg.Ref("test/toolbox:1")}, got.RepoTags); diff != "" {
				t.Errorf("RepoTags (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{reg.Ref("test/toolbox@" + img.Digest())}, got.RepoDigests); diff != "" {
				t.Errorf("RepoDigests (-want +got):\n%s", diff)
			}
			checkImage(t, got, img)
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

// checkImage compares a stored image with the image it came from.
func checkImage(t *testing.T, got *Image, want *testimage.Image) {
	t.Helper()
	if got.ID != want.ID() {
		t.Errorf("ID = %s, want %s", got.ID, want.ID())
	}
	var diffIDs, digests []string
	for _, l := range got.Layers {
		diffIDs, digests = append(diffIDs, l.DiffID), append(digests, l.Digest)
		if st, err := os.Stat(l.Dir); err != nil || !st.IsDir() {
			t.Errorf("layer dir %s: %v", l.Dir, err)
		}
	}
	if diff := cmp.Diff(want.DiffIDs(), diffIDs); diff != "" {
		t.Errorf("diffIDs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.LayerDigests(), digests); diff != "" {
		t.Errorf("layer digests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.ConfigFile().Config, got.Config.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if want.CompressedSize() > got.Size {
		t.Errorf("Size = %d, want at least %d", got.Size, want.CompressedSize())
	}
}

func TestPull_ThroughMirror(t *testing.T) {
	img := testimage.Toolbox(t)
	mirror := testimage.NewRegistry(t, testimage.RegistryOptions{Auth: testimage.AuthBasic})
	img.Push(t, mirror, "team/app:2")
	upstream := testimage.DownAddr(t) // the image's own registry is unreachable
	cfg := Config{Registries: Registries{
		Mirrors: map[string]Mirror{upstream: {Endpoints: []string{
			"http://" + testimage.DownAddr(t), // a dead mirror first: skipped
			"http://" + mirror.Host,
		}}},
		Configs: map[string]HostConfig{mirror.Host: {Auth: &AuthConfig{Username: mirror.Username, Password: mirror.Password}}},
	}}
	s := newStore(t, cfg)
	got, err := s.Pull(t.Context(), upstream+"/team/app:2", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{upstream + "/team/app:2"}, got.RepoTags); diff != "" {
		t.Errorf("RepoTags name the image's registry, not the mirror (-want +got):\n%s", diff)
	}
	checkImage(t, got, img)
}

func TestPull_FallsBackFromMirrorToRegistry(t *testing.T) {
	img := testimage.Toolbox(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := img.Push(t, reg, "a/b:1")
	empty := testimage.NewRegistry(t, testimage.RegistryOptions{})
	s := newStore(t, Config{Registries: Registries{Mirrors: map[string]Mirror{
		reg.Host: {Endpoints: []string{"http://" + empty.Host}}, // has no such image
	}}})
	if _, err := s.Pull(t.Context(), ref, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestPull_MultiArchResolvesToConfiguredPlatform(t *testing.T) {
	idx := testimage.MultiArch(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := idx.Push(t, reg, "multi:1")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			s := newStore(t, Config{Platform: v1.Platform{OS: "linux", Architecture: arch}})
			got, err := s.Pull(t.Context(), ref, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := idx.ForArch(arch)
			checkImage(t, got, want)
			if got.ManifestDigest != want.Digest() {
				t.Errorf("ManifestDigest = %s, want %s", got.ManifestDigest, want.Digest())
			}
			if diff := cmp.Diff([]string{reg.Ref("multi@" + idx.Digest())}, got.RepoDigests); diff != "" {
				t.Errorf("RepoDigests name the index (-want +got):\n%s", diff)
			}
			platform, err := os.ReadFile(filepath.Join(got.Layers[1].Dir, "etc/platform"))
			if err != nil || string(platform) != "linux/"+arch+"\n" {
				t.Errorf("etc/platform = %q, %v", platform, err)
			}
		})
	}
	t.Run("HostPlatformByDefault", func(t *testing.T) {
		s := newStore(t, Config{})
		got, err := s.Pull(t.Context(), ref, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Config.Architecture != s.cfg.Platform.Architecture {
			t.Errorf("architecture = %s, want the host's %s", got.Config.Architecture, s.cfg.Platform.Architecture)
		}
	})
	t.Run("MissingPlatformIsNotFound", func(t *testing.T) {
		s := newStore(t, Config{Platform: v1.Platform{OS: "linux", Architecture: "riscv64"}})
		_, err := s.Pull(t.Context(), ref, nil, nil)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "linux/riscv64") {
			t.Fatalf("error = %v, want ErrNotFound naming linux/riscv64", err)
		}
		assertEmpty(t, s)
	})
}

func TestPull_BadInput(t *testing.T) {
	img := testimage.Toolbox(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, reg *testimage.Registry) string // returns the ref to pull
		want    error
		mention string
	}{
		{name: "UnknownTagIsNotFound", want: ErrNotFound,
			setup: func(t *testing.T, reg *testimage.Registry) string { return reg.Ref("test/toolbox:nope") }},
		{name: "UnknownRepoIsNotFound", want: ErrNotFound,
			setup: func(t *testing.T, reg *testimage.Registry) string { return reg.Ref("no/such:1") }},
		{name: "UnknownDigestIsNotFound", want: ErrNotFound,
			setup: func(t *testing.T, reg *testimage.Registry) string {
				return reg.Ref("test/toolbox@sha256:" + strings.Repeat("0", 64))
			}},
		{name: "CorruptLayerIsDigestMismatch", want: ErrDigestMismatch,
			setup: func(t *testing.T, reg *testimage.Registry) string {
				reg.CorruptBlob(img.LayerDigests()[1])
				return reg.Ref("test/toolbox:1")
			}, mention: img.LayerDigests()[1]},
		{name: "CorruptConfigIsDigestMismatch", want: ErrDigestMismatch,
			setup: func(t *testing.T, reg *testimage.Registry) string {
				reg.CorruptBlob(img.ID())
				return reg.Ref("test/toolbox:1")
			}, mention: img.ID()},
		{name: "CorruptManifestByDigestIsDigestMismatch", want: ErrDigestMismatch,
			setup: func(t *testing.T, reg *testimage.Registry) string {
				reg.CorruptManifest(img.Digest())
				return reg.Ref("test/toolbox@" + img.Digest())
			}, mention: img.Digest()},
		{name: "CorruptManifestByTagIsDigestMismatch", want: ErrDigestMismatch,
			setup: func(t *testing.T, reg *testimage.Registry) string {
				reg.CorruptManifest(img.Digest())
				return reg.Ref("test/toolbox:1")
			}, mention: img.Digest()},
		{name: "RegistryDownFails", want: errAny,
			setup: func(t *testing.T, reg *testimage.Registry) string {
				reg.Close()
				return reg.Ref("test/toolbox:1")
			}, mention: "connection refused"},
		{name: "BadReferenceIsInvalid", want: ErrInvalidReference,
			setup: func(t *testing.T, reg *testimage.Registry) string { return reg.Host + "/Bad/Name" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
			img.Push(t, reg, "test/toolbox:1")
			ref := tc.setup(t, reg)
			s := newStore(t, Config{})
			_, err := s.Pull(t.Context(), ref, nil, nil)
			if err == nil || (tc.want != errAny && !errors.Is(err, tc.want)) {
				t.Fatalf("Pull error = %v, want %v", err, tc.want)
			}
			if tc.mention != "" && !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			assertEmpty(t, s)
		})
	}
}

func TestPull_ConcurrentPullsOfOneImage(t *testing.T) {
	img := testimage.Layered(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := img.Push(t, reg, "layered:1")
	s := newStore(t, Config{})
	const n = 4
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got, err := s.Pull(t.Context(), ref, nil, nil)
			errs[i] = err
			if err == nil {
				ids[i] = got.ID
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != img.ID() {
			t.Errorf("pull %d: id %s, err %v", i, ids[i], errs[i])
		}
	}
	if len(s.List()) != 1 {
		t.Errorf("List has %d images, want 1", len(s.List()))
	}
	layers, _ := os.ReadDir(filepath.Join(s.cfg.Root, layersDir))
	if len(layers) != len(img.DiffIDs()) {
		t.Errorf("%d layer dirs, want %d", len(layers), len(img.DiffIDs()))
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.cfg.Root, tmpDir)); len(tmp) != 0 {
		t.Errorf("tmp not empty: %d entries", len(tmp))
	}
}

func TestPull_SharesLayersBetweenImages(t *testing.T) {
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	base := testimage.Toolbox(t)
	top := testimage.Layered(t) // the toolbox's layers plus four
	baseRef, topRef := base.Push(t, reg, "base:1"), top.Push(t, reg, "top:1")
	s := newStore(t, Config{})
	var last Progress
	if _, err := s.Pull(t.Context(), baseRef, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pull(t.Context(), topRef, nil, func(p Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	var states []LayerState
	for _, l := range last.Layers {
		states = append(states, l.State)
	}
	want := []LayerState{LayerExists, LayerExists, LayerComplete, LayerComplete, LayerComplete, LayerComplete}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("layer states (-want +got):\n%s", diff)
	}
	if last.Done != last.Total || last.Total != top.CompressedSize() {
		t.Errorf("progress %d/%d, want %d/%d", last.Done, last.Total, top.CompressedSize(), top.CompressedSize())
	}
	b, _ := s.Get(baseRef)
	if got.Layers[0].Dir != b.Layers[0].Dir {
		t.Errorf("shared layer unpacked twice: %s vs %s", got.Layers[0].Dir, b.Layers[0].Dir)
	}
}

func TestPull_Metrics(t *testing.T) {
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := testimage.Toolbox(t).Push(t, reg, "m:1")
	pr := prometheus.NewPedanticRegistry()
	s := newStore(t, Config{Metrics: pr})
	if _, err := s.Pull(t.Context(), ref, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(t.Context(), reg.Ref("missing:1"), nil, nil); err == nil {
		t.Fatal("pull of a missing image succeeded")
	}
	if got := counterValue(t, s.metrics.pulls.WithLabelValues(resultSuccess)); got != 1 {
		t.Errorf("success pulls = %v", got)
	}
	if got := counterValue(t, s.metrics.pulls.WithLabelValues(resultNotFound)); got != 1 {
		t.Errorf("not_found pulls = %v", got)
	}
	if got := counterValue(t, s.metrics.bytes); got <= 0 {
		t.Errorf("bytes = %v", got)
	}
	families, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	if diff := cmp.Diff([]string{"skiff_image_pull_bytes_total", "skiff_image_pull_duration_seconds", "skiff_image_pulls_total"}, names); diff != "" {
		t.Errorf("metric families (-want +got):\n%s", diff)
	}
	if _, err := New(Config{Root: t.TempDir(), Metrics: pr}); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}

// pulledToolbox is a store in root holding the toolbox image, pulled from
// a test registry as ref.
func pulledToolbox(t *testing.T, root string) (*Store, string, *Image) {
	t.Helper()
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := testimage.Toolbox(t).Push(t, reg, "r:1")
	s := newStore(t, Config{Root: root})
	img, err := s.Pull(t.Context(), ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, ref, img
}

func TestStore_RestartSeesImagesAndLeases(t *testing.T) {
	root := t.TempDir()
	s, ref, want := pulledToolbox(t, root)
	if _, err := s.Lease("ctr-1", ref); err != nil {
		t.Fatal(err)
	}
	// Debris of a crash in the middle of an unpack.
	if err := os.MkdirAll(filepath.Join(root, tmpDir, "layer-123", "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, Config{Root: root})
	got, err := s2.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image after restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"ctr-1": want.ID}, s2.Leases()); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
	if tmp, _ := os.ReadDir(filepath.Join(root, tmpDir)); len(tmp) != 0 {
		t.Errorf("tmp not emptied on restart")
	}
}

func TestStore_RestartDropsImagesWithMissingLayers(t *testing.T) {
	root := t.TempDir()
	_, ref, img := pulledToolbox(t, root)
	if err := os.RemoveAll(img.Layers[1].Dir); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, Config{Root: root})
	if _, err := s2.Get(ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
}

func TestStore_GetByEveryName(t *testing.T) {
	s := newStore(t, Config{})
	file := filepath.Join(t.TempDir(), "img.tar")
	img := testimage.Toolbox(t)
	img.WriteDockerArchive(t, file, "toolbox:1")
	if _, err := s.ImportPath(t.Context(), file, nil); err != nil {
		t.Fatal(err)
	}
	hex := strings.TrimPrefix(img.ID(), "sha256:")
	for _, name := range []string{img.ID(), hex, hex[:12], "sha256:" + hex[:8], "toolbox:1", "docker.io/library/toolbox:1", "library/toolbox:1"} {
		t.Run(name, func(t *testing.T) {
			got, err := s.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != img.ID() {
				t.Errorf("ID = %s", got.ID)
			}
		})
	}
	for _, name := range []string{"toolbox:2", "other", "abcdef", "sha256:" + strings.Repeat("f", 64)} {
		t.Run("Missing/"+name, func(t *testing.T) {
			if _, err := s.Get(name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%q) = %v, want ErrNotFound", name, err)
			}
		})
	}
}

func TestStore_ConcurrentLeasesAreAllSaved(t *testing.T) {
	root := t.TempDir()
	s, ref, img := pulledToolbox(t, root)
	// Leases taken and released at once, as containers are created and
	// removed: what is on disk afterwards is what the store holds.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			holder := fmt.Sprintf("ctr-%d", i)
			if _, err := s.Lease(holder, ref); err != nil {
				t.Error(err)
			}
			if i%2 == 1 {
				if err := s.Release(holder); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := map[string]string{}
	for i := 0; i < 40; i += 2 {
		want[fmt.Sprintf("ctr-%d", i)] = img.ID
	}
	if diff := cmp.Diff(want, s.Leases()); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, newStore(t, Config{Root: root}).Leases()); diff != "" {
		t.Errorf("leases after restart (-want +got):\n%s", diff)
	}
}

func TestStore_RemoveGCAndLeases(t *testing.T) {
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	base, top := testimage.Toolbox(t), testimage.Layered(t)
	baseRef, topRef := base.Push(t, reg, "base:1"), top.Push(t, reg, "top:1")
	base.Push(t, reg, "base:2")
	s := newStore(t, Config{})
	ctx := t.Context()
	for _, ref := range []string{baseRef, reg.Ref("base:2"), topRef} {
		if _, err := s.Pull(ctx, ref, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	layerCount := func() int {
		entries, _ := os.ReadDir(filepath.Join(s.cfg.Root, layersDir))
		return len(entries)
	}
	if n := layerCount(); n != 6 {
		t.Fatalf("%d layers, want 6", n)
	}
	if _, err := s.Lease("ctr-1", baseRef); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lease("ctr-1", baseRef); err != nil { // idempotent
		t.Fatal(err)
	}

	// Removing one of two tags keeps the image.
	if err := s.Remove(baseRef); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(reg.Ref("base:2")); err != nil || slices.Contains(got.RepoTags, baseRef) {
		t.Fatalf("after removing one tag: %v, %v", got, err)
	}
	// Removing the layered image frees its own four layers, not the shared ones.
	if err := s.Remove(topRef); err != nil {
		t.Fatal(err)
	}
	res, err := s.GC()
	if err != nil {
		t.Fatal(err)
	}
	if res.Layers != 4 || layerCount() != 2 {
		t.Errorf("GC freed %d layers, %d left; want 4 and 2", res.Layers, layerCount())
	}
	// The last tag goes, but a container still uses the layers.
	if err := s.Remove(reg.Ref("base:2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(base.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("image still there after its last tag went: %v", err)
	}
	if _, err := s.GC(); err != nil {
		t.Fatal(err)
	}
	if layerCount() != 2 {
		t.Errorf("GC removed leased layers")
	}
	if err := s.Release("ctr-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("ctr-1"); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := s.GC(); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, s)

	if err := s.Remove("nothing:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove of a missing image = %v, want ErrNotFound", err)
	}
	if _, err := s.Lease("ctr-2", "nothing:1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lease of a missing image = %v, want ErrNotFound", err)
	}
}

func TestStore_RemoveByIDRemovesAllRefs(t *testing.T) {
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	img := testimage.Toolbox(t)
	s := newStore(t, Config{})
	for _, tag := range []string{"a:1", "b:1"} {
		if _, err := s.Pull(t.Context(), img.Push(t, reg, tag), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Get(img.ID())
	if len(got.RepoTags) != 2 || len(got.RepoDigests) != 2 {
		t.Fatalf("refs: %v %v", got.RepoTags, got.RepoDigests)
	}
	if err := s.Remove(img.ID()[:19]); err != nil {
		t.Fatal(err)
	}
	if len(s.List()) != 0 {
		t.Error("image still listed")
	}
	if _, err := s.GC(); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, s)
}

func TestStore_RetagMovesTagToNewImage(t *testing.T) {
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	s := newStore(t, Config{})
	old, cur := testimage.Toolbox(t), testimage.Layered(t)
	ref := old.Push(t, reg, "app:latest")
	if _, err := s.Pull(t.Context(), ref, nil, nil); err != nil {
		t.Fatal(err)
	}
	cur.Push(t, reg, "app:latest")
	if _, err := s.Pull(t.Context(), ref, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ref)
	if err != nil || got.ID != cur.ID() {
		t.Fatalf("Get(%s) = %v, %v; want the new image", ref, got, err)
	}
	if _, err := s.Get(old.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("old image kept without a tag: %v", err)
	}
}

func TestStore_PullCanceled(t *testing.T) {
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := testimage.Layered(t).Push(t, reg, "c:1")
	s := newStore(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Pull(ctx, ref, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pull = %v, want context.Canceled", err)
	}
	assertEmpty(t, s)
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestStore_UsageGrowsWithImages(t *testing.T) {
	s := newStore(t, Config{})
	b0, i0, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := importImage(t, s, testimage.Toolbox(t), "skiff.test/t:1"); err != nil {
		t.Fatal(err)
	}
	b1, i1, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if b1 <= b0 || i1 <= i0 {
		t.Errorf("usage %d bytes %d inodes after import, %d %d before", b1, i1, b0, i0)
	}
	if s.Root() != s.cfg.Root {
		t.Errorf("Root() = %s", s.Root())
	}
}

func TestProgress_String(t *testing.T) {
	p := Progress{Ref: "docker.io/library/x:1", Done: 1_500_000, Total: 3_000_000, Layers: []LayerProgress{
		{State: LayerComplete}, {State: LayerDownloading}, {State: LayerExists},
	}}
	if got, want := p.String(), "docker.io/library/x:1: 2/3 layers, 1.5/3.0 MB"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestPull_HungRegistryIsCanceledByStallTimeout(t *testing.T) {
	img := testimage.Toolbox(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := img.Push(t, reg, "hang:1")
	reg.StallBlob(img.LayerDigests()[1])
	s := newStore(t, Config{StallTimeout: 200 * time.Millisecond})
	_, err := s.Pull(t.Context(), ref, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no data from the registry") {
		t.Fatalf("Pull = %v, want a stall error", err)
	}
	assertEmpty(t, s)
}

func TestPull_RetriesTransientRegistryErrors(t *testing.T) {
	img := testimage.Toolbox(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := img.Push(t, reg, "flaky:1")
	s := newStore(t, Config{})
	reg.FailNext(2) // the manifest GET fails twice, the third try works
	if _, err := s.Pull(t.Context(), ref, nil, nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	s2 := newStore(t, Config{})
	reg.FailNext(3) // more failures than retries
	if _, err := s2.Pull(t.Context(), ref, nil, nil); err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Fatalf("Pull = %v, want the registry's UNAVAILABLE", err)
	}
	assertEmpty(t, s2)
}
