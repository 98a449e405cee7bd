package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_Isolation(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("iso")
	tests := []struct {
		name  string
		cfg   *runtimeapi.ContainerConfig
		check func(t *testing.T, out []string, st *runtimeapi.ContainerStatus)
	}{
		{"SeesOnlyItsOwnPIDs", containerConfig("ps", "ps"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			if diff := cmp.Diff([]string{"PID COMMAND", "1 ps"}, out); diff != "" {
				t.Errorf("ps (-want +got):\n%s", diff)
			}
		}},
		{"HasThePodsHostname", containerConfig("hostname", "hostname"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			if diff := cmp.Diff([]string{"iso"}, out); diff != "" {
				t.Errorf("hostname (-want +got):\n%s", diff)
			}
		}},
		{"SeesOnlyLoopback", containerConfig("ifaces", "ifaces"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			if len(out) != 1 || !strings.HasPrefix(out[0], "lo up|loopback") {
				t.Errorf("interfaces = %q, want only lo, up", out)
			}
		}},
		{"HasItsOwnMountTable", containerConfig("mounts", "mounts"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			var points []string
			for _, l := range out {
				f := strings.Fields(l)
				if len(f) > 4 {
					points = append(points, f[4])
				}
			}
			for _, want := range []string{"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
				if !slices.Contains(points, want) {
					t.Errorf("mount table lacks %s: %q", want, points)
				}
			}
			for _, p := range points {
				if strings.Contains(p, h.root) {
					t.Errorf("container sees host mount %s", p)
				}
			}
		}},
		{"CannotReadKcore", containerConfig("kcore", "cat", "/proc/kcore"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			// Masked (empty) where the kernel has it, absent where not.
			for _, l := range out {
				if !strings.HasPrefix(l, "stderr: ") {
					t.Errorf("read /proc/kcore: %q", out)
				}
			}
		}},
		{"CannotCreateDeviceNodes", containerConfig("mknod", "mknod", "/tmp/null"), func(t *testing.T, out []string, st *runtimeapi.ContainerStatus) {
			if st.ExitCode == 0 {
				t.Errorf("mknod succeeded: %q", out)
			}
		}},
		{"StartsWithNoSignalIgnored", containerConfig("sigign", "cat", "/proc/self/status"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			// The monitor ignores terminal signals; its containers must not.
			if !slices.Contains(out, "SigIgn:\t0000000000000000") {
				t.Errorf("status: %q", out)
			}
		}},
		{"HasDockersCapabilitiesOnly", containerConfig("caps", "cat", "/proc/self/status"), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			// Docker's default set has no CAP_SYS_ADMIN, so no mount.
			if !slices.Contains(out, "CapEff:\t00000000a80425fb") {
				t.Errorf("status lacks the default effective set: %q", out)
			}
		}},
		{"RunsAsImageOrRequestedUser", func() *runtimeapi.ContainerConfig {
			c := containerConfig("id", "id")
			c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
			c.Linux.SecurityContext.SupplementalGroups = []int64{4242}
			return c
		}(), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			if len(out) != 1 || !strings.HasPrefix(out[0], "uid=1000(app) gid=1000(app) groups=") || !strings.Contains(out[0], "4242") {
				t.Errorf("id = %q", out)
			}
		}},
		{"ReadOnlyRootfsRefusesWrites", func() *runtimeapi.ContainerConfig {
			c := containerConfig("ro", "touch", "/newfile")
			c.Linux.SecurityContext.ReadonlyRootfs = true
			return c
		}(), func(t *testing.T, out []string, st *runtimeapi.ContainerStatus) {
			if st.ExitCode == 0 || !strings.Contains(strings.Join(out, " "), "read-only file system") {
				t.Errorf("touch on a read-only rootfs: exit %d, %q", st.ExitCode, out)
			}
		}},
		{"EnvAndWorkingDir", func() *runtimeapi.ContainerConfig {
			c := containerConfig("env", "sh", "-c", "pwd")
			c.WorkingDir = "/tmp/work"
			return c
		}(), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			if diff := cmp.Diff([]string{"/tmp/work"}, out); diff != "" {
				t.Errorf("pwd (-want +got):\n%s", diff)
			}
		}},
		{"RuntimeDefaultSeccompStillRuns", func() *runtimeapi.ContainerConfig {
			c := containerConfig("seccomp", "echo", "ok")
			c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
			return c
		}(), func(t *testing.T, out []string, st *runtimeapi.ContainerStatus) {
			if st.ExitCode != 0 || !cmp.Equal(out, []string{"ok"}) {
				t.Errorf("echo under RuntimeDefault: exit %d, %q", st.ExitCode, out)
			}
		}},
		{"RuntimeDefaultSeccompAndNoNewPrivsAreInForce", func() *runtimeapi.ContainerConfig {
			c := containerConfig("seccomp-status", "cat", "/proc/self/status")
			c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
			c.Linux.SecurityContext.NoNewPrivs = true
			return c
		}(), func(t *testing.T, out []string, _ *runtimeapi.ContainerStatus) {
			for _, want := range []string{"Seccomp:\t2", "NoNewPrivs:\t1"} {
				if !slices.Contains(out, want) {
					t.Errorf("status lacks %q: %q", want, out)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, st := h.output(pod, tt.cfg)
			tt.check(t, out, st)
		})
	}
}

func TestRuntime_SysctlsAndRlimits(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 4321, Hard: 8765}}
	})
	host, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	pod := h.runPod("sysctl", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.Sysctls = map[string]string{"net.ipv4.ip_local_port_range": "20000 30000"}
	})
	out, st := h.output(pod, containerConfig("read", "cat", "/proc/sys/net/ipv4/ip_local_port_range", "/proc/self/limits"))
	if st.ExitCode != 0 || len(out) < 2 {
		t.Fatalf("exit %d, %q", st.ExitCode, out)
	}
	if got := strings.Join(strings.Fields(out[0]), " "); got != "20000 30000" {
		t.Errorf("the pod's ip_local_port_range = %q, want 20000 30000", got)
	}
	// The hard limit: the toolbox, a Go program, raises its own soft one.
	i := slices.IndexFunc(out, func(l string) bool { return strings.HasPrefix(l, "Max open files") })
	if f := strings.Fields(strings.TrimPrefix(out[max(i, 0)], "Max open files")); i < 0 || len(f) < 2 || f[1] != "8765" {
		t.Errorf("open files limit: %q, want hard limit 8765", out)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); string(after) != string(host) {
		t.Errorf("the host's ip_local_port_range changed: %q -> %q", host, after)
	}
}

func TestRuntime_BindMounts(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("vol")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "in.txt"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("ReadOnlyVolumeIsReadableNotWritable", func(t *testing.T) {
		c := containerConfig("ro-read", "cat", "/data/in.txt")
		c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true}}
		out, _ := h.output(pod, c)
		if diff := cmp.Diff([]string{"from host"}, out); diff != "" {
			t.Errorf("cat (-want +got):\n%s", diff)
		}
		c = containerConfig("ro-write", "touch", "/data/new")
		c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Readonly: true}}
		if _, st := h.output(pod, c); st.ExitCode == 0 {
			t.Error("wrote to a read-only volume")
		}
	})
	t.Run("ReadWriteVolumeReachesTheHost", func(t *testing.T) {
		c := containerConfig("rw", "write", "/data/out.txt", "from container")
		c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: src, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}}
		h.output(pod, c)
		data, err := os.ReadFile(filepath.Join(src, "out.txt"))
		if err != nil || !strings.Contains(string(data), "from container") {
			t.Errorf("host sees %q, %v", data, err)
		}
	})
}
