package manager_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/manager"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// cluster is a control plane with the controller manager running, for
// tests of controllers working together.
type cluster struct {
	client kubernetes.Interface
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	m, err := manager.New(manager.Config{
		REST:           ts.Config,
		Logger:         slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		LeaderElection: manager.LeaderElection{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager Run: %v", err)
		}
	})
	return &cluster{client: client}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { recover() }() // goroutines may log after the test
	w.t.Log(string(p))
	return len(p), nil
}

// eventually polls cond until it holds or fails; the long timeout only
// keeps a broken test from hanging.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 90*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// kubelet stands in for the node agent: it marks every new pod in ns
// Running and Ready, but for pods labelled stuck=true.
func kubelet(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	ready := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.DeletionTimestamp != nil || p.Labels["stuck"] == "true" || p.Status.Phase == corev1.PodRunning {
			return
		}
		p = p.DeepCopy()
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		// Conflicts and deletions are fine: a later event retries.
		_, _ = client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: ready, UpdateFunc: func(_, cur any) { ready(cur) },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	t.Cleanup(func() { close(stop); factory.Shutdown() })
}

// watcher checks, on every change the API reports, the bounds a rolling
// update must keep: at most replicas+maxSurge pods asked for (the sum of
// the ReplicaSets' sizes) and alive, and at least replicas-maxUnavailable
// available pods (ready ones: the tests set no minReadySeconds).
type watcher struct {
	mu sync.Mutex
	// by deployment name
	maxRequested map[string]int32
	maxPods      map[string]int
	minReady     map[string]int
	images       map[string]map[string]bool // live pod images, for Recreate
	mixed        map[string]bool            // old and new pods seen together
	recording    map[string]bool
	rsLister     func(ns string) []*appsv1.ReplicaSet
	podLister    func(ns string) []*corev1.Pod
}

func watch(t *testing.T, client kubernetes.Interface, ns string) *watcher {
	t.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	rsInf, podInf := factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods()
	w := &watcher{
		maxRequested: map[string]int32{}, maxPods: map[string]int{}, minReady: map[string]int{}, mixed: map[string]bool{}, recording: map[string]bool{},
		rsLister: func(ns string) []*appsv1.ReplicaSet {
			l, _ := rsInf.Lister().ReplicaSets(ns).List(labels.Everything())
			return l
		},
		podLister: func(ns string) []*corev1.Pod {
			l, _ := podInf.Lister().Pods(ns).List(labels.Everything())
			return l
		},
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.check(obj) },
		UpdateFunc: func(_, cur any) { w.check(cur) },
		DeleteFunc: func(obj any) { w.check(obj) },
	}
	for _, inf := range []cache.SharedIndexInformer{rsInf.Informer(), podInf.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	t.Cleanup(func() { close(stop); factory.Shutdown() })
	return w
}

// record starts checking the Deployment named app (its pods carry the
// label app=<name>).
func (w *watcher) record(app string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.recording[app] = true
	w.maxRequested[app] = 0
	w.maxPods[app] = 0
	w.minReady[app] = 1 << 30
	w.mixed[app] = false
}

// bounds is what a watcher saw of one Deployment since record.
type bounds struct {
	maxRequested int32 // most pods the ReplicaSets asked for at once
	maxPods      int   // most live pods at once
	minReady     int   // fewest ready pods at once
	mixed        bool  // pods of two templates alive together
}

func (w *watcher) results(app string) bounds {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bounds{w.maxRequested[app], w.maxPods[app], w.minReady[app], w.mixed[app]}
}

func (w *watcher) check(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	app := m.GetLabels()["app"]
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.recording[app] {
		return
	}
	var requested int32
	for _, rs := range w.rsLister(m.GetNamespace()) {
		if rs.Labels["app"] == app {
			requested += *rs.Spec.Replicas
		}
	}
	w.maxRequested[app] = max(w.maxRequested[app], requested)
	ready, pods := 0, 0
	images := map[string]bool{}
	for _, p := range w.podLister(m.GetNamespace()) {
		if p.Labels["app"] != app || p.DeletionTimestamp != nil {
			continue
		}
		pods++
		images[p.Spec.Containers[0].Image] = true
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	w.maxPods[app] = max(w.maxPods[app], pods)
	w.minReady[app] = min(w.minReady[app], ready)
	if len(images) > 1 {
		w.mixed[app] = true
	}
}

func deploymentOf(name, image string, replicas int32, strategy appsv1.DeploymentStrategy) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
			Strategy: strategy,
		},
	}
}

func rolling(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

// rolledOut waits until kubectl's rollout status says the Deployment is
// done.
func rolledOut(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	viewer, err := polymorphichelpers.StatusViewerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind())
	if err != nil {
		t.Fatal(err)
	}
	var last string
	eventually(t, "rollout of "+name+" (last: "+last+")", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
		if err != nil {
			return false, err
		}
		msg, done, err := viewer.Status(&unstructured.Unstructured{Object: u}, 0)
		last = msg
		return done, err
	})
}

func setImage(t *testing.T, client kubernetes.Interface, ns, name, image string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	if _, err := client.AppsV1().Deployments(ns).Patch(context.Background(), name, "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDeployment_RollingUpdateKeepsSurgeAndAvailabilityBounds(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "rollout"
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubelet(t, c.client, ns)
	w := watch(t, c.client, ns)

	cases := []struct {
		name               string
		strategy           appsv1.DeploymentStrategy
		surge, unavailable int32
	}{
		{"surge-1-unavailable-1", rolling(intstr.FromInt32(1), intstr.FromInt32(1)), 1, 1},
		{"surge-0-unavailable-2", rolling(intstr.FromInt32(0), intstr.FromInt32(2)), 0, 2},
		{"surge-2-unavailable-0", rolling(intstr.FromInt32(2), intstr.FromInt32(0)), 2, 0},
		{"percentages", rolling(intstr.FromString("25%"), intstr.FromString("25%")), 2, 1},
	}
	const replicas = 6
	for _, tc := range cases {
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, deploymentOf(tc.name, "registry.local/app:1", replicas, tc.strategy), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		rolledOut(t, c.client, ns, tc.name)
		w.record(tc.name)
		setImage(t, c.client, ns, tc.name, "registry.local/app:2")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rolledOut(t, c.client, ns, tc.name)
			b := w.results(tc.name)
			t.Logf("at most %d pods asked for and %d alive, at least %d ready", b.maxRequested, b.maxPods, b.minReady)
			// The first step surges by exactly maxSurge; no step by more.
			if b.maxRequested != replicas+tc.surge {
				t.Errorf("ReplicaSets asked for at most %d pods at once, want %d+%d", b.maxRequested, replicas, tc.surge)
			}
			if b.maxPods > int(replicas+tc.surge) {
				t.Errorf("%d pods were alive at one point, more than %d+%d", b.maxPods, replicas, tc.surge)
			}
			if b.minReady < replicas-int(tc.unavailable) {
				t.Errorf("only %d pods were ready at one point, fewer than %d-%d", b.minReady, replicas, tc.unavailable)
			}
			pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + tc.name})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if img := p.Spec.Containers[0].Image; img != "registry.local/app:2" {
					t.Errorf("pod %s still runs %s", p.Name, img)
				}
			}
			if len(pods.Items) != replicas {
				t.Errorf("%d pods after the rollout, want %d", len(pods.Items), replicas)
			}
		})
	}

	t.Run("rollout undo restores the previous template", func(t *testing.T) {
		name := cases[0].name
		rb, err := polymorphichelpers.RollbackerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), c.client)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rb.Rollback(d, nil, 0, cmdutil.DryRunNone); err != nil {
			t.Fatalf("rollout undo: %v", err)
		}
		rolledOut(t, c.client, ns, name)
		d, err = c.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.local/app:1" {
			t.Errorf("template image after undo = %s, want registry.local/app:1", img)
		}
		// Written through deployments/status, as upstream does.
		if rev := d.Annotations["deployment.kubernetes.io/revision"]; rev != "3" {
			t.Errorf("deployment's revision annotation = %q, want 3", rev)
		}
		hv, err := polymorphichelpers.HistoryViewerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind(), c.client)
		if err != nil {
			t.Fatal(err)
		}
		history, err := hv.GetHistory(ns, name)
		if err != nil {
			t.Fatal(err)
		}
		images := map[int64]string{}
		for rev, obj := range history {
			images[rev] = obj.(*appsv1.ReplicaSet).Spec.Template.Spec.Containers[0].Image
		}
		want := map[int64]string{2: "registry.local/app:2", 3: "registry.local/app:1"}
		if fmt.Sprint(images) != fmt.Sprint(want) {
			t.Errorf("rollout history = %v, want %v", images, want)
		}
		pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if img := p.Spec.Containers[0].Image; img != "registry.local/app:1" {
				t.Errorf("pod %s runs %s after undo", p.Name, img)
			}
		}
	})
}

func TestDeployment_RecreateNeverMixesRevisions(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "recreate"
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubelet(t, c.client, ns)
	w := watch(t, c.client, ns)
	if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("web", "registry.local/app:1", 3,
		appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c.client, ns, "web")
	w.record("web")
	setImage(t, c.client, ns, "web", "registry.local/app:2")
	rolledOut(t, c.client, ns, "web")
	if w.results("web").mixed {
		t.Error("pods of both revisions were alive at once")
	}
}

func TestDeployment_PauseProgressDeadlineAndScale(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "progress"
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubelet(t, c.client, ns)

	t.Run("a paused Deployment does not roll out", func(t *testing.T) {
		d := deploymentOf("paused", "registry.local/app:1", 2, rolling(intstr.FromInt32(1), intstr.FromInt32(0)))
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rolledOut(t, c.client, ns, "paused")
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "paused", "application/merge-patch+json", []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		setImage(t, c.client, ns, "paused", "registry.local/app:2")
		eventually(t, "the paused generation observed", func(ctx context.Context) (bool, error) {
			d, err := c.client.AppsV1().Deployments(ns).Get(ctx, "paused", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			cond := progressingCondition(d)
			return d.Status.ObservedGeneration == d.Generation && cond != nil && cond.Reason == "DeploymentPaused", nil
		})
		rss, err := c.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=paused"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rss.Items) != 1 {
			t.Fatalf("%d ReplicaSets while paused, want 1", len(rss.Items))
		}
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "paused", "application/merge-patch+json", []byte(`{"spec":{"paused":false}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		rolledOut(t, c.client, ns, "paused")
	})

	t.Run("a stuck rollout exceeds its progress deadline", func(t *testing.T) {
		d := deploymentOf("stuck", "registry.local/app:1", 2, rolling(intstr.FromInt32(1), intstr.FromInt32(0)))
		d.Spec.Template.Labels["stuck"] = "true"
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](1)
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		viewer, err := polymorphichelpers.StatusViewerFor(appsv1.SchemeGroupVersion.WithKind("Deployment").GroupKind())
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "kubectl rollout status to report the deadline", func(ctx context.Context) (bool, error) {
			d, err := c.client.AppsV1().Deployments(ns).Get(ctx, "stuck", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
			if err != nil {
				return false, err
			}
			_, _, err = viewer.Status(&unstructured.Unstructured{Object: u}, 0)
			return err != nil, nil
		})
	})

	t.Run("scaling resizes the ReplicaSet", func(t *testing.T) {
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "paused", "application/merge-patch+json", []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		rolledOut(t, c.client, ns, "paused")
		pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=paused"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 5 {
			t.Errorf("%d pods, want 5", len(pods.Items))
		}
	})
}

func progressingCondition(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == appsv1.DeploymentProgressing {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func TestDeployment_DeleteCascades(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "cascade"
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubelet(t, c.client, ns)
	count := func(ctx context.Context, app string) (rss, pods int, err error) {
		rl, err := c.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return 0, 0, err
		}
		pl, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return 0, 0, err
		}
		return len(rl.Items), len(pl.Items), nil
	}
	for _, tc := range []struct {
		policy             metav1.DeletionPropagation
		wantRSs, wantPods  int
		orphansKeepNoOwner bool
	}{
		{policy: metav1.DeletePropagationBackground},
		{policy: metav1.DeletePropagationForeground},
		{policy: metav1.DeletePropagationOrphan, wantRSs: 1, wantPods: 3, orphansKeepNoOwner: true},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			name := strings.ToLower(string(tc.policy))
			if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, deploymentOf(name, "registry.local/app:1", 3, rolling(intstr.FromInt32(1), intstr.FromInt32(0))), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			rolledOut(t, c.client, ns, name)
			policy := tc.policy
			if err := c.client.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
				t.Fatal(err)
			}
			if tc.policy == metav1.DeletePropagationForeground {
				// The Deployment stays until its ReplicaSet and pods are gone.
				eventually(t, "the deployment gone", func(ctx context.Context) (bool, error) {
					_, err := c.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
					if apierrors.IsNotFound(err) {
						rss, pods, err := count(ctx, name)
						if err != nil {
							return false, err
						}
						if rss+pods != 0 {
							return false, fmt.Errorf("deployment deleted before its dependents: %d replicasets, %d pods left", rss, pods)
						}
						return true, nil
					}
					return false, err
				})
			}
			eventually(t, "the dependents settled", func(ctx context.Context) (bool, error) {
				_, err := c.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
				if !apierrors.IsNotFound(err) {
					return false, nil
				}
				rss, pods, err := count(ctx, name)
				return err == nil && rss == tc.wantRSs && pods == tc.wantPods, err
			})
			if tc.orphansKeepNoOwner {
				rl, err := c.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
				if err != nil {
					t.Fatal(err)
				}
				eventually(t, "the orphaned replicaset to lose its owner", func(ctx context.Context) (bool, error) {
					rs, err := c.client.AppsV1().ReplicaSets(ns).Get(ctx, rl.Items[0].Name, metav1.GetOptions{})
					return err == nil && len(rs.OwnerReferences) == 0, err
				})
				// The pods still belong to the ReplicaSet.
				pl, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range pl.Items {
					if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rl.Items[0].UID {
						t.Errorf("pod %s lost its ReplicaSet", p.Name)
					}
				}
			}
		})
	}
}

func TestNamespace_DeletingItRemovesEverythingInIt(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := "short-lived"
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubelet(t, c.client, ns)
	if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, deploymentOf("web", "registry.local/app:1", 3, rolling(intstr.FromInt32(1), intstr.FromInt32(0))), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rolledOut(t, c.client, ns, "web")
	if err := c.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the namespace gone", func(ctx context.Context) (bool, error) {
		_, err := c.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rss, err := c.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items)+len(rss.Items) != 0 {
		t.Errorf("%d pods and %d replicasets outlived their namespace", len(pods.Items), len(rss.Items))
	}
}
