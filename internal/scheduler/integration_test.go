package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/scheduler"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// env is a control plane with a scheduler running against it.
type env struct {
	ts     *testserver.Server
	client kubernetes.Interface
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { recover() }()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func startEnv(t *testing.T) *env {
	t.Helper()
	ts := testserver.Start(t)
	return &env{ts: ts, client: kubernetes.NewForConfigOrDie(ts.Config)}
}

// runScheduler runs a scheduler until the test ends.
func (e *env) runScheduler(t *testing.T, cfg scheduler.Config) {
	t.Helper()
	cfg.RESTConfig = e.ts.Config
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := scheduler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("scheduler: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("scheduler did not stop")
		}
	})
}

func (e *env) createNode(t *testing.T, n *v1.Node) {
	t.Helper()
	ctx := context.Background()
	status := n.Status
	created, err := e.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = status
	if _, err := e.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) createPod(t *testing.T, p *v1.Pod) *v1.Pod {
	t.Helper()
	p = p.DeepCopy()
	p.UID = ""
	created, err := e.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// waitPod polls a pod until cond holds (the scheduler works
// asynchronously; this is a wait, not a timed assertion).
func (e *env) waitPod(t *testing.T, ns, name string, what string, cond func(*v1.Pod) bool) *v1.Pod {
	t.Helper()
	var last *v1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		last = p
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: waiting until %s: %v; last status %+v", ns, name, what, err, last.Status)
	}
	return last
}

func bound(p *v1.Pod) bool { return p.Spec.NodeName != "" }

func scheduledCondition(p *v1.Pod) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func unschedulable(p *v1.Pod) bool {
	c := scheduledCondition(p)
	return c != nil && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable
}

func (e *env) events(t *testing.T, ns, pod string) []v1.Event {
	t.Helper()
	list, err := e.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", pod).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func (e *env) waitEvent(t *testing.T, ns, pod, reason string) v1.Event {
	t.Helper()
	var found *v1.Event
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, ev := range e.events(t, ns, pod) {
			if ev.Reason == reason {
				found = &ev
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: no %s event: %v (events: %+v)", ns, pod, reason, err, e.events(t, ns, pod))
	}
	return *found
}

func TestScheduler_BindsPodAndRecordsEvent(t *testing.T) {
	e := startEnv(t)
	e.createNode(t, schedtest.Node("n1").Obj())
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	pod := e.createPod(t, schedtest.Pod("web").Req("cpu", "100m").Obj())
	got := e.waitPod(t, "default", "web", "bound", bound)
	if got.Spec.NodeName != "n1" {
		t.Errorf("bound to %q, want n1", got.Spec.NodeName)
	}
	ev := e.waitEvent(t, "default", "web", "Scheduled")
	if want := "Successfully assigned default/web to n1"; ev.Message != want {
		t.Errorf("event message %q, want %q", ev.Message, want)
	}
	if ev.Type != v1.EventTypeNormal || ev.Source.Component != "default-scheduler" || ev.ReportingController != "default-scheduler" {
		t.Errorf("event %+v: want Normal from default-scheduler", ev)
	}
	if ev.InvolvedObject.UID != pod.UID {
		t.Errorf("event about %s, want %s", ev.InvolvedObject.UID, pod.UID)
	}
}

func TestScheduler_UnschedulablePodGetsConditionAndEvent(t *testing.T) {
	e := startEnv(t)
	e.createNode(t, schedtest.Node("gpu").Taint("dedicated", "gpu", v1.TaintEffectNoSchedule).Obj())
	e.createNode(t, schedtest.Node("n1").Cap("cpu", "1").Obj())
	e.createNode(t, schedtest.Node("n2").Cap("cpu", "1").Obj())
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	e.createPod(t, schedtest.Pod("big").Req("cpu", "2").Obj())
	want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. " +
		"preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
	got := e.waitPod(t, "default", "big", "unschedulable", unschedulable)
	if c := scheduledCondition(got); c.Message != want {
		t.Errorf("condition message\n got: %s\nwant: %s", c.Message, want)
	}
	ev := e.waitEvent(t, "default", "big", "FailedScheduling")
	if ev.Type != v1.EventTypeWarning || ev.Message != want || ev.Source.Component != "default-scheduler" {
		t.Errorf("event %s %q from %q; want Warning %q from default-scheduler", ev.Type, ev.Message, ev.Source.Component, want)
	}
	if got.Spec.NodeName != "" {
		t.Errorf("bound to %s", got.Spec.NodeName)
	}
}

func TestScheduler_RetriesWhenANodeArrives(t *testing.T) {
	e := startEnv(t)
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	e.createPod(t, schedtest.Pod("early").Req("cpu", "1").Obj())
	got := e.waitPod(t, "default", "early", "unschedulable", unschedulable)
	if c := scheduledCondition(got); c.Message != "no nodes available to schedule pods" {
		t.Errorf("condition message %q", c.Message)
	}
	e.createNode(t, schedtest.Node("late").Obj())
	got = e.waitPod(t, "default", "early", "bound", bound)
	if got.Spec.NodeName != "late" {
		t.Errorf("bound to %q", got.Spec.NodeName)
	}
}

func TestScheduler_LeavesOtherSchedulersPodsAlone(t *testing.T) {
	e := startEnv(t)
	e.createNode(t, schedtest.Node("n1").Obj())
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	e.createPod(t, schedtest.Pod("theirs").SchedulerName("other-scheduler").Obj())
	e.createPod(t, schedtest.Pod("ours").Obj())
	e.waitPod(t, "default", "ours", "bound", bound)
	// Ours was created after theirs and is bound: the queue has seen
	// theirs; a scheduler that took it would have bound it first.
	got, err := e.client.CoreV1().Pods("default").Get(context.Background(), "theirs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "" || scheduledCondition(got) != nil && scheduledCondition(got).Reason == v1.PodReasonUnschedulable {
		t.Errorf("the other scheduler's pod was touched: node %q, conditions %+v", got.Spec.NodeName, got.Status.Conditions)
	}
	for _, ev := range e.events(t, "default", "theirs") {
		t.Errorf("event about the other scheduler's pod: %s %s", ev.Reason, ev.Message)
	}
}

func TestScheduler_SpreadsAcrossZones(t *testing.T) {
	e := startEnv(t)
	for i, z := range []string{"a", "a", "b", "c"} {
		e.createNode(t, schedtest.Node(fmt.Sprintf("n%d", i)).Label(v1.LabelTopologyZone, z).Obj())
	}
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	perZone := map[string]int{}
	zoneOf := map[string]string{"n0": "a", "n1": "a", "n2": "b", "n3": "c"}
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("web-%d", i)
		e.createPod(t, schedtest.Pod(name).Label("app", "web").Spread(1, v1.LabelTopologyZone, v1.DoNotSchedule, "app", "web").Obj())
		// One at a time: each placement sees the previous ones.
		p := e.waitPod(t, "default", name, "bound", bound)
		perZone[zoneOf[p.Spec.NodeName]]++
	}
	if diff := cmp.Diff(map[string]int{"a": 2, "b": 2, "c": 2}, perZone); diff != "" {
		t.Errorf("pods per zone (-want +got):\n%s", diff)
	}
}

func TestScheduler_PreemptsLowerPriorityPods(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	for _, pc := range []struct {
		name  string
		value int32
	}{{"low", 10}, {"high", 1000}} {
		if _, err := e.client.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: pc.name}, Value: pc.value}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.createNode(t, schedtest.Node("n1").Cap("cpu", "2").Obj())
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	for _, name := range []string{"low-a", "low-b"} {
		p := schedtest.Pod(name).Req("cpu", "1").Obj()
		p.Spec.PriorityClassName = "low"
		e.createPod(t, p)
		e.waitPod(t, "default", name, "bound", bound)
	}
	hp := schedtest.Pod("urgent").Req("cpu", "1").Obj()
	hp.Spec.PriorityClassName = "high"
	e.createPod(t, hp)
	got := e.waitPod(t, "default", "urgent", "nominated", func(p *v1.Pod) bool { return p.Status.NominatedNodeName != "" })
	if got.Status.NominatedNodeName != "n1" {
		t.Errorf("nominated to %q, want n1", got.Status.NominatedNodeName)
	}
	// Exactly one victim, marked and being deleted gracefully.
	var victims []*v1.Pod
	for _, name := range []string{"low-a", "low-b"} {
		p, err := e.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			t.Fatalf("%s deleted at once: the deletion must be graceful", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.DeletionTimestamp != nil {
			victims = append(victims, p)
		}
	}
	if len(victims) != 1 {
		t.Fatalf("%d victims, want 1", len(victims))
	}
	v := victims[0]
	var dt *v1.PodCondition
	for i := range v.Status.Conditions {
		if v.Status.Conditions[i].Type == v1.DisruptionTarget {
			dt = &v.Status.Conditions[i]
		}
	}
	if dt == nil || dt.Reason != v1.PodReasonPreemptionByScheduler || dt.Message != "default-scheduler: preempting to accommodate a higher priority pod" {
		t.Errorf("victim's DisruptionTarget condition: %+v", dt)
	}
	e.waitEvent(t, "default", v.Name, "Preempted")
	// Play the kubelet: the victim's containers stopped.
	zero := int64(0)
	if err := e.client.CoreV1().Pods("default").Delete(ctx, v.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	got = e.waitPod(t, "default", "urgent", "bound", bound)
	if got.Spec.NodeName != "n1" {
		t.Errorf("bound to %q", got.Spec.NodeName)
	}
}

func TestScheduler_WaitsForSchedulingGates(t *testing.T) {
	e := startEnv(t)
	e.createNode(t, schedtest.Node("n1").Obj())
	e.runScheduler(t, scheduler.Config{LeaderElection: scheduler.LeaderElection{Disabled: true}})
	e.createPod(t, schedtest.Pod("gated").SchedulingGate("example.com/wait").Obj())
	e.createPod(t, schedtest.Pod("free").Obj())
	e.waitPod(t, "default", "free", "bound", bound)
	ctx := context.Background()
	p, err := e.client.CoreV1().Pods("default").Get(ctx, "gated", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" {
		t.Fatalf("gated pod bound to %s", p.Spec.NodeName)
	}
	p.Spec.SchedulingGates = nil
	if _, err := e.client.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("remove the gate: %v", err)
	}
	e.waitPod(t, "default", "gated", "bound", bound)
}

func TestScheduler_LeaderElection(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	e.createNode(t, schedtest.Node("n1").Obj())
	le := func(id string) scheduler.LeaderElection {
		return scheduler.LeaderElection{Identity: id, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}
	}
	// The first scheduler runs in a sub-context so the test can stop it.
	first, err := scheduler.New(scheduler.Config{RESTConfig: e.ts.Config, LeaderElection: le("first"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	firstCtx, cancelFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(firstCtx) }()
	var stopOnce sync.Once
	stopFirst := func() {
		stopOnce.Do(func() {
			cancelFirst()
			if err := <-firstDone; err != nil {
				t.Errorf("first scheduler: %v", err)
			}
		})
	}
	t.Cleanup(stopFirst)
	holder := func() string {
		l, err := e.client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	waitHolder := func(want string) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
			return holder() == want, nil
		}); err != nil {
			t.Fatalf("lease holder %q, want %q", holder(), want)
		}
	}
	waitHolder("first")
	e.runScheduler(t, scheduler.Config{LeaderElection: le("second")})
	e.createPod(t, schedtest.Pod("p1").Obj())
	e.waitPod(t, "default", "p1", "bound", bound)
	if h := holder(); h != "first" {
		t.Errorf("holder %q while the first scheduler runs", h)
	}
	// The first stops and releases the lease; the second takes over.
	stopFirst()
	waitHolder("second")
	e.createPod(t, schedtest.Pod("p2").Obj())
	e.waitPod(t, "default", "p2", "bound", bound)
}

func TestNew_RejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  scheduler.Config
	}{
		{"NoClient", scheduler.Config{}},
		{"NegativeParallelism", scheduler.Config{Client: fake.NewClientset(), Parallelism: -1}},
		{"PercentageAbove100", scheduler.Config{Client: fake.NewClientset(), PercentageOfNodesToScore: 101}},
		{"NegativeQPS", scheduler.Config{Client: fake.NewClientset(), QPS: -1}},
		{"LeaseShorterThanRenewal", scheduler.Config{Client: fake.NewClientset(), LeaderElection: scheduler.LeaderElection{LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}}},
		{"UnknownPlugin", scheduler.Config{Client: fake.NewClientset(), LeaderElection: scheduler.LeaderElection{Disabled: true}, Plugins: []framework.PluginRef{{Name: "NoSuchPlugin"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scheduler.New(tc.cfg)
			if err == nil {
				// Plugins are built when a term starts.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err = s.Run(ctx)
			}
			if err == nil {
				t.Error("no error")
			}
		})
	}
}
