package namespace_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/testserver"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { recover() }() // goroutines may log after the test
	w.t.Log(string(p))
	return len(p), nil
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestNamespaceDeletion_AgainstAPIServer(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := namespace.New(namespace.Config{
		Client:       client,
		Metadata:     metadata.NewForConfigOrDie(ts.Config),
		Informers:    factory,
		Logger:       slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RecheckAfter: 100 * time.Millisecond,
	})
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

	bg := context.Background()
	const ns = "doomed"
	if _, err := client.CoreV1().Namespaces().Create(bg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = client.CoreV1().ConfigMaps(ns).Create(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = client.CoreV1().ConfigMaps(ns).Create(bg, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = client.CoreV1().Secrets(ns).Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = client.CoreV1().Pods(ns).Create(bg, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/app:1"}}}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = client.CoreV1().Services(ns).Create(bg, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	mustCreate(err)
	labels := map[string]string{"app": "web"}
	_, err = client.AppsV1().Deployments(ns).Create(bg, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}},
	}}, metav1.CreateOptions{})
	mustCreate(err)

	if err := client.CoreV1().Namespaces().Delete(bg, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("empties it but for what a finalizer holds, and says so", func(t *testing.T) {
		eventually(t, "the remaining-content conditions", func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			var content, finalizers bool
			for _, c := range n.Status.Conditions {
				switch c.Type {
				case corev1.NamespaceContentRemaining:
					content = c.Status == corev1.ConditionTrue && strings.Contains(c.Message, "configmaps. has 1 resource instances")
				case corev1.NamespaceFinalizersRemaining:
					finalizers = c.Status == corev1.ConditionTrue && strings.Contains(c.Message, "example.com/hold in 1 resource instances")
				}
			}
			return content && finalizers && n.Status.Phase == corev1.NamespaceTerminating, nil
		})
		for what, list := range map[string]func() (int, error){
			"secrets": func() (int, error) {
				l, err := client.CoreV1().Secrets(ns).List(bg, metav1.ListOptions{})
				return len(l.Items), err
			},
			"pods": func() (int, error) {
				l, err := client.CoreV1().Pods(ns).List(bg, metav1.ListOptions{})
				return len(l.Items), err
			},
			"services": func() (int, error) {
				l, err := client.CoreV1().Services(ns).List(bg, metav1.ListOptions{})
				return len(l.Items), err
			},
			"deployments": func() (int, error) {
				l, err := client.AppsV1().Deployments(ns).List(bg, metav1.ListOptions{})
				return len(l.Items), err
			},
		} {
			n, err := list()
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%d %s left", n, what)
			}
		}
	})

	t.Run("lets it go once the finalizer is removed", func(t *testing.T) {
		if _, err := client.CoreV1().ConfigMaps(ns).Patch(bg, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the namespace gone", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
	})
}
