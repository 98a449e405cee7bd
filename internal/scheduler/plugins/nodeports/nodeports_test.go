package nodeports

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestNodePorts_Filter(t *testing.T) {
	conflict := framework.NewStatus(framework.Unschedulable, ErrReason).String()
	node := schedtest.Node("n").Obj()
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		want     string // status; "Skip" when PreFilter skips
	}{
		{"PodWithoutHostPortsSkips", schedtest.Pod("p").Obj(), nil, "Skip"},
		{"FreePortFits", schedtest.Pod("p").HostPort("", v1.ProtocolTCP, 80).Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").HostPort("", v1.ProtocolTCP, 8080).Obj()}, "Success"},
		{"SamePortAndProtocolConflicts", schedtest.Pod("p").HostPort("", v1.ProtocolTCP, 80).Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").HostPort("", "", 80).Obj()}, conflict},
		{"SamePortOtherProtocolFits", schedtest.Pod("p").HostPort("", v1.ProtocolUDP, 53).Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").HostPort("", v1.ProtocolTCP, 53).Obj()}, "Success"},
		{"DifferentAddressesFit", schedtest.Pod("p").HostPort("10.0.0.1", v1.ProtocolTCP, 80).Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").HostPort("10.0.0.2", v1.ProtocolTCP, 80).Obj()}, "Success"},
		{"WildcardConflictsWithAnAddress", schedtest.Pod("p").HostPort("0.0.0.0", v1.ProtocolTCP, 80).Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").HostPort("10.0.0.2", v1.ProtocolTCP, 80).Obj()}, conflict},
		{"AddressConflictsWithWildcard", schedtest.Pod("p").HostPort("10.0.0.1", v1.ProtocolTCP, 80).Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").HostPort("", v1.ProtocolTCP, 80).Obj()}, conflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := &NodePorts{}
			state := framework.NewCycleState()
			pod := framework.MustPodInfo(tc.pod)
			_, s := pl.PreFilter(context.Background(), state, pod, nil)
			if !s.IsSuccess() {
				if diff := cmp.Diff(tc.want, s.String()); diff != "" {
					t.Errorf("prefilter (-want +got):\n%s", diff)
				}
				return
			}
			got := pl.Filter(context.Background(), state, pod, schedtest.NodeInfo(node, tc.existing...))
			if diff := cmp.Diff(tc.want, got.String()); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodePorts_FilterWithoutPreFilterIsAnError(t *testing.T) {
	pod := framework.MustPodInfo(schedtest.Pod("p").HostPort("", v1.ProtocolTCP, 80).Obj())
	s := (&NodePorts{}).Filter(context.Background(), framework.NewCycleState(), pod, schedtest.NodeInfo(schedtest.Node("n").Obj()))
	if s.Code() != framework.Error {
		t.Errorf("got %v, want an Error status", s)
	}
}
