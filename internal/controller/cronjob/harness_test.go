package cronjob

import (
	"context"
	"flag"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/controller/controllertest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	cronJobsGVR = batchv1.SchemeGroupVersion.WithResource("cronjobs")
	jobsGVR     = batchv1.SchemeGroupVersion.WithResource("jobs")

	jobKind = batchv1.SchemeGroupVersion.WithKind("Job")
)

// harness runs the controller against a controllertest.Fake, one sync at
// a time, and writes what it did to a trace compared with a golden file.
// No pods are involved, so deletion is immediate.
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
		Start:  t0,
		Update: *update,
		Status: func(obj runtime.Object) (any, bool) {
			if cj, ok := obj.(*batchv1.CronJob); ok {
				return cj.Status, true
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
	batch := f.Informers.Batch().V1()
	f.Watch(
		controllertest.Watched{GVR: cronJobsGVR, Kind: batchv1.SchemeGroupVersion.WithKind("CronJob"), Indexer: batch.CronJobs().Informer().GetIndexer(), Handler: c.cronJobHandler()},
		controllertest.Watched{GVR: jobsGVR, Kind: jobKind, Indexer: batch.Jobs().Informer().GetIndexer(), Handler: c.jobHandler()},
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

// cronJob returns the fake's copy of a CronJob.
func (h *harness) cronJob(ns, name string) *batchv1.CronJob {
	return controllertest.Get[*batchv1.CronJob](h.Fake, cronJobsGVR, ns, name)
}

// jobs returns the fake's Jobs in ns, by name.
func (h *harness) jobs(ns string) []*batchv1.Job {
	return controllertest.List[*batchv1.Job](h.Fake, jobsGVR, jobKind, ns)
}

// setJob changes a Job in the fake (as the Job controller would).
func (h *harness) setJob(j *batchv1.Job, change func(*batchv1.Job)) {
	controllertest.Set(h.Fake, jobsGVR, j, change)
}

// setCronJob changes a CronJob in the fake (as a user would).
func (h *harness) setCronJob(cj *batchv1.CronJob, change func(*batchv1.CronJob)) {
	controllertest.Set(h.Fake, cronJobsGVR, cj, change)
}
