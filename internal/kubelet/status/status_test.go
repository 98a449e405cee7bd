package status

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func newPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u1", ResourceVersion: "1"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: "example.com/gate", Status: corev1.ConditionTrue},
		}},
	}
}

func running() corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.2", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
}

func countActions(c *fake.Clientset, verb, sub string) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == verb && a.GetSubresource() == sub {
			n++
		}
	}
	return n
}

func start(t *testing.T, c *fake.Clientset) *Manager {
	t.Helper()
	m, err := New(Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestManager_WritesOnlyChanges(t *testing.T) {
	pod := newPod()
	c := fake.NewClientset(pod)
	m := start(t, c)
	m.Set(pod, running())
	eventually(t, func() bool { return countActions(c, "patch", "status") == 1 })
	got, err := c.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.42.0.2" {
		t.Fatalf("status = %+v", got.Status)
	}
	var types []corev1.PodConditionType
	for _, cond := range got.Status.Conditions {
		types = append(types, cond.Type)
	}
	if diff := cmp.Diff([]corev1.PodConditionType{corev1.PodScheduled, "example.com/gate", corev1.PodReady}, types); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	// The same status again, even many times, writes nothing.
	for range 5 {
		m.Set(got, running())
	}
	time.Sleep(100 * time.Millisecond)
	if n := countActions(c, "patch", "status"); n != 1 {
		t.Errorf("%d status patches, want 1", n)
	}
}

func TestManager_FinalStatusThenDelete(t *testing.T) {
	pod := newPod()
	now := metav1.Now()
	pod.DeletionTimestamp = &now
	c := fake.NewClientset(pod)
	m := start(t, c)
	final := corev1.PodStatus{Phase: corev1.PodFailed}
	m.SetFinal(pod, final)
	eventually(t, func() bool { return countActions(c, "delete", "") == 1 })
	var order []string
	for _, a := range c.Actions() {
		if a.GetVerb() == "patch" || a.GetVerb() == "delete" {
			order = append(order, a.GetVerb())
		}
		if d, ok := a.(k8stesting.DeleteAction); ok {
			opts := d.GetDeleteOptions()
			if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 || opts.Preconditions == nil || *opts.Preconditions.UID != "u1" {
				t.Errorf("delete options = %+v", opts)
			}
		}
	}
	if diff := cmp.Diff([]string{"patch", "delete"}, order); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
}

func TestMerge_KeepsWhatTheKubeletDoesNotOwn(t *testing.T) {
	api := corev1.PodStatus{
		Phase: corev1.PodSucceeded, Reason: "Done", NominatedNodeName: "n2",
		Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse}},
	}
	got := Merge(api, running())
	if got.Phase != corev1.PodSucceeded || got.Reason != "Done" || got.NominatedNodeName != "n2" {
		t.Errorf("merged = %+v", got)
	}
	if len(got.Conditions) != 2 || got.Conditions[0].Type != corev1.DisruptionTarget || got.Conditions[1].Status != corev1.ConditionTrue {
		t.Errorf("conditions = %+v", got.Conditions)
	}
}

func TestEqual_IgnoresProbeTimesAndSubsecondPrecision(t *testing.T) {
	a := running()
	b := running()
	b.Conditions[0].LastProbeTime = metav1.Now()
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 400_000_000, time.UTC)
	a.StartTime, b.StartTime = &metav1.Time{Time: t1}, &metav1.Time{Time: t1.Truncate(time.Second)}
	if !Equal(a, b) {
		t.Error("statuses differing in probe time and sub-second precision are not equal")
	}
	b.PodIP = "10.42.0.3"
	if Equal(a, b) {
		t.Error("different IPs are equal")
	}
}
