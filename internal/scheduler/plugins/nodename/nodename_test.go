package nodename

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestNodeName_Filter(t *testing.T) {
	node := schedtest.NodeInfo(schedtest.Node("n1").Obj())
	for _, tc := range []struct {
		name     string
		nodeName string
		want     *framework.Status
	}{
		{"PodWithoutNodeNameFitsAnyNode", "", nil},
		{"PodNamingTheNodeFits", "n1", nil},
		{"PodNamingAnotherNodeIsRejected", "n2", framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := framework.MustPodInfo(schedtest.Pod("p").Node(tc.nodeName).Obj())
			got := (&NodeName{}).Filter(context.Background(), framework.NewCycleState(), pod, node)
			if diff := cmp.Diff(tc.want.String(), got.String()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
