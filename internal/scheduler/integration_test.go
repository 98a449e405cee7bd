package scheduler_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/scheduler"
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
