package replicaset

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newRS(name string, replicas int32, mods ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name + "-uid"), Generation: 2,
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/app:1"}}},
			},
		},
	}
	for _, m := range mods {
		m(rs)
	}
	return rs
}

type podMod func(*corev1.Pod)

func newPod(name string, owner *appsv1.ReplicaSet, mods ...podMod) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			Labels: map[string]string{"app": "web", "tier": "web"}, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/app:1"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if owner != nil {
		p.Labels["app"] = owner.Name
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, controllerKind)}
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func onNode(n string) podMod { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func running() podMod { return func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning } }

// readyFor makes the pod Running and Ready since d before t0.
func readyFor(d time.Duration) podMod {
	return func(p *corev1.Pod) {
		if p.Spec.NodeName == "" {
			p.Spec.NodeName = "node-a"
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-d))}}
	}
}

func createdAgo(d time.Duration) podMod {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(-d)) }
}

func withLabel(k, v string) podMod { return func(p *corev1.Pod) { p.Labels[k] = v } }

func withCost(c string) podMod {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{deletionCostAnnotation: c} }
}

func withRestarts(n int32) podMod {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}

func terminating() podMod {
	return func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0.Add(-time.Second))) }
}

func phase(ph corev1.PodPhase) podMod { return func(p *corev1.Pod) { p.Status.Phase = ph } }

type harness struct {
	client *fake.Clientset
	ctrl   *Controller
	clock  *clocktesting.FakeClock
	events *eventLog
}

// newHarness builds a controller on a fake client holding objs, with its
// caches filled with objs and no informer running: each sync sees exactly
// the objects given.
func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	nameGenerator(client)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(t0)
	events := &eventLog{}
	ctrl, err := New(Config{Client: client, Informers: factory, Clock: clk, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctrl.queue.ShutDown)
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return &harness{client: client, ctrl: ctrl, clock: clk, events: events}
}

func (h *harness) trace(t *testing.T) string {
	t.Helper()
	return formatTrace(t, h.client.Actions(), h.events.events)
}

func failCreates(client *fake.Clientset) {
	client.PrependReactor("create", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("exceeded quota: compute"))
	})
}

func TestSync(t *testing.T) {
	web := newRS("web", 3)
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		key     string
		setup   func(*fake.Clientset)
		wantErr bool
	}{
		{
			name: "creates missing pods in slow-start batches",
			objs: []runtime.Object{newRS("web", 5)},
		},
		{
			name: "does nothing when in sync",
			objs: []runtime.Object{newRS("web", 3, func(rs *appsv1.ReplicaSet) {
				rs.Status = appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, ObservedGeneration: 2, TerminatingReplicas: ptr.To[int32](0)}
			}), newPod("a", web, readyFor(time.Hour)), newPod("b", web, readyFor(time.Hour)), newPod("c", web, readyFor(time.Hour))},
		},
		{
			name: "deletes unscheduled, pending and not ready pods first",
			objs: []runtime.Object{newRS("web", 2),
				newPod("ready-old", web, readyFor(time.Hour)),
				newPod("unscheduled", web),
				newPod("ready-new", web, readyFor(time.Minute)),
				newPod("pending", web, onNode("node-a")),
				newPod("not-ready", web, onNode("node-a"), running())},
		},
		{
			name: "deletes newest ready and most restarted pods first",
			objs: []runtime.Object{newRS("web", 2),
				newPod("ready-day", web, readyFor(24*time.Hour)),
				newPod("ready-minute", web, readyFor(time.Minute)),
				newPod("ready-hour-restarted", web, readyFor(time.Hour), withRestarts(4)),
				newPod("ready-hour", web, readyFor(time.Hour))},
		},
		{
			name: "deletes lowest deletion cost first",
			objs: []runtime.Object{newRS("web", 1),
				newPod("cheap", web, readyFor(24*time.Hour), withCost("-10")),
				newPod("dear", web, readyFor(time.Minute), withCost("100"))},
		},
		{
			name: "adopts matching orphans and releases pods that stopped matching",
			objs: []runtime.Object{web,
				newPod("orphan", nil, readyFor(time.Hour), withLabel("app", "web")),
				newPod("relabelled", web, readyFor(time.Hour), withLabel("app", "other")),
				newPod("owned", web, readyFor(time.Hour)),
				newPod("foreign", newRS("web2", 1, func(rs *appsv1.ReplicaSet) { rs.Spec.Selector.MatchLabels["app"] = "web" }))},
		},
		{
			name: "does not adopt terminating or terminated pods",
			objs: []runtime.Object{newRS("web", 1),
				newPod("terminating", nil, withLabel("app", "web"), terminating()),
				newPod("succeeded", nil, withLabel("app", "web"), phase(corev1.PodSucceeded))},
		},
		{
			name: "replaces terminating pods and counts them",
			objs: []runtime.Object{newRS("web", 2),
				newPod("going", web, readyFor(time.Hour), terminating()),
				newPod("failed", web, phase(corev1.PodFailed)),
				newPod("staying", web, readyFor(time.Hour))},
		},
		{
			name: "neither creates nor adopts for a ReplicaSet being deleted",
			objs: []runtime.Object{newRS("web", 3, func(rs *appsv1.ReplicaSet) { rs.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }),
				newPod("orphan", nil, withLabel("app", "web"))},
		},
		{
			name: "counts available pods after minReadySeconds",
			objs: []runtime.Object{newRS("web", 3, func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = 30 }),
				newPod("long-ready", web, readyFor(time.Minute)),
				newPod("just-ready", web, readyFor(10*time.Second)),
				newPod("not-ready", web, onNode("node-a"), running(), func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} })},
		},
		{
			name:    "reports a failed creation in the ReplicaFailure condition",
			objs:    []runtime.Object{newRS("web", 4)},
			setup:   failCreates,
			wantErr: true,
		},
		{
			name: "clears ReplicaFailure once creations work",
			objs: []runtime.Object{newRS("web", 1, func(rs *appsv1.ReplicaSet) {
				rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "quota"}}
			})},
		},
		{
			name: "forgets a ReplicaSet that is gone",
			key:  "default/gone",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.objs...)
			if tc.setup != nil {
				tc.setup(h.client)
			}
			key := tc.key
			if key == "" {
				key = "default/web"
			}
			err := h.ctrl.sync(context.Background(), key)
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync error = %v, want error %v", err, tc.wantErr)
			}
			golden(t, t.Name(), h.trace(t))
		})
	}
}

func TestSync_WaitsForItsOwnCreationsBeforeCreatingAgain(t *testing.T) {
	h := newHarness(t, newRS("web", 2))
	ctx := context.Background()
	if err := h.ctrl.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	creates := func() int {
		n := 0
		for _, a := range h.client.Actions() {
			if a.Matches("create", "pods") {
				n++
			}
		}
		return n
	}
	if got := creates(); got != 2 {
		t.Fatalf("first sync created %d pods, want 2", got)
	}
	// The cache has not shown the new pods yet: a second sync must wait.
	if err := h.ctrl.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	if got := creates(); got != 2 {
		t.Fatalf("second sync created %d more pods before observing the first", got-2)
	}
	// One creation observed, one lost: after the expectations expire the
	// controller trusts its cache again.
	h.ctrl.addPod(newPod("web-00001", newRS("web", 2)))
	if h.ctrl.exp.satisfied("default/web") {
		t.Fatal("expectations satisfied with one creation unobserved")
	}
	h.clock.Step(expectationsTTL + time.Second)
	if !h.ctrl.exp.satisfied("default/web") {
		t.Fatal("expectations did not expire")
	}
}

// delays records AddAfter calls instead of running timers.
type delays struct {
	workqueue.TypedRateLimitingInterface[string]
	after map[string]time.Duration
}

func (q *delays) AddAfter(key string, d time.Duration) { q.after[key] = d }

func TestSync_RequeuesWhenAReadyPodBecomesAvailable(t *testing.T) {
	rs := newRS("web", 1, func(rs *appsv1.ReplicaSet) { rs.Spec.MinReadySeconds = 30 })
	h := newHarness(t, rs, newPod("p", rs, readyFor(10*time.Second)))
	q := &delays{TypedRateLimitingInterface: h.ctrl.queue, after: map[string]time.Duration{}}
	h.ctrl.queue = q
	if err := h.ctrl.sync(context.Background(), "default/web"); err != nil {
		t.Fatal(err)
	}
	// 20s are left until the pod is available, plus a second of slack.
	if diff := cmp.Diff(map[string]time.Duration{"default/web": 21 * time.Second}, q.after); diff != "" {
		t.Errorf("requeues (-want +got):\n%s", diff)
	}
}

func TestSlowStart_StopsAfterTheFirstFailingBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         int
		failAfter int // calls that succeed before all fail; -1 never fails
		wantDone  int
		wantCalls int
	}{
		{"all succeed", 10, -1, 10, 10},
		{"first call fails", 10, 0, 0, 1},
		{"third batch fails", 10, 3, 3, 7},
		{"nothing to do", 0, -1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := make(chan struct{}, tc.n)
			var okLeft = make(chan struct{}, max(tc.failAfter, 0))
			for range max(tc.failAfter, 0) {
				okLeft <- struct{}{}
			}
			done, err := slowStart(tc.n, func() error {
				calls <- struct{}{}
				if tc.failAfter < 0 {
					return nil
				}
				select {
				case <-okLeft:
					return nil
				default:
					return errors.New("no")
				}
			})
			if done != tc.wantDone || len(calls) != tc.wantCalls || (err != nil) != (tc.failAfter >= 0 && tc.n > 0) {
				t.Errorf("slowStart = %d, %v after %d calls; want %d after %d calls", done, err, len(calls), tc.wantDone, tc.wantCalls)
			}
		})
	}
}

func TestPodsToDelete_SpreadsAcrossNodes(t *testing.T) {
	rs := newRS("web", 2)
	pods := []*corev1.Pod{
		newPod("a1", rs, onNode("a"), readyFor(time.Hour)),
		newPod("a2", rs, onNode("a"), readyFor(time.Hour)),
		newPod("a3", rs, onNode("a"), readyFor(time.Hour)),
		newPod("b1", rs, onNode("b"), readyFor(time.Hour)),
	}
	got := podsToDelete(pods, pods, 2, t0)
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"a1", "a2"}, names); diff != "" {
		t.Errorf("victims (-want +got):\n%s", diff)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewClientset()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{Informers: informers.NewSharedInformerFactory(client, 0)}},
		{"no informers", Config{Client: client}},
		{"negative workers", Config{Client: client, Informers: informers.NewSharedInformerFactory(client, 0), Workers: -1}},
		{"negative burst", Config{Client: client, Informers: informers.NewSharedInformerFactory(client, 0), BurstReplicas: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
