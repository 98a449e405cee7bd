package container

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// TestRuntime_CgroupV2Only runs containers with the cgroup manager pointed
// at the host's cgroup2 hierarchy alone, as on a pure cgroup v2 host: the
// container gets a cgroup2 mount inside its cgroup namespace, and exec
// clones straight into the container's cgroup.
func TestRuntime_CgroupV2Only(t *testing.T) {
	h := newHarness(t)
	unified := h.cg.Layout().Unified
	if unified == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	if len(h.cg.Layout().V1) == 0 {
		t.Skip("already a cgroup v2 only host: every other test covers it")
	}
	v2, err := cgroups.New(cgroups.Config{Parent: randomName("skiff-test-v2-"), Layout: &cgroups.Layout{Unified: unified}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := v2.Open(""); err == nil {
			c.Remove(t.Context())
		}
	})
	h.rt.Close()
	h.cfg.Cgroups = HostCgroups(v2)
	h.cfg.Root += "-v2"
	if h.rt, err = New(h.cfg); err != nil {
		t.Fatal(err)
	}
	pod := h.runPod("v2")
	out, st := h.output(pod, containerConfig("cgroup", "cat", "/proc/self/cgroup"))
	// In its own cgroup namespace, the container is at the root of every
	// hierarchy (the host's v1 ones are still there, just unmanaged).
	if st.ExitCode != 0 || !slices.Contains(out, "0::/") || slices.ContainsFunc(out, func(l string) bool { return !strings.HasSuffix(l, ":/") }) {
		t.Errorf("/proc/self/cgroup = %q (exit %d), want 0::/ and every line at /", out, st.ExitCode)
	}
	out, _ = h.output(pod, containerConfig("mounts", "mounts"))
	if !slices.ContainsFunc(out, func(l string) bool { return strings.Contains(l, " /sys/fs/cgroup ") && strings.Contains(l, "cgroup2") }) {
		t.Errorf("no cgroup2 mount at /sys/fs/cgroup: %q", out)
	}
	id := h.run(pod, containerConfig("target", "sleep", "3600"))
	stdout, _, code, err := h.rt.ExecSync(t.Context(), id, []string{"cat", "/proc/self/cgroup"}, 10*time.Second)
	if err != nil || code != 0 || !strings.Contains(string(stdout), "\n0::/\n") {
		t.Errorf("exec: %q %d %v", stdout, code, err)
	}
	if err := h.rt.RemovePodSandbox(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	h.rt.Close()
	time.Sleep(100 * time.Millisecond)
	os.RemoveAll(h.cfg.Root)
}
