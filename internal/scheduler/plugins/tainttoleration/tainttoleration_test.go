package tainttoleration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestTaintToleration_Filter(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		node *v1.Node
		want string
	}{
		{"UntaintedNodeFits", schedtest.Pod("p").Obj(), schedtest.Node("n").Obj(), "Success"},
		{"NoScheduleTaintRejects", schedtest.Pod("p").Obj(),
			schedtest.Node("n").Taint("dedicated", "gpu", v1.TaintEffectNoSchedule).Obj(),
			"UnschedulableAndUnresolvable: node(s) had untolerated taint {dedicated: gpu}"},
		{"TaintWithoutValueShowsEmptyValue", schedtest.Pod("p").Obj(),
			schedtest.Node("n").Taint("node-role.kubernetes.io/control-plane", "", v1.TaintEffectNoSchedule).Obj(),
			"UnschedulableAndUnresolvable: node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"},
		{"NoExecuteTaintRejects", schedtest.Pod("p").Obj(),
			schedtest.Node("n").Taint("k", "v", v1.TaintEffectNoExecute).Obj(),
			"UnschedulableAndUnresolvable: node(s) had untolerated taint {k: v}"},
		{"PreferNoScheduleDoesNotFilter", schedtest.Pod("p").Obj(),
			schedtest.Node("n").Taint("k", "v", v1.TaintEffectPreferNoSchedule).Obj(), "Success"},
		{"EqualTolerationFits", schedtest.Pod("p").Toleration("dedicated", "gpu", v1.TaintEffectNoSchedule).Obj(),
			schedtest.Node("n").Taint("dedicated", "gpu", v1.TaintEffectNoSchedule).Obj(), "Success"},
		{"WrongValueRejects", schedtest.Pod("p").Toleration("dedicated", "db", v1.TaintEffectNoSchedule).Obj(),
			schedtest.Node("n").Taint("dedicated", "gpu", v1.TaintEffectNoSchedule).Obj(),
			"UnschedulableAndUnresolvable: node(s) had untolerated taint {dedicated: gpu}"},
		{"ExistsTolerationWithoutEffectFits", schedtest.Pod("p").Toleration("dedicated", "", "").Obj(),
			schedtest.Node("n").Taint("dedicated", "gpu", v1.TaintEffectNoExecute).Obj(), "Success"},
		{"FirstUntoleratedTaintIsNamed", schedtest.Pod("p").Toleration("a", "", "").Obj(),
			schedtest.Node("n").Taint("a", "1", v1.TaintEffectNoSchedule).Taint("b", "2", v1.TaintEffectNoSchedule).Obj(),
			"UnschedulableAndUnresolvable: node(s) had untolerated taint {b: 2}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := (&TaintToleration{}).Filter(context.Background(), framework.NewCycleState(), framework.MustPodInfo(tc.pod), schedtest.NodeInfo(tc.node))
			if diff := cmp.Diff(tc.want, got.String()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaintToleration_ScorePrefersFewerUntoleratedPreferNoSchedule(t *testing.T) {
	nodes := []*v1.Node{
		schedtest.Node("clean").Obj(),
		schedtest.Node("one").Taint("a", "1", v1.TaintEffectPreferNoSchedule).Obj(),
		schedtest.Node("two").Taint("a", "1", v1.TaintEffectPreferNoSchedule).Taint("b", "2", v1.TaintEffectPreferNoSchedule).Obj(),
		schedtest.Node("tolerated").Taint("c", "3", v1.TaintEffectPreferNoSchedule).Obj(),
	}
	pod := framework.MustPodInfo(schedtest.Pod("p").Toleration("c", "3", v1.TaintEffectPreferNoSchedule).Obj())
	pl := &TaintToleration{}
	state := framework.NewCycleState()
	if s := pl.PreScore(context.Background(), state, pod, nil); !s.IsSuccess() {
		t.Fatal(s)
	}
	var scores []framework.NodeScore
	for _, n := range nodes {
		sc, s := pl.Score(context.Background(), state, pod, schedtest.NodeInfo(n))
		if !s.IsSuccess() {
			t.Fatal(s)
		}
		scores = append(scores, framework.NodeScore{Name: n.Name, Score: sc})
	}
	pl.NormalizeScore(context.Background(), state, pod, scores)
	want := []framework.NodeScore{{Name: "clean", Score: 100}, {Name: "one", Score: 50}, {Name: "two", Score: 0}, {Name: "tolerated", Score: 100}}
	if diff := cmp.Diff(want, scores); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
}
