package defaultpreemption_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/scheduler/cache"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/plugins/defaultbinder"
	"github.com/skiff-sh/skiff/internal/scheduler/plugins/defaultpreemption"
	"github.com/skiff-sh/skiff/internal/scheduler/plugins/noderesources"
	"github.com/skiff-sh/skiff/internal/scheduler/plugins/tainttoleration"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec int) metav1.Time { return metav1.NewTime(epoch.Add(time.Duration(sec) * time.Second)) }

// low is a running pod with a priority, a cpu request and a start time.
func low(name, node string, prio int32, cpu string, started int) *v1.Pod {
	return schedtest.Pod(name).Node(node).Priority(prio).Req("cpu", cpu).Started(at(started)).Obj()
}

// setup builds a framework with Fit, TaintToleration, DefaultPreemption
// and DefaultBinder over a snapshot of the pods and nodes, and runs the
// pod's filters to get the statuses preemption starts from.
func setup(t *testing.T, pods []*v1.Pod, nodes []*v1.Node, pod *v1.Pod) (*defaultpreemption.DefaultPreemption, *framework.CycleState, *framework.PodInfo, *framework.NodeToStatus, *fake.Clientset) {
	t.Helper()
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p)
	}
	client := fake.NewClientset(objs...)
	h := &framework.Handle{Snapshot: cache.NewSnapshot(pods, nodes), Client: client, Parallelizer: framework.Parallelizer{Parallelism: 1}, Clock: clocktesting.NewFakeClock(epoch)}
	reg := framework.Registry{
		noderesources.FitName:  noderesources.NewFit,
		tainttoleration.Name:   tainttoleration.New,
		defaultpreemption.Name: defaultpreemption.New,
		defaultbinder.Name:     defaultbinder.New,
	}
	fw, err := framework.NewFramework(reg, []framework.PluginRef{{Name: tainttoleration.Name}, {Name: noderesources.FitName}, {Name: defaultpreemption.Name}, {Name: defaultbinder.Name}}, h)
	if err != nil {
		t.Fatal(err)
	}
	pi := framework.MustPodInfo(pod)
	state := framework.NewCycleState()
	all := h.Snapshot.List()
	if _, s := fw.RunPreFilterPlugins(context.Background(), state, pi, all); !s.IsSuccess() {
		t.Fatal(s)
	}
	statuses := framework.NewNodeToStatus()
	for _, n := range all {
		if s := fw.RunFilterPlugins(context.Background(), state, pi, n); !s.IsSuccess() {
			statuses.Set(n.Node().Name, s)
		}
	}
	return fw.Plugin(defaultpreemption.Name).(*defaultpreemption.DefaultPreemption), state, pi, statuses, client
}

func TestDefaultPreemption_FindCandidate(t *testing.T) {
	full := schedtest.Node("n1").Obj() // 4 cpu
	for _, tc := range []struct {
		name        string
		nodes       []*v1.Node
		pods        []*v1.Pod
		pod         *v1.Pod
		wantNode    string
		wantVictims []string
		wantMsg     string
	}{
		{"NeverPolicyIsNotEligible", []*v1.Node{full}, []*v1.Pod{low("a", "n1", 1, "4", 0)},
			schedtest.Pod("p").Priority(10).PreemptNever().Req("cpu", "1").Obj(),
			"", nil, "not eligible due to preemptionPolicy=Never."},
		{"NoLowerPriorityPods", []*v1.Node{full}, []*v1.Pod{low("a", "n1", 10, "4", 0)},
			schedtest.Pod("p").Priority(10).Req("cpu", "1").Obj(),
			"", nil, "0/1 nodes are available: 1 No preemption victims found for incoming pod."},
		{"UnresolvableNodeIsNotHelpful", []*v1.Node{schedtest.Node("n1").Taint("k", "v", v1.TaintEffectNoSchedule).Obj()}, []*v1.Pod{low("a", "n1", 1, "4", 0)},
			schedtest.Pod("p").Priority(10).Req("cpu", "1").Obj(),
			"", nil, "0/1 nodes are available: 1 Preemption is not helpful for scheduling."},
		{"EvictingEverythingIsNotEnough", []*v1.Node{full}, []*v1.Pod{low("a", "n1", 1, "1", 0), low("b", "n1", 20, "3", 0)},
			schedtest.Pod("p").Priority(10).Req("cpu", "2").Obj(),
			"", nil, "0/1 nodes are available: 1 Insufficient cpu."},
		// With every lower pod gone the pod fits; b (priority 2) is put
		// back first, then a (older), and c no longer fits.
		{"MinimalVictims", []*v1.Node{full},
			[]*v1.Pod{low("a", "n1", 1, "1", 10), low("b", "n1", 2, "1", 30), low("c", "n1", 1, "2", 20)},
			schedtest.Pod("p").Priority(10).Req("cpu", "2").Obj(),
			"n1", []string{"c"}, ""},
		{"LowestHighestVictimPriorityWins", []*v1.Node{schedtest.Node("n1").Obj(), schedtest.Node("n2").Obj()},
			[]*v1.Pod{low("a", "n1", 5, "4", 0), low("b", "n2", 3, "4", 0)},
			schedtest.Pod("p").Priority(10).Req("cpu", "2").Obj(),
			"n2", []string{"b"}, ""},
		{"FewerVictimsWin", []*v1.Node{schedtest.Node("n1").Obj(), schedtest.Node("n2").Obj()},
			[]*v1.Pod{low("a1", "n1", 1, "2", 0), low("a2", "n1", 1, "2", 0), low("b", "n2", 1, "4", 0)},
			schedtest.Pod("p").Priority(10).Req("cpu", "3").Obj(),
			"n2", []string{"b"}, ""},
		{"LatestStartedVictimsWin", []*v1.Node{schedtest.Node("n1").Obj(), schedtest.Node("n2").Obj()},
			[]*v1.Pod{low("old", "n1", 1, "4", 0), low("new", "n2", 1, "4", 100)},
			schedtest.Pod("p").Priority(10).Req("cpu", "2").Obj(),
			"n2", []string{"new"}, ""},
		{"TerminatingVictimOnNominatedNodeMeansWait", []*v1.Node{full},
			[]*v1.Pod{schedtest.Pod("going").Node("n1").Priority(1).Req("cpu", "4").Terminating().Obj()},
			schedtest.Pod("p").Priority(10).Req("cpu", "2").Nominated("n1").Obj(),
			"", nil, "not eligible due to a terminating pod on the nominated node."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, state, pi, statuses, _ := setup(t, tc.pods, tc.nodes, tc.pod)
			c, s := pl.FindCandidate(context.Background(), state, pi, statuses)
			if tc.wantMsg != "" {
				if s.IsSuccess() {
					t.Fatalf("candidate %+v, want rejection %q", c, tc.wantMsg)
				}
				if diff := cmp.Diff(tc.wantMsg, s.Message()); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
				return
			}
			if !s.IsSuccess() {
				t.Fatal(s)
			}
			var victims []string
			for _, v := range c.Victims {
				victims = append(victims, v.Pod.Name)
			}
			slices.Sort(victims)
			if diff := cmp.Diff(struct {
				Node    string
				Victims []string
			}{tc.wantNode, tc.wantVictims}, struct {
				Node    string
				Victims []string
			}{c.Node, victims}); diff != "" {
				t.Errorf("candidate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultPreemption_PostFilterEvictsAndNominates(t *testing.T) {
	pods := []*v1.Pod{low("a", "n1", 1, "3", 0), low("b", "n1", 1, "1", 0)}
	pl, state, pi, statuses, client := setup(t, pods, []*v1.Node{schedtest.Node("n1").Obj()}, schedtest.Pod("p").Priority(10).Req("cpu", "2").Obj())
	r, s := pl.PostFilter(context.Background(), state, pi, statuses)
	if !s.IsSuccess() {
		t.Fatal(s)
	}
	if r.NominatedNodeName != "n1" {
		t.Errorf("nominated %q, want n1", r.NominatedNodeName)
	}
	var got []string
	for _, a := range client.Actions() {
		switch a := a.(type) {
		case k8stesting.PatchAction:
			got = append(got, "patch "+a.GetName()+"/"+a.GetSubresource()+" "+string(a.GetPatch()))
		case k8stesting.DeleteAction:
			got = append(got, "delete "+a.GetName())
		}
	}
	want := []string{
		`patch a/status {"metadata":{"uid":"uid-a"},"status":{"conditions":[{"lastProbeTime":null,"lastTransitionTime":"2026-01-01T00:00:00Z","message":"default-scheduler: preempting to accommodate a higher priority pod","reason":"PreemptionByScheduler","status":"True","type":"DisruptionTarget"}]}}`,
		"delete a",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("API calls (-want +got):\n%s", diff)
	}
}

func TestDefaultPreemption_PostFilterExplains(t *testing.T) {
	pl, state, pi, statuses, _ := setup(t, []*v1.Pod{low("a", "n1", 10, "4", 0)}, []*v1.Node{schedtest.Node("n1").Obj()}, schedtest.Pod("p").Priority(10).Req("cpu", "2").Obj())
	r, s := pl.PostFilter(context.Background(), state, pi, statuses)
	if want := "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."; s.Message() != want || s.Code() != framework.Unschedulable {
		t.Errorf("status %v, want Unschedulable %q", s, want)
	}
	if r == nil || r.NominatedNodeName != "" {
		t.Errorf("result %+v, want one clearing the nomination", r)
	}
}
