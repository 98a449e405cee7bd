package daemonset

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
)

// steadyState returns a controller whose caches hold a DaemonSet settled
// on n nodes (one ready pod of the current revision on each, tainted
// every tenth node, status up to date): a sync has nothing to write.
func steadyState(b *testing.B, n int) *Controller {
	b.Helper()
	ds := newDS("agent")
	data, err := revisionData(ds)
	if err != nil {
		b.Fatal(err)
	}
	hash := templateHash(&ds.Spec.Template, nil)
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: "agent-" + hash, Namespace: ns,
			Labels:          map[string]string{"app": "agent", appsv1.DefaultDaemonSetUniqueLabelKey: hash},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, dsKind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: 1,
	}
	objs := []runtime.Object{ds, rev}
	tmpl := podTemplate(ds, hash)
	desired := 0
	for i := range n {
		node := newNode(fmt.Sprintf("node-%05d", i))
		if i%10 == 0 {
			taint("dedicated", corev1.TaintEffectNoSchedule)(node)
		} else {
			desired++
		}
		objs = append(objs, node)
		if i%10 == 0 {
			continue
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("agent-%05d", i), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%d", i)),
				Labels: copyMap(tmpl.Labels), OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, dsKind)},
			},
			Spec: *tmpl.Spec.DeepCopy(),
		}
		p.Spec.Affinity = nodeAffinityFor(nil, node.Name)
		p.Spec.NodeName = node.Name
		ready(p)
		objs = append(objs, p)
	}
	ds.Status = appsv1.DaemonSetStatus{
		ObservedGeneration: 1, DesiredNumberScheduled: int32(desired), CurrentNumberScheduled: int32(desired),
		NumberReady: int32(desired), NumberAvailable: int32(desired), UpdatedNumberScheduled: int32(desired),
	}
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := New(Config{Client: client, Informers: factory, Clock: testingclock.NewFakeClock(t0), Recorder: record.NewFakeRecorder(100)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.queue.ShutDown)
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.DaemonSet:
			err = factory.Apps().V1().DaemonSets().Informer().GetIndexer().Add(o)
		case *appsv1.ControllerRevision:
			err = factory.Apps().V1().ControllerRevisions().Informer().GetIndexer().Add(o)
		case *corev1.Node:
			err = factory.Core().V1().Nodes().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkSync measures a steady-state sync of a DaemonSet (nothing to
// do) over many nodes, against its peer, cacheScan: the least any sync
// must do (list nodes and the DaemonSet's pods from the caches and map
// pods to nodes). The ratio sync/cacheScan is the controller's overhead.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d/sync", n), func(b *testing.B) {
			c := steadyState(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.sync(ctx, "ns/agent"); err != nil {
					b.Fatal(err)
				}
			}
			if acts := len(c.client.(*fake.Clientset).Actions()); acts != 0 {
				b.Fatalf("steady state made %d API calls", acts)
			}
		})
		b.Run(fmt.Sprintf("nodes=%d/cacheScan", n), func(b *testing.B) {
			c := steadyState(b, n)
			sel := labels.SelectorFromSet(labels.Set{"app": "agent"})
			b.ReportAllocs()
			for b.Loop() {
				nodes, _ := c.nodes.List(labels.Everything())
				pods, _ := c.pods.Pods(ns).List(sel)
				byNode := make(map[string][]*corev1.Pod, len(nodes))
				for _, p := range pods {
					byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
				}
				if len(byNode) == 0 {
					b.Fatal("no pods")
				}
			}
		})
	}
}
