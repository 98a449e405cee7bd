package daemonset_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/polymorphichelpers"

	"github.com/skiff-sh/skiff/internal/controller/daemonset"
	"github.com/skiff-sh/skiff/internal/testserver"
)

func newNode(name string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ready(p *corev1.Pod) {
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
}

// targetNode is the node a daemon pod's affinity names.
func targetNode(p *corev1.Pod) (string, error) {
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", fmt.Errorf("pod %s has no node affinity", p.Name)
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchFields) != 1 || len(terms[0].MatchFields[0].Values) != 1 {
		return "", fmt.Errorf("pod %s node affinity %v names no single node", p.Name, terms)
	}
	return terms[0].MatchFields[0].Values[0], nil
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(string(p))
	return len(p), nil
}

// TestIntegration runs a DaemonSet on a real API server and etcd with
// three nodes, playing the scheduler and node agents by marking pods
// ready, and rolls it forward and back with kubectl's own rollout code.
func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	for _, n := range []*corev1.Node{
		newNode("plain"),
		newNode("gpu", corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}),
		newNode("not-ready", corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}),
	} {
		if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := daemonset.New(daemonset.Config{
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

	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "agent:1"}}},
			},
		},
	}
	if _, err := client.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	settle(t, client, "agent:1")
	pods := livePods(t, client)
	var nodes []string
	for _, p := range pods {
		n, err := targetNode(&p)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		if len(p.Spec.Tolerations) < 6 {
			t.Errorf("pod %s tolerations %v, want the daemon set ones", p.Name, p.Spec.Tolerations)
		}
	}
	if strings.Join(nodes, ",") != "not-ready,plain" && strings.Join(nodes, ",") != "plain,not-ready" {
		t.Errorf("pods on nodes %v, want plain and not-ready", nodes)
	}

	kind := schema.GroupKind{Group: "apps", Kind: "DaemonSet"}
	viewer, err := polymorphichelpers.HistoryViewerFor(kind, client)
	if err != nil {
		t.Fatal(err)
	}

	// Roll forward with a change cause, as kubectl annotate would.
	cur, err := client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Annotations["kubernetes.io/change-cause"] = "image agent:2"
	cur.Spec.Template.Spec.Containers[0].Image = "agent:2"
	if _, err := client.AppsV1().DaemonSets("default").Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	settle(t, client, "agent:2")
	history, err := viewer.ViewHistory("default", "agent", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(history, "1         <none>") || !strings.Contains(history, "2         image agent:2") {
		t.Errorf("kubectl rollout history:\n%s\nwant revisions 1 and 2 with the change cause", history)
	}

	// kubectl rollout undo.
	rollbacker, err := polymorphichelpers.RollbackerFor(kind, client)
	if err != nil {
		t.Fatal(err)
	}
	cur, err = client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := rollbacker.Rollback(cur, nil, 0, cmdutil.DryRunNone); err != nil || out != "rolled back" {
		t.Fatalf("kubectl rollout undo: %q, %v", out, err)
	}
	settle(t, client, "agent:1")
	revs, err := client.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	byRevision := map[int64]string{}
	for _, r := range revs.Items {
		byRevision[r.Revision] = string(r.Data.Raw)
	}
	if len(revs.Items) != 2 || !strings.Contains(byRevision[3], "agent:1") || !strings.Contains(byRevision[2], "agent:2") {
		t.Errorf("revisions %v, want agent:1 renumbered 3 and agent:2 as 2", byRevision)
	}
	cur, err = client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := rollbacker.Rollback(cur, nil, 3, cmdutil.DryRunNone); err != nil || !strings.Contains(out, "skipped rollback") {
		t.Errorf("undo to the current revision: %q, %v; want it skipped (revision data matches the template byte for byte)", out, err)
	}
}

// settle plays the node agents (marking daemon pods ready) until the
// DaemonSet runs image on both eligible nodes and reports it.
func settle(t *testing.T, client kubernetes.Interface, image string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, p := range livePods(t, client) {
			if isReady(&p) {
				continue
			}
			ready(&p)
			if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		ds, err := client.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := ds.Status
		if st.ObservedGeneration != ds.Generation || st.DesiredNumberScheduled != 2 || st.UpdatedNumberScheduled != 2 || st.NumberAvailable != 2 {
			return false, nil
		}
		pods := livePods(t, client)
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image {
				return false, nil
			}
		}
		return len(pods) == 2, nil
	})
	if err != nil {
		ds, _ := client.AppsV1().DaemonSets("default").Get(context.Background(), "agent", metav1.GetOptions{})
		t.Fatalf("daemonset did not settle on %s: %v; status %+v", image, err, ds.Status)
	}
}

func livePods(t *testing.T, client kubernetes.Interface) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: labels.Set{"app": "agent"}.String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}
