package replicaset_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// startController runs a controller against the API server until the
// test ends.
func startController(t *testing.T, client kubernetes.Interface) { startControllerB(t, client) }

func startControllerB(t testing.TB, client kubernetes.Interface) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := replicaset.New(replicaset.Config{Client: client, Informers: factory, Logger: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { recover() }() // goroutines may log after the test
	w.t.Log(string(p))
	return len(p), nil
}

// eventually polls cond until it holds; the long timeout only keeps a
// broken test from hanging.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// ownedPods lists the active pods of ns controlled by the UID.
func ownedPods(ctx context.Context, client kubernetes.Interface, ns string, uid string) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && string(ref.UID) == uid && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestReplicaSet_AgainstAPIServer(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	ns := "rs"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startController(t, client)

	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/app:1"}}}
	orphan, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}}, Spec: spec,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: spec},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid := string(rs.UID)

	t.Run("adopts the orphan and creates the rest", func(t *testing.T) {
		eventually(t, "3 owned pods including the orphan, in the status", func(ctx context.Context) (bool, error) {
			pods, err := ownedPods(ctx, client, ns, uid)
			if err != nil {
				return false, err
			}
			adopted := false
			for _, p := range pods {
				adopted = adopted || p.UID == orphan.UID
			}
			cur, err := client.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return len(pods) == 3 && adopted && cur.Status.Replicas == 3 && cur.Status.ObservedGeneration == cur.Generation, nil
		})
	})

	t.Run("counts ready pods", func(t *testing.T) {
		pods, err := ownedPods(ctx, client, ns, uid)
		if err != nil {
			t.Fatal(err)
		}
		p := pods[0]
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "1 ready and available replica", func(ctx context.Context) (bool, error) {
			cur, err := client.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
			return err == nil && cur.Status.ReadyReplicas == 1 && cur.Status.AvailableReplicas == 1, err
		})
	})

	t.Run("releases a relabelled pod and replaces it", func(t *testing.T) {
		pods, err := ownedPods(ctx, client, ns, uid)
		if err != nil {
			t.Fatal(err)
		}
		var victim corev1.Pod
		for _, p := range pods {
			if len(p.Status.Conditions) == 0 {
				victim = p
			}
		}
		victim.Labels = map[string]string{"app": "debug"}
		if _, err := client.CoreV1().Pods(ns).Update(ctx, &victim, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the relabelled pod released and 3 owned pods again", func(ctx context.Context) (bool, error) {
			got, err := client.CoreV1().Pods(ns).Get(ctx, victim.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			pods, err := ownedPods(ctx, client, ns, uid)
			return err == nil && metav1.GetControllerOf(got) == nil && len(pods) == 3, err
		})
	})

	t.Run("scales down through the scale subresource", func(t *testing.T) {
		if _, err := client.AppsV1().ReplicaSets(ns).UpdateScale(ctx, "web", &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 1},
		}, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "1 owned pod, the ready one", func(ctx context.Context) (bool, error) {
			pods, err := ownedPods(ctx, client, ns, uid)
			if err != nil || len(pods) != 1 {
				return false, err
			}
			cur, err := client.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if cur.Status.Replicas != 1 || cur.Status.ObservedGeneration != cur.Generation {
				return false, nil
			}
			if cur.Status.ReadyReplicas != 1 {
				return false, fmt.Errorf("kept a pod that is not ready: %+v", cur.Status)
			}
			return true, nil
		})
	})
}
