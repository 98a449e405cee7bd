package testimage

import (
	"os"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Users of the toolbox image, as /etc/passwd and /etc/group define them.
const (
	AppUID    = 1000 // user and group "app", home /home/app
	NobodyUID = 65534
)

// ToolboxPath is the PATH the toolbox image sets.
const ToolboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BaseEntries returns the skeleton filesystem of the toolbox image: the
// usual top-level dirs (/tmp 1777, /root 0700, /home/app owned by app),
// /etc/passwd with root, nobody and app (uid 1000), and /etc/group.
func BaseEntries() []Entry {
	return []Entry{
		{Path: "bin", Kind: Dir},
		{Path: "dev", Kind: Dir},
		{Path: "etc", Kind: Dir},
		{Path: "etc/passwd", Content: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
				"app:x:1000:1000:app:/home/app:/bin/sh\n")},
		{Path: "etc/group", Content: []byte(
			"root:x:0:\n" +
				"nogroup:x:65534:\n" +
				"app:x:1000:app\n")},
		{Path: "home", Kind: Dir},
		{Path: "home/app", Kind: Dir, UID: AppUID, GID: AppUID},
		{Path: "proc", Kind: Dir},
		{Path: "root", Kind: Dir, Mode: 0o700},
		{Path: "sys", Kind: Dir},
		{Path: "tmp", Kind: Dir, Mode: 0o1777},
		{Path: "usr", Kind: Dir},
		{Path: "usr/bin", Kind: Dir},
		{Path: "var", Kind: Dir},
	}
}

// ToolboxEntries returns the layer entries that install the toolbox binary
// for linux/arch ("" = host) as /bin/toolbox with a /bin symlink per command.
func ToolboxEntries(t testing.TB, arch string) []Entry {
	t.Helper()
	bin, err := os.ReadFile(ToolboxBinary(t, arch))
	if err != nil {
		t.Fatalf("testimage: read toolbox: %v", err)
	}
	entries := []Entry{
		{Path: "bin", Kind: Dir},
		{Path: "bin/toolbox", Content: bin, Mode: 0o755},
	}
	for _, c := range ToolboxCommands() {
		entries = append(entries, Entry{Path: "bin/" + c, Kind: Symlink, Target: "toolbox"})
	}
	return entries
}

// Toolbox returns the toolbox image for the host's architecture: layer 1 is
// BaseEntries, layer 2 is ToolboxEntries. Its config sets PATH, WorkingDir
// "/" and Cmd ["sleep", "infinity"], so a container of it runs until it is
// stopped. It is deterministic, so every call gives the same ID.
func Toolbox(t testing.TB) *Image {
	t.Helper()
	return Build(t, Spec{
		Layers: []Layer{{Entries: BaseEntries()}, {Entries: ToolboxEntries(t, "")}},
		Config: v1.Config{
			Env:        []string{"PATH=" + ToolboxPath},
			Cmd:        []string{"sleep", "infinity"},
			WorkingDir: "/",
			Labels:     map[string]string{"skiff.test/image": "toolbox"},
		},
	})
}

// Layered returns the toolbox image with three more layers that exercise
// what an image store must get right when it unpacks layers one by one and
// overlayfs stacks them. The merged view of the image is:
//
//	/data/keep.txt     "keep" 0644              (layer 3)
//	/data/added.txt    "added"                  (layer 4)
//	/data/gone.txt     absent: whited out       (added in 3, deleted in 4)
//	/data/olddir       absent: whited out dir   (added in 3, deleted in 4)
//	/opq               opaque in layer 4: only new.txt "new"; old.txt and
//	                   sub/ of layer 3 are hidden
//	/hard1, /hard2     one inode (hardlink), "hardcontent"
//	/link              symlink -> data/keep.txt
//	/abslink           symlink -> /etc/passwd
//	/setuid            0o4755 root:root "setuid"
//	/owned             0o640 1000:1000 "owned"
//	/sticky            dir 0o1777
//	/xattr             file with xattr user.skiff.test=yes
//	/etc/layer5        "zstd" (layer 5 is zstd-compressed)
//	/etc/layer6        "plain" (layer 6 is uncompressed)
func Layered(t testing.TB) *Image {
	t.Helper()
	return Build(t, Spec{
		Base: Toolbox(t),
		Layers: []Layer{
			{Entries: []Entry{
				{Path: "data", Kind: Dir},
				{Path: "data/keep.txt", Content: []byte("keep")},
				{Path: "data/gone.txt", Content: []byte("gone")},
				{Path: "data/olddir", Kind: Dir},
				{Path: "data/olddir/a.txt", Content: []byte("a")},
				{Path: "opq", Kind: Dir},
				{Path: "opq/old.txt", Content: []byte("old")},
				{Path: "opq/sub", Kind: Dir},
				{Path: "opq/sub/deep.txt", Content: []byte("deep")},
				{Path: "hard1", Content: []byte("hardcontent")},
				{Path: "hard2", Kind: Hardlink, Target: "hard1"},
				{Path: "link", Kind: Symlink, Target: "data/keep.txt"},
				{Path: "abslink", Kind: Symlink, Target: "/etc/passwd"},
				{Path: "setuid", Content: []byte("setuid"), Mode: 0o4755},
				{Path: "owned", Content: []byte("owned"), Mode: 0o640, UID: AppUID, GID: AppUID},
				{Path: "xattr", Content: []byte("x"), Xattrs: map[string]string{"user.skiff.test": "yes"}},
			}},
			{Entries: []Entry{
				{Path: "data/gone.txt", Kind: Whiteout},
				{Path: "data/olddir", Kind: Whiteout},
				{Path: "data/added.txt", Content: []byte("added")},
				{Path: "opq", Kind: Dir},
				{Path: "opq", Kind: Opaque},
				{Path: "opq/new.txt", Content: []byte("new")},
				{Path: "sticky", Kind: Dir, Mode: 0o1777},
			}},
			{Compression: Zstd, Entries: []Entry{
				{Path: "etc/layer5", Content: []byte("zstd")},
			}},
			{Compression: Uncompressed, Entries: []Entry{
				{Path: "etc/layer6", Content: []byte("plain")},
			}},
		},
		Config: v1.Config{Labels: map[string]string{"skiff.test/image": "layered"}},
	})
}

// MultiArch returns an OCI index with a linux/amd64 and a linux/arm64
// image. Each has BaseEntries and a layer with /etc/platform holding
// "linux/ARCH\n", so the two differ in that layer; the image for the host's
// architecture also has the toolbox layer (the other has no binary, to
// avoid a cross-compile).
func MultiArch(t testing.TB) *Index {
	t.Helper()
	var images []*Image
	for _, arch := range []string{"amd64", "arm64"} {
		layers := []Layer{
			{Entries: BaseEntries()},
			{Entries: []Entry{{Path: "etc/platform", Content: []byte("linux/" + arch + "\n")}}},
		}
		if arch == runtime.GOARCH {
			layers = append(layers, Layer{Entries: ToolboxEntries(t, "")})
		}
		images = append(images, Build(t, Spec{
			Layers:   layers,
			Platform: v1.Platform{OS: "linux", Architecture: arch},
			Config: v1.Config{
				Env: []string{"PATH=" + ToolboxPath},
				Cmd: []string{"sleep", "infinity"},
			},
		}))
	}
	return BuildIndex(t, images...)
}
