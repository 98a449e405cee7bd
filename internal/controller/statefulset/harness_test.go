package statefulset

import (
	"context"
	"flag"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/controller/controllertest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	setsGVR = appsv1.SchemeGroupVersion.WithResource("statefulsets")
	revsGVR = appsv1.SchemeGroupVersion.WithResource("controllerrevisions")
	podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

	podKind = corev1.SchemeGroupVersion.WithKind("Pod")
	revKind = appsv1.SchemeGroupVersion.WithKind("ControllerRevision")
)

// harness runs the controller against a controllertest.Fake, one sync at
// a time, and writes what it did to a trace compared with a golden file.
// Deleting a pod bound to a node or with finalizers is graceful, and
// created pods start in phase Pending.
type harness struct {
	*controllertest.Fake
	t      *testing.T
	c      *Controller
	client *fake.Clientset
	clock  *testingclock.FakeClock
}

func newHarness(t *testing.T, tune func(*Config), objs ...runtime.Object) *harness {
	t.Helper()
	f := controllertest.New(t, controllertest.Config{
		Start:               t0,
		Update:              *update,
		GracefulPodDeletion: true,
		AfterCreate: func(obj runtime.Object) {
			if p, ok := obj.(*corev1.Pod); ok && p.Status.Phase == "" {
				p.Status.Phase = corev1.PodPending
			}
		},
		Status: func(obj runtime.Object) (any, bool) {
			if set, ok := obj.(*appsv1.StatefulSet); ok {
				return set.Status, true
			}
			return nil, false
		},
	})
	cfg := Config{Client: f.Client, Informers: f.Informers, Clock: f.Clock, Recorder: f.Events}
	if tune != nil {
		tune(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.queue.ShutDown)
	h := &harness{Fake: f, t: t, c: c, client: f.Client, clock: f.Clock}
	apps, core := f.Informers.Apps().V1(), f.Informers.Core().V1()
	f.Watch(
		controllertest.Watched{GVR: setsGVR, Kind: appsv1.SchemeGroupVersion.WithKind("StatefulSet"), Indexer: apps.StatefulSets().Informer().GetIndexer(), Handler: c.setHandler()},
		controllertest.Watched{GVR: revsGVR, Kind: revKind, Indexer: apps.ControllerRevisions().Informer().GetIndexer(), Handler: c.revisionHandler()},
		controllertest.Watched{GVR: podsGVR, Kind: podKind, Indexer: core.Pods().Informer().GetIndexer(), Handler: c.podHandler()},
	)
	f.Add(objs...)
	f.Refresh()
	return h
}

// sync runs one sync of key and traces it.
func (h *harness) sync(title, key string) {
	h.t.Helper()
	h.client.ClearActions()
	after, err := h.c.sync(context.Background(), key)
	h.Trace(title, after, err)
}

// pod returns the fake's copy of a pod.
func (h *harness) pod(ns, name string) *corev1.Pod {
	return controllertest.Get[*corev1.Pod](h.Fake, podsGVR, ns, name)
}

// set returns the fake's copy of a StatefulSet.
func (h *harness) set(ns, name string) *appsv1.StatefulSet {
	return controllertest.Get[*appsv1.StatefulSet](h.Fake, setsGVR, ns, name)
}

// pods returns the fake's pods in ns, by name.
func (h *harness) pods(ns string) []*corev1.Pod {
	return controllertest.List[*corev1.Pod](h.Fake, podsGVR, podKind, ns)
}

// setPod changes a pod in the fake (as a kubelet would).
func (h *harness) setPod(p *corev1.Pod, change func(*corev1.Pod)) {
	controllertest.Set(h.Fake, podsGVR, p, change)
}

// setSet changes a StatefulSet in the fake (as a user and the API
// server would).
func (h *harness) setSet(set *appsv1.StatefulSet, change func(*appsv1.StatefulSet)) {
	controllertest.Set(h.Fake, setsGVR, set, change)
}

// revisions returns the fake's ControllerRevisions in ns, by name.
func (h *harness) revisions(ns string) []*appsv1.ControllerRevision {
	return controllertest.List[*appsv1.ControllerRevision](h.Fake, revsGVR, revKind, ns)
}
