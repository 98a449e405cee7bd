package podgc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func phase(ph corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}
func created(ago time.Duration) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(t0.Add(-ago)) }
}
func evictedPod(p *corev1.Pod) { p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Evicted" }
func deleting(p *corev1.Pod) {
	ts := metav1.NewTime(t0.Add(-time.Minute))
	p.DeletionTimestamp = &ts
}

func node(name string, ready corev1.ConditionStatus, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}},
	}
}

var outOfServiceTaint = corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}

type harness struct {
	t      *testing.T
	c      *Controller
	client *fake.Clientset
	clock  *testingclock.FakeClock
	tr     trace
}

func newHarness(t *testing.T, cfg Config, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := testingclock.NewFakeClock(t0)
	cfg.Client, cfg.Informers, cfg.Clock, cfg.Parallelism = client, factory, clk, 1
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, client: client, clock: clk}
	h.refresh()
	return h
}

// refresh copies the fake API's objects into the informer caches, as a
// running informer would.
func (h *harness) refresh() {
	h.t.Helper()
	inf := h.c.cfg.Informers.Core().V1()
	for _, r := range []struct {
		gvr schema.GroupVersionResource
		gvk schema.GroupVersionKind
		set func([]any) error
	}{
		{corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), func(l []any) error { return inf.Pods().Informer().GetIndexer().Replace(l, "") }},
		{corev1.SchemeGroupVersion.WithResource("nodes"), corev1.SchemeGroupVersion.WithKind("Node"), func(l []any) error { return inf.Nodes().Informer().GetIndexer().Replace(l, "") }},
	} {
		obj, err := h.client.Tracker().List(r.gvr, r.gvk, "")
		if err != nil {
			h.t.Fatal(err)
		}
		var items []any
		switch l := obj.(type) {
		case *corev1.PodList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		case *corev1.NodeList:
			for i := range l.Items {
				items = append(items, &l.Items[i])
			}
		}
		if err := r.set(items); err != nil {
			h.t.Fatal(err)
		}
	}
}

// pass advances the clock to offset from t0, runs one pass and records
// what it did.
func (h *harness) pass(offset time.Duration) {
	h.clock.SetTime(t0.Add(offset))
	h.tr.step("pass at t0+%v", offset)
	h.client.ClearActions()
	h.c.gc(context.Background())
	h.tr.actions(h.client.Actions())
}

func TestGC(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		objs     []runtime.Object
		reactors map[string]k8stesting.ReactionFunc // "verb resource" → reaction
		passes   []time.Duration
	}{
		{
			name: "DeletesTerminatedAboveThresholdEvictedThenOldest",
			cfg:  Config{TerminatedThreshold: 2},
			objs: []runtime.Object{
				node("n1", corev1.ConditionTrue),
				pod("done-old", onNode("n1"), phase(corev1.PodSucceeded), created(3*time.Hour)),
				pod("done-new", onNode("n1"), phase(corev1.PodSucceeded), created(time.Minute)),
				pod("failed-mid", onNode("n1"), phase(corev1.PodFailed), created(2*time.Hour)),
				pod("evicted-newest", onNode("n1"), evictedPod, created(time.Second)),
				pod("running-oldest", onNode("n1"), created(24*time.Hour)),
			},
			passes: []time.Duration{0},
		},
		{
			name: "KeepsTerminatedAtThreshold",
			cfg:  Config{TerminatedThreshold: 2},
			objs: []runtime.Object{
				node("n1", corev1.ConditionTrue),
				pod("a", onNode("n1"), phase(corev1.PodSucceeded)),
				pod("b", onNode("n1"), phase(corev1.PodFailed)),
			},
			passes: []time.Duration{0},
		},
		{
			name: "NegativeThresholdKeepsAllTerminated",
			cfg:  Config{TerminatedThreshold: -1},
			objs: []runtime.Object{
				node("n1", corev1.ConditionTrue),
				pod("a", onNode("n1"), phase(corev1.PodSucceeded)),
			},
			passes: []time.Duration{0},
		},
		{
			name: "DeletesOrphansAfterQuarantine",
			objs: []runtime.Object{
				node("n1", corev1.ConditionTrue),
				pod("on-live-node", onNode("n1")),
				pod("orphan-running", onNode("gone")),
				pod("orphan-succeeded", onNode("gone"), phase(corev1.PodSucceeded)),
			},
			passes: []time.Duration{0, 20 * time.Second, 40 * time.Second},
		},
		{
			name: "KeepsPodsOfNodeTheCacheMissed",
			objs: []runtime.Object{
				pod("p", onNode("late")),
			},
			reactors: map[string]k8stesting.ReactionFunc{
				"get nodes": func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, node("late", corev1.ConditionTrue), nil
				},
			},
			passes: []time.Duration{0, 40 * time.Second, 60 * time.Second},
		},
		{
			name: "RetriesNodeLookupErrors",
			objs: []runtime.Object{
				pod("p", onNode("flaky")),
			},
			reactors: map[string]k8stesting.ReactionFunc{
				"get nodes": func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
				},
			},
			passes: []time.Duration{0, 40 * time.Second, 60 * time.Second},
		},
		{
			name: "DeletesUnscheduledTerminatingPods",
			objs: []runtime.Object{
				pod("pending-deleted", phase(corev1.PodPending), deleting),
				pod("pending", phase(corev1.PodPending)),
			},
			passes: []time.Duration{0},
		},
		{
			name: "DeletesTerminatingPodsOnOutOfServiceNodes",
			objs: []runtime.Object{
				node("down-oos", corev1.ConditionUnknown, outOfServiceTaint),
				node("down", corev1.ConditionUnknown),
				node("up-oos", corev1.ConditionTrue, outOfServiceTaint),
				pod("on-down-oos", onNode("down-oos"), deleting),
				pod("on-down-oos-not-deleted", onNode("down-oos")),
				pod("on-down", onNode("down"), deleting),
				pod("on-up-oos", onNode("up-oos"), deleting),
			},
			passes: []time.Duration{0},
		},
		{
			name: "IgnoresPodsAlreadyGone",
			cfg:  Config{TerminatedThreshold: 1},
			objs: []runtime.Object{
				node("n1", corev1.ConditionTrue),
				pod("a", onNode("n1"), phase(corev1.PodSucceeded), created(2*time.Hour)),
				pod("b", onNode("n1"), phase(corev1.PodSucceeded)),
			},
			reactors: map[string]k8stesting.ReactionFunc{
				"delete pods": func(a k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "a")
				},
			},
			passes: []time.Duration{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg, tt.objs...)
			for k, r := range tt.reactors {
				verb, res, _ := strings.Cut(k, " ")
				h.client.PrependReactor(verb, res, r)
			}
			for _, p := range tt.passes {
				h.pass(p)
				h.refresh()
			}
			h.tr.note("-- pods left")
			list, err := h.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list.Items {
				h.tr.note("%s/%s phase=%s", p.Namespace, p.Name, p.Status.Phase)
			}
			checkGolden(t, goldenName(t), h.tr.b.String())
		})
	}
}

// TestMarkFailedAndDelete_Errors checks that failed writes are reported
// with the pod's name, and that the delete is skipped when marking fails.
func TestMarkFailedAndDelete_Errors(t *testing.T) {
	tests := []struct {
		name    string
		pod     *corev1.Pod
		reactor string
		want    string
	}{
		{name: "PatchFails", pod: pod("p", onNode("n")), reactor: "patch", want: "pod default/p: mark failed: Internal error occurred: boom"},
		{name: "DeleteFails", pod: pod("p", onNode("n"), phase(corev1.PodFailed)), reactor: "delete", want: "pod default/p: delete: Internal error occurred: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{}, tt.pod)
			h.client.PrependReactor(tt.reactor, "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewInternalError(errors.New("boom"))
			})
			err := h.c.markFailedAndDelete(context.Background(), tt.pod, nil)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var verbs []string
			for _, a := range h.client.Actions() {
				verbs = append(verbs, a.GetVerb())
			}
			if tt.reactor == "patch" && fmt.Sprint(verbs) != "[patch]" {
				t.Errorf("actions %v, want only the failed patch", verbs)
			}
		})
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "NoClient", cfg: Config{Informers: factory}, want: "client is required"},
		{name: "NoInformers", cfg: Config{Client: client}, want: "informer factory is required"},
		{name: "NegativePeriod", cfg: Config{Client: client, Informers: factory, Period: -time.Second}, want: "period -1s is negative"},
		{name: "NegativeQuarantine", cfg: Config{Client: client, Informers: factory, Quarantine: -time.Second}, want: "quarantine -1s is negative"},
		{name: "NegativeParallelism", cfg: Config{Client: client, Informers: factory, Parallelism: -2}, want: "parallelism -2 is negative"},
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
