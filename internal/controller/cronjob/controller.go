package cronjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

const defaultWorkers = 5

var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Config configures a Controller. Client and Informers are required; every
// other zero value means the documented default.
type Config struct {
	// Client creates and deletes Jobs and writes CronJob status and
	// events.
	Client kubernetes.Interface
	// Informers is the shared informer factory the controller reads
	// CronJobs and Jobs from. New registers its informers; the caller
	// starts it.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events. Nil sends them to the API server through
	// Client while Run runs.
	Recorder record.EventRecorder
	// Workers is how many CronJobs are synced at once. Zero is 5.
	Workers int
	// Location is the time zone of schedules of CronJobs without
	// spec.timeZone. Nil is the process's local zone, as upstream.
	Location *time.Location
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Workers == 0 {
		c.Workers = defaultWorkers
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("client is required")
	case c.Informers == nil:
		return errors.New("informer factory is required")
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	}
	return nil
}

// Controller is the CronJob controller. Build it with New, then call Run
// once.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	cronJobs batchlisters.CronJobLister
	jobs     batchlisters.JobLister
	synced   []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]

	// recorder is set by New from Config, or by Run.
	recorder record.EventRecorder
}

// New checks cfg and returns a Controller with its informers and event
// handlers registered on cfg.Informers. It does not call the API.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cronjob controller config: %w", err)
	}
	cfg = cfg.withDefaults()
	c := &Controller{
		cfg:      cfg,
		client:   cfg.Client,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		recorder: cfg.Recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob", Clock: cfg.Clock}),
	}
	cjInformer := cfg.Informers.Batch().V1().CronJobs()
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	c.cronJobs = cjInformer.Lister()
	c.jobs = jobInformer.Lister()
	if _, err := cjInformer.Informer().AddEventHandler(c.cronJobHandler()); err != nil {
		return nil, fmt.Errorf("cronjob informer: %w", err)
	}
	if _, err := jobInformer.Informer().AddEventHandler(c.jobHandler()); err != nil {
		return nil, fmt.Errorf("job informer: %w", err)
	}
	c.synced = []cache.InformerSynced{cjInformer.Informer().HasSynced, jobInformer.Informer().HasSynced}
	return c, nil
}

// Run waits for the informer caches, then syncs CronJobs with cfg.Workers
// workers until ctx is done, and returns nil. It returns an error only if
// the caches could not sync. Call it once.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer b.Shutdown()
		c.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "cronjob-controller"})
	}
	c.log.Info("starting")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("cronjob controller: informer caches did not sync")
	}
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	c.log.Info("stopped")
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	after, err := c.sync(ctx, key)
	if err != nil {
		if apierrors.IsConflict(err) {
			c.log.Debug("sync conflicted; retrying", "cronjob", key, "err", err)
		} else {
			c.log.Error("sync failed; retrying", "cronjob", key, "err", err)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if after > 0 {
		c.queue.AddAfter(key, after)
	}
	return true
}

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	c.queue.Add(key)
}

func (c *Controller) cronJobHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur any) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	}
}

func (c *Controller) jobHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueueOwner,
		UpdateFunc: func(old, cur any) {
			oldJob, ok1 := old.(*batchv1.Job)
			curJob, ok2 := cur.(*batchv1.Job)
			if ok1 && ok2 {
				oldRef, curRef := metav1.GetControllerOf(oldJob), metav1.GetControllerOf(curJob)
				if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
					c.enqueueOwner(oldJob)
				}
			}
			c.enqueueOwner(cur)
		},
		DeleteFunc: c.enqueueOwner,
	}
}

// enqueueOwner queues the CronJob controlling a Job, if any.
func (c *Controller) enqueueOwner(obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if j, ok = tomb.Obj.(*batchv1.Job); !ok {
			return
		}
	}
	ref := metav1.GetControllerOf(j)
	if ref == nil || ref.Kind != cronJobKind.Kind || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
		return
	}
	cj, err := c.cronJobs.CronJobs(j.Namespace).Get(ref.Name)
	if err != nil || cj.UID != ref.UID {
		return
	}
	c.enqueue(cj)
}
