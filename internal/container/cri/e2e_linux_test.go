package cri_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/mount"
	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// crictlVersion is the upstream crictl the end-to-end tests drive.
const crictlVersion = "v1.37.0"

// buildOnce caches the binaries a test run needs.
type buildOnce struct {
	once sync.Once
	path string
	err  error
}

var (
	skiffBin  buildOnce
	crictlBin buildOnce
)

func moduleRoot(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// skiffBinary builds cmd/skiff once per test process, or takes the
// binary named by SKIFF_E2E_BINARY (CI builds it once for all packages).
func skiffBinary(t *testing.T) string {
	t.Helper()
	skiffBin.once.Do(func() {
		if p := os.Getenv("SKIFF_E2E_BINARY"); p != "" {
			skiffBin.path = p
			return
		}
		dir, err := os.MkdirTemp("", "skiff-e2e-bin-")
		if err != nil {
			skiffBin.err = err
			return
		}
		skiffBin.path = filepath.Join(dir, "skiff")
		cmd := exec.Command("go", "build", "-o", skiffBin.path, "./cmd/skiff")
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			skiffBin.err = fmt.Errorf("go build ./cmd/skiff: %v\n%s", err, out)
		}
	})
	if skiffBin.err != nil {
		t.Fatal(skiffBin.err)
	}
	return skiffBin.path
}

// crictl finds crictl on PATH or installs the pinned version into a cache
// directory with go install.
func crictl(t *testing.T) string {
	t.Helper()
	crictlBin.once.Do(func() {
		if p, err := exec.LookPath("crictl"); err == nil {
			crictlBin.path = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		gobin := filepath.Join(cache, "skiff-test-tools", "crictl-"+crictlVersion)
		crictlBin.path = filepath.Join(gobin, "crictl")
		if _, err := os.Stat(crictlBin.path); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "sigs.k8s.io/cri-tools/cmd/crictl@"+crictlVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			crictlBin.err = fmt.Errorf("install crictl: %v\n%s", err, out)
		}
	})
	if crictlBin.err != nil {
		t.Fatal(crictlBin.err)
	}
	return crictlBin.path
}

// node is a `skiff cri` process with crictl pointed at it.
type node struct {
	t      *testing.T
	bin    string
	root   string
	socket string
	parent string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	crictl string
}

func newNode(t *testing.T) *node {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	var b [6]byte
	rand.Read(b[:])
	n := &node{
		t: t, bin: skiffBinary(t), root: root, socket: filepath.Join(root, "cri.sock"),
		parent: "skiff-e2e-" + hex.EncodeToString(b[:]), crictl: crictl(t),
	}
	t.Cleanup(n.cleanup)
	n.start()
	return n
}

func (n *node) start() {
	n.t.Helper()
	n.log = &bytes.Buffer{}
	n.cmd = exec.Command(n.bin, "cri", "--root", filepath.Join(n.root, "state"), "--socket", n.socket,
		"--cgroup-parent", n.parent, "--log-level", "debug", "--metrics-address", "127.0.0.1:0")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := n.run("version"); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("skiff cri did not come up:\n%s", n.log)
}

// kill SIGKILLs the runtime process only (its containers' shims live on).
func (n *node) kill() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

func (n *node) cleanup() {
	if n.t.Failed() {
		n.t.Logf("skiff cri log:\n%s", n.log)
	}
	if n.cmd.ProcessState == nil {
		n.run("rmp", "-fa")
		// SIGTERM first: skiff cri stops the monitor when no container is left.
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	// Whatever a failed test left: containers, the monitor, mounts,
	// cgroups.
	entries, _ := os.ReadDir(filepath.Join(n.root, "state", "runtime", "containers"))
	for _, e := range entries {
		var rec struct{ Pid int }
		data, _ := os.ReadFile(filepath.Join(n.root, "state", "runtime", "containers", e.Name(), "container.json"))
		if json.Unmarshal(data, &rec) == nil && rec.Pid > 0 {
			syscall.Kill(rec.Pid, syscall.SIGKILL)
		}
	}
	var mon struct{ Pid int }
	data, _ := os.ReadFile(filepath.Join(n.root, "state", "runtime", "monitor.json"))
	if json.Unmarshal(data, &mon) == nil && mon.Pid > 0 {
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", mon.Pid)); err != nil {
				break
			}
			if i == 80 {
				n.t.Errorf("monitor %d still running after the runtime stopped", mon.Pid)
				syscall.Kill(mon.Pid, syscall.SIGKILL)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	mount.UnmountAll(n.root)
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/*"} {
		paths, _ := filepath.Glob(filepath.Join(dir, n.parent))
		for _, p := range paths {
			removeCgroupTree(p)
		}
	}
}

func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	unix.Rmdir(dir)
}

// run runs crictl and returns its stdout.
func (n *node) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--runtime-endpoint", "unix://" + n.socket, "--image-endpoint", "unix://" + n.socket, "--timeout", "30s"}, args...)
	cmd := exec.CommandContext(ctx, n.crictl, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (n *node) must(args ...string) string {
	n.t.Helper()
	out, err := n.run(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (n *node) writeJSON(name string, v any) string {
	n.t.Helper()
	p := filepath.Join(n.root, name)
	data, _ := json.Marshal(v)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		n.t.Fatal(err)
	}
	return p
}

func podConfig(n *node, name string) string {
	return n.writeJSON(name+"-pod.json", map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "default", "uid": name + "-uid", "attempt": 1},
		"hostname":      name,
		"log_directory": filepath.Join(n.root, "logs", name),
		"linux":         map[string]any{},
	})
}

func ctrConfig(n *node, name, image string, args ...string) string {
	return n.writeJSON(name+"-ctr.json", map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"args":     args,
		"log_path": name + ".log",
		"linux":    map[string]any{},
	})
}

// waitFor polls crictl until check accepts its output.
func (n *node) waitFor(check func(string) bool, args ...string) string {
	n.t.Helper()
	var out string
	for i := 0; i < 200; i++ {
		out, _ = n.run(args...)
		if check(out) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("crictl %v never gave the expected output; last:\n%s", args, out)
	return ""
}

func TestCrictl_EndToEnd(t *testing.T) {
	n := newNode(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	ref := testimage.Toolbox(t).Push(t, reg, "library/toolbox:1")

	t.Run("PullAndListImages", func(t *testing.T) {
		n.must("pull", ref)
		if out := n.must("images"); !strings.Contains(out, "library/toolbox") {
			t.Errorf("crictl images:\n%s", out)
		}
		if out := n.must("inspecti", ref); !strings.Contains(out, `"id": "sha256:`) {
			t.Errorf("crictl inspecti:\n%s", out)
		}
	})
	pod := n.must("runp", podConfig(n, "web"))
	ctr := n.must("create", pod, ctrConfig(n, "app", ref, "serve-tcp", "8080"), podConfig(n, "web"))
	n.must("start", ctr)

	t.Run("PsAndInspect", func(t *testing.T) {
		if out := n.must("ps"); !strings.Contains(out, ctr[:13]) || !strings.Contains(out, "Running") {
			t.Errorf("crictl ps:\n%s", out)
		}
		var insp struct {
			Status struct{ State string }
			Info   struct{ Pid int }
		}
		if err := json.Unmarshal([]byte(n.must("inspect", ctr)), &insp); err != nil {
			t.Fatal(err)
		}
		if insp.Status.State != "CONTAINER_RUNNING" || insp.Info.Pid <= 0 {
			t.Errorf("inspect: %+v", insp)
		}
		if out := n.must("inspectp", pod); !strings.Contains(out, `"netns"`) || !strings.Contains(out, "SANDBOX_READY") {
			t.Errorf("crictl inspectp:\n%s", out)
		}
	})
	t.Run("Logs", func(t *testing.T) {
		n.waitFor(func(s string) bool { return strings.Contains(s, "listening") }, "logs", ctr)
	})
	t.Run("Exec", func(t *testing.T) {
		if out := n.must("exec", ctr, "hostname"); out != "web" {
			t.Errorf("crictl exec hostname = %q", out)
		}
		if _, err := n.run("exec", ctr, "sh", "-c", "exit 3"); err == nil || !strings.Contains(err.Error(), "exit code 3") {
			t.Errorf("crictl exec of a failing command: %v", err)
		}
		if out := n.must("exec", "-s", ctr, "echo", "sync"); out != "sync" {
			t.Errorf("crictl exec -s = %q", out)
		}
	})
	t.Run("ExecWithTTY", func(t *testing.T) {
		out := n.runWithPty(t, "exec", "-it", ctr, "echo", "on a terminal")
		if !strings.Contains(out, "on a terminal") {
			t.Errorf("crictl exec -it output = %q", out)
		}
	})
	t.Run("PortForward", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(n.crictl, "--runtime-endpoint", "unix://"+n.socket, "port-forward", pod, fmt.Sprintf("%d:8080", port))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		var conn net.Conn
		for i := 0; i < 100; i++ {
			if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if conn == nil {
			t.Fatalf("port-forward never listened: %v\n%s", err, out.String())
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte("ping\n"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping\n" {
			t.Errorf("echo through crictl port-forward = %q, %v\n%s", buf, err, out.String())
		}
	})
	t.Run("Attach", func(t *testing.T) {
		cfg := n.writeJSON("cat-ctr.json", map[string]any{
			"metadata": map[string]any{"name": "cat"}, "image": map[string]any{"image": ref},
			"args": []string{"read-stdin"}, "log_path": "cat.log", "stdin": true, "stdin_once": true, "linux": map[string]any{},
		})
		cat := n.must("create", pod, cfg, podConfig(n, "web"))
		n.must("start", cat)
		cmd := exec.Command(n.crictl, "--runtime-endpoint", "unix://"+n.socket, "attach", "-i", cat)
		cmd.Stdin = strings.NewReader("through attach\n")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "through attach") {
			t.Errorf("crictl attach: %v\n%s", err, out)
		}
		n.waitFor(func(s string) bool { return strings.Contains(s, "Exited") }, "ps", "-a", "--id", cat)
		n.must("rm", cat)
	})
	t.Run("Stats", func(t *testing.T) {
		out := n.must("stats", "-o", "json", ctr)
		if !strings.Contains(out, "usageCoreNanoSeconds") || !strings.Contains(out, "workingSetBytes") {
			t.Errorf("crictl stats:\n%s", out)
		}
		if out := n.must("statsp", "-o", "json", pod); !strings.Contains(out, "usageCoreNanoSeconds") {
			t.Errorf("crictl statsp:\n%s", out)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		m := regexp.MustCompile(`msg="serving metrics" address=(\S+)`).FindStringSubmatch(n.log.String())
		if m == nil {
			t.Fatalf("no metrics address in the log")
		}
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`skiff_cri_operations_total{code="OK",method="StartContainer"}`,
			`skiff_cri_image_pulls_total{result="success"} 1`,
			"skiff_cri_operation_duration_seconds_bucket",
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	t.Run("RestartAdoptsContainers", func(t *testing.T) {
		quick := n.must("create", pod, ctrConfig(n, "quick", ref, "sh", "-c", "sleep 1"), podConfig(n, "web"))
		n.must("start", quick)
		n.kill()
		time.Sleep(1500 * time.Millisecond) // quick exits while the runtime is down
		n.start()
		if out := n.must("ps"); !strings.Contains(out, ctr[:13]) || !strings.Contains(out, "Running") {
			t.Errorf("after restart, crictl ps:\n%s", out)
		}
		var insp struct {
			Status struct {
				State    string
				ExitCode int
			}
		}
		json.Unmarshal([]byte(n.must("inspect", quick)), &insp)
		if insp.Status.State != "CONTAINER_EXITED" || insp.Status.ExitCode != 0 {
			t.Errorf("container that exited during the restart: %+v", insp.Status)
		}
		// Logs continue: exec still works and the server still logs.
		if out := n.must("exec", ctr, "echo", "still here"); out != "still here" {
			t.Errorf("exec after restart = %q", out)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		for _, tc := range []struct{ name, cfg, want string }{
			{"UnknownImage", ctrConfig(n, "noimg", "skiff.test/missing:1", "true"), "NotFound"},
			{"MissingExecutable", ctrConfig(n, "noexe", ref, "no-such-program"), "executable file not found"},
			{"DuplicateName", ctrConfig(n, "app", ref, "true"), "AlreadyExists"},
		} {
			if _, err := n.run("create", pod, tc.cfg, podConfig(n, "web")); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
			}
		}
		if _, err := n.run("inspect", "0123456789abcdef"); err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Errorf("inspect of unknown ID: %v", err)
		}
	})
	t.Run("StopRemove", func(t *testing.T) {
		n.must("stop", "--timeout", "1", ctr)
		n.must("rm", ctr)
		n.must("stopp", pod)
		n.must("rmp", pod)
		if out := n.must("pods", "-q"); out != "" {
			t.Errorf("pods left: %q", out)
		}
		n.must("rmi", ref)
		if out := n.must("images", "-q"); out != "" {
			t.Errorf("images left: %q", out)
		}
	})
}

// runWithPty runs crictl with a terminal on its stdin and stdout.
func (n *node) runWithPty(t *testing.T, args ...string) string {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0)
	num, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", num), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"--runtime-endpoint", "unix://" + n.socket, "--timeout", "30s"}, args...)
	cmd := exec.Command(n.crictl, full...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { out.ReadFrom(master); close(done) }()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("crictl %v: %v", args, err)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("crictl %v hung; output %q", args, out.String())
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return out.String()
}
