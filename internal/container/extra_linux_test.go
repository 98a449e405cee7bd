package container

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_TTYContainerLogsItsTerminal(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("tty")
	c := containerConfig("tty", "echo", "on a terminal")
	c.Tty = true
	id := h.run(pod, c)
	h.wait(id)
	lines := h.logLines(id)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "stdout F on a terminal") {
		t.Errorf("log of a tty container = %q", lines)
	}
}

func TestRuntime_OOMScoreAdjIsClampedNotFatal(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("oomadj")
	c := containerConfig("adj", "cat", "/proc/self/oom_score_adj")
	c.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: -999}
	out, st := h.output(pod, c)
	if st.ExitCode != 0 || len(out) != 1 {
		t.Fatalf("exit %d, %q", st.ExitCode, out)
	}
	got, _ := strconv.Atoi(out[0])
	if floor := ownOOMScoreAdj(); got != -999 && got != floor {
		t.Errorf("oom_score_adj = %d, want -999 or the host's floor %d", got, floor)
	}
}

func TestRuntime_RemoveLeavesNothingBehind(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("gone")
	id := h.run(pod, containerConfig("app", "sleep", "3600"))
	st, info, err := h.rt.PodSandboxStatus(t.Context(), pod, true)
	if err != nil || st.State != runtimeapi.PodSandboxState_SANDBOX_READY || !strings.Contains(info["info"], `"netns"`) {
		t.Fatalf("status %v %v %v", st, info, err)
	}
	c, _ := h.rt.lookupContainer(id)
	pid := c.rec.Pid
	if err := h.rt.RemovePodSandbox(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.RemovePodSandbox(t.Context(), pod); err != nil {
		t.Errorf("second remove: %v", err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), h.cfg.Root) {
		t.Errorf("mounts left under the runtime root:\n%s", mounts)
	}
	if processAlive(pid) {
		t.Errorf("container process %d still alive", pid)
	}
	for _, dir := range []string{"sandboxes", "containers"} {
		if entries, _ := os.ReadDir(filepath.Join(h.cfg.Root, dir)); len(entries) != 0 {
			t.Errorf("%s left: %v", dir, entries)
		}
	}
	memory := h.cg.Layout().V1["memory"]
	if memory == "" {
		memory = h.cg.Layout().Unified
	}
	parent, _ := filepath.Glob(filepath.Join(memory, "skiff-test-*", "pod-*"))
	for _, p := range parent {
		if strings.Contains(p, pod[:12]) {
			t.Errorf("pod cgroup left: %s", p)
		}
	}
	if _, _, err := h.rt.ContainerStatus(t.Context(), id, false); err == nil {
		t.Error("removed container still has a status")
	}
}

func TestRuntime_SetPodIPsIsReportedAndPersisted(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("ips")
	if err := h.rt.SetPodIPs(pod, []string{"10.42.0.7", "fd00::7"}); err != nil {
		t.Fatal(err)
	}
	h.restart()
	st, _, err := h.rt.PodSandboxStatus(t.Context(), pod, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Network.Ip != "10.42.0.7" || len(st.Network.AdditionalIps) != 1 || st.Network.AdditionalIps[0].Ip != "fd00::7" {
		t.Errorf("network status = %v", st.Network)
	}
	if err := h.rt.SetPodIPs("nope", nil); err == nil {
		t.Error("SetPodIPs on an unknown sandbox succeeded")
	}
}
