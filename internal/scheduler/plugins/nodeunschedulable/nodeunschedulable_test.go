package nodeunschedulable

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestNodeUnschedulable_Filter(t *testing.T) {
	rejected := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		node *v1.Node
		want *framework.Status
	}{
		{"SchedulableNodeFits", schedtest.Pod("p").Obj(), schedtest.Node("n").Obj(), nil},
		{"CordonedNodeIsRejected", schedtest.Pod("p").Obj(), schedtest.Node("n").Unschedulable().Obj(), rejected},
		{"PodToleratingTheUnschedulableTaintFits", schedtest.Pod("p").Toleration(v1.TaintNodeUnschedulable, "", v1.TaintEffectNoSchedule).Obj(), schedtest.Node("n").Unschedulable().Obj(), nil},
		{"PodToleratingEverythingFits", schedtest.Pod("p").Toleration("", "", "").Obj(), schedtest.Node("n").Unschedulable().Obj(), nil},
		{"ToleratingAnotherEffectIsNotEnough", schedtest.Pod("p").Toleration(v1.TaintNodeUnschedulable, "", v1.TaintEffectNoExecute).Obj(), schedtest.Node("n").Unschedulable().Obj(), rejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := (&NodeUnschedulable{}).Filter(context.Background(), framework.NewCycleState(), framework.MustPodInfo(tc.pod), schedtest.NodeInfo(tc.node))
			if diff := cmp.Diff(tc.want.String(), got.String()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
