// Package testimage builds container images for skiff's tests and serves
// them from in-process registries. No registry on the internet is reachable
// from the test machines, so every image a test uses is made here, from
// small static Go programs.
//
// The simplest use is the ready-made toolbox image: a static multi-call
// binary (see the toolbox directory) linked under the usual command names in
// /bin, plus /etc/passwd and /etc/group with root, nobody and app (uid 1000):
//
//	img := testimage.Toolbox(t)
//	img.WriteOCILayout(t, dir, "skiff.test/toolbox:latest")
//
// Build makes any image from a Spec (layers of files, dirs, symlinks,
// hardlinks, whiteouts and opaque dirs; an image config; a platform), and
// Layered and MultiArch are ready-made images for the tricky cases: several
// layers with a whiteout, an opaque dir, hardlinks, setuid and owners; and an
// index with an amd64 and an arm64 image that differ in a layer.
//
// Images leave the test as an OCI layout directory, an OCI layout tarball, a
// `docker save` tarball, or pushed to a Registry:
//
//	reg := testimage.NewRegistry(t, testimage.RegistryOptions{TLS: true, Auth: testimage.AuthBearer})
//	ref := img.Push(t, reg, "library/toolbox:1")
//
// A Registry runs github.com/google/go-containerregistry/pkg/registry on
// 127.0.0.1 (plain HTTP or HTTPS with its own CA), optionally behind basic
// auth or the registry token flow. Faults are injected per registry:
// CorruptBlob and CorruptManifest (digest mismatches), StallBlob (a hung
// registry), FailNext (503s) and Close (a registry that goes down); DownAddr
// gives an address where nothing listens. BlobGets, ManifestGets and
// Requests count what clients asked for.
//
// Every helper takes the test's testing.TB, fails the test on error and
// registers cleanups with it. Images are deterministic: the same Spec gives
// the same digests in every run. The toolbox binary is compiled once per
// source, Go version and architecture and cached under os.TempDir().
package testimage
