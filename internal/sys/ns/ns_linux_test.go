package ns

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/testutil"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestPin_CreatesNamespacesThatOutliveTheThread(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	paths, err := Pin(dir, []Type{Net, IPC, UTS}, func() error {
		if err := unix.Sethostname([]byte("pinned")); err != nil {
			return err
		}
		return LoopbackUp()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			if err := Unpin(p); err != nil {
				t.Error(err)
			}
		}
	})
	for _, typ := range []Type{Net, IPC, UTS} {
		if inode(t, paths[typ]) == inode(t, "/proc/self/ns/"+string(typ)) {
			t.Errorf("%s namespace is the host's", typ)
		}
	}
	var hostname string
	var ifaces []net.Interface
	err = Do(map[Type]string{UTS: paths[UTS], Net: paths[Net]}, func() error {
		var uts unix.Utsname
		if err := unix.Uname(&uts); err != nil {
			return err
		}
		hostname = unix.ByteSliceToString(uts.Nodename[:])
		ifaces, err = net.Interfaces()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if hostname != "pinned" {
		t.Errorf("hostname in pinned UTS namespace = %q, want pinned", hostname)
	}
	if len(ifaces) != 1 || ifaces[0].Name != "lo" || ifaces[0].Flags&net.FlagUp == 0 {
		t.Errorf("interfaces in pinned netns = %+v, want only lo, up", ifaces)
	}
	// The calling thread is untouched.
	if h, _ := os.Hostname(); h == "pinned" {
		t.Error("host hostname changed")
	}
}

func TestUnpin_IsIdempotent(t *testing.T) {
	testutil.RequireRoot(t)
	paths, err := Pin(t.TempDir(), []Type{Net}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := Unpin(paths[Net]); err != nil {
			t.Fatalf("Unpin #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(paths[Net]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pinned file still there: %v", err)
	}
}

func TestPin_RejectsBadInput(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if _, err := Pin(dir, []Type{"bogus"}, nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Pin(bogus) error = %v, want ErrUnknownType", err)
	}
	setupErr := errors.New("setup failed")
	if _, err := Pin(dir, []Type{Net}, func() error { return setupErr }); !errors.Is(err, setupErr) {
		t.Errorf("Pin with failing setup error = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed Pin left %v behind", entries)
	}
	if err := Do(map[Type]string{Net: filepath.Join(dir, "missing")}, func() error { return nil }); err == nil {
		t.Error("Do with a missing namespace file succeeded")
	}
}
