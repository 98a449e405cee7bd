package nodeaffinity

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestNodeAffinity_Filter(t *testing.T) {
	rejected := framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason).String()
	ssd := schedtest.Node("n1").Label("disk", "ssd", "zone", "a").Obj()
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want string
	}{
		{"NoSelectorOrAffinitySkips", schedtest.Pod("p").Obj(), "Skip"},
		{"MatchingNodeSelectorFits", schedtest.Pod("p").NodeSelector("disk", "ssd").Obj(), "Success"},
		{"MismatchedNodeSelectorIsRejected", schedtest.Pod("p").NodeSelector("disk", "hdd").Obj(), rejected},
		{"MissingLabelIsRejected", schedtest.Pod("p").NodeSelector("gpu", "yes").Obj(), rejected},
		{"RequiredAffinityInFits", schedtest.Pod("p").NodeAffinityIn("zone", "a", "b").Obj(), "Success"},
		{"RequiredAffinityNotInIsRejected", schedtest.Pod("p").NodeAffinityIn("zone", "c").Obj(), rejected},
		{"TermsAreORed", schedtest.Pod("p").NodeAffinityIn("zone", "c").NodeAffinityIn("disk", "ssd").Obj(), "Success"},
		{"SelectorAndAffinityAreANDed", schedtest.Pod("p").NodeSelector("disk", "hdd").NodeAffinityIn("zone", "a").Obj(), rejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := &NodeAffinity{}
			state := framework.NewCycleState()
			pod := framework.MustPodInfo(tc.pod)
			if _, s := pl.PreFilter(context.Background(), state, pod, nil); !s.IsSuccess() {
				if diff := cmp.Diff(tc.want, s.String()); diff != "" {
					t.Errorf("prefilter (-want +got):\n%s", diff)
				}
				return
			}
			got := pl.Filter(context.Background(), state, pod, schedtest.NodeInfo(ssd))
			if diff := cmp.Diff(tc.want, got.String()); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeAffinity_PreFilterNarrowsToNamedNodes(t *testing.T) {
	byName := func(names ...string) v1.NodeSelectorTerm {
		return v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: v1.NodeSelectorOpIn, Values: names}}}
	}
	byLabel := v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: "zone", Operator: v1.NodeSelectorOpExists}}}
	for _, tc := range []struct {
		name  string
		terms []v1.NodeSelectorTerm
		want  sets.Set[string]
	}{
		{"OneTermByName", []v1.NodeSelectorTerm{byName("a", "b")}, sets.New("a", "b")},
		{"TermsByNameAreUnited", []v1.NodeSelectorTerm{byName("a"), byName("c")}, sets.New("a", "c")},
		{"ATermWithoutNameMeansAllNodes", []v1.NodeSelectorTerm{byName("a"), byLabel}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := schedtest.Pod("p").Obj()
			pod.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{NodeSelectorTerms: tc.terms}}}
			r, s := (&NodeAffinity{}).PreFilter(context.Background(), framework.NewCycleState(), framework.MustPodInfo(pod), nil)
			if !s.IsSuccess() {
				t.Fatal(s)
			}
			var got sets.Set[string]
			if r != nil {
				got = r.NodeNames
			}
			if diff := cmp.Diff(sets.List(tc.want), sets.List(got)); diff != "" {
				t.Errorf("node names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeAffinity_ScorePrefersWeightedMatches(t *testing.T) {
	nodes := []*v1.Node{
		schedtest.Node("none").Obj(),
		schedtest.Node("ssd").Label("disk", "ssd").Obj(),
		schedtest.Node("ssd-fast").Label("disk", "ssd", "net", "fast").Obj(),
	}
	pod := framework.MustPodInfo(schedtest.Pod("p").PreferredNodeAffinity(1, "disk", "ssd").PreferredNodeAffinity(3, "net", "fast").Obj())
	pl := &NodeAffinity{}
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
	want := []framework.NodeScore{{Name: "none", Score: 0}, {Name: "ssd", Score: 25}, {Name: "ssd-fast", Score: 100}}
	if diff := cmp.Diff(want, scores); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
	if s := pl.PreScore(context.Background(), state, framework.MustPodInfo(schedtest.Pod("q").Obj()), nil); !s.IsSkip() {
		t.Errorf("pod without preferences: PreScore %v, want Skip", s)
	}
}
