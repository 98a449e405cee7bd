package queue

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newQueue(t *testing.T, events map[string][]framework.ClusterEvent) (*Queue, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(epoch)
	q, err := New(Config{Clock: clk, PluginEvents: events})
	if err != nil {
		t.Fatal(err)
	}
	return q, clk
}

func add(t *testing.T, q *Queue, pods ...*v1.Pod) {
	t.Helper()
	for _, p := range pods {
		if err := q.Add(p); err != nil {
			t.Fatal(err)
		}
	}
}

// popNames pops n pods (which must be there) and returns their names.
func popNames(t *testing.T, q *Queue, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		if a, _, _ := q.Counts(); a == 0 {
			t.Fatalf("activeQ empty after %v", out)
		}
		p, err := q.Pop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Pod.Name)
	}
	return out
}

func TestQueue_PopsByPriorityThenArrival(t *testing.T) {
	q, clk := newQueue(t, nil)
	add(t, q, schedtest.Pod("low").Priority(1).Obj())
	clk.Step(time.Second)
	add(t, q, schedtest.Pod("high").Priority(100).Obj())
	add(t, q, schedtest.Pod("low2").Priority(1).Obj())
	clk.Step(time.Second)
	add(t, q, schedtest.Pod("mid").Priority(10).Obj())
	if diff := cmp.Diff([]string{"high", "mid", "low", "low2"}, popNames(t, q, 4)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestQueue_BackoffDoublesAndIsCapped(t *testing.T) {
	q, clk := newQueue(t, nil)
	add(t, q, schedtest.Pod("p").Obj())
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for attempt, d := range want {
		p, err := q.Pop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		q.AddBackoff(p)
		clk.Step(d - time.Millisecond)
		q.FlushBackoff()
		if a, b, _ := q.Counts(); a != 0 || b != 1 {
			t.Fatalf("attempt %d: out of backoff before %v (active %d backoff %d)", attempt+1, d, a, b)
		}
		clk.Step(time.Millisecond)
		q.FlushBackoff()
		if a, _, _ := q.Counts(); a != 1 {
			t.Fatalf("attempt %d: still backing off after %v", attempt+1, d)
		}
	}
}

func TestQueue_UnschedulablePodsMoveOnlyOnHelpfulEvents(t *testing.T) {
	events := map[string][]framework.ClusterEvent{
		"Fit":   {{Resource: framework.AssignedPod, ActionType: framework.Delete}, {Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeAllocatable}},
		"Taint": {{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeTaint}},
	}
	for _, tc := range []struct {
		name      string
		rejectors []string
		event     framework.ClusterEvent
		want      string
	}{
		{"PodDeleteHelpsFit", []string{"Fit"}, framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Delete}, "backoff"},
		{"PodAddDoesNotHelpFit", []string{"Fit"}, framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Add}, "unschedulable"},
		{"TaintChangeHelpsTaint", []string{"Taint"}, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}, "backoff"},
		{"LabelChangeHelpsNeither", []string{"Fit", "Taint"}, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeLabel}, "unschedulable"},
		{"AnyRejectorSuffices", []string{"Fit", "Taint"}, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}, "backoff"},
		{"NoRejectorMeansAnyEvent", nil, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeLabel}, "backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := newQueue(t, events)
			add(t, q, schedtest.Pod("p").Obj())
			p, _ := q.Pop(context.Background())
			cycle := q.SchedulingCycle()
			p.UnschedulablePlugins = sets.New(tc.rejectors...)
			q.AddUnschedulable(p, cycle)
			if got := q.Where(p.Pod.UID); got != "unschedulable" {
				t.Fatalf("after a failure the pod is in %q", got)
			}
			q.MoveOnEvent(tc.event)
			// Just failed: the move lands it in backoff, not active.
			if got := q.Where(p.Pod.UID); got != tc.want {
				t.Errorf("after %v the pod is in %q, want %q", tc.event, got, tc.want)
			}
		})
	}
}

func TestQueue_EventDuringACycleSendsTheFailureToBackoff(t *testing.T) {
	q, _ := newQueue(t, map[string][]framework.ClusterEvent{"Fit": {{Resource: framework.Node, ActionType: framework.Add}}})
	add(t, q, schedtest.Pod("p").Obj())
	p, _ := q.Pop(context.Background())
	cycle := q.SchedulingCycle()
	// A node arrives while the pod is being scheduled against a snapshot
	// that does not have it.
	q.MoveOnEvent(framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add})
	p.UnschedulablePlugins = sets.New("Fit")
	q.AddUnschedulable(p, cycle)
	if got := q.Where(p.Pod.UID); got != "backoff" {
		t.Errorf("pod in %q, want backoff", got)
	}
}

func TestQueue_UnschedulableTimeout(t *testing.T) {
	q, clk := newQueue(t, map[string][]framework.ClusterEvent{"Fit": nil})
	add(t, q, schedtest.Pod("p").Obj())
	p, _ := q.Pop(context.Background())
	p.UnschedulablePlugins = sets.New("Fit")
	q.AddUnschedulable(p, q.SchedulingCycle())
	clk.Step(5 * time.Minute)
	q.FlushUnschedulable()
	if got := q.Where(p.Pod.UID); got != "unschedulable" {
		t.Fatalf("after exactly 5 minutes the pod is in %q", got)
	}
	clk.Step(time.Second)
	q.FlushUnschedulable()
	if got := q.Where(p.Pod.UID); got != "active" {
		t.Errorf("after 5 minutes the pod is in %q, want active", got)
	}
}

func TestQueue_Updates(t *testing.T) {
	t.Run("StatusOnlyUpdateLeavesAnUnschedulablePodWaiting", func(t *testing.T) {
		q, _ := newQueue(t, map[string][]framework.ClusterEvent{"Fit": nil})
		old := schedtest.Pod("p").Obj()
		add(t, q, old)
		p, _ := q.Pop(context.Background())
		p.UnschedulablePlugins = sets.New("Fit")
		q.AddUnschedulable(p, q.SchedulingCycle())
		updated := old.DeepCopy()
		updated.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionFalse}}
		if err := q.Update(old, updated); err != nil {
			t.Fatal(err)
		}
		if got := q.Where(old.UID); got != "unschedulable" {
			t.Errorf("pod in %q, want unschedulable", got)
		}
	})
	t.Run("SpecUpdateRetriesAnUnschedulablePod", func(t *testing.T) {
		q, clk := newQueue(t, map[string][]framework.ClusterEvent{"Fit": nil})
		old := schedtest.Pod("p").Obj()
		add(t, q, old)
		p, _ := q.Pop(context.Background())
		p.UnschedulablePlugins = sets.New("Fit")
		q.AddUnschedulable(p, q.SchedulingCycle())
		clk.Step(2 * time.Second)
		updated := schedtest.Pod("p").Toleration("k", "", "").Obj()
		if err := q.Update(old, updated); err != nil {
			t.Fatal(err)
		}
		if got := q.Where(old.UID); got != "active" {
			t.Errorf("pod in %q, want active", got)
		}
	})
	t.Run("UpdateDuringACycleRetriesAfterIt", func(t *testing.T) {
		q, _ := newQueue(t, map[string][]framework.ClusterEvent{"Fit": nil})
		old := schedtest.Pod("p").Obj()
		add(t, q, old)
		p, _ := q.Pop(context.Background())
		if err := q.Update(old, schedtest.Pod("p").Label("a", "b").Obj()); err != nil {
			t.Fatal(err)
		}
		if got := q.Where(old.UID); got != "inflight" {
			t.Fatalf("pod in %q during its cycle, want inflight", got)
		}
		p.UnschedulablePlugins = sets.New("Fit")
		q.AddUnschedulable(p, q.SchedulingCycle())
		if got := q.Where(old.UID); got != "backoff" {
			t.Errorf("pod in %q, want backoff", got)
		}
	})
	t.Run("RemovingTheGatesReleasesAGatedPod", func(t *testing.T) {
		q, _ := newQueue(t, nil)
		gated := schedtest.Pod("p").SchedulingGate("example.com/wait").Obj()
		add(t, q, gated)
		q.MoveOnEvent(framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add})
		if got := q.Where(gated.UID); got != "unschedulable" {
			t.Fatalf("gated pod in %q, want unschedulable", got)
		}
		if err := q.Update(gated, schedtest.Pod("p").Obj()); err != nil {
			t.Fatal(err)
		}
		if got := q.Where(gated.UID); got != "active" {
			t.Errorf("ungated pod in %q, want active", got)
		}
	})
	t.Run("DeleteRemovesFromEverywhere", func(t *testing.T) {
		q, _ := newQueue(t, nil)
		a, b := schedtest.Pod("a").Obj(), schedtest.Pod("b").Nominated("n1").Obj()
		add(t, q, a, b)
		p, _ := q.Pop(context.Background())
		q.AddBackoff(p)
		q.Delete(a)
		q.Delete(b)
		if ac, bc, uc := q.Counts(); ac+bc+uc != 0 || len(q.NominatedPodsForNode("n1")) != 0 {
			t.Errorf("left: active %d backoff %d unschedulable %d", ac, bc, uc)
		}
	})
}

func TestQueue_Nominator(t *testing.T) {
	q, _ := newQueue(t, nil)
	a := schedtest.Pod("a").Nominated("n1").Obj()
	add(t, q, a, schedtest.Pod("b").Obj())
	names := func(node string) []string {
		var out []string
		for _, p := range q.NominatedPodsForNode(node) {
			out = append(out, p.Pod.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"a"}, names("n1")); diff != "" {
		t.Errorf("n1 (-want +got):\n%s", diff)
	}
	// Preemption nominates b before the API shows it; an update that does
	// not show it yet keeps the nomination.
	q.AddNominatedPod(framework.MustPodInfo(schedtest.Pod("b").Obj()), "n2")
	if err := q.Update(schedtest.Pod("b").Obj(), schedtest.Pod("b").Label("x", "y").Obj()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b"}, names("n2")); diff != "" {
		t.Errorf("n2 (-want +got):\n%s", diff)
	}
	// The API clearing a's nomination clears it here.
	if err := q.Update(a, schedtest.Pod("a").Obj()); err != nil {
		t.Fatal(err)
	}
	if got := names("n1"); len(got) != 0 {
		t.Errorf("n1 still has %v", got)
	}
}

func TestQueue_PopWaitsAndCloses(t *testing.T) {
	q, _ := newQueue(t, nil)
	got := make(chan error, 1)
	go func() {
		_, err := q.Pop(context.Background())
		got <- err
	}()
	q.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Errorf("Pop after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q2, _ := newQueue(t, nil)
	go func() {
		_, err := q2.Pop(ctx)
		got <- err
	}()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("Pop after cancel: %v", err)
	}
}

func TestQueue_RunFlushesOnTheClock(t *testing.T) {
	q, clk := newQueue(t, nil)
	add(t, q, schedtest.Pod("p").Obj())
	p, _ := q.Pop(context.Background())
	q.AddBackoff(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	// Step the fake clock until the backoff ticker fires and the pod is
	// popped again; Pop blocks until then.
	popped := make(chan string, 1)
	go func() {
		p, err := q.Pop(context.Background())
		if err == nil {
			popped <- p.Pod.Name
		}
		close(popped)
	}()
	for {
		select {
		case name := <-popped:
			if name != "p" {
				t.Errorf("popped %q", name)
			}
			cancel()
			<-done
			return
		default:
			if clk.HasWaiters() {
				clk.Step(time.Second)
			}
			runtime.Gosched()
		}
	}
}

func TestNew_RejectsBadBackoffs(t *testing.T) {
	if _, err := New(Config{InitialBackoff: 10 * time.Second, MaxBackoff: time.Second}); err == nil {
		t.Error("max backoff below initial: no error")
	}
}
