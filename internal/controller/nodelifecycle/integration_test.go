package nodelifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// fakeNode plays a node agent for the test: it registers a Node that
// reports Ready and renews its Lease until told to stop.
type fakeNode struct {
	t      *testing.T
	client kubernetes.Interface
	name   string

	mu      sync.Mutex
	renewal bool
}

func startNode(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) *fakeNode {
	t.Helper()
	n := &fakeNode{t: t, client: client, name: name, renewal: true}
	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.report(ctx)
	now := metav1.NewMicroTime(time.Now())
	if _, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: new(int32(40)), RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	loopCtx, cancel := context.WithCancel(ctx)
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-tick.C:
			}
			n.mu.Lock()
			on := n.renewal
			n.mu.Unlock()
			if on {
				n.renew(loopCtx)
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return n
}

func (n *fakeNode) renew(ctx context.Context) {
	l, err := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return
	}
	l.Spec.RenewTime = new(metav1.NewMicroTime(time.Now()))
	_, _ = n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(ctx, l, metav1.UpdateOptions{})
}

// report posts Ready=True with a fresh heartbeat.
func (n *fakeNode) report(ctx context.Context) {
	n.t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		now := metav1.Now()
		node.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "node agent is posting ready status",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}
		_, err = n.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err == nil, nil // retry conflicts with the controller
	})
	if err != nil {
		n.t.Fatalf("node %s: report ready: %v", n.name, err)
	}
}

func (n *fakeNode) setRenewal(on bool) {
	n.mu.Lock()
	n.renewal = on
	n.mu.Unlock()
}

// TestController_LostNodeAgainstAPIServer is the scenario against
// the real API server: a node whose Lease stops is marked Unknown and
// tainted unreachable, its pods show NodeLost, a pod is evicted no sooner
// than its tolerationSeconds after the taint, the pod with the default
// five minutes stays, and everything returns when the node does.
func TestController_LostNodeAgainstAPIServer(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	startNode(ctx, t, client, "node-a") // keeps renewing: the zone is not fully down
	nodeB := startNode(ctx, t, client, "node-b")

	const fastSeconds = 3
	newPod := func(name string, tolerations []corev1.Toleration) {
		t.Helper()
		p, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: "node-b", Tolerations: tolerations,
				Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	newPod("web", nil) // admission adds the 300s tolerations
	newPod("fast", []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(fastSeconds))}})

	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := nodelifecycle.New(nodelifecycle.Config{
		Client: client, Informers: factory,
		MonitorPeriod: 200 * time.Millisecond, GracePeriod: 2 * time.Second, StartupGracePeriod: 2 * time.Second,
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

	getPod := func(name string) *corev1.Pod {
		t.Helper()
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	eventually := func(what string, cond func() (bool, string)) {
		t.Helper()
		var last string
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
			ok, state := cond()
			last = state
			return ok, nil
		})
		if err != nil {
			t.Fatalf("%s: never happened; last state: %s", what, last)
		}
	}

	nodeB.setRenewal(false)

	var taint corev1.Taint
	eventually("node-b Unknown and tainted unreachable", func() (bool, string) {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		var ready corev1.ConditionStatus
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status
			}
		}
		for _, tt := range n.Spec.Taints {
			if tt.Key == corev1.TaintNodeUnreachable && tt.Effect == corev1.TaintEffectNoExecute {
				taint = tt
			}
		}
		return ready == corev1.ConditionUnknown && taint.TimeAdded != nil, fmt.Sprintf("ready=%s taints=%v", ready, n.Spec.Taints)
	})
	for _, name := range []string{"web", "fast"} {
		eventually("pod "+name+" marked lost", func() (bool, string) {
			p := getPod(name)
			ready := ""
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady {
					ready = string(c.Status)
				}
			}
			return p.Status.Phase == corev1.PodUnknown && p.Status.Reason == nodelifecycle.ReasonNodeLost && ready == "False",
				fmt.Sprintf("phase=%s reason=%s ready=%s deleted=%v", p.Status.Phase, p.Status.Reason, ready, p.DeletionTimestamp != nil)
		})
	}
	if got := statusColumn(ctx, t, client, "web"); got != "NodeLost" {
		t.Errorf("kubectl STATUS of web = %q, want NodeLost", got)
	}

	var evicted *corev1.Pod
	eventually("pod fast evicted", func() (bool, string) {
		evicted = getPod("fast")
		return evicted.DeletionTimestamp != nil, fmt.Sprintf("deletionTimestamp=%v", evicted.DeletionTimestamp)
	})
	// The delete happened at deletionTimestamp - grace period; timestamps
	// have one-second resolution on both sides, and tolerationSeconds is
	// whole seconds, so the comparison is exact.
	deletedAt := evicted.DeletionTimestamp.Add(-time.Duration(*evicted.DeletionGracePeriodSeconds) * time.Second)
	earliest := taint.TimeAdded.Add(fastSeconds * time.Second)
	if deletedAt.Before(earliest) {
		t.Errorf("fast deleted at %v, before its toleration ran out at %v", deletedAt, earliest)
	}
	// Nor much later: the controller times the eviction, it does not wait
	// for some later sweep. The slack only absorbs a loaded machine.
	if latest := earliest.Add(5 * time.Second); deletedAt.After(latest) {
		t.Errorf("fast deleted at %v, more than 5s after its toleration ran out at %v", deletedAt, earliest)
	}
	var disrupted bool
	for _, c := range evicted.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == nodelifecycle.ReasonDeletionByTaintManager {
			disrupted = true
		}
	}
	if !disrupted {
		t.Errorf("evicted pod's conditions %+v lack DisruptionTarget/DeletionByTaintManager", evicted.Status.Conditions)
	}
	if got := statusColumn(ctx, t, client, "fast"); got != "Unknown" {
		t.Errorf("kubectl STATUS of the evicted pod = %q, want Unknown", got)
	}
	if p := getPod("web"); p.DeletionTimestamp != nil {
		t.Errorf("web, which tolerates 300s, was evicted")
	}

	// The node comes back.
	nodeB.setRenewal(true)
	nodeB.report(ctx)
	eventually("node-b untainted", func() (bool, string) {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, tt := range n.Spec.Taints {
			if tt.Key == corev1.TaintNodeUnreachable {
				return false, fmt.Sprintf("taints=%v", n.Spec.Taints)
			}
		}
		return true, ""
	})
	eventually("web restored", func() (bool, string) {
		p := getPod("web")
		ready := ""
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				ready = string(c.Status)
			}
		}
		_, saved := p.Annotations[nodelifecycle.AnnotationStatusBeforeNodeLost]
		return p.Status.Phase == corev1.PodRunning && p.Status.Reason == "" && ready == "True" && !saved,
			fmt.Sprintf("phase=%s reason=%s ready=%s saved=%v", p.Status.Phase, p.Status.Reason, ready, saved)
	})
	if got := statusColumn(ctx, t, client, "web"); got != "Running" {
		t.Errorf("kubectl STATUS of web after the node returned = %q, want Running", got)
	}
}

// statusColumn returns the STATUS cell of a pod's row in the table the API
// server serves kubectl.
func statusColumn(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	raw, err := client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name(name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return "<gone>"
	}
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	for i, col := range table.ColumnDefinitions {
		if col.Name == "Status" && len(table.Rows) == 1 {
			s, _ := table.Rows[0].Cells[i].(string)
			return s
		}
	}
	t.Fatalf("no Status column in %s", raw)
	return ""
}
