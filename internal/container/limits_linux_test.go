package container

import (
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_Limits(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("limits")
	t.Run("MemoryHogIsOOMKilled", func(t *testing.T) {
		c := containerConfig("hog", "hog", "256")
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
		_, st := h.output(pod, c)
		if st.Reason != "OOMKilled" || st.ExitCode != 137 {
			t.Errorf("hog: exit %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
		}
	})
	t.Run("ForkBombStopsAtPidsMax", func(t *testing.T) {
		c := containerConfig("bomb", "forkbomb")
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{Unified: map[string]string{"pids.max": "32"}}
		id := h.run(pod, c)
		// The bomb keeps trying; the cgroup holds it at the limit.
		var cur uint64
		for i := 0; i < 100; i++ {
			stats, err := h.rt.cfg.Cgroups.(hostCgroups).m.Open(h.rt.containers[id].rec.Cgroup)
			if err != nil {
				t.Fatal(err)
			}
			s, err := stats.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if s.Pids != nil {
				cur = s.Pids.Current
			}
			if cur >= 32 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if cur != 32 {
			t.Errorf("pids.current = %d, want it held at 32", cur)
		}
		// The host still forks.
		if _, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{}); err != nil {
			t.Errorf("host cannot fork: %v", err)
		}
		if err := h.rt.StopContainer(t.Context(), id, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CPUQuotaThrottles", func(t *testing.T) {
		c := containerConfig("spin", "spin", "1.5")
		c.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuQuota: 10000, CpuPeriod: 100000}
		id := h.run(pod, c)
		h.wait(id)
		cg, err := h.rt.cfg.Cgroups.Open(h.rt.containers[id].rec.Cgroup)
		if err != nil {
			t.Fatal(err)
		}
		s, err := cg.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.CPU == nil || s.CPU.ThrottledPeriods == 0 {
			t.Errorf("cpu stats = %+v, want throttled periods", s.CPU)
		}
	})
}

func TestRuntime_StopSendsSignalThenKills(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("stop")
	t.Run("GracefulProgramExitsOnSIGTERM", func(t *testing.T) {
		id := h.run(pod, containerConfig("graceful", "signals", "0"))
		waitForLog(t, h, id, "ready")
		if err := h.rt.StopContainer(t.Context(), id, 10); err != nil {
			t.Fatal(err)
		}
		st := h.wait(id)
		if st.ExitCode != 0 || !strings.Contains(strings.Join(h.logLines(id), "\n"), "SIGTERM") {
			t.Errorf("exit %d, log %q", st.ExitCode, h.logLines(id))
		}
	})
	t.Run("StubbornProgramIsKilledAfterTimeout", func(t *testing.T) {
		// It takes SIGTERM but lingers 60 seconds before exiting.
		id := h.run(pod, containerConfig("stubborn", "signals", "60"))
		waitForLog(t, h, id, "ready")
		if err := h.rt.StopContainer(t.Context(), id, 1); err != nil {
			t.Fatal(err)
		}
		if st := h.wait(id); st.ExitCode != 137 {
			t.Errorf("exit %d, want 137", st.ExitCode)
		}
		// Stopping again is fine.
		if err := h.rt.StopContainer(t.Context(), id, 1); err != nil {
			t.Errorf("second stop: %v", err)
		}
	})
}

// waitForLog waits until the container's log has a line containing text.
func waitForLog(t *testing.T, h *harness, id, text string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		st, _, _ := h.rt.ContainerStatus(t.Context(), id, false)
		if data, err := os.ReadFile(st.GetLogPath()); err == nil && strings.Contains(string(data), text) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("container %s never logged %q", id, text)
}
