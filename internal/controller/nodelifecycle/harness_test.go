package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// nodeOpt and podOpt tune fixtures.
type nodeOpt func(*corev1.Node)
type podOpt func(*corev1.Pod)

// node returns a node that posted Ready=True at t0.
func node(name string, opts ...nodeOpt) *corev1.Node {
	ts := metav1.NewTime(t0)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: ts, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: ts, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))},
		}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func inZone(z string) nodeOpt {
	return func(n *corev1.Node) { n.Labels = map[string]string{corev1.LabelTopologyZone: z} }
}
func noConditions(n *corev1.Node) { n.Status.Conditions = nil }
func readyStatusOpt(s corev1.ConditionStatus, since time.Duration) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Conditions[0].Status = s
		n.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(since))
	}
}
func tainted(t corev1.Taint) nodeOpt {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, t) }
}

func lease(node string, renewed time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: node},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: new(node), RenewTime: new(metav1.NewMicroTime(renewed))},
	}
}

// pod returns a running, ready pod on node with the API server's default
// tolerations (300s for not-ready and unreachable).
func pod(name, node string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Containers:  []corev1.Container{{Name: "app", Image: "app"}},
			Tolerations: []corev1.Toleration{toleration(corev1.TaintNodeNotReady, 300), toleration(corev1.TaintNodeUnreachable, 300)},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-30 * time.Minute))},
			},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func toleration(key string, seconds int64) corev1.Toleration {
	t := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	if seconds >= 0 {
		t.TolerationSeconds = new(seconds)
	}
	return t
}

func tolerations(ts ...corev1.Toleration) podOpt {
	return func(p *corev1.Pod) { p.Spec.Tolerations = ts }
}
func podPhase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func noReadyCondition(p *corev1.Pod)     { p.Status.Conditions = nil }
func annotated(k, v string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{k: v} }
}

type harness struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	clock    *testingclock.FakeClock
	recorder *fakeRecorder
	tr       trace
}

func newHarness(t *testing.T, cfg Config, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	rec := &fakeRecorder{}
	clk := testingclock.NewFakeClock(t0)
	cfg.Client, cfg.Informers, cfg.Recorder, cfg.Clock = client, informers.NewSharedInformerFactory(client, 0), rec, clk
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, client: client, clock: clk, recorder: rec}
	h.refresh()
	return h
}

// refresh copies the fake API's objects into the informer caches.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	inf := h.c.cfg.Informers
	replace := func(i cache.SharedIndexInformer, items []any) {
		if err := i.GetIndexer().Replace(items, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	nodes, _ := h.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	pods, _ := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	leases, _ := h.client.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{})
	var n, p, l []any
	for i := range nodes.Items {
		n = append(n, &nodes.Items[i])
	}
	for i := range pods.Items {
		p = append(p, &pods.Items[i])
	}
	for i := range leases.Items {
		l = append(l, &leases.Items[i])
	}
	replace(inf.Core().V1().Nodes().Informer(), n)
	replace(inf.Core().V1().Pods().Informer(), p)
	replace(inf.Coordination().V1().Leases().Informer(), l)
	h.client.ClearActions()
}

// at moves the clock to t0+offset.
func (h *harness) at(offset time.Duration) {
	h.clock.SetTime(t0.Add(offset))
	h.tr.step("t0+%v", offset)
}

// record adds the client's actions and the events since the last record.
func (h *harness) record(what string, err error) {
	h.recordAfter(what, err, 0)
}

// recordAfter is record for a pod sync that asked to look again after.
func (h *harness) recordAfter(what string, err error, after time.Duration) {
	acts := h.client.Actions()
	evs := h.recorder.drain()
	if len(acts) == 0 && len(evs) == 0 && err == nil && after == 0 {
		h.refresh()
		return
	}
	if after > 0 {
		what += fmt.Sprintf(" (look again in %v)", after)
	}
	h.tr.note("-- %s", what)
	h.tr.actions(acts)
	for _, e := range evs {
		h.tr.note("%s", e)
	}
	if err != nil {
		h.tr.note("error: %v", err)
	}
	h.refresh()
}

func (h *harness) monitor() {
	h.c.monitorNodeHealth(context.Background())
	h.record("monitor", nil)
}

func (h *harness) taintPass() {
	h.c.doNoExecuteTaintingPass(context.Background())
	h.record("taint pass", nil)
}

func (h *harness) syncNodes() {
	list, _ := h.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	h.client.ClearActions()
	for _, n := range list.Items {
		err := h.c.syncNoScheduleTaints(context.Background(), n.Name)
		h.record("sync node "+n.Name, err)
	}
}

func (h *harness) syncPods() {
	list, _ := h.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	h.client.ClearActions()
	for _, p := range list.Items {
		key := p.Namespace + "/" + p.Name
		after, err := h.c.syncPod(context.Background(), key)
		h.recordAfter("sync pod "+key, err, after)
	}
}

// all runs every loop once, in the order a running controller would
// usually get to them.
func (h *harness) all() {
	h.monitor()
	h.taintPass()
	h.syncNodes()
	h.syncPods()
}

// renew makes the node agent renew its Lease now.
func (h *harness) renew(node string) {
	l, err := h.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	l.Spec.RenewTime = new(metav1.NewMicroTime(h.clock.Now()))
	if _, err := h.client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

// report makes the node agent post its Ready condition now.
func (h *harness) report(name string, s corev1.ConditionStatus) {
	h.tr.note("-- node agent of %s reports Ready=%s", name, s)
	n, err := h.client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	now := metav1.NewTime(h.clock.Now())
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		want := corev1.ConditionFalse
		if c.Type == corev1.NodeReady {
			want = s
		}
		if c.Status != want {
			c.Status, c.LastTransitionTime, c.Reason, c.Message = want, now, "KubeletReported", ""
		}
		c.LastHeartbeatTime = now
	}
	if _, err := h.client.CoreV1().Nodes().UpdateStatus(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

// podStates notes every pod's phase, reason, Ready status and annotation.
func (h *harness) podStates() {
	list, _ := h.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	h.client.ClearActions()
	h.tr.note("-- pods:")
	for _, p := range list.Items {
		ready := "-"
		if c := podCondition(&p, corev1.PodReady); c != nil {
			ready = string(c.Status)
		}
		h.tr.note("   %s phase=%s reason=%s ready=%s saved=%s", p.Name, p.Status.Phase, p.Status.Reason, ready, p.Annotations[AnnotationStatusBeforeNodeLost])
	}
}

// renderObject prints nodes and pods compactly; other objects as YAML.
func renderObject(obj runtime.Object) string {
	var b strings.Builder
	switch o := obj.(type) {
	case *corev1.Node:
		for _, t := range o.Spec.Taints {
			added := ""
			if t.TimeAdded != nil {
				added = " added " + t.TimeAdded.UTC().Format(time.TimeOnly)
			}
			fmt.Fprintf(&b, "  taint %s:%s%s\n", t.Key, t.Effect, added)
		}
		for _, c := range o.Status.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s reason=%s message=%q heartbeat=%s transition=%s\n", c.Type, c.Status, c.Reason, c.Message,
				c.LastHeartbeatTime.UTC().Format(time.TimeOnly), c.LastTransitionTime.UTC().Format(time.TimeOnly))
		}
	case *corev1.Pod:
		fmt.Fprintf(&b, "  phase=%s reason=%s message=%q\n", o.Status.Phase, o.Status.Reason, o.Status.Message)
		for _, c := range o.Status.Conditions {
			fmt.Fprintf(&b, "  condition %s=%s reason=%s transition=%s\n", c.Type, c.Status, c.Reason, c.LastTransitionTime.UTC().Format(time.TimeOnly))
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range o.Annotations {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, "  annotation %s=%s\n", k, o.Annotations[k])
		}
	default:
		return indentYAML(obj)
	}
	return b.String()
}
