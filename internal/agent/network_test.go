package agent

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/network/cni"
	"github.com/skiff-sh/skiff/internal/network/podnet"
)

func TestPortMappings_FromCRI(t *testing.T) {
	in := []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080},
		{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "192.0.2.1"},
		{Protocol: runtimeapi.Protocol_SCTP, ContainerPort: 9, HostPort: 9},
	}
	wantPodnet := []podnet.PortMapping{
		{Protocol: podnet.TCP, ContainerPort: 80, HostPort: 8080},
		{Protocol: podnet.UDP, ContainerPort: 53, HostPort: 5353, HostIP: netip.MustParseAddr("192.0.2.1")},
		{Protocol: podnet.SCTP, ContainerPort: 9, HostPort: 9},
	}
	got, err := podnetPorts(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantPodnet, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("podnet mappings (-want +got):\n%s", diff)
	}
	wantCNI := []cni.PortMapping{
		{Protocol: "tcp", ContainerPort: 80, HostPort: 8080},
		{Protocol: "udp", ContainerPort: 53, HostPort: 5353, HostIP: "192.0.2.1"},
		{Protocol: "sctp", ContainerPort: 9, HostPort: 9},
	}
	if diff := cmp.Diff(wantCNI, cniPorts(in)); diff != "" {
		t.Errorf("CNI mappings (-want +got):\n%s", diff)
	}

	for _, bad := range []*runtimeapi.PortMapping{
		{ContainerPort: 80, HostPort: 70000},
		{ContainerPort: 0, HostPort: 80},
		{ContainerPort: 80, HostPort: 80, HostIp: "not-an-ip"},
	} {
		if _, err := podnetPorts([]*runtimeapi.PortMapping{bad}); !errors.Is(err, podnet.ErrInvalid) {
			t.Errorf("podnetPorts(%v) = %v, want ErrInvalid", bad, err)
		}
	}
}
