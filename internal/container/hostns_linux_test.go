package container

import (
	"net"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_HostNamespacesAndPrivileged(t *testing.T) {
	h := newHarness(t)
	host := h.runPod("host", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
			Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE,
		}}
	})
	t.Run("HostNetworkSeesHostInterfaces", func(t *testing.T) {
		out, _ := h.output(host, containerConfig("ifaces", "ifaces"))
		ifs, _ := net.Interfaces()
		if len(out) != len(ifs) {
			t.Errorf("container sees %d interfaces (%q), host has %d", len(out), out, len(ifs))
		}
	})
	t.Run("HostPIDSeesHostProcesses", func(t *testing.T) {
		c := containerConfig("ps", "ps")
		c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE}
		out, _ := h.output(host, c)
		if len(out) < 5 || !strings.HasPrefix(out[1], "1 ") || strings.HasSuffix(out[1], " ps") {
			t.Errorf("ps in a host-PID container: %q", out)
		}
	})
	t.Run("PrivilegedHasEveryCapability", func(t *testing.T) {
		c := containerConfig("priv", "cat", "/proc/self/status")
		c.Linux.SecurityContext.Privileged = true
		out, st := h.output(host, c)
		if st.ExitCode != 0 || slices.Contains(out, "CapEff:\t00000000a80425fb") || !slices.ContainsFunc(out, func(l string) bool { return strings.HasPrefix(l, "CapEff:\t000001ff") }) {
			t.Errorf("privileged container status: %q", out)
		}
	})
	t.Run("DroppedAndAddedCapabilities", func(t *testing.T) {
		c := containerConfig("caps", "cat", "/proc/self/status")
		c.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}}
		c.Linux.SecurityContext.NoNewPrivs = true
		out, _ := h.output(host, c)
		if !slices.Contains(out, "CapEff:\t0000000000000400") || !slices.Contains(out, "NoNewPrivs:\t1") {
			t.Errorf("status: %q", out)
		}
	})
}
