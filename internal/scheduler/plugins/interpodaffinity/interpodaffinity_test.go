package interpodaffinity

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-sh/skiff/internal/scheduler/cache"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

const zone = "topology.kubernetes.io/zone"

// namespaces is a tiny lister over fixed namespaces.
type namespaces []*v1.Namespace

func (n namespaces) List(sel labels.Selector) ([]*v1.Namespace, error) {
	var out []*v1.Namespace
	for _, ns := range n {
		if sel.Matches(labels.Set(ns.Labels)) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func (n namespaces) Get(name string) (*v1.Namespace, error) {
	for _, ns := range n {
		if ns.Name == name {
			return ns, nil
		}
	}
	return nil, errors.New("not found")
}

// cluster: a1, a2 in zone a; b1 in zone b; bare has no zone.
func nodes() []*v1.Node {
	return []*v1.Node{
		schedtest.Node("a1").Label(zone, "a").Obj(),
		schedtest.Node("a2").Label(zone, "a").Obj(),
		schedtest.Node("b1").Label(zone, "b").Obj(),
		schedtest.Node("bare").Obj(),
	}
}

// filterAll runs PreFilter and Filter on every node and returns the
// status strings by node ("Skip" for all when PreFilter skips).
func filterAll(t *testing.T, h *framework.Handle, pod *v1.Pod) map[string]string {
	t.Helper()
	pl := &InterPodAffinity{h: h}
	state := framework.NewCycleState()
	pi := framework.MustPodInfo(pod)
	all := h.Snapshot.List()
	_, s := pl.PreFilter(context.Background(), state, pi, all)
	out := map[string]string{}
	for _, n := range all {
		if !s.IsSuccess() {
			out[n.Node().Name] = s.String()
			continue
		}
		out[n.Node().Name] = pl.Filter(context.Background(), state, pi, n).String()
	}
	return out
}

func TestInterPodAffinity_Filter(t *testing.T) {
	const (
		ok       = "Success"
		aff      = "UnschedulableAndUnresolvable: " + ErrReasonAffinityRulesNotMatch
		anti     = "Unschedulable: " + ErrReasonAntiAffinityRulesNotMatch
		existing = "Unschedulable: " + ErrReasonExistingAntiAffinityRulesNotMatch
	)
	db := schedtest.Pod("db").Node("a1").Label("app", "db").Obj()
	web := schedtest.Pod("web").Node("a2").Label("app", "web").Obj()
	for _, tc := range []struct {
		name     string
		existing []*v1.Pod
		nss      namespaces
		pod      *v1.Pod
		want     map[string]string
	}{
		{"NothingToCheckSkips", []*v1.Pod{db}, nil, schedtest.Pod("p").Obj(),
			map[string]string{"a1": "Skip", "a2": "Skip", "b1": "Skip", "bare": "Skip"}},
		{"AffinityToAZone", []*v1.Pod{db}, nil,
			schedtest.Pod("p").PodAffinity(schedtest.Term(zone, "app", "db")).Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": aff, "bare": aff}},
		{"FirstPodOfAGroupMatchingItself", nil, nil,
			schedtest.Pod("p").Label("app", "cache").PodAffinity(schedtest.Term(zone, "app", "cache")).Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": ok, "bare": aff}},
		{"NoMatchAndNotSelfMatching", nil, nil,
			schedtest.Pod("p").PodAffinity(schedtest.Term(zone, "app", "cache")).Obj(),
			map[string]string{"a1": aff, "a2": aff, "b1": aff, "bare": aff}},
		{"AffinityIgnoresOtherNamespaces", []*v1.Pod{schedtest.Pod("db").Namespace("other").Node("a1").Label("app", "db").Obj()}, nil,
			schedtest.Pod("p").PodAffinity(schedtest.Term(zone, "app", "db")).Obj(),
			map[string]string{"a1": aff, "a2": aff, "b1": aff, "bare": aff}},
		{"AntiAffinityPerHost", []*v1.Pod{web}, nil,
			schedtest.Pod("p").PodAntiAffinity(schedtest.Term("kubernetes.io/hostname", "app", "web")).Obj(),
			map[string]string{"a1": ok, "a2": anti, "b1": ok, "bare": ok}},
		{"AntiAffinityPerZone", []*v1.Pod{web}, nil,
			schedtest.Pod("p").PodAntiAffinity(schedtest.Term(zone, "app", "web")).Obj(),
			map[string]string{"a1": anti, "a2": anti, "b1": ok, "bare": ok}},
		{"ExistingPodsAntiAffinity", []*v1.Pod{schedtest.Pod("loner").Node("b1").PodAntiAffinity(schedtest.Term(zone, "app", "web")).Obj()}, nil,
			schedtest.Pod("p").Label("app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": existing, "bare": ok}},
		{"NamespaceSelector", []*v1.Pod{schedtest.Pod("db").Namespace("prod").Node("b1").Label("app", "db").Obj()},
			namespaces{{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"env": "prod"}}}},
			func() *v1.Pod {
				term := schedtest.Term(zone, "app", "db")
				term.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
				return schedtest.Pod("p").PodAffinity(term).Obj()
			}(),
			map[string]string{"a1": aff, "a2": aff, "b1": ok, "bare": aff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &framework.Handle{Snapshot: cache.NewSnapshot(tc.existing, nodes())}
			if tc.nss != nil {
				h.Namespaces = tc.nss
			}
			if diff := cmp.Diff(tc.want, filterAll(t, h, tc.pod)); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterPodAffinity_RemovePodLiftsAntiAffinity(t *testing.T) {
	web := schedtest.Pod("web").Node("a2").Label("app", "web").Obj()
	snap := cache.NewSnapshot([]*v1.Pod{web}, nodes())
	pl := &InterPodAffinity{h: &framework.Handle{Snapshot: snap}}
	pod := framework.MustPodInfo(schedtest.Pod("p").PodAntiAffinity(schedtest.Term(zone, "app", "web")).Obj())
	state := framework.NewCycleState()
	if _, s := pl.PreFilter(context.Background(), state, pod, snap.List()); !s.IsSuccess() {
		t.Fatal(s)
	}
	a1 := snap.Get("a1")
	if s := pl.Filter(context.Background(), state, pod, a1); s.IsSuccess() {
		t.Fatal("a1 fits before the web pod is removed")
	}
	clone := state.Clone()
	n := snap.Get("a2").Clone()
	if s := pl.RemovePod(context.Background(), clone, pod, n.Pods[0], n); !s.IsSuccess() {
		t.Fatal(s)
	}
	if s := pl.Filter(context.Background(), clone, pod, a1); !s.IsSuccess() {
		t.Errorf("after RemovePod: %v, want Success", s)
	}
	if s := pl.Filter(context.Background(), state, pod, a1); s.IsSuccess() {
		t.Error("RemovePod on a clone changed the original state")
	}
	if s := pl.AddPod(context.Background(), clone, pod, n.Pods[0], n); !s.IsSuccess() {
		t.Fatal(s)
	}
	if s := pl.Filter(context.Background(), clone, pod, a1); s.IsSuccess() {
		t.Error("after AddPod back: a1 fits")
	}
}

func TestInterPodAffinity_Score(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing []*v1.Pod
		pod      *v1.Pod
		want     map[string]int64
	}{
		{"PreferredAffinityToAZone",
			[]*v1.Pod{schedtest.Pod("db").Node("a1").Label("app", "db").Obj()},
			schedtest.Pod("p").PreferredPodAffinity(10, schedtest.Term(zone, "app", "db")).Obj(),
			map[string]int64{"a1": 100, "a2": 100, "b1": 0, "bare": 0}},
		{"PreferredAntiAffinityToAZone",
			[]*v1.Pod{schedtest.Pod("web").Node("b1").Label("app", "web").Obj()},
			schedtest.Pod("p").PreferredPodAntiAffinity(5, schedtest.Term(zone, "app", "web")).Obj(),
			map[string]int64{"a1": 100, "a2": 100, "b1": 0, "bare": 100}},
		{"ExistingPodsPreferencesCount",
			[]*v1.Pod{schedtest.Pod("fan").Node("b1").PreferredPodAffinity(7, schedtest.Term(zone, "app", "web")).Obj()},
			schedtest.Pod("p").Label("app", "web").Obj(),
			map[string]int64{"a1": 0, "a2": 0, "b1": 100, "bare": 0}},
		{"ExistingPodsRequiredAffinityCountsOnce",
			[]*v1.Pod{schedtest.Pod("fan").Node("a1").PodAffinity(schedtest.Term("kubernetes.io/hostname", "app", "web")).Obj()},
			schedtest.Pod("p").Label("app", "web").Obj(),
			map[string]int64{"a1": 100, "a2": 0, "b1": 0, "bare": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := cache.NewSnapshot(tc.existing, nodes())
			pl := &InterPodAffinity{h: &framework.Handle{Snapshot: snap}}
			pod := framework.MustPodInfo(tc.pod)
			state := framework.NewCycleState()
			if s := pl.PreScore(context.Background(), state, pod, snap.List()); !s.IsSuccess() {
				t.Fatal(s)
			}
			var scores []framework.NodeScore
			for _, n := range snap.List() {
				sc, s := pl.Score(context.Background(), state, pod, n)
				if !s.IsSuccess() {
					t.Fatal(s)
				}
				scores = append(scores, framework.NodeScore{Name: n.Node().Name, Score: sc})
			}
			pl.NormalizeScore(context.Background(), state, pod, scores)
			got := map[string]int64{}
			for _, s := range scores {
				got[s.Name] = s.Score
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterPodAffinity_PreScoreSkipsWithoutTerms(t *testing.T) {
	snap := cache.NewSnapshot([]*v1.Pod{schedtest.Pod("x").Node("a1").Obj()}, nodes())
	pl := &InterPodAffinity{h: &framework.Handle{Snapshot: snap}}
	if s := pl.PreScore(context.Background(), framework.NewCycleState(), framework.MustPodInfo(schedtest.Pod("p").Obj()), snap.List()); !s.IsSkip() {
		t.Errorf("PreScore = %v, want Skip", s)
	}
}
