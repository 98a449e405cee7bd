package nodelifecycle

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestController(t *testing.T) {
	unreachableAt := func(ago time.Duration) nodeOpt {
		return tainted(corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: new(metav1.NewTime(t0.Add(-ago)))})
	}
	tests := []struct {
		name string
		cfg  Config
		objs []runtime.Object
		run  func(h *harness)
	}{
		{
			// The story of the issue: a node's Lease stops, the node goes
			// Unknown, its pods are marked lost, evicted when their
			// tolerations run out, and the rest come back with the node.
			name: "LeaseStopsNodeLostPodsEvictedThenRestored",
			objs: []runtime.Object{
				node("node-a"), lease("node-a", t0),
				node("node-b"), lease("node-b", t0),
				pod("web", "node-b"),
				pod("fast", "node-b", tolerations(toleration(corev1.TaintNodeUnreachable, 30))),
				pod("daemon", "node-b", tolerations(toleration(corev1.TaintNodeUnreachable, -1), toleration(corev1.TaintNodeNotReady, -1))),
				pod("intolerant", "node-b", tolerations()),
				pod("starting", "node-b", podPhase(corev1.PodPending), noReadyCondition),
				pod("done", "node-b", podPhase(corev1.PodSucceeded)),
				pod("elsewhere", "node-a"),
			},
			run: func(h *harness) {
				h.at(0)
				h.all()
				h.at(30 * time.Second)
				h.renew("node-a")
				h.all()
				h.at(40 * time.Second)
				h.renew("node-a")
				h.all() // exactly 40s of silence: still within the grace period
				h.at(41 * time.Second)
				h.all()
				h.podStates()
				h.at(46 * time.Second)
				h.renew("node-a")
				h.all() // the next pass queues node-b for its NoExecute taint
				h.at(75 * time.Second)
				h.renew("node-a")
				h.syncPods() // fast's toleration runs out at 76s
				h.at(76 * time.Second)
				h.syncPods()
				h.at(100 * time.Second)
				h.renew("node-a")
				h.renew("node-b")
				h.report("node-b", corev1.ConditionTrue)
				h.all()
				h.podStates()
			},
		},
		{
			name: "StatusHeartbeatsAloneKeepANodeAlive",
			objs: []runtime.Object{node("node-a"), node("node-b"), pod("web", "node-b")},
			run: func(h *harness) {
				h.at(0)
				h.all()
				for _, s := range []time.Duration{30, 60, 90} {
					h.at(s * time.Second)
					h.report("node-a", corev1.ConditionTrue)
					h.report("node-b", corev1.ConditionTrue)
					h.all()
				}
			},
		},
		{
			name: "NodeThatNeverPostedStatusGetsTheStartupGrace",
			objs: []runtime.Object{node("node-a"), lease("node-a", t0), node("fresh", noConditions)},
			run: func(h *harness) {
				h.at(0)
				h.all()
				h.at(time.Minute) // created an hour ago: long past the startup grace
				h.renew("node-a")
				h.all()
			},
		},
		{
			name: "NotReadyNodeGetsNotReadyTaintAndItsPodsReadyFalse",
			objs: []runtime.Object{
				node("node-a"), lease("node-a", t0), node("node-b"), lease("node-b", t0),
				pod("web", "node-b"),
				pod("ready-since", "node-b", func(p *corev1.Pod) {
					p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(20 * time.Second))
				}),
			},
			run: func(h *harness) {
				h.at(0)
				h.all()
				h.at(10 * time.Second)
				h.renew("node-a")
				h.renew("node-b")
				h.report("node-b", corev1.ConditionFalse)
				h.all()
				h.podStates()
			},
		},
		{
			name: "UnreachableTaintSwappedForNotReadyAtOnce",
			objs: []runtime.Object{
				node("node-a"), lease("node-a", t0),
				node("node-b", readyStatusOpt(corev1.ConditionUnknown, -time.Minute), unreachableAt(time.Minute)), lease("node-b", t0.Add(-2*time.Minute)),
			},
			run: func(h *harness) {
				h.at(0)
				h.renew("node-b")
				h.report("node-b", corev1.ConditionFalse)
				h.monitor()
			},
		},
		{
			name: "AllNodesDownMeansNoEvictions",
			objs: []runtime.Object{
				node("only"), lease("only", t0),
				pod("web", "only"),
			},
			run: func(h *harness) {
				h.at(0)
				h.all()
				h.at(41 * time.Second)
				h.all()
				h.at(10 * time.Minute)
				h.all()
				h.podStates()
			},
		},
		{
			name: "PartiallyDisruptedSmallZoneStopsTainting",
			objs: []runtime.Object{
				node("a", inZone("z1")), lease("a", t0), node("b", inZone("z1")), lease("b", t0),
				node("c", inZone("z1")), lease("c", t0), node("d", inZone("z1")), lease("d", t0),
			},
			run: func(h *harness) {
				h.at(0)
				h.monitor()
				h.at(41 * time.Second)
				h.renew("a")
				h.monitor()
				h.at(46 * time.Second)
				h.renew("a")
				h.monitor()
				h.taintPass() // three of four down: no taints in a small zone
			},
		},
		{
			name: "TaintsArePacedPerZone",
			objs: func() []runtime.Object {
				var objs []runtime.Object
				for _, n := range []string{"a", "b", "c", "d", "e"} {
					objs = append(objs, node(n, inZone("z1")), lease(n, t0))
				}
				return append(objs, node("x", inZone("z2")), lease("x", t0), node("y", inZone("z2")), lease("y", t0))
			}(),
			run: func(h *harness) {
				h.at(0)
				h.monitor()
				h.at(41 * time.Second)
				for _, n := range []string{"a", "b", "c", "y"} {
					h.renew(n)
				}
				h.monitor() // d and e (zone z1) and x (zone z2) go Unknown
				h.at(46 * time.Second)
				for _, n := range []string{"a", "b", "c", "y"} {
					h.renew(n)
				}
				h.monitor()   // ... and are queued for taints
				h.taintPass() // one per zone
				h.at(46*time.Second + 100*time.Millisecond)
				h.taintPass() // none: 0.1 nodes per second
				h.at(56 * time.Second)
				h.taintPass() // the second of zone z1
				h.at(61 * time.Second)
				for _, n := range []string{"a", "b", "c", "y"} {
					h.renew(n)
				}
				h.monitor() // tainted nodes are not queued again
				h.taintPass()
			},
		},
		{
			name: "EvictionDeadlineSurvivesARestart",
			objs: []runtime.Object{
				node("node-a"), lease("node-a", t0),
				node("node-b", readyStatusOpt(corev1.ConditionUnknown, -290*time.Second), unreachableAt(290*time.Second)), lease("node-b", t0.Add(-330*time.Second)),
				pod("web", "node-b", podPhase(corev1.PodUnknown), func(p *corev1.Pod) {
					p.Status.Reason = ReasonNodeLost
					p.Status.Conditions[0].Status = corev1.ConditionFalse
					p.Annotations = map[string]string{AnnotationStatusBeforeNodeLost: `{"phase":"Running","ready":"True"}`}
				}),
			},
			run: func(h *harness) {
				h.at(0)
				h.renew("node-a")
				h.syncPods()
				h.at(10 * time.Second)
				h.syncPods()
			},
		},
		{
			name: "TaintWithoutTimeAddedIsTimedFromFirstSight",
			objs: []runtime.Object{
				node("node-a", tainted(corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute})),
				pod("tolerates-60s", "node-a", tolerations(corev1.Toleration{Key: "maintenance", Operator: corev1.TolerationOpExists, TolerationSeconds: new(int64(60))})),
				pod("tolerates-forever", "node-a", tolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})),
				pod("intolerant", "node-a", tolerations()),
			},
			run: func(h *harness) {
				h.at(0)
				h.syncPods()
				h.at(59 * time.Second)
				h.syncPods()
				h.at(60 * time.Second)
				h.syncPods()
			},
		},
		{
			name: "NodeAgentThatRewroteThePodWins",
			objs: []runtime.Object{
				node("node-a"),
				pod("rewritten", "node-a", podPhase(corev1.PodFailed), annotated(AnnotationStatusBeforeNodeLost, `{"phase":"Running","ready":"True"}`)),
				pod("garbled", "node-a", podPhase(corev1.PodUnknown), func(p *corev1.Pod) { p.Status.Reason = ReasonNodeLost },
					annotated(AnnotationStatusBeforeNodeLost, `{"phase":"Sleeping"}`)),
			},
			run: func(h *harness) {
				h.at(0)
				h.syncPods()
				h.podStates()
			},
		},
		{
			name: "NoScheduleTaintsFollowConditionsAndUnschedulable",
			objs: []runtime.Object{
				node("node-a", func(n *corev1.Node) {
					n.Spec.Unschedulable = true
					n.Status.Conditions[1].Status = corev1.ConditionTrue // MemoryPressure
				}),
			},
			run: func(h *harness) {
				h.at(0)
				h.syncNodes()
				h.syncNodes() // nothing left to do
				h.tr.note("-- node uncordoned, pressure gone")
				n, _ := h.client.CoreV1().Nodes().Get(context.Background(), "node-a", metav1.GetOptions{})
				n.Spec.Unschedulable = false
				n.Status.Conditions[1].Status = corev1.ConditionFalse
				h.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{})
				h.refresh()
				h.syncNodes()
			},
		},
		{
			name: "DeletedNodeIsForgotten",
			objs: []runtime.Object{node("node-a"), lease("node-a", t0), node("node-b"), lease("node-b", t0)},
			run: func(h *harness) {
				h.at(0)
				h.monitor()
				h.tr.note("-- node-b deleted")
				h.client.CoreV1().Nodes().Delete(context.Background(), "node-b", metav1.DeleteOptions{})
				h.refresh()
				h.at(5 * time.Second)
				h.monitor()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg, tt.objs...)
			tt.run(h)
			checkGolden(t, goldenName(t), h.tr.b.String())
		})
	}
}

func TestComputeZoneState(t *testing.T) {
	cond := func(s corev1.ConditionStatus) *corev1.NodeCondition {
		return &corev1.NodeCondition{Type: corev1.NodeReady, Status: s}
	}
	T, F, U := cond(corev1.ConditionTrue), cond(corev1.ConditionFalse), cond(corev1.ConditionUnknown)
	tests := []struct {
		name  string
		ready []*corev1.NodeCondition
		want  zoneState
	}{
		{name: "AllReady", ready: []*corev1.NodeCondition{T, T}, want: stateNormal},
		{name: "NoneReady", ready: []*corev1.NodeCondition{U, F}, want: stateFullDisruption},
		{name: "NoConditionCountsAsNotReady", ready: []*corev1.NodeCondition{nil}, want: stateFullDisruption},
		{name: "TwoOfThreeIsNotEnough", ready: []*corev1.NodeCondition{T, U, U}, want: stateNormal},
		{name: "ThreeOfFourIsPartial", ready: []*corev1.NodeCondition{T, U, U, F}, want: statePartialDisruption},
		{name: "ThreeOfTenIsNormal", ready: []*corev1.NodeCondition{T, T, T, T, T, T, T, U, U, U}, want: stateNormal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := computeZoneState(tt.ready, DefaultUnhealthyZoneThreshold); got != tt.want {
				t.Errorf("state = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBucket_PacesAtItsRate(t *testing.T) {
	b := newBucket(0.1, t0)
	var got []bool
	for _, s := range []float64{0, 0.1, 9.9, 10, 10.1, 30} {
		got = append(got, b.tryAccept(t0.Add(time.Duration(s*float64(time.Second)))))
	}
	want := []bool{true, false, false, true, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("admissions %v, want %v", got, want)
		}
	}
	if newBucket(0, t0).tryAccept(t0.Add(time.Hour)) {
		t.Error("a bucket of rate 0 admitted")
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	base := Config{Client: client, Informers: factory}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "NoClient", cfg: Config{Informers: factory}, want: "client is required"},
		{name: "NoInformers", cfg: Config{Client: client}, want: "informer factory is required"},
		{name: "NegativePeriod", cfg: with(func(c *Config) { c.MonitorPeriod = -time.Second }), want: "must not be negative"},
		{name: "GraceNotAboveMonitor", cfg: with(func(c *Config) { c.GracePeriod, c.MonitorPeriod = 5*time.Second, 5*time.Second }), want: "must exceed the monitor period"},
		{name: "StartupGraceTooShort", cfg: with(func(c *Config) { c.StartupGracePeriod = 10 * time.Second }), want: "startup grace period 10s is shorter"},
		{name: "NegativeRate", cfg: with(func(c *Config) { c.EvictionRate = -1 }), want: "rates must not be negative"},
		{name: "ThresholdNotAFraction", cfg: with(func(c *Config) { c.UnhealthyZoneThreshold = 1.5 }), want: "not a fraction"},
		{name: "NegativeLargeCluster", cfg: with(func(c *Config) { c.LargeClusterThreshold = -1 }), want: "large cluster threshold -1"},
		{name: "NegativeWorkers", cfg: with(func(c *Config) { c.Workers = -1 }), want: "workers -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
