package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/skiff-sh/skiff/internal/testutil/hostclean"
)

// nodeCluster starts `skiff server` with its node agent (root only) and
// arranges for everything the agent leaves on the host to be removed at
// the end: container processes, mounts, the pod bridge and nftables table,
// cgroups, pod log directories.
func nodeCluster(t *testing.T) *cluster {
	t.Helper()
	requireRoot(t)
	c := &cluster{t: t, dataDir: t.TempDir(), port: freePort(t)}
	c.kubeconfig = filepath.Join(c.dataDir, "admin.kubeconfig")
	c.extraArgs = []string{"--kubelet-port", strconv.Itoa(freePort(t))}
	c.start()
	t.Cleanup(func() {
		// Let the agent stop the pods first, then stop the server.
		c.kubectl("delete", "all", "--all", "-A", "--wait=true", "--timeout=60s", "--grace-period=1")
		c.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("skiff server log:\n%s", c.log.String())
			logMonitorLogs(t, c.dataDir)
		}
		cleanupNode(t, c.dataDir)
	})
	waitFor(t, 60*time.Second, "the node to be Ready", func() bool {
		out, _ := c.kubectl("get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}")
		return strings.TrimSpace(out) == "True"
	})
	return c
}

// logMonitorLogs logs the container runtime's monitor.log files under
// dataDir (the monitor's and container inits' own errors, which do not
// reach the server's log).
func logMonitorLogs(t *testing.T, dataDir string) {
	filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "monitor.log" {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
			t.Logf("%s:\n%s", p, b)
		}
		return nil
	})
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SKIFF_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root, and SKIFF_REQUIRE_ROOT=1 forbids skipping it")
	}
	t.Skip("skipping: this test needs root (set SKIFF_REQUIRE_ROOT=1 to make this a failure)")
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// cleanupNode removes what a node agent rooted in dataDir left behind.
func cleanupNode(t *testing.T, dataDir string) {
	// Processes whose command line names the data dir (the runtime's
	// monitor and container inits), then mounts under it.
	hostclean.KillNaming(dataDir, nil)
	hostclean.UnmountUnder(dataDir)
	if l, err := netlink.LinkByName("skiff0"); err == nil {
		netlink.LinkDel(l)
	}
	if conn, err := nftables.New(); err == nil {
		conn.DelTable(&nftables.Table{Name: "skiff-podnet", Family: nftables.TableFamilyINet})
		conn.Flush()
	}
	// The pods' cgroups (the agent's parent is "skiff/kubepods").
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		hiers, _ := os.ReadDir(root)
		for _, h := range hiers {
			hostclean.RemoveCgroupTree(filepath.Join(root, h.Name(), "skiff", "kubepods"))
		}
		hostclean.RemoveCgroupTree(filepath.Join(root, "skiff", "kubepods"))
	}
}
