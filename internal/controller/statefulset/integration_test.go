package statefulset_test

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/skiff-sh/skiff/internal/controller/statefulset"
	"github.com/skiff-sh/skiff/internal/testserver"
)

func isRunningAndReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(string(p))
	return len(p), nil
}

// agent plays the scheduler and node agents for the test: it records the
// order in which pods first appear and marks each pod running and ready,
// one per call, so that OrderedReady has to wait for it.
type agent struct {
	t       *testing.T
	client  kubernetes.Interface
	created []string
	seen    map[types.UID]bool
}

// step marks one pending pod ready and reports the live pods by name.
func (a *agent) step(ctx context.Context) (map[string]corev1.Pod, error) {
	list, err := a.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp) })
	live := map[string]corev1.Pod{}
	marked := false
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		live[p.Name] = p
		if !a.seen[p.UID] {
			a.seen[p.UID] = true
			a.created = append(a.created, p.Name)
		}
		if isRunningAndReady(&p) || marked {
			continue
		}
		marked = true
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		if _, err := a.client.CoreV1().Pods("default").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return live, nil
}

// settle runs the agent until the set reports done.
func (a *agent) settle(what string, done func(*appsv1.StatefulSet, map[string]corev1.Pod) bool) {
	a.t.Helper()
	var last *appsv1.StatefulSet
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		live, err := a.step(ctx)
		if err != nil {
			return false, err
		}
		if last, err = a.client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
			return false, err
		}
		return last.Status.ObservedGeneration == last.Generation && done(last, live), nil
	})
	if err != nil {
		a.t.Fatalf("%s: %v; status %+v", what, err, last.Status)
	}
}

func images(live map[string]corev1.Pod) string {
	var out []string
	for name, p := range live {
		out = append(out, name+"="+p.Spec.Containers[0].Image)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestIntegration runs a StatefulSet on a real API server and etcd: ordered
// creation, scale-down, a partitioned rolling update, and kubectl's
// rollout history and undo.
func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := statefulset.New(statefulset.Config{
		Client:    client,
		Informers: factory,
		Logger:    slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	factory.Start(runCtx.Done())
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
	a := &agent{t: t, client: client, seen: map[types.UID]bool{}}

	three := int32(3)
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &three,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			ServiceName: "web",
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
			},
		},
	}
	if _, err := client.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.settle("three ready replicas", func(s *appsv1.StatefulSet, live map[string]corev1.Pod) bool {
		return s.Status.ReadyReplicas == 3 && len(live) == 3
	})
	if got := strings.Join(a.created, ","); got != "web-0,web-1,web-2" {
		t.Errorf("pods created in order %s, want web-0,web-1,web-2", got)
	}
	live, err := a.step(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range live {
		if p.Spec.Hostname != name || p.Spec.Subdomain != "web" || p.Labels[appsv1.StatefulSetPodNameLabel] != name {
			t.Errorf("pod %s identity: hostname %q subdomain %q labels %v", name, p.Spec.Hostname, p.Spec.Subdomain, p.Labels)
		}
	}

	// Scale down to 2 through the scale subresource, as kubectl scale does.
	sc, err := client.AppsV1().StatefulSets("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 2
	if _, err := client.AppsV1().StatefulSets("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.settle("scaled to two", func(s *appsv1.StatefulSet, live map[string]corev1.Pod) bool {
		_, has2 := live["web-2"]
		return s.Status.Replicas == 2 && len(live) == 2 && !has2
	})

	// A partitioned rolling update: only web-1 moves.
	patch := []byte(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}},"template":{"spec":{"containers":[{"name":"db","image":"db:2"}]}}}}`)
	if _, err := client.AppsV1().StatefulSets("default").Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	a.settle("web-1 updated", func(s *appsv1.StatefulSet, live map[string]corev1.Pod) bool {
		return s.Status.UpdatedReplicas == 1 && s.Status.ReadyReplicas == 2 && images(live) == "web-0=db:1,web-1=db:2"
	})
	// Partition 0: the rest follows, and the update completes.
	patch = []byte(`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}`)
	if _, err := client.AppsV1().StatefulSets("default").Patch(ctx, "web", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	a.settle("update complete", func(s *appsv1.StatefulSet, live map[string]corev1.Pod) bool {
		return s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.ReadyReplicas == 2 && images(live) == "web-0=db:2,web-1=db:2"
	})

	kind := schema.GroupKind{Group: "apps", Kind: "StatefulSet"}
	viewer, err := polymorphichelpers.HistoryViewerFor(kind, client)
	if err != nil {
		t.Fatal(err)
	}
	history, err := viewer.ViewHistory("default", "web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(history, "1         <none>") || !strings.Contains(history, "2         <none>") {
		t.Errorf("kubectl rollout history:\n%s\nwant revisions 1 and 2", history)
	}
	rollbacker, err := polymorphichelpers.RollbackerFor(kind, client)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := client.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := rollbacker.Rollback(cur, nil, 0, cmdutil.DryRunNone); err != nil || out != "rolled back" {
		t.Fatalf("kubectl rollout undo: %q, %v", out, err)
	}
	a.settle("rolled back", func(s *appsv1.StatefulSet, live map[string]corev1.Pod) bool {
		return s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.ReadyReplicas == 2 && images(live) == "web-0=db:1,web-1=db:1"
	})
	revs, err := client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var numbers []string
	for _, r := range revs.Items {
		numbers = append(numbers, fmt.Sprintf("%d:%v", r.Revision, strings.Contains(string(r.Data.Raw), "db:1")))
	}
	sort.Strings(numbers)
	if strings.Join(numbers, " ") != "2:false 3:true" {
		t.Errorf("revisions %v, want db:2 as 2 and db:1 renumbered 3", numbers)
	}
}
