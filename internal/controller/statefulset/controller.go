package statefulset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

const defaultWorkers = 5

var setKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Config configures a Controller. Client and Informers are required; every
// other zero value means the documented default.
type Config struct {
	// Client writes pods, PersistentVolumeClaims, ControllerRevisions,
	// StatefulSet status and events.
	Client kubernetes.Interface
	// Informers is the shared informer factory the controller reads
	// StatefulSets, pods and ControllerRevisions from. New registers its
	// informers; the caller starts it.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events. Nil sends them to the API server through
	// Client while Run runs.
	Recorder record.EventRecorder
	// Workers is how many StatefulSets are synced at once. Zero is 5.
	Workers int
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

// Controller is the StatefulSet controller. Build it with New, then call
// Run once.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	sets      appslisters.StatefulSetLister
	pods      corelisters.PodLister
	revisions appslisters.ControllerRevisionLister
	synced    []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]

	// recorder is set by New from Config, or by Run.
	recorder record.EventRecorder
}

// New checks cfg and returns a Controller with its informers and event
// handlers registered on cfg.Informers. It does not call the API.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("statefulset controller config: %w", err)
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
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset", Clock: cfg.Clock}),
	}
	setInformer := cfg.Informers.Apps().V1().StatefulSets()
	podInformer := cfg.Informers.Core().V1().Pods()
	revInformer := cfg.Informers.Apps().V1().ControllerRevisions()
	c.sets = setInformer.Lister()
	c.pods = podInformer.Lister()
	c.revisions = revInformer.Lister()
	for _, reg := range []struct {
		name     string
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{"statefulset", setInformer.Informer(), c.setHandler()},
		{"pod", podInformer.Informer(), c.podHandler()},
		{"controllerrevision", revInformer.Informer(), c.revisionHandler()},
	} {
		if _, err := reg.informer.AddEventHandler(reg.handler); err != nil {
			return nil, fmt.Errorf("%s informer: %w", reg.name, err)
		}
		c.synced = append(c.synced, reg.informer.HasSynced)
	}
	return c, nil
}

// Run waits for the informer caches, then syncs StatefulSets with
// cfg.Workers workers until ctx is done, and returns nil. It returns an
// error only if the caches could not sync. Call it once.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer b.Shutdown()
		c.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "statefulset-controller"})
	}
	c.log.Info("starting")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("statefulset controller: informer caches did not sync")
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
			c.log.Debug("sync conflicted; retrying", "statefulset", key, "err", err)
		} else {
			c.log.Error("sync failed; retrying", "statefulset", key, "err", err)
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

func (c *Controller) enqueue(set *appsv1.StatefulSet) {
	key, err := cache.MetaNamespaceKeyFunc(set)
	if err != nil {
		return
	}
	c.queue.Add(key)
}

func (c *Controller) enqueueAfter(set *appsv1.StatefulSet, d time.Duration) {
	key, err := cache.MetaNamespaceKeyFunc(set)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, d)
}

func (c *Controller) setHandler() cache.ResourceEventHandler {
	asSet := func(obj any) *appsv1.StatefulSet {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		set, _ := obj.(*appsv1.StatefulSet)
		return set
	}
	enqueue := func(obj any) {
		if set := asSet(obj); set != nil {
			c.enqueue(set)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
		DeleteFunc: enqueue,
	}
}

func (c *Controller) podHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onAddPod,
		UpdateFunc: c.onUpdatePod,
		DeleteFunc: c.onDeletePod,
	}
}

func (c *Controller) onAddPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// Seen for the first time while being deleted (after a relist).
		c.onDeletePod(p)
		return
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		if set := c.resolveControllerRef(p.Namespace, ref); set != nil {
			c.enqueue(set)
		}
		return
	}
	for _, set := range c.setsSelecting(p) {
		c.enqueue(set)
	}
}

func (c *Controller) onUpdatePod(old, cur any) {
	oldPod, ok1 := old.(*corev1.Pod)
	curPod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || curPod.ResourceVersion != "" && curPod.ResourceVersion == oldPod.ResourceVersion {
		// A periodic resync: nothing changed.
		return
	}
	if curPod.DeletionTimestamp != nil && oldPod.DeletionTimestamp == nil {
		c.onDeletePod(curPod)
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if set := c.resolveControllerRef(oldPod.Namespace, oldRef); set != nil {
			c.enqueue(set)
		}
	}
	if curRef != nil {
		set := c.resolveControllerRef(curPod.Namespace, curRef)
		if set == nil {
			return
		}
		c.enqueue(set)
		// A pod that just became ready becomes available minReadySeconds
		// later.
		if set.Spec.MinReadySeconds > 0 && !isReady(oldPod) && isReady(curPod) {
			c.enqueueAfter(set, time.Duration(set.Spec.MinReadySeconds)*time.Second)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(curPod.Labels, oldPod.Labels) {
		for _, set := range c.setsSelecting(curPod) {
			c.enqueue(set)
		}
	}
}

func (c *Controller) onDeletePod(obj any) {
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
		return
	}
	if set := c.resolveControllerRef(p.Namespace, ref); set != nil {
		c.enqueue(set)
	}
}

func (c *Controller) revisionHandler() cache.ResourceEventHandler {
	enqueueOwner := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		r, ok := obj.(*appsv1.ControllerRevision)
		if !ok {
			return
		}
		if ref := metav1.GetControllerOf(r); ref != nil {
			if set := c.resolveControllerRef(r.Namespace, ref); set != nil {
				c.enqueue(set)
			}
			return
		}
		all, err := c.sets.StatefulSets(r.Namespace).List(labels.Everything())
		if err != nil {
			return
		}
		for _, set := range all {
			if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(r.Labels)) {
				c.enqueue(set)
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueOwner,
		UpdateFunc: func(_, cur any) { enqueueOwner(cur) },
		DeleteFunc: enqueueOwner,
	}
}

// resolveControllerRef returns the StatefulSet a controller reference
// names, if the cache has it with that UID.
func (c *Controller) resolveControllerRef(ns string, ref *metav1.OwnerReference) *appsv1.StatefulSet {
	if ref.Kind != setKind.Kind || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return nil
	}
	set, err := c.sets.StatefulSets(ns).Get(ref.Name)
	if err != nil || set.UID != ref.UID {
		return nil
	}
	return set
}

// setsSelecting returns the StatefulSets whose selector matches an orphan
// pod's labels and whose name its name follows (candidates to adopt it).
func (c *Controller) setsSelecting(p *corev1.Pod) []*appsv1.StatefulSet {
	if len(p.Labels) == 0 {
		return nil
	}
	all, err := c.sets.StatefulSets(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.StatefulSet
	for _, set := range all {
		sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Labels)) || !isMemberOf(set, p) {
			continue
		}
		out = append(out, set)
	}
	return out
}
