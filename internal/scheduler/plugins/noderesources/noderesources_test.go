package noderesources

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestFit_Filter(t *testing.T) {
	// A node with 4 cpu, 8Gi, 3 pods and 2 GPUs, of which one pod uses
	// 3 cpu and 6Gi.
	node := schedtest.Node("n").Cap("pods", "3", "example.com/gpu", "2").Obj()
	busy := schedtest.Pod("busy").Node("n").Req("cpu", "3", "memory", "6Gi").Obj()
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		want     string
	}{
		{"FittingPodFits", schedtest.Pod("p").Req("cpu", "1", "memory", "2Gi").Obj(), []*v1.Pod{busy}, "Success"},
		{"BestEffortPodFits", schedtest.Pod("p").Obj(), []*v1.Pod{busy}, "Success"},
		{"TooMuchCPU", schedtest.Pod("p").Req("cpu", "1500m").Obj(), []*v1.Pod{busy},
			"Unschedulable: Insufficient cpu"},
		{"TooMuchCPUAndMemoryGivesBothReasons", schedtest.Pod("p").Req("cpu", "2", "memory", "3Gi").Obj(), []*v1.Pod{busy},
			"Unschedulable: Insufficient cpu, Insufficient memory"},
		{"MoreThanTheWholeNodeIsUnresolvable", schedtest.Pod("p").Req("cpu", "5").Obj(), nil,
			"UnschedulableAndUnresolvable: Insufficient cpu"},
		{"FullNodeHasTooManyPods", schedtest.Pod("p").Obj(),
			[]*v1.Pod{schedtest.Pod("a").Node("n").Obj(), schedtest.Pod("b").Node("n").Obj(), schedtest.Pod("c").Node("n").Obj()},
			"Unschedulable: Too many pods"},
		{"ExtendedResourceFits", schedtest.Pod("p").Req("example.com/gpu", "2").Obj(), nil, "Success"},
		{"ExtendedResourceUsedUp", schedtest.Pod("p").Req("example.com/gpu", "1").Obj(),
			[]*v1.Pod{schedtest.Pod("g").Node("n").Req("example.com/gpu", "2").Obj()},
			"Unschedulable: Insufficient example.com/gpu"},
		{"ExtendedResourceTheNodeLacks", schedtest.Pod("p").Req("example.org/fpga", "1").Obj(), nil,
			"UnschedulableAndUnresolvable: Insufficient example.org/fpga"},
		// Init containers run before the others: the larger one counts.
		{"InitContainerLargerThanContainers", schedtest.Pod("p").Req("cpu", "500m").InitReq("cpu", "1500m").Obj(), []*v1.Pod{busy},
			"Unschedulable: Insufficient cpu"},
		{"InitContainerSmallerThanContainers", schedtest.Pod("p").Req("cpu", "1").InitReq("cpu", "500m").Obj(), []*v1.Pod{busy}, "Success"},
		// Sidecars keep running next to the containers: they add up.
		{"SidecarAddsToContainers", schedtest.Pod("p").Req("cpu", "800m").SidecarReq("cpu", "300m").Obj(), []*v1.Pod{busy},
			"Unschedulable: Insufficient cpu"},
		{"OverheadCounts", schedtest.Pod("p").Req("memory", "2Gi").Overhead("memory", "100Mi").Obj(), []*v1.Pod{busy},
			"Unschedulable: Insufficient memory"},
		{"ExistingOverheadCounts", schedtest.Pod("p").Req("memory", "1Gi").Obj(),
			[]*v1.Pod{schedtest.Pod("o").Node("n").Req("memory", "7Gi").Overhead("memory", "1Gi").Obj()},
			"Unschedulable: Insufficient memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := &Fit{}
			state := framework.NewCycleState()
			pod := framework.MustPodInfo(tc.pod)
			if _, s := pl.PreFilter(context.Background(), state, pod, nil); !s.IsSuccess() {
				t.Fatal(s)
			}
			got := pl.Filter(context.Background(), state, pod, schedtest.NodeInfo(node, tc.existing...))
			if diff := cmp.Diff(tc.want, got.String()); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFit_ScoreIsLeastAllocated(t *testing.T) {
	node := schedtest.Node("n").Obj() // 4 cpu, 8Gi
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		want     int64
	}{
		// cpu (4000-1000)/4000 = 75, memory (8-2)/8 = 75.
		{"EmptyNode", schedtest.Pod("p").Req("cpu", "1", "memory", "2Gi").Obj(), nil, 75},
		// cpu 1/4 free = 25, memory 4/8 free = 50: average 37.
		{"HalfUsedNode", schedtest.Pod("p").Req("cpu", "1", "memory", "2Gi").Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").Req("cpu", "2", "memory", "2Gi").Obj()}, 37},
		// Best effort counts 100m and 200Mi: cpu 97, memory 97.
		{"BestEffortCountsDefaults", schedtest.Pod("p").Obj(), nil, 97},
		{"OvercommittedScoresZero", schedtest.Pod("p").Req("cpu", "5", "memory", "9Gi").Obj(), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, s := (&Fit{}).Score(context.Background(), framework.NewCycleState(), framework.MustPodInfo(tc.pod), schedtest.NodeInfo(node, tc.existing...))
			if !s.IsSuccess() {
				t.Fatal(s)
			}
			if got != tc.want {
				t.Errorf("score %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBalancedAllocation_Score(t *testing.T) {
	node := schedtest.Node("n").Obj() // 4 cpu, 8Gi
	for _, tc := range []struct {
		name     string
		pod      *v1.Pod
		existing []*v1.Pod
		want     int64
	}{
		// cpu 1/4 = 0.25, memory 2/8 = 0.25: perfectly balanced.
		{"Balanced", schedtest.Pod("p").Req("cpu", "1", "memory", "2Gi").Obj(), nil, 100},
		// cpu 0.5, memory 0.125: 1 - 0.375/2.
		{"CPUHeavy", schedtest.Pod("p").Req("cpu", "2", "memory", "1Gi").Obj(), nil, 81},
		// Fractions are capped at 1.
		{"Overcommitted", schedtest.Pod("p").Req("cpu", "8").Obj(), nil, 50},
		{"ExistingPodsCount", schedtest.Pod("p").Req("cpu", "1").Obj(),
			[]*v1.Pod{schedtest.Pod("e").Node("n").Req("memory", "4Gi").Obj()}, 87},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, s := (&BalancedAllocation{}).Score(context.Background(), framework.NewCycleState(), framework.MustPodInfo(tc.pod), schedtest.NodeInfo(node, tc.existing...))
			if !s.IsSuccess() {
				t.Fatal(s)
			}
			if got != tc.want {
				t.Errorf("score %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBalancedAllocation_SkipsPodsWithoutRequests(t *testing.T) {
	s := (&BalancedAllocation{}).PreScore(context.Background(), framework.NewCycleState(), framework.MustPodInfo(schedtest.Pod("p").Obj()), nil)
	if !s.IsSkip() {
		t.Errorf("PreScore = %v, want Skip", s)
	}
}
