package deployment

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
	// Client writes ReplicaSets and Deployment status.
	Client kubernetes.Interface
	// Informers provides the Deployment, ReplicaSet and pod caches; the
	// caller starts it after New.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source for conditions and deadlines. Nil is the
	// real clock.
	Clock clock.WithTicker
	// Events receives events about Deployments. Nil sends them to the API
	// through Client while Run runs.
	Events EventRecorder
	// Workers is how many Deployments are synced at once. Zero is 5.
	Workers int
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
}

func (c *Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("client is required")
	case c.Informers == nil:
		return errors.New("informers are required")
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	}
	return nil
}

// Controller is the Deployment controller.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	dLister   appslisters.DeploymentLister
	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]

	// events is set by New from Config.Events, or by Run; only syncs,
	// which run after either, read it.
	events EventRecorder
}

// New builds a Controller and registers its informers and handlers. It
// does not call the API.
func New(cfg Config) (*Controller, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("deployment controller config: %w", err)
	}
	dInformer := cfg.Informers.Apps().V1().Deployments()
	rsInformer := cfg.Informers.Apps().V1().ReplicaSets()
	podInformer := cfg.Informers.Core().V1().Pods()
	c := &Controller{
		cfg:       cfg,
		client:    cfg.Client,
		log:       cfg.Logger,
		clock:     cfg.Clock,
		dLister:   dInformer.Lister(),
		rsLister:  rsInformer.Lister(),
		podLister: podInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "deployment", Clock: cfg.Clock},
		),
		events: cfg.Events,
	}
	handlers := []struct {
		informer cache.SharedIndexInformer
		h        cache.ResourceEventHandlerFuncs
	}{
		{dInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueDeployment,
			UpdateFunc: func(_, cur any) { c.enqueueDeployment(cur) },
			DeleteFunc: c.enqueueDeployment,
		}},
		{rsInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.addReplicaSet,
			UpdateFunc: c.updateReplicaSet,
			DeleteFunc: c.deleteReplicaSet,
		}},
		{podInformer.Informer(), cache.ResourceEventHandlerFuncs{
			DeleteFunc: c.deletePod,
		}},
	}
	for _, h := range handlers {
		if _, err := h.informer.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("deployment controller handlers: %w", err)
		}
		c.synced = append(c.synced, h.informer.HasSynced)
	}
	return c, nil
}

// Run waits for the caches, then syncs Deployments with Config.Workers
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
		c.events = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "deployment-controller"})
	}
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("deployment controller: caches did not sync")
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
		c.log.Info("sync failed; retrying", "deployment", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func keyOf(d *appsv1.Deployment) string { return d.Namespace + "/" + d.Name }

func (c *Controller) enqueue(d *appsv1.Deployment) { c.queue.Add(keyOf(d)) }

func (c *Controller) enqueueAfter(d *appsv1.Deployment, after time.Duration) {
	c.queue.AddAfter(keyOf(d), after)
}

func (c *Controller) enqueueDeployment(obj any) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		c.enqueue(o)
	case cache.DeletedFinalStateUnknown:
		if d, ok := o.Obj.(*appsv1.Deployment); ok {
			c.enqueue(d)
		}
	}
}

// ownerOf returns the Deployment that ref (a controller reference in
// namespace ns) points to, or nil when there is none with that UID.
func (c *Controller) ownerOf(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != "Deployment" || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return nil
	}
	d, err := c.dLister.Deployments(ns).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// selecting returns the Deployments of rs's namespace whose selector
// matches its labels.
func (c *Controller) selecting(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	if len(rs.Labels) == 0 {
		return nil
	}
	all, err := c.dLister.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range all {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(rs.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func (c *Controller) addReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if rs.DeletionTimestamp != nil {
		c.deleteReplicaSet(rs)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := c.ownerOf(rs.Namespace, ref); d != nil {
			c.enqueue(d)
		}
		return
	}
	for _, d := range c.selecting(rs) {
		c.enqueue(d)
	}
}

func (c *Controller) updateReplicaSet(old, cur any) {
	oldRS, ok1 := old.(*appsv1.ReplicaSet)
	curRS, ok2 := cur.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 || oldRS.ResourceVersion == curRS.ResourceVersion {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(oldRS), metav1.GetControllerOfNoCopy(curRS)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		if d := c.ownerOf(oldRS.Namespace, oldRef); d != nil {
			c.enqueue(d)
		}
	}
	if curRef != nil {
		if d := c.ownerOf(curRS.Namespace, curRef); d != nil {
			c.enqueue(d)
		}
		return
	}
	if !labels.Equals(oldRS.Labels, curRS.Labels) || oldRef != nil {
		for _, d := range c.selecting(curRS) {
			c.enqueue(d)
		}
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
	if d := c.ownerOf(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil {
		c.enqueue(d)
	}
}

// deletePod wakes a Recreate Deployment up when a pod of one of its
// ReplicaSets goes away: it may be waiting for the last old pod.
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
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := c.rsLister.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := c.ownerOf(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		c.enqueue(d)
	}
}
