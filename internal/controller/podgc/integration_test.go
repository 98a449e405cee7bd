package podgc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/podgc"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// TestController_AgainstAPIServer runs the collector against the real API
// server: an orphan is marked Failed with a DisruptionTarget condition and
// force-deleted, and terminated pods beyond the threshold go oldest first.
func TestController_AgainstAPIServer(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	newPod := func(name, node string, phase corev1.PodPhase) {
		t.Helper()
		p, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = phase
		if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	newPod("a-orphan", "ghost", corev1.PodRunning)
	newPod("live", "n1", corev1.PodRunning)
	// Creation timestamps have one-second resolution; names break ties,
	// so done-0 and done-1 go and done-2 stays. (The orphan, once marked
	// Failed, may count as terminated for a pass: its name sorts first.)
	for i := range 3 {
		newPod(fmt.Sprintf("done-%d", i), "n1", corev1.PodSucceeded)
	}

	// Watch the orphan's last state before it goes.
	w, err := client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=a-orphan"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := podgc.New(podgc.Config{
		Client: client, Informers: factory,
		Period: 50 * time.Millisecond, Quarantine: 100 * time.Millisecond, TerminatedThreshold: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})

	gone := func(name string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("pod %s not deleted: %v", name, err)
		}
	}
	gone("a-orphan")
	gone("done-0")
	gone("done-1")

	var last *corev1.Pod
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok {
			last = p
		}
		if ev.Type == "DELETED" {
			break
		}
	}
	if last == nil || last.Status.Phase != corev1.PodFailed {
		t.Fatalf("orphan's last state: %+v, want phase Failed", last)
	}
	var found bool
	for _, c := range last.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == podgc.ReasonDeletionByPodGC {
			found = true
		}
	}
	if !found {
		t.Errorf("orphan's conditions %+v lack DisruptionTarget/DeletionByPodGC", last.Status.Conditions)
	}
	for _, name := range []string{"live", "done-2"} {
		if _, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s: %v, want it kept", name, err)
		}
	}
}
