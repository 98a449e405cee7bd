package framework_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestFitError_Message(t *testing.T) {
	statuses := func(kv ...any) *framework.NodeToStatus {
		m := framework.NewNodeToStatus()
		for i := 0; i+1 < len(kv); i += 2 {
			m.Set(kv[i].(string), kv[i+1].(*framework.Status))
		}
		return m
	}
	taint := framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint {dedicated: gpu}")
	cpu := framework.NewStatus(framework.Unschedulable, "Insufficient cpu")
	cpuMem := framework.NewStatus(framework.Unschedulable, "Insufficient cpu", "Insufficient memory")
	for _, tc := range []struct {
		name string
		err  framework.FitError
		want string
	}{
		{"ReasonsCountedAndSorted",
			framework.FitError{NumAllNodes: 3, Diagnosis: framework.Diagnosis{NodeToStatus: statuses("n1", taint, "n2", cpu, "n3", cpu)}},
			"0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."},
		{"SeveralReasonsOfOneNodeCountSeparately",
			framework.FitError{NumAllNodes: 2, Diagnosis: framework.Diagnosis{NodeToStatus: statuses("n1", cpuMem, "n2", cpu)}},
			"0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."},
		{"PreFilterMessageReplacesTheHistogram",
			framework.FitError{NumAllNodes: 2, Diagnosis: framework.Diagnosis{NodeToStatus: statuses("n1", cpu), PreFilterMsg: "node(s) didn't satisfy plugin NodeAffinity"}},
			"0/2 nodes are available: node(s) didn't satisfy plugin NodeAffinity."},
		{"PostFilterMessageFollows",
			framework.FitError{NumAllNodes: 1, Diagnosis: framework.Diagnosis{NodeToStatus: statuses("n1", cpu), PostFilterMsg: "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}},
			"0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."},
		{"AbsentNodesCountWithTheAbsentStatus",
			framework.FitError{NumAllNodes: 3, Diagnosis: framework.Diagnosis{NodeToStatus: func() *framework.NodeToStatus {
				m := statuses("n1", cpu)
				m.SetAbsent(framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector"))
				return m
			}()}},
			"0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	var nilStatus *framework.Status
	if !nilStatus.IsSuccess() || nilStatus.Code() != framework.Success || nilStatus.Message() != "" || nilStatus.AsError() != nil {
		t.Error("nil status is not Success")
	}
	s := framework.NewStatus(framework.Unschedulable, "a", "b").WithPlugin("P")
	if !s.IsRejected() || s.Message() != "a, b" || s.Plugin() != "P" || s.Err() != nil || s.AsError() == nil {
		t.Errorf("unexpected %v plugin %q", s, s.Plugin())
	}
	base := errors.New("boom")
	e := framework.AsStatus(base)
	if e.Code() != framework.Error || !errors.Is(e.AsError(), base) || !errors.Is(e.Err(), base) {
		t.Errorf("AsStatus lost the error: %v", e)
	}
	if framework.AsStatus(nil) != nil {
		t.Error("AsStatus(nil) is not nil")
	}
}

func TestPodInfo_Requests(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pod         *v1.Pod
		wantCPU     int64
		wantNonZero int64
	}{
		{"Containers", schedtest.Pod("p").Req("cpu", "1").Container("x").Obj(), 1000, 1100},
		{"BestEffortCountsDefaultsForScoring", schedtest.Pod("p").Obj(), 0, 100},
		{"LargestInitContainerWins", schedtest.Pod("p").Req("cpu", "1").InitReq("cpu", "2").InitReq("cpu", "500m").Obj(), 2000, 2000},
		{"SidecarsAddToContainers", schedtest.Pod("p").Req("cpu", "1").SidecarReq("cpu", "500m").Obj(), 1500, 1500},
		{"OverheadAdds", schedtest.Pod("p").Req("cpu", "1").Overhead("cpu", "250m").Obj(), 1250, 1250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi := framework.MustPodInfo(tc.pod)
			if pi.Requests.MilliCPU != tc.wantCPU || pi.NonZeroRequests.MilliCPU != tc.wantNonZero {
				t.Errorf("cpu %d (non-zero %d), want %d (%d)", pi.Requests.MilliCPU, pi.NonZeroRequests.MilliCPU, tc.wantCPU, tc.wantNonZero)
			}
		})
	}
}

func TestNodeInfo_AddAndRemovePods(t *testing.T) {
	n := schedtest.NodeInfo(schedtest.Node("n").Obj())
	a := framework.MustPodInfo(schedtest.Pod("a").Node("n").Req("cpu", "1", "example.com/gpu", "1").HostPort("", v1.ProtocolTCP, 80).Obj())
	b := framework.MustPodInfo(schedtest.Pod("b").Node("n").Req("memory", "1Gi").PodAntiAffinity(schedtest.Term("kubernetes.io/hostname", "x", "y")).Obj())
	n.AddPod(a)
	n.AddPod(b)
	if n.Requested.MilliCPU != 1000 || n.Requested.Memory != 1<<30 || n.Requested.Scalar["example.com/gpu"] != 1 {
		t.Errorf("requested %+v", n.Requested)
	}
	if len(n.PodsWithAffinity) != 1 || len(n.PodsWithRequiredAntiAffinity) != 1 || !n.UsedPorts.Conflicts("", "TCP", 80) {
		t.Errorf("affinity lists or ports wrong: %+v", n)
	}
	clone := n.Clone()
	if err := n.RemovePod(a.Pod); err != nil {
		t.Fatal(err)
	}
	if err := n.RemovePod(a.Pod); !errors.Is(err, framework.ErrPodNotFound) {
		t.Errorf("removing twice: %v, want ErrPodNotFound", err)
	}
	if n.Requested.MilliCPU != 0 || n.UsedPorts.Conflicts("", "TCP", 80) || len(n.Pods) != 1 {
		t.Errorf("after removal: %+v", n)
	}
	if clone.Requested.MilliCPU != 1000 || len(clone.Pods) != 2 || !clone.UsedPorts.Conflicts("", "TCP", 80) {
		t.Error("the clone changed with the original")
	}
}

// fake is a configurable plugin for framework tests.
type fake struct {
	name      string
	preFilter func() (*framework.PreFilterResult, *framework.Status)
	filter    func(node string) *framework.Status
	score     func(node string) int64
	normalize bool
	calls     atomic.Int32
}

func (f *fake) Name() string { return f.name }

type filterOnly struct{ *fake }

func (f filterOnly) Filter(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, n *framework.NodeInfo) *framework.Status {
	f.calls.Add(1)
	return f.filter(n.Node().Name)
}

type preFilterAndFilter struct{ filterOnly }

func (f preFilterAndFilter) PreFilter(context.Context, *framework.CycleState, *framework.PodInfo, []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	return f.preFilter()
}

type scorer struct{ *fake }

func (f scorer) Score(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, n *framework.NodeInfo) (int64, *framework.Status) {
	return f.score(n.Node().Name), nil
}

type normalizingScorer struct{ scorer }

func (f normalizingScorer) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []framework.NodeScore) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, false, scores)
}

type binder struct{ *fake }

func (binder) Bind(context.Context, *framework.CycleState, *framework.PodInfo, string) *framework.Status {
	return nil
}

func newFramework(t *testing.T, plugins ...framework.Plugin) *framework.Framework {
	t.Helper()
	reg := framework.Registry{}
	var refs []framework.PluginRef
	for _, p := range append(plugins, binder{&fake{name: "bind"}}) {
		reg[p.Name()] = func(*framework.Handle) (framework.Plugin, error) { return p, nil }
		w := int64(0)
		if strings.HasPrefix(p.Name(), "x2") {
			w = 2
		}
		refs = append(refs, framework.PluginRef{Name: p.Name(), Weight: w})
	}
	fw, err := framework.NewFramework(reg, refs, &framework.Handle{})
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func TestFramework_FilterStopsAtFirstRejection(t *testing.T) {
	first := filterOnly{&fake{name: "first", filter: func(n string) *framework.Status {
		if n == "bad" {
			return framework.NewStatus(framework.Unschedulable, "no")
		}
		return nil
	}}}
	second := filterOnly{&fake{name: "second", filter: func(string) *framework.Status { return nil }}}
	fw := newFramework(t, first, second)
	state := framework.NewCycleState()
	pod := framework.MustPodInfo(schedtest.Pod("p").Obj())
	if _, s := fw.RunPreFilterPlugins(context.Background(), state, pod, nil); !s.IsSuccess() {
		t.Fatal(s)
	}
	s := fw.RunFilterPlugins(context.Background(), state, pod, schedtest.NodeInfo(schedtest.Node("bad").Obj()))
	if s.Plugin() != "first" || s.Message() != "no" {
		t.Errorf("status %v from %q", s, s.Plugin())
	}
	if second.calls.Load() != 0 {
		t.Error("the second filter ran after a rejection")
	}
}

func TestFramework_PreFilter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		results    []*framework.PreFilterResult
		statuses   []*framework.Status
		wantNodes  []string
		wantStatus string
		wantRuns   int32 // filter calls on one node
	}{
		{"SkipDisablesTheFilter", []*framework.PreFilterResult{nil}, []*framework.Status{framework.NewStatus(framework.Skip)}, nil, "Success", 0},
		{"NarrowingsIntersect",
			[]*framework.PreFilterResult{{NodeNames: sets.New("a", "b")}, {NodeNames: sets.New("b", "c")}}, []*framework.Status{nil, nil},
			[]string{"b"}, "Success", 2},
		{"DisjointNarrowingsReject",
			[]*framework.PreFilterResult{{NodeNames: sets.New("a")}, {NodeNames: sets.New("c")}}, []*framework.Status{nil, nil},
			nil, "UnschedulableAndUnresolvable: node(s) didn't satisfy plugin(s) [p0 p1] simultaneously", 0},
		{"RejectionStops", []*framework.PreFilterResult{nil, nil}, []*framework.Status{framework.NewStatus(framework.UnschedulableAndUnresolvable, "nope"), nil},
			nil, "UnschedulableAndUnresolvable: nope", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pls []framework.Plugin
			var fakes []*fake
			for i := range tc.results {
				f := &fake{name: "p" + string(rune('0'+i)), filter: func(string) *framework.Status { return nil }}
				r, s := tc.results[i], tc.statuses[i]
				f.preFilter = func() (*framework.PreFilterResult, *framework.Status) { return r, s }
				fakes = append(fakes, f)
				pls = append(pls, preFilterAndFilter{filterOnly{f}})
			}
			fw := newFramework(t, pls...)
			state := framework.NewCycleState()
			pod := framework.MustPodInfo(schedtest.Pod("p").Obj())
			r, s := fw.RunPreFilterPlugins(context.Background(), state, pod, nil)
			if diff := cmp.Diff(tc.wantStatus, s.String()); diff != "" {
				t.Fatalf("status (-want +got):\n%s", diff)
			}
			if !s.IsSuccess() {
				return
			}
			var got []string
			if !r.AllNodes() {
				got = sets.List(r.NodeNames)
			}
			if diff := cmp.Diff(tc.wantNodes, got); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
			fw.RunFilterPlugins(context.Background(), state, pod, schedtest.NodeInfo(schedtest.Node("b").Obj()))
			var runs int32
			for _, f := range fakes {
				runs += f.calls.Load()
			}
			if runs != tc.wantRuns {
				t.Errorf("%d filter calls, want %d", runs, tc.wantRuns)
			}
		})
	}
}

func TestFramework_ScoresAreNormalizedWeightedAndSummed(t *testing.T) {
	raw := map[string]int64{"a": 10, "b": 40, "c": 20}
	norm := normalizingScorer{scorer{&fake{name: "x2norm", score: func(n string) int64 { return raw[n] }}}}
	flat := scorer{&fake{name: "flat", score: func(n string) int64 {
		if n == "a" {
			return 90
		}
		return 10
	}}}
	fw := newFramework(t, norm, flat)
	var nodes []*framework.NodeInfo
	for _, n := range []string{"a", "b", "c"} {
		nodes = append(nodes, schedtest.NodeInfo(schedtest.Node(n).Obj()))
	}
	state := framework.NewCycleState()
	pod := framework.MustPodInfo(schedtest.Pod("p").Obj())
	if s := fw.RunPreScorePlugins(context.Background(), state, pod, nodes); !s.IsSuccess() {
		t.Fatal(s)
	}
	got, s := fw.RunScorePlugins(context.Background(), state, pod, nodes)
	if !s.IsSuccess() {
		t.Fatal(s)
	}
	want := []framework.NodePluginScores{
		{Name: "a", Scores: []framework.PluginScore{{Name: "x2norm", Score: 50}, {Name: "flat", Score: 90}}, Total: 140},
		{Name: "b", Scores: []framework.PluginScore{{Name: "x2norm", Score: 200}, {Name: "flat", Score: 10}}, Total: 210},
		{Name: "c", Scores: []framework.PluginScore{{Name: "x2norm", Score: 100}, {Name: "flat", Score: 10}}, Total: 110},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
}

func TestFramework_ScoreOutOfRangeIsAnError(t *testing.T) {
	bad := scorer{&fake{name: "bad", score: func(string) int64 { return 101 }}}
	fw := newFramework(t, bad)
	nodes := []*framework.NodeInfo{schedtest.NodeInfo(schedtest.Node("a").Obj())}
	state := framework.NewCycleState()
	pod := framework.MustPodInfo(schedtest.Pod("p").Obj())
	fw.RunPreScorePlugins(context.Background(), state, pod, nodes)
	if _, s := fw.RunScorePlugins(context.Background(), state, pod, nodes); s.Code() != framework.Error {
		t.Errorf("got %v, want an Error", s)
	}
}

func TestNewFramework_RejectsBadProfiles(t *testing.T) {
	bind := func(*framework.Handle) (framework.Plugin, error) { return binder{&fake{name: "bind"}}, nil }
	reg := framework.Registry{
		"bind":  bind,
		"wrong": bind,
		"fails": func(*framework.Handle) (framework.Plugin, error) { return nil, errors.New("broken") },
	}
	for _, tc := range []struct {
		name string
		refs []framework.PluginRef
		want string
	}{
		{"Unknown", []framework.PluginRef{{Name: "bind"}, {Name: "nope"}}, `plugin "nope": not in the registry`},
		{"Twice", []framework.PluginRef{{Name: "bind"}, {Name: "bind"}}, `plugin "bind" enabled twice`},
		{"NegativeWeight", []framework.PluginRef{{Name: "bind", Weight: -1}}, `plugin "bind": negative weight -1`},
		{"FactoryFails", []framework.PluginRef{{Name: "bind"}, {Name: "fails"}}, `plugin "fails": broken`},
		{"NameMismatch", []framework.PluginRef{{Name: "wrong"}}, `plugin "wrong": factory built "bind"`},
		{"NoBinder", nil, "no bind plugin enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := framework.NewFramework(reg, tc.refs, nil)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParallelizer_RunsEveryPieceOnce(t *testing.T) {
	for _, n := range []int{0, 1, 7, 100, 1001} {
		for _, p := range []int{1, 3, 16} {
			counts := make([]atomic.Int32, n)
			framework.Parallelizer{Parallelism: p}.Until(context.Background(), n, func(i int) { counts[i].Add(1) })
			for i := range counts {
				if c := counts[i].Load(); c != 1 {
					t.Fatalf("n=%d p=%d: piece %d ran %d times", n, p, i, c)
				}
			}
		}
	}
}

func TestCycleState_ReadMissingAndWrongType(t *testing.T) {
	s := framework.NewCycleState()
	if _, err := s.Read("x"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("read missing: %v", err)
	}
	s.Write("x", stateA{})
	if _, err := framework.ReadState[stateB](s, "x"); err == nil {
		t.Error("read as the wrong type: no error")
	}
	if _, err := framework.ReadState[stateA](s.Clone(), "x"); err != nil {
		t.Errorf("read from clone: %v", err)
	}
}

type stateA struct{}

func (stateA) Clone() framework.StateData { return stateA{} }

type stateB struct{}

func (stateB) Clone() framework.StateData { return stateB{} }

func TestLabelMatcher_AgreesWithTheSelector(t *testing.T) {
	sets := []map[string]string{nil, {"app": "web"}, {"app": "web", "tier": "front"}, {"app": "db"}, {"tier": "front"}}
	for _, tc := range []struct {
		name string
		sel  *metav1.LabelSelector
	}{
		{"MatchLabels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		{"TwoMatchLabels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}},
		{"InOneValue", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web"}}}}},
		{"InTwoValues", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "db"}}}}},
		{"NotIn", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"web"}}}}},
		{"Exists", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}},
		{"Everything", &metav1.LabelSelector{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := metav1.LabelSelectorAsSelector(tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			m := framework.NewLabelMatcher(sel)
			for _, set := range sets {
				if got, want := m.Matches(set), sel.Matches(labels.Set(set)); got != want {
					t.Errorf("%v: matcher says %v, selector %v", set, got, want)
				}
			}
		})
	}
	if (framework.LabelMatcher{}).Matches(map[string]string{"a": "b"}) || framework.NewLabelMatcher(labels.Nothing()).Matches(nil) {
		t.Error("the zero matcher or Nothing matched")
	}
}
