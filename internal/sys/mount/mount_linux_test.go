package mount

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/testutil"
)

func TestParse(t *testing.T) {
	data := []byte("22 1 0:21 / /sys rw,relatime shared:7 - sysfs sysfs rw\n" +
		"41 26 0:4 net:[4026532176] /tmp/a\\040b/net rw - nsfs nsfs rw\n")
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{
		{ID: 22, Parent: 1, Root: "/", Mountpoint: "/sys", Options: "rw,relatime", Optional: "shared:7", FSType: "sysfs", Source: "sysfs", Super: "rw"},
		{ID: 41, Parent: 26, Root: "net:[4026532176]", Mountpoint: "/tmp/a b/net", Options: "rw", FSType: "nsfs", Source: "nsfs", Super: "rw"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if _, err := Parse([]byte("garbage line\n")); err == nil {
		t.Error("Parse accepted a bad line")
	}
}

func TestUnder_DeepestFirst(t *testing.T) {
	mounts := []Info{{Mountpoint: "/a"}, {Mountpoint: "/a/b/c"}, {Mountpoint: "/ab"}, {Mountpoint: "/a/b"}}
	if diff := cmp.Diff([]string{"/a/b/c", "/a/b", "/a"}, Under(mounts, "/a/")); diff != "" {
		t.Errorf("Under (-want +got):\n%s", diff)
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want Options
	}{
		{name: "ReadOnlyBind", in: []string{"rbind", "ro", "nosuid"}, want: Options{Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID}},
		{name: "RwClearsRo", in: []string{"ro", "rw"}, want: Options{ClearFlags: unix.MS_RDONLY}},
		{name: "Propagation", in: []string{"bind", "rslave"}, want: Options{Flags: unix.MS_BIND, Propagation: unix.MS_SLAVE | unix.MS_REC}},
		{name: "DataPassedThrough", in: []string{"nosuid", "mode=755", "size=65536k"}, want: Options{Flags: unix.MS_NOSUID, Data: "mode=755,size=65536k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseOptions(tt.in)); diff != "" {
				t.Errorf("ParseOptions(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestUnmountAll_RemovesNestedMounts(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	inner := filepath.Join(dir, "inner")
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := UnmountAll(dir); err != nil {
			t.Fatalf("UnmountAll #%d: %v", i+1, err)
		}
	}
	if ok, err := IsMountpoint(dir); err != nil || ok {
		t.Errorf("IsMountpoint(%s) = %v, %v after UnmountAll", dir, ok, err)
	}
}
