package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_AdoptsContainersAfterRestart(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LogMaxSize = -1 })
	pod := h.runPod("survivor")
	long := h.run(pod, containerConfig("long", "tick", "5"))
	short := h.run(pod, containerConfig("short", "sh", "-c", "exit 7"))
	waitForLog(t, h, long, "stdout")

	// The runtime goes away while the containers run; one of them exits
	// meanwhile.
	h.rt.Close()
	time.Sleep(200 * time.Millisecond)
	h.restart()

	st, _, err := h.rt.ContainerStatus(t.Context(), long, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("long-running container is %v after restart, want RUNNING", st.State)
	}
	before := logSize(t, st.LogPath)
	time.Sleep(300 * time.Millisecond)
	if after := logSize(t, st.LogPath); after <= before {
		t.Errorf("log stopped growing after restart: %d -> %d bytes", before, after)
	}
	if st := h.wait(short); st.ExitCode != 7 || st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container that exited while the runtime was down: %v exit %d, want EXITED 7", st.State, st.ExitCode)
	}
	// The adopted container can still be stopped, and its exit is seen.
	if err := h.rt.StopContainer(t.Context(), long, 0); err != nil {
		t.Fatal(err)
	}
	if st := h.wait(long); st.ExitCode != 137 {
		t.Errorf("stopped adopted container exit %d, want 137", st.ExitCode)
	}
}

func logSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestRuntime_BadInputLeavesNothingBehind(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("bad")
	dup := h.run(pod, containerConfig("dup", "sleep", "3600"))
	tests := []struct {
		name string
		cfg  *runtimeapi.ContainerConfig
		want error
		text string
	}{
		{"UnknownImage", func() *runtimeapi.ContainerConfig {
			c := containerConfig("noimage", "true")
			c.Image.Image = "skiff.test/nope:1"
			return c
		}(), ErrNotFound, "nope"},
		{"InvalidMountSource", func() *runtimeapi.ContainerConfig {
			c := containerConfig("nomount", "true")
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/nonexistent/skiff/volume"}}
			return c
		}(), ErrInvalid, "invalid mount source"},
		{"MissingExecutable", containerConfig("noexec", "no-such-program"), ErrInvalid, "executable file not found"},
		// Mounts below /proc are made by the forked init itself, which
		// reports its errors on the sync socket.
		{"MountBelowProcFailsInTheInit", func() *runtimeapi.ContainerConfig {
			c := containerConfig("procmount", "true")
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: `/proc/no "such" dir`, HostPath: t.TempDir()}}
			return c
		}(), ErrInvalid, `on /proc/no "such" dir: no such file or directory`},
		{"DuplicateName", containerConfig("dup", "true"), ErrAlreadyExists, "reserved"},
		{"UnknownUser", func() *runtimeapi.ContainerConfig {
			c := containerConfig("nouser", "true")
			c.Linux.SecurityContext.RunAsUsername = "ghost"
			return c
		}(), ErrInvalid, "ghost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.settledSnapshot()
			_, err := h.rt.CreateContainer(t.Context(), pod, tt.cfg)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("CreateContainer error = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			if after := h.settledSnapshot(); after != before {
				t.Errorf("debris after a failed create:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if _, err := h.rt.CreateContainer(t.Context(), "no-such-sandbox", containerConfig("x", "true")); !errors.Is(err, ErrNotFound) {
		t.Errorf("create in unknown sandbox: %v, want ErrNotFound", err)
	}
	if err := h.rt.StartContainer(t.Context(), dup); !errors.Is(err, ErrNotReady) {
		t.Errorf("starting a running container: %v, want ErrNotReady", err)
	}
}

// settledSnapshot is a snapshot once it stops changing (a failed init
// takes a moment to be reaped).
func (h *harness) settledSnapshot() string {
	prev := h.snapshot()
	for i := 0; i < 40; i++ {
		time.Sleep(100 * time.Millisecond)
		cur := h.snapshot()
		if cur == prev {
			return cur
		}
		prev = cur
	}
	return prev
}

// snapshot summarizes what the runtime holds on the host: container
// dirs, mounts under the root, processes and cgroups.
func (h *harness) snapshot() string {
	dirs, _ := os.ReadDir(filepath.Join(h.cfg.Root, "containers"))
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	n := strings.Count(string(mounts), h.root)
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + h.parent + "/*/*")
	// Container processes: the monitor's children inside our cgroups.
	procs := 0
	for _, pid := range h.children(h.monitor().Pid) {
		if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && strings.Contains(string(cg), "/"+h.parent+"/") {
			procs++
		}
	}
	return strings.Join([]string{
		"containers=" + itoa(len(dirs)), "mounts=" + itoa(n), "cgroups=" + itoa(len(cgs)), "helpers=" + itoa(procs),
	}, " ")
}

func itoa(n int) string { return strconvItoa(n) }
