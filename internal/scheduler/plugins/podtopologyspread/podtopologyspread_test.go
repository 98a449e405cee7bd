package podtopologyspread

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/cache"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

const (
	zone     = "topology.kubernetes.io/zone"
	hostname = "kubernetes.io/hostname"
)

func nodes() []*v1.Node {
	return []*v1.Node{
		schedtest.Node("a1").Label(zone, "a").Obj(),
		schedtest.Node("a2").Label(zone, "a").Obj(),
		schedtest.Node("b1").Label(zone, "b").Obj(),
		schedtest.Node("bare").Obj(),
	}
}

func web(name, node string) *v1.Pod { return schedtest.Pod(name).Node(node).Label("app", "web").Obj() }

func TestPodTopologySpread_Filter(t *testing.T) {
	const (
		ok      = "Success"
		skew    = "Unschedulable: " + ErrReasonConstraintsNotMatch
		nolabel = "UnschedulableAndUnresolvable: " + ErrReasonNodeLabelNotMatch
	)
	twoInA := []*v1.Pod{web("w1", "a1"), web("w2", "a1")}
	oneEach := []*v1.Pod{web("w1", "a1"), web("w2", "b1")}
	for _, tc := range []struct {
		name     string
		existing []*v1.Pod
		pod      *v1.Pod
		want     map[string]string
	}{
		{"NoHardConstraintsSkip", twoInA,
			schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.ScheduleAnyway, "app", "web").Obj(),
			map[string]string{"a1": "Skip", "a2": "Skip", "b1": "Skip", "bare": "Skip"}},
		{"SkewedZoneIsRejected", twoInA,
			schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": skew, "a2": skew, "b1": ok, "bare": nolabel}},
		{"LargerMaxSkewAllowsMore", twoInA,
			schedtest.Pod("p").Label("app", "web").Spread(3, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": ok, "bare": nolabel}},
		{"PodNotMatchingItselfAddsNothing", twoInA,
			schedtest.Pod("p").Spread(2, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": ok, "bare": nolabel}},
		{"EvenZonesAcceptOneMore", oneEach,
			schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": ok, "bare": nolabel}},
		// Two zones exist but three are wanted: the minimum counts as 0.
		{"MinDomainsAboveDomainCount", oneEach,
			schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").SpreadMinDomains(3).Obj(),
			map[string]string{"a1": skew, "a2": skew, "b1": skew, "bare": nolabel}},
		{"PerHost", []*v1.Pod{web("w1", "a1")},
			schedtest.Pod("p").Label("app", "web").Spread(1, hostname, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": skew, "a2": ok, "b1": ok, "bare": ok}},
		// Counting the terminating pod would make the zones even.
		{"TerminatingPodsDoNotCount", []*v1.Pod{web("w1", "b1"), schedtest.Pod("w2").Node("a1").Label("app", "web").Terminating().Obj()},
			schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": skew, "bare": nolabel}},
		{"OtherNamespacesDoNotCount", []*v1.Pod{schedtest.Pod("w1").Namespace("x").Node("a1").Label("app", "web").Obj(), schedtest.Pod("w2").Namespace("x").Node("a1").Label("app", "web").Obj()},
			schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": ok, "bare": nolabel}},
		// Honor (the default): zone b is outside the pod's node affinity,
		// so it is not a domain, and zone a's minimum is its own count.
		{"NodeAffinityNarrowsDomains", twoInA,
			schedtest.Pod("p").Label("app", "web").NodeSelector(zone, "a").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			map[string]string{"a1": ok, "a2": ok, "b1": ok, "bare": nolabel}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := cache.NewSnapshot(tc.existing, nodes())
			pl := &PodTopologySpread{h: &framework.Handle{Snapshot: snap}}
			pod := framework.MustPodInfo(tc.pod)
			state := framework.NewCycleState()
			_, s := pl.PreFilter(context.Background(), state, pod, snap.List())
			got := map[string]string{}
			for _, n := range snap.List() {
				if !s.IsSuccess() {
					got[n.Node().Name] = s.String()
					continue
				}
				got[n.Node().Name] = pl.Filter(context.Background(), state, pod, n).String()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodTopologySpread_RemovePodUpdatesCounts(t *testing.T) {
	snap := cache.NewSnapshot([]*v1.Pod{web("w1", "a1"), web("w2", "a1")}, nodes())
	pl := &PodTopologySpread{h: &framework.Handle{Snapshot: snap}}
	pod := framework.MustPodInfo(schedtest.Pod("p").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj())
	state := framework.NewCycleState()
	if _, s := pl.PreFilter(context.Background(), state, pod, snap.List()); !s.IsSuccess() {
		t.Fatal(s)
	}
	a1 := snap.Get("a1").Clone()
	for len(a1.Pods) > 0 {
		p := a1.Pods[0]
		if err := a1.RemovePod(p.Pod); err != nil {
			t.Fatal(err)
		}
		if s := pl.RemovePod(context.Background(), state, pod, p, a1); !s.IsSuccess() {
			t.Fatal(s)
		}
	}
	if s := pl.Filter(context.Background(), state, pod, a1); !s.IsSuccess() {
		t.Errorf("after removing zone a's pods: %v, want Success", s)
	}
}

func TestPodTopologySpread_ScorePrefersEmptierDomains(t *testing.T) {
	snap := cache.NewSnapshot([]*v1.Pod{web("w1", "a1"), web("w2", "a1"), web("w3", "a2")}, nodes())
	pl := &PodTopologySpread{h: &framework.Handle{Snapshot: snap}}
	pod := framework.MustPodInfo(schedtest.Pod("p").Label("app", "web").
		Spread(1, zone, v1.ScheduleAnyway, "app", "web").
		Spread(1, hostname, v1.ScheduleAnyway, "app", "web").Obj())
	state := framework.NewCycleState()
	all := snap.List()
	if s := pl.PreScore(context.Background(), state, pod, all); !s.IsSuccess() {
		t.Fatal(s)
	}
	var scores []framework.NodeScore
	for _, n := range all {
		sc, s := pl.Score(context.Background(), state, pod, n)
		if !s.IsSuccess() {
			t.Fatal(s)
		}
		scores = append(scores, framework.NodeScore{Name: n.Node().Name, Score: sc})
	}
	if s := pl.NormalizeScore(context.Background(), state, pod, scores); !s.IsSuccess() {
		t.Fatal(s)
	}
	got := map[string]int64{}
	for _, s := range scores {
		got[s.Name] = s.Score
	}
	// Raw: zone a holds 3 (× log 4 for 2 zones), a1 holds 2 and a2 1
	// (× log 5 for 3 hosts): a1 7, a2 6, b1 0. Normalized 100 × (7 − s)
	// / 7. bare lacks the zone key and is ignored.
	want := map[string]int64{"a1": 0, "a2": 14, "b1": 100, "bare": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
}
