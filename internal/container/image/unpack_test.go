package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// importImage stores img through an OCI layout dir.
func importImage(t *testing.T, s *Store, img *testimage.Image, name string) (*Image, error) {
	t.Helper()
	dir := t.TempDir()
	img.WriteOCILayout(t, dir, name)
	imgs, err := s.ImportPath(t.Context(), dir, nil)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}

// mountOverlay stacks img's layers read-only and returns the merged view.
func mountOverlay(t *testing.T, img *Image) string {
	t.Helper()
	dirs := img.LayerDirs()
	lower := make([]string, 0, len(dirs))
	for i := len(dirs) - 1; i >= 0; i-- {
		lower = append(lower, dirs[i])
	}
	target := t.TempDir()
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
	return target
}

func TestUnpack_OverlayViewOfLayeredImage(t *testing.T) {
	s := newStore(t, Config{})
	img, err := importImage(t, s, testimage.Layered(t), "skiff.test/layered:1")
	if err != nil {
		t.Fatal(err)
	}
	root := mountOverlay(t, img)
	p := func(rel string) string { return filepath.Join(root, rel) }

	files := map[string]string{
		"data/keep.txt":  "keep",
		"data/added.txt": "added",
		"opq/new.txt":    "new",
		"hard1":          "hardcontent",
		"hard2":          "hardcontent",
		"etc/layer5":     "zstd",
		"etc/layer6":     "plain",
		"setuid":         "setuid",
		"owned":          "owned",
	}
	for rel, want := range files {
		t.Run("Content/"+rel, func(t *testing.T) {
			got, err := os.ReadFile(p(rel))
			if err != nil || string(got) != want {
				t.Errorf("%s = %q, %v; want %q", rel, got, err, want)
			}
		})
	}
	for _, rel := range []string{"data/gone.txt", "data/olddir", "opq/old.txt", "opq/sub"} {
		t.Run("Hidden/"+rel, func(t *testing.T) {
			if _, err := os.Lstat(p(rel)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %v, want it hidden", rel, err)
			}
		})
	}
	t.Run("Hardlink", func(t *testing.T) {
		a, _ := os.Stat(p("hard1"))
		b, _ := os.Stat(p("hard2"))
		if a == nil || b == nil || !os.SameFile(a, b) {
			t.Error("hard1 and hard2 are not one file")
		}
	})
	t.Run("Symlinks", func(t *testing.T) {
		for rel, want := range map[string]string{"link": "data/keep.txt", "abslink": "/etc/passwd", "bin/sh": "toolbox"} {
			if got, err := os.Readlink(p(rel)); err != nil || got != want {
				t.Errorf("%s -> %q, %v; want %q", rel, got, err, want)
			}
		}
	})
	t.Run("ModesAndOwners", func(t *testing.T) {
		tests := []struct {
			rel      string
			mode     uint32
			uid, gid uint32
		}{
			{"setuid", unix.S_IFREG | 0o4755, 0, 0},
			{"owned", unix.S_IFREG | 0o640, 1000, 1000},
			{"sticky", unix.S_IFDIR | 0o1777, 0, 0},
			{"tmp", unix.S_IFDIR | 0o1777, 0, 0},
			{"root", unix.S_IFDIR | 0o700, 0, 0},
			{"home/app", unix.S_IFDIR | 0o755, 1000, 1000},
			{"bin/toolbox", unix.S_IFREG | 0o755, 0, 0},
		}
		for _, tc := range tests {
			var st unix.Stat_t
			if err := unix.Lstat(p(tc.rel), &st); err != nil {
				t.Errorf("%s: %v", tc.rel, err)
				continue
			}
			if st.Mode != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
				t.Errorf("%s: mode %o uid %d gid %d; want %o %d %d", tc.rel, st.Mode, st.Uid, st.Gid, tc.mode, tc.uid, tc.gid)
			}
		}
	})
	t.Run("MtimeKept", func(t *testing.T) {
		st, err := os.Stat(p("data/keep.txt"))
		if err != nil || !st.ModTime().Equal(testimage.Epoch()) {
			t.Errorf("mtime %v, %v; want %v", st.ModTime(), err, testimage.Epoch())
		}
	})
	t.Run("Xattr", func(t *testing.T) {
		buf := make([]byte, 16)
		n, err := unix.Lgetxattr(p("xattr"), "user.skiff.test", buf)
		if err != nil {
			testutil.SkipUnlessRequired(t, fmt.Sprintf("user xattrs not supported on this filesystem: %v", err))
		}
		if string(buf[:n]) != "yes" {
			t.Errorf("xattr = %q", buf[:n])
		}
	})
	t.Run("LayerDirsUseOverlayForm", func(t *testing.T) {
		upper := img.Layers[3].Dir // the layer with the whiteouts
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, "data/gone.txt"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("whiteout mode %o rdev %d, want a 0/0 char device", st.Mode, st.Rdev)
		}
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(filepath.Join(upper, "opq"), opaqueXattr, buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("opaque xattr = %q, %v", buf[:n], err)
		}
		if _, err := os.Lstat(filepath.Join(upper, "data/.wh.gone.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Error("the AUFS whiteout file was kept")
		}
	})
}

// rawTar builds a layer tar from headers (file content is the header's
// Linkname field when Typeflag is regular, to keep tables short).
func rawTar(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnpack_RejectsPathTraversal(t *testing.T) {
	outside := t.TempDir() // a layer must never write here
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := func(name, content string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: content}
	}
	tests := []struct {
		name string
		hdrs []*tar.Header
	}{
		{"DotDotFile", []*tar.Header{reg("../escape", "x")}},
		{"DotDotInTheMiddle", []*tar.Header{reg("a/../../escape", "x")}},
		{"DotDotDir", []*tar.Header{{Typeflag: tar.TypeDir, Name: "../up/"}}},
		{"WriteThroughSymlinkToOutside", []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: outside},
			reg("evil/pwned", "x"),
		}},
		{"WriteThroughRelativeSymlink", []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: "../../../../../../../../" + outside},
			reg("evil/pwned", "x"),
		}},
		{"HardlinkAbsoluteTarget", []*tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: secret}}},
		{"HardlinkDotDotTarget", []*tar.Header{{Typeflag: tar.TypeLink, Name: "h", Linkname: "../../../../../../../../" + secret}}},
		{"HardlinkThroughSymlink", []*tar.Header{
			{Typeflag: tar.TypeSymlink, Name: "d", Linkname: outside},
			{Typeflag: tar.TypeLink, Name: "h", Linkname: "d/secret"},
		}},
		{"HardlinkReplacingDirWithSymlink", []*tar.Header{
			{Typeflag: tar.TypeDir, Name: "d/"},
			reg("d/f", "x"),
			{Typeflag: tar.TypeSymlink, Name: "d", Linkname: outside},
			{Typeflag: tar.TypeLink, Name: "h", Linkname: "d/secret"},
		}},
		{"WhiteoutOfDotDot", []*tar.Header{{Typeflag: tar.TypeDir, Name: "a/"}, reg("a/.wh..", "")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Config{})
			img := testimage.Build(t, testimage.Spec{Layers: []testimage.Layer{{Tar: rawTar(t, tc.hdrs...)}}})
			_, err := importImage(t, s, img, "skiff.test/evil:1")
			if !errors.Is(err, ErrUnsafeLayer) {
				t.Fatalf("import = %v, want ErrUnsafeLayer", err)
			}
			assertEmpty(t, s)
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Errorf("the layer wrote outside its dir: %d entries", len(entries))
			}
			if b, _ := os.ReadFile(secret); string(b) != "secret" {
				t.Errorf("secret changed: %q", b)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(secret, &st); err == nil && st.Nlink != 1 {
				t.Errorf("secret got a hardlink: nlink %d", st.Nlink)
			}
		})
	}
}

func TestUnpack_TarSemantics(t *testing.T) {
	reg := func(name, content string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: content}
	}
	tests := []struct {
		name  string
		hdrs  []*tar.Header
		check func(t *testing.T, dir string)
	}{
		{"LaterEntryReplacesEarlier", []*tar.Header{reg("f", "one"), reg("f", "two")}, func(t *testing.T, dir string) {
			if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "two" {
				t.Errorf("f = %q", b)
			}
		}},
		{"FileReplacesDir", []*tar.Header{{Typeflag: tar.TypeDir, Name: "d/"}, reg("d/x", "x"), reg("d", "file")}, func(t *testing.T, dir string) {
			if b, _ := os.ReadFile(filepath.Join(dir, "d")); string(b) != "file" {
				t.Errorf("d = %q", b)
			}
		}},
		{"MissingParentsAreCreated", []*tar.Header{reg("a/b/c", "c")}, func(t *testing.T, dir string) {
			st, err := os.Stat(filepath.Join(dir, "a/b"))
			if err != nil || st.Mode().Perm() != 0o755 {
				t.Errorf("a/b: %v %v", st, err)
			}
		}},
		{"LeadingSlashAndDotAreStripped", []*tar.Header{reg("/abs", "a"), reg("./rel", "r")}, func(t *testing.T, dir string) {
			for _, f := range []string{"abs", "rel"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
		}},
		{"SymlinkMayPointAnywhere", []*tar.Header{{Typeflag: tar.TypeSymlink, Name: "l", Linkname: "../../../../etc/shadow"}}, func(t *testing.T, dir string) {
			if got, _ := os.Readlink(filepath.Join(dir, "l")); got != "../../../../etc/shadow" {
				t.Errorf("l -> %q", got)
			}
		}},
		{"FIFOAndDevice", []*tar.Header{
			{Typeflag: tar.TypeFifo, Name: "fifo"},
			{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3, Mode: 0o666},
		}, func(t *testing.T, dir string) {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, "null"), &st); err != nil || st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
				t.Errorf("null: mode %o rdev %d %v", st.Mode, st.Rdev, err)
			}
			if err := unix.Lstat(filepath.Join(dir, "fifo"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				t.Errorf("fifo: mode %o %v", st.Mode, err)
			}
		}},
		{"OverlayXattrsFromLayerDropped", []*tar.Header{{Typeflag: tar.TypeDir, Name: "d/", PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/etc"}}}, func(t *testing.T, dir string) {
			if _, err := unix.Lgetxattr(filepath.Join(dir, "d"), "trusted.overlay.redirect", make([]byte, 16)); err == nil {
				t.Error("trusted.overlay.redirect was set from the layer")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Config{})
			img := testimage.Build(t, testimage.Spec{Layers: []testimage.Layer{{Tar: rawTar(t, tc.hdrs...)}}})
			got, err := importImage(t, s, img, "skiff.test/x:1")
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, got.Layers[0].Dir)
		})
	}
}

func TestUnpack_DiffIDMismatchIsRejected(t *testing.T) {
	s := newStore(t, Config{})
	img := testimage.Toolbox(t)
	// A config whose first diff_id names other content; the manifest and
	// blobs are consistent, so only the diffID check can catch it.
	cf := img.ConfigFile()
	cf.RootFS.DiffIDs[0] = digestOf([]byte("other content"))
	bad, err := mutate.ConfigFile(img.V1(), cf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(bad, layout.WithAnnotations(map[string]string{refNameAnnotation: "skiff.test/bad:1"})); err != nil {
		t.Fatal(err)
	}
	_, err = s.ImportPath(t.Context(), dir, nil)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "uncompressed layer") {
		t.Fatalf("import = %v, want a diffID mismatch", err)
	}
	assertEmpty(t, s)
}

func TestUnpack_ToolboxRunsInMergedRoot(t *testing.T) {
	s := newStore(t, Config{})
	img, err := importImage(t, s, testimage.Toolbox(t), "skiff.test/toolbox:1")
	if err != nil {
		t.Fatal(err)
	}
	root := mountOverlay(t, img)
	tests := []struct {
		name string
		argv []string
		cred *syscall.Credential
		want string
	}{
		{"EchoThroughSymlink", []string{"/bin/echo", "hello"}, nil, "hello\n"},
		{"IdResolvesRoot", []string{"/bin/id"}, nil, "uid=0(root) gid=0(root) groups=\n"},
		{"IdResolvesApp", []string{"/bin/id"}, &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{1000}}, "uid=1000(app) gid=1000(app) groups=1000\n"},
		{"CatPasswd", []string{"/bin/sh", "-c", "cat /etc/group"}, nil, "root:x:0:\nnogroup:x:65534:\napp:x:1000:app\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tc.argv[0], tc.argv[1:]...)
			cmd.Dir = "/"
			cmd.Env = []string{"PATH=" + testimage.ToolboxPath}
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: tc.cred}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.argv, err, out)
			}
			if string(out) != tc.want {
				t.Errorf("output %q, want %q", out, tc.want)
			}
		})
	}
}
