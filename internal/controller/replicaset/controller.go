package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// EventRecorder records events about objects; record.EventRecorder is one.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures a Controller. Client and Informers are required.
type Config struct {
	// Client writes pods and ReplicaSet status.
	Client kubernetes.Interface
	// Informers provides the ReplicaSet and pod caches; the caller starts
	// it after New.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Events receives events about ReplicaSets. Nil sends them to the API
	// through Client while Run runs.
	Events EventRecorder
	// Workers is how many ReplicaSets are synced at once. Zero is 5.
	Workers int
	// BurstReplicas caps the pods created or deleted by one sync. Zero is
	// 500, as upstream.
	BurstReplicas int
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Workers == 0 {
		c.Workers = 5
	}
	if c.BurstReplicas == 0 {
		c.BurstReplicas = 500
	}
}

func (c *Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("client is required")
	case c.Informers == nil:
		return errors.New("informers are required")
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	case c.BurstReplicas < 0:
		return fmt.Errorf("burst replicas %d is negative", c.BurstReplicas)
	}
	return nil
}

// Controller is the ReplicaSet controller.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]
	exp   *expectations

	// events is set by New from Config.Events, or by Run; only syncs,
	// which run after either, read it.
	events EventRecorder
}

// New builds a Controller and registers its informers and handlers. It
// does not call the API.
func New(cfg Config) (*Controller, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("replicaset controller config: %w", err)
	}
	rsInformer := cfg.Informers.Apps().V1().ReplicaSets()
	podInformer := cfg.Informers.Core().V1().Pods()
	c := &Controller{
		cfg:       cfg,
		client:    cfg.Client,
		log:       cfg.Logger,
		clock:     cfg.Clock,
		rsLister:  rsInformer.Lister(),
		podLister: podInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "replicaset", Clock: cfg.Clock},
		),
		exp:    newExpectations(cfg.Clock),
		events: cfg.Events,
	}
	if _, err := rsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueReplicaSet,
		UpdateFunc: func(_, cur any) { c.enqueueReplicaSet(cur) },
		DeleteFunc: c.deleteReplicaSet,
	}); err != nil {
		return nil, fmt.Errorf("replicaset informer: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	c.synced = []cache.InformerSynced{rsInformer.Informer().HasSynced, podInformer.Informer().HasSynced}
	return c, nil
}

// Run waits for the caches, then syncs ReplicaSets with Config.Workers
// workers until ctx is done, and returns nil once they have stopped. It
// returns an error only when the caches cannot sync before ctx ends for
// another reason. Run may be called once.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(c.log.Handler()))
	if c.events == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer b.Shutdown()
		c.events = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "replicaset-controller"})
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("replicaset controller: caches did not sync")
	}
	c.log.Info("started", "workers", c.cfg.Workers)
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
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		c.log.Info("sync failed; retrying", "replicaset", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func (c *Controller) enqueue(rs *appsv1.ReplicaSet) {
	c.queue.Add(rs.Namespace + "/" + rs.Name)
}

func (c *Controller) enqueueAfter(rs *appsv1.ReplicaSet, d time.Duration) {
	c.queue.AddAfter(rs.Namespace+"/"+rs.Name, d)
}

func (c *Controller) enqueueReplicaSet(obj any) {
	if rs, ok := obj.(*appsv1.ReplicaSet); ok {
		c.enqueue(rs)
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if rs, ok = tomb.Obj.(*appsv1.ReplicaSet); !ok {
			return
		}
	}
	c.exp.forget(rs.Namespace + "/" + rs.Name)
	c.enqueue(rs)
}

// ownerOf returns the ReplicaSet that ref (a pod's controller reference in
// namespace ns) points to, or nil when there is none with that UID.
func (c *Controller) ownerOf(ns string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// selecting returns the ReplicaSets of pod's namespace whose selector
// matches it.
func (c *Controller) selecting(pod *corev1.Pod) []*appsv1.ReplicaSet {
	if len(pod.Labels) == 0 {
		return nil
	}
	all, err := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, rs)
		}
	}
	return out
}

func (c *Controller) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// A pod that is already terminating when first seen (a restart
		// of the controller): count it as a deletion, not a creation.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if rs := c.ownerOf(pod.Namespace, ref); rs != nil {
			c.exp.created(rs.Namespace + "/" + rs.Name)
			c.enqueue(rs)
		}
		return
	}
	for _, rs := range c.selecting(pod) {
		c.enqueue(rs)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, ok1 := old.(*corev1.Pod)
	curPod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || oldPod.ResourceVersion == curPod.ResourceVersion {
		return
	}
	if curPod.DeletionTimestamp != nil && oldPod.DeletionTimestamp == nil {
		// Terminating counts as deleted for the expectations: the
		// replacement must not wait for the grace period.
		c.deletePod(curPod)
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(oldPod), metav1.GetControllerOfNoCopy(curPod)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if rs := c.ownerOf(oldPod.Namespace, oldRef); rs != nil {
			c.enqueue(rs)
		}
	}
	if curRef != nil {
		if rs := c.ownerOf(curPod.Namespace, curRef); rs != nil {
			c.enqueue(rs)
		}
		return
	}
	if !labels.Equals(oldPod.Labels, curPod.Labels) || oldRef != nil {
		for _, rs := range c.selecting(curPod) {
			c.enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	rs := c.ownerOf(pod.Namespace, metav1.GetControllerOfNoCopy(pod))
	if rs == nil {
		return
	}
	c.exp.deleted(rs.Namespace+"/"+rs.Name, pod.UID)
	c.enqueue(rs)
}
