package kubelet_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestKubelet_GivesTheNetworkThePodsHostPorts(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("web")
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{ContainerPort: 80, HostPort: 8080},
		{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "192.0.2.10"},
		{ContainerPort: 9090}, // no hostPort
	}
	h.createPod(pod)
	h.waitPod("web", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	sandboxes := h.rt.Sandboxes()
	if len(sandboxes) != 1 {
		t.Fatalf("%d sandboxes, want 1", len(sandboxes))
	}
	h.network.mu.Lock()
	got := h.network.ports[sandboxes[0].Id]
	h.network.mu.Unlock()
	want := []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080},
		{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "192.0.2.10"},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("port mappings given to the network (-want +got):\n%s", diff)
	}
}
