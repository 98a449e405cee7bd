package job

import (
	"context"
	"flag"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
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
	jobsGVR = batchv1.SchemeGroupVersion.WithResource("jobs")
	podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

	podKind = corev1.SchemeGroupVersion.WithKind("Pod")
)

// harness runs the controller against a controllertest.Fake, one sync at
// a time, and writes what it did to a trace compared with a golden file.
// Deleting a pod bound to a node or with finalizers is graceful.
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
		Status: func(obj runtime.Object) (any, bool) {
			if j, ok := obj.(*batchv1.Job); ok {
				return j.Status, true
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
	t.Cleanup(func() {
		c.queue.ShutDown()
		c.orphans.ShutDown()
	})
	h := &harness{Fake: f, t: t, c: c, client: f.Client, clock: f.Clock}
	f.Watch(
		controllertest.Watched{GVR: jobsGVR, Kind: batchv1.SchemeGroupVersion.WithKind("Job"), Indexer: f.Informers.Batch().V1().Jobs().Informer().GetIndexer(), Handler: c.jobHandler()},
		controllertest.Watched{GVR: podsGVR, Kind: podKind, Indexer: f.Informers.Core().V1().Pods().Informer().GetIndexer(), Handler: c.podHandler()},
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

// syncOrphan runs one orphan pod sync and traces it.
func (h *harness) syncOrphan(title, key string) {
	h.t.Helper()
	h.client.ClearActions()
	err := h.c.syncOrphanPod(context.Background(), key)
	h.Trace(title, 0, err)
}

// pod returns the fake's copy of a pod.
func (h *harness) pod(ns, name string) *corev1.Pod {
	return controllertest.Get[*corev1.Pod](h.Fake, podsGVR, ns, name)
}

// job returns the fake's copy of a Job.
func (h *harness) job(ns, name string) *batchv1.Job {
	return controllertest.Get[*batchv1.Job](h.Fake, jobsGVR, ns, name)
}

// pods returns the fake's pods in ns, by name.
func (h *harness) pods(ns string) []*corev1.Pod {
	return controllertest.List[*corev1.Pod](h.Fake, podsGVR, podKind, ns)
}

// setPod changes a pod in the fake (as a kubelet would).
func (h *harness) setPod(p *corev1.Pod, change func(*corev1.Pod)) {
	controllertest.Set(h.Fake, podsGVR, p, change)
}

// setJob changes a Job in the fake (as a user would).
func (h *harness) setJob(j *batchv1.Job, change func(*batchv1.Job)) {
	controllertest.Set(h.Fake, jobsGVR, j, change)
}
