// Package e2e runs the real skiff binary as a separate process and drives
// it with real clients: skiff kubectl (upstream kubectl), Debian's kubectl
// 1.20 and client-go.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// skiffBin is the binary under test, built once by TestMain.
var skiffBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "skiff-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	skiffBin = filepath.Join(dir, "skiff")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	build := exec.Command("go", "build", "-o", skiffBin, "./cmd/skiff")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build skiff:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort asks the kernel for an unused TCP port on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cluster is a running `skiff server` process.
type cluster struct {
	t          *testing.T
	dataDir    string
	port       int
	kubeconfig string
	cmd        *exec.Cmd
	log        *bytes.Buffer
	extraArgs  []string
}

// startCluster runs `skiff server` on a fresh data dir, without a node
// agent (see nodeCluster for one with), and waits until it is ready. The process runs in its own process group; it is killed and its
// log printed (on failure) at the end of the test.
func startCluster(t *testing.T, args ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dataDir: t.TempDir(), port: freePort(t), extraArgs: append([]string{"--disable-agent"}, args...)}
	c.kubeconfig = filepath.Join(c.dataDir, "admin.kubeconfig")
	c.start()
	t.Cleanup(func() {
		c.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("skiff server log:\n%s", c.log.String())
		}
	})
	return c
}

func (c *cluster) start() {
	c.t.Helper()
	args := append([]string{"server", "--data-dir", c.dataDir, "--https-port", fmt.Sprint(c.port), "--bind-address", "127.0.0.1"}, c.extraArgs...)
	c.cmd = exec.Command(skiffBin, args...)
	// A restarted server keeps writing to the same log, so that a failure
	// shows what happened before the restart too.
	if c.log == nil {
		c.log = &bytes.Buffer{}
	} else {
		fmt.Fprintf(c.log, "--- skiff server restarted ---\n")
	}
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.waitReady(30 * time.Second)
}

// waitReady polls /readyz until it answers ok.
func (c *cluster) waitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(c.kubeconfig); err == nil {
			out, err := c.kubectl("get", "--raw", "/readyz")
			if err == nil && strings.TrimSpace(out) == "ok" {
				return
			}
		}
		if c.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("skiff server did not become ready; log:\n%s", c.log.String())
}

// stop signals the process group and waits for the server to exit.
func (c *cluster) stop(sig syscall.Signal) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	syscall.Kill(-c.cmd.Process.Pid, sig)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	c.cmd = nil
}

// kubectl runs `skiff kubectl` against the cluster and returns its output.
func (c *cluster) kubectl(args ...string) (string, error) {
	return c.kubectlIn("", args...)
}

func (c *cluster) kubectlIn(stdin string, args ...string) (string, error) {
	return c.run(nil, stdin, args...)
}

// kubectlEnv runs kubectl with extra environment variables.
func (c *cluster) kubectlEnv(env []string, args ...string) (string, error) {
	return c.run(env, "", args...)
}

func (c *cluster) run(env []string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, skiffBin, append([]string{"kubectl", "--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+c.dataDir), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustKubectl runs kubectl and fails the test on error.
func (c *cluster) mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// client returns a client-go clientset for the cluster.
func (c *cluster) client() kubernetes.Interface {
	c.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		c.t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}
