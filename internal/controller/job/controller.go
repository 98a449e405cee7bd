package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Upstream's settings, the defaults of Config.
const (
	defaultWorkers           = 5
	defaultBatchPeriod       = time.Second
	defaultPodFailureBackoff = 10 * time.Second
	defaultMaxPodBackoff     = 10 * time.Minute
	// maxUncountedPods caps the UIDs in status.uncountedTerminatedPods
	// (about 20 KB), and so the finalizers removed by one sync.
	maxUncountedPods = 500
	// maxPodCreateDeletePerSync caps the pods one sync creates or deletes.
	maxPodCreateDeletePerSync = 500
	// slowStartInitialBatch is the first batch of pod creations; each
	// batch that succeeds doubles the next.
	slowStartInitialBatch = 1
)

// controllerName is the value of spec.managedBy this controller serves
// (or no value), and the event source.
const controllerName = "kubernetes.io/job-controller"

var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

// Config configures a Controller. Client and Informers are required; every
// other zero value means the documented default.
type Config struct {
	// Client writes pods, Jobs and events.
	Client kubernetes.Interface
	// Informers is the shared informer factory the controller reads Jobs
	// and pods from. New registers its informers; the caller starts it.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events. Nil sends them to the API server through
	// Client while Run runs.
	Recorder record.EventRecorder
	// Workers is how many Jobs are synced at once. Zero is 5.
	Workers int
	// BatchPeriod is how long pod events for a Job are gathered before it
	// is synced. Zero is one second.
	BatchPeriod time.Duration
	// PodFailureBackoff is the delay before the replacement of a Job's
	// first failed pod; it doubles with each further failure up to
	// MaxPodFailureBackoff. Zero is 10s.
	PodFailureBackoff time.Duration
	// MaxPodFailureBackoff caps the replacement delay. Zero is 10 minutes.
	MaxPodFailureBackoff time.Duration
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
	if c.BatchPeriod == 0 {
		c.BatchPeriod = defaultBatchPeriod
	}
	if c.PodFailureBackoff == 0 {
		c.PodFailureBackoff = defaultPodFailureBackoff
	}
	if c.MaxPodFailureBackoff == 0 {
		c.MaxPodFailureBackoff = defaultMaxPodBackoff
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
	case c.BatchPeriod < 0:
		return fmt.Errorf("batch period %v is negative", c.BatchPeriod)
	case c.PodFailureBackoff < 0 || c.MaxPodFailureBackoff < 0:
		return errors.New("pod failure backoff must not be negative")
	}
	if d := c.withDefaults(); d.MaxPodFailureBackoff < d.PodFailureBackoff {
		return fmt.Errorf("max pod failure backoff %v is below pod failure backoff %v", d.MaxPodFailureBackoff, d.PodFailureBackoff)
	}
	return nil
}

// Controller is the Job controller. Build it with New, then call Run once.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	jobs   batchlisters.JobLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced

	// queue holds Job keys to sync; orphans holds pod keys whose tracking
	// finalizer may have to go.
	queue   workqueue.TypedRateLimitingInterface[string]
	orphans workqueue.TypedRateLimitingInterface[string]

	// recorder is set by New from Config, or by Run.
	recorder record.EventRecorder

	expectations *expectations
	finalizers   *finalizerExpectations
	backoff      *backoffStore
}

// New checks cfg and returns a Controller with its informers and event
// handlers registered on cfg.Informers. It does not call the API.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("job controller config: %w", err)
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
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job", Clock: cfg.Clock}),
		orphans: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "job_orphan_pod", Clock: cfg.Clock}),
		expectations: newExpectations(),
		finalizers:   newFinalizerExpectations(),
		backoff:      newBackoffStore(),
	}
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	podInformer := cfg.Informers.Core().V1().Pods()
	c.jobs = jobInformer.Lister()
	c.pods = podInformer.Lister()
	if _, err := jobInformer.Informer().AddEventHandler(c.jobHandler()); err != nil {
		return nil, fmt.Errorf("job informer: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(c.podHandler()); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	c.synced = []cache.InformerSynced{jobInformer.Informer().HasSynced, podInformer.Informer().HasSynced}
	return c, nil
}

// Run waits for the informer caches, then syncs Jobs with cfg.Workers
// workers until ctx is done, and returns nil. It returns an error only if
// the caches could not sync. Call it once.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	defer c.orphans.ShutDown()
	if c.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer b.Shutdown()
		c.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "job-controller"})
	}
	c.log.Info("starting")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("job controller: informer caches did not sync")
	}
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	wg.Go(func() {
		for c.processNextOrphan(ctx) {
		}
	})
	<-ctx.Done()
	c.queue.ShutDown()
	c.orphans.ShutDown()
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
			// A stale cache; the retry sees the newer object.
			c.log.Debug("sync conflicted; retrying", "job", key, "err", err)
		} else {
			c.log.Error("sync failed; retrying", "job", key, "err", err)
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

func (c *Controller) processNextOrphan(ctx context.Context) bool {
	key, quit := c.orphans.Get()
	if quit {
		return false
	}
	defer c.orphans.Done(key)
	if err := c.syncOrphanPod(ctx, key); err != nil {
		c.log.Error("removing the tracking finalizer failed", "pod", key, "err", err)
		c.orphans.AddRateLimited(key)
		return true
	}
	c.orphans.Forget(key)
	return true
}

func (c *Controller) enqueue(j *batchv1.Job, after time.Duration) {
	key, err := cache.MetaNamespaceKeyFunc(j)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, after)
}

func (c *Controller) enqueueOrphan(p *corev1.Pod) {
	key, err := cache.MetaNamespaceKeyFunc(p)
	if err != nil {
		return
	}
	c.orphans.Add(key)
}

func (c *Controller) jobHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.addJob(obj) },
		UpdateFunc: func(old, cur any) { c.updateJob(old, cur) },
		DeleteFunc: func(obj any) { c.deleteJob(obj) },
	}
}

func (c *Controller) podHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.addPod(obj) },
		UpdateFunc: func(old, cur any) { c.updatePod(old, cur) },
		DeleteFunc: func(obj any) { c.deletePod(obj, true) },
	}
}

func (c *Controller) addJob(obj any) {
	if j, ok := obj.(*batchv1.Job); ok {
		c.enqueue(j, 0)
	}
}

func (c *Controller) updateJob(old, cur any) {
	oldJob, ok1 := old.(*batchv1.Job)
	curJob, ok2 := cur.(*batchv1.Job)
	if !ok1 || !ok2 {
		return
	}
	if curJob.Generation == oldJob.Generation {
		// Mostly our own status writes: batch them with pod events.
		c.enqueue(curJob, c.cfg.BatchPeriod)
	} else {
		c.enqueue(curJob, 0)
	}
	if isFinished(curJob) {
		c.cleanupPodFinalizers(curJob)
	}
}

func (c *Controller) deleteJob(obj any) {
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
	c.enqueue(j, 0)
	c.cleanupPodFinalizers(j)
}

// cleanupPodFinalizers queues the pods of a finished or deleted Job that
// still carry the tracking finalizer, as a backstop for syncs that could
// not remove it.
func (c *Controller) cleanupPodFinalizers(j *batchv1.Job) {
	sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
	if err != nil {
		return
	}
	pods, err := c.pods.Pods(j.Namespace).List(sel)
	if err != nil {
		return
	}
	for _, p := range pods {
		if hasTrackingFinalizer(p) {
			c.enqueueOrphan(p)
		}
	}
}

func (c *Controller) addPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// Seen for the first time while being deleted (after a relist).
		c.deletePod(p, false)
		return
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		j := c.resolveControllerRef(p.Namespace, ref)
		if j == nil {
			if hasTrackingFinalizer(p) {
				c.enqueueOrphan(p)
			}
			return
		}
		if key, err := cache.MetaNamespaceKeyFunc(j); err == nil {
			c.expectations.created(key)
		}
		c.enqueue(j, c.cfg.BatchPeriod)
		return
	}
	if hasTrackingFinalizer(p) {
		c.enqueueOrphan(p)
	}
	for _, j := range c.jobsSelecting(p) {
		c.enqueue(j, c.cfg.BatchPeriod)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, ok1 := old.(*corev1.Pod)
	curPod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	if curPod.DeletionTimestamp != nil {
		c.deletePod(curPod, false)
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if j := c.resolveControllerRef(oldPod.Namespace, oldRef); j != nil {
			c.enqueue(j, c.cfg.BatchPeriod)
		}
	}
	if curRef != nil {
		j := c.resolveControllerRef(curPod.Namespace, curRef)
		if j == nil {
			if hasTrackingFinalizer(curPod) {
				c.enqueueOrphan(curPod)
			}
			return
		}
		if hasTrackingFinalizer(oldPod) && !hasTrackingFinalizer(curPod) {
			if key, err := cache.MetaNamespaceKeyFunc(j); err == nil {
				c.finalizers.removed(key, string(curPod.UID))
			}
		}
		c.enqueue(j, c.cfg.BatchPeriod)
		return
	}
	if hasTrackingFinalizer(curPod) {
		c.enqueueOrphan(curPod)
	}
	if refChanged || !reflect.DeepEqual(curPod.Labels, oldPod.Labels) {
		for _, j := range c.jobsSelecting(curPod) {
			c.enqueue(j, c.cfg.BatchPeriod)
		}
	}
}

// deletePod handles a pod's deletion: final when the informer dropped it,
// not final when it merely got a deletionTimestamp.
func (c *Controller) deletePod(obj any, final bool) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if p, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		if hasTrackingFinalizer(p) && !final {
			c.enqueueOrphan(p)
		}
		return
	}
	j := c.resolveControllerRef(p.Namespace, ref)
	if j == nil || isFinished(j) {
		if hasTrackingFinalizer(p) && !final {
			c.enqueueOrphan(p)
		}
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(j)
	if err != nil {
		return
	}
	c.expectations.deleted(key)
	if final || !hasTrackingFinalizer(p) {
		c.finalizers.removed(key, string(p.UID))
	}
	c.enqueue(j, c.cfg.BatchPeriod)
}

// resolveControllerRef returns the Job a controller reference names, if
// the cache has it with that UID.
func (c *Controller) resolveControllerRef(ns string, ref *metav1.OwnerReference) *batchv1.Job {
	if ref.Kind != jobKind.Kind || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
		return nil
	}
	j, err := c.jobs.Jobs(ns).Get(ref.Name)
	if err != nil || j.UID != ref.UID {
		return nil
	}
	return j
}

// jobsSelecting returns the Jobs whose selector matches an orphan pod's
// labels (candidates to adopt it).
func (c *Controller) jobsSelecting(p *corev1.Pod) []*batchv1.Job {
	if len(p.Labels) == 0 {
		return nil
	}
	jobs, err := c.jobs.Jobs(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*batchv1.Job
	for _, j := range jobs {
		sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		out = append(out, j)
	}
	return out
}
