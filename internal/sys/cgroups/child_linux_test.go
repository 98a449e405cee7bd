//go:build linux

package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv, when set, makes the test binary act as a helper process instead
// of running tests; its value names the behaviour (see runChild).
const childEnv = "SKIFF_CGROUPS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// runChild is the helper process. Modes that need to be in their cgroup
// before they start their work wait for a line on stdin ("go").
func runChild(mode string) int {
	in := bufio.NewReader(os.Stdin)
	waitGo := func() { in.ReadString('\n') }
	switch mode {
	case "block":
		// Stay until stdin closes (or a signal ends us).
		io.Copy(io.Discard, in)
		return 0
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	case "memhog":
		waitGo()
		var hoard [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				if i%4096 == 0 {
					b[i] = 1
				}
			}
			hoard = append(hoard, b)
		}
	case "burn":
		waitGo()
		for x := 0; ; x++ {
			_ = x * x
		}
	case "forkbomb":
		waitGo()
		spawned, refused := 0, 0
		for refused < 20 {
			_, err := syscall.ForkExec(os.Args[0], []string{os.Args[0]}, &syscall.ProcAttr{
				Env: []string{childEnv + "=sleep", "GOMAXPROCS=1"},
			})
			switch {
			case err == nil:
				spawned++
			case errors.Is(err, syscall.EAGAIN):
				refused++
			default:
				fmt.Println("error", err)
				return 1
			}
		}
		fmt.Println("refused", spawned)
		io.Copy(io.Discard, in)
		return 0
	case "cgroupns":
		waitGo()
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWCGROUP); err != nil {
			fmt.Println("error", err)
			return 1
		}
		data, err := os.ReadFile("/proc/thread-self/cgroup")
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		os.Stdout.Write(data)
		fmt.Println("end")
		io.Copy(io.Discard, in)
		return 0
	case "cgroupfile":
		data, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		os.Stdout.Write(data)
		fmt.Println("end")
		io.Copy(io.Discard, in)
		return 0
	case "devices":
		waitGo()
		for spec := range strings.FieldsSeq(os.Getenv("SKIFF_CGROUPS_TEST_DEVICES")) {
			// path:r or path:w or path:rw
			path, access, _ := strings.Cut(spec, ":")
			flags := map[string]int{"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[access]
			f, err := os.OpenFile(path, flags, 0)
			if err == nil {
				f.Close()
				fmt.Println(spec, "ok")
				continue
			}
			fmt.Println(spec, errors.Unwrap(err))
		}
		fmt.Println("end")
		io.Copy(io.Discard, in)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	done  chan struct{} // closed when the process has been waited for
	err   error         // from Wait, valid after done
}

// startChild starts the test binary as a helper in mode. Cleanup kills and
// reaps it.
func startChild(t testing.TB, mode string, env []string, attr *syscall.SysProcAttr) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode, "GOMAXPROCS=1"), env...)
	cmd.SysProcAttr = attr
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", mode, err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout), done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		stdin.Close()
		<-c.done
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// go tells a waiting helper to start its work.
func (c *child) start(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatalf("tell helper to go: %v", err)
	}
}

// lines reads the helper's output up to a line "end" (or EOF).
func (c *child) lines(t testing.TB) []string {
	t.Helper()
	var out []string
	for c.out.Scan() {
		if c.out.Text() == "end" {
			return out
		}
		out = append(out, c.out.Text())
	}
	return out
}

// wait waits for the helper to exit, failing the test if that takes longer
// than a generous bound (a hang, not a slow machine).
func (c *child) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(2 * time.Minute):
		t.Fatalf("helper %d did not exit", c.pid())
		return nil
	}
}
