package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/testutil/hostclean"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// node is a running `skiff server` with its node agent, on a data dir of
// its own.
type node struct {
	bin     string // the skiff binary
	dataDir string
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for

	kubeconfig string
	rest       *rest.Config
	client     kubernetes.Interface
	name       string // the Node's name
}

// criSocket is the agent's built-in runtime's CRI socket.
func (n *node) criSocket() string { return filepath.Join(n.dataDir, "agent", "cri.sock") }

// buildSkiff builds ./cmd/skiff into dir and returns the binary's path.
func buildSkiff(ctx context.Context, dir string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	out := filepath.Join(dir, "skiff")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/skiff")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build skiff: %w\n%s", err, msg)
	}
	return out, nil
}

// freePort asks the kernel for an unused TCP port on loopback.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startNode starts `skiff server` in its own process group, listening on
// loopback only, and waits until the API answers and the Node is Ready.
// The caller must call stop (also when startNode fails: it stops what
// was started).
func startNode(ctx context.Context, bin, dir string) (*node, error) {
	n := &node{bin: bin, dataDir: filepath.Join(dir, "data"), logFile: filepath.Join(dir, "server.log")}
	n.kubeconfig = filepath.Join(n.dataDir, "admin.kubeconfig")
	https, err := freePort()
	if err != nil {
		return n, err
	}
	kubelet, err := freePort()
	if err != nil {
		return n, err
	}
	logf, err := os.Create(n.logFile)
	if err != nil {
		return n, err
	}
	defer logf.Close()
	n.cmd = exec.Command(bin, "server", "--data-dir", n.dataDir, "--bind-address", "127.0.0.1",
		"--https-port", strconv.Itoa(https), "--kubelet-port", strconv.Itoa(kubelet))
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return n, fmt.Errorf("start skiff server: %w", err)
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := n.connect(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			return n, fmt.Errorf("skiff server not ready after 90s: %w", err)
		}
		select {
		case <-n.exited:
			return n, fmt.Errorf("skiff server exited: %v", n.cmd.ProcessState)
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	for {
		nodes, err := n.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, nd := range nodes.Items {
				for _, c := range nd.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						n.name = nd.Name
						return n, nil
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return n, errors.New("the node is not Ready after 90s")
		}
		select {
		case <-n.exited:
			return n, fmt.Errorf("skiff server exited: %v", n.cmd.ProcessState)
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connect makes the client once the admin kubeconfig exists and /readyz
// answers ok.
func (n *node) connect(ctx context.Context) error {
	if n.client == nil {
		cfg, err := clientcmd.BuildConfigFromFlags("", n.kubeconfig)
		if err != nil {
			return err
		}
		// The creates go out at once: no client-side rate limit.
		cfg.QPS, cfg.Burst = -1, 0
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		n.rest, n.client = cfg, client
	}
	body, err := n.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return err
	}
	if string(body) != "ok" {
		return fmt.Errorf("/readyz: %s", body)
	}
	return nil
}

// importImage writes img as an OCI layout named ref and imports it with
// `skiff images import` into the agent's runtime.
func (n *node) importImage(ctx context.Context, img *testimage.Image, ref, dir string) error {
	layout := filepath.Join(dir, "toolbox-layout")
	if err := useTB(func(t testing.TB) { img.WriteOCILayout(t, layout, ref) }); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, n.bin, "images", "import", "-q", "--socket", n.criSocket(), layout)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("skiff images import: %w\n%s", err, out)
	}
	return nil
}

// running reports whether the server process runs.
func (n *node) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to the server's process group and waits for it to
// exit (SIGKILL after 30 s). It is idempotent.
func (n *node) stop() {
	if !n.running() {
		return
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
}

// logTail returns the last lines of the server's log.
func (n *node) logTail(lines int) string {
	data, _ := os.ReadFile(n.logFile)
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// otherAgents lists the processes on the host, other than skip, that run
// a node agent: `skiff server` without --disable-agent, or `skiff agent`.
func otherAgents(skip int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == skip || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "skiff" {
			continue
		}
		agent := args[1] == "agent"
		if args[1] == "server" {
			agent = true
			for _, a := range args[2:] {
				if a == "--disable-agent" || a == "--disable-agent=true" {
					agent = false
				}
			}
		}
		if agent {
			out = append(out, fmt.Sprintf("%d: %s", pid, strings.Join(args, " ")))
		}
	}
	return out
}

// waitNoOtherAgents waits until no other node agent has run on the host
// for quiet, from now on (checked every second), giving up after timeout: two agents
// on one host share the pod bridge and nftables table and break each
// other, and tests that start one agent after another leave short gaps.
func waitNoOtherAgents(ctx context.Context, timeout, quiet time.Duration) error {
	deadline := time.Now().Add(timeout)
	lastSeen := time.Now() // the window starts now: gaps between tests are short
	said := false
	for {
		others := otherAgents(0)
		if len(others) > 0 {
			lastSeen = time.Now()
			if !said {
				fmt.Fprintf(os.Stderr, "waiting for other node agents on this host to exit (and %v of quiet):\n  %s\n", quiet, strings.Join(others, "\n  "))
				said = true
			}
		} else if time.Since(lastSeen) >= quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("other node agents still run after %v: %s", timeout, strings.Join(others, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// cleanupHost removes what the node agent rooted in dataDir left on the
// host once the server has stopped: helper processes naming the data dir
// (the runtime monitor), mounts under it, the cgroups of
// this run's pods (pod<uid> under kubepods, the peer's pod-<id> under
// skiff), pod log directories of namespace ns, and, unless another node
// agent runs now, the pod bridge, the nftables table and the empty
// kubepods tree.
func cleanupHost(dataDir, ns string, podUIDs, sandboxIDs []string, logf func(string, ...any)) {
	hostclean.KillNaming(dataDir, logf)
	hostclean.UnmountUnder(dataDir)

	// Our pods' cgroups: kill what is left in them, then remove them.
	ours := map[string]bool{}
	for _, u := range podUIDs {
		ours["pod"+u] = true
	}
	for _, id := range sandboxIDs {
		if len(id) >= 12 {
			ours["pod-"+id[:12]] = true
		}
	}
	for _, root := range cgroupRoots() {
		filepath.WalkDir(filepath.Join(root, "skiff"), func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if ours[d.Name()] {
				killCgroupTree(p)
				hostclean.RemoveCgroupTree(p)
				return filepath.SkipDir
			}
			return nil
		})
	}
	if logs, err := filepath.Glob(filepath.Join("/var/log/pods", ns+"_*")); err == nil {
		for _, l := range logs {
			os.RemoveAll(l)
		}
	}

	if others := otherAgents(0); len(others) > 0 {
		logf("cleanup: another node agent runs now (%s): leaving the skiff0 bridge, the inet skiff-podnet table and the kubepods cgroups in place", strings.Join(others, "; "))
		return
	}
	if l, err := netlink.LinkByName("skiff0"); err == nil {
		netlink.LinkDel(l)
	}
	if conn, err := nftables.New(); err == nil {
		conn.DelTable(&nftables.Table{Name: "skiff-podnet", Family: nftables.TableFamilyINet})
		conn.Flush()
	}
	for _, root := range cgroupRoots() {
		hostclean.RemoveCgroupTree(filepath.Join(root, "skiff", "kubepods"))
	}
}

// cgroupRoots returns the cgroup v1 hierarchies' mount points, or the
// v2 root.
func cgroupRoots() []string {
	roots := []string{"/sys/fs/cgroup"}
	hiers, _ := os.ReadDir("/sys/fs/cgroup")
	for _, h := range hiers {
		if h.IsDir() {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", h.Name()))
		}
	}
	return roots
}

// killCgroupTree sends SIGKILL to every process in the cgroup dir and its
// children.
func killCgroupTree(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return nil
	})
}
