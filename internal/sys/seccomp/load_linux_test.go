package seccomp

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/testutil"
)

// TestMain lets the test binary act as the child of TestLoad: with
// SECCOMP_TEST_CHILD set it loads RuntimeDefault and reports which
// syscalls the kernel refused.
func TestMain(m *testing.M) {
	if os.Getenv("SECCOMP_TEST_CHILD") == "1" {
		os.Exit(loadChild())
	}
	os.Exit(m.Run())
}

func loadChild() int {
	runtime.LockOSThread()
	prog, err := Compile(RuntimeDefault(nil))
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 2
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 2
	}
	if err := Load(prog); err != nil {
		os.Stderr.WriteString(err.Error())
		return 2
	}
	var out []string
	if err := unix.Mount("none", "/", "", unix.MS_REMOUNT|unix.MS_BIND, ""); err == unix.EPERM {
		out = append(out, "mount=EPERM")
	}
	if _, err := unix.Getcwd(make([]byte, 256)); err == nil {
		out = append(out, "getcwd=ok")
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWNET, 0, 0); errno == unix.EPERM {
		out = append(out, "unshare=EPERM")
	}
	os.Stdout.WriteString(strings.Join(out, " "))
	return 0
}

func TestLoad_KernelEnforcesRuntimeDefault(t *testing.T) {
	testutil.RequireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SECCOMP_TEST_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v (%s)", err, out)
	}
	if got, want := string(out), "mount=EPERM getcwd=ok unshare=EPERM"; got != want {
		t.Errorf("child reported %q, want %q", got, want)
	}
}
