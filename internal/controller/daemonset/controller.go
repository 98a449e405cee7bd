package daemonset

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
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Upstream's settings, the defaults of Config.
const (
	defaultWorkers          = 2
	defaultBurstReplicas    = 250
	defaultFailedPodBackoff = time.Second
	defaultMaxFailedBackoff = 15 * time.Minute
	// slowStartInitialBatch is the first batch of pod creations; each
	// batch that succeeds doubles the next.
	slowStartInitialBatch = 1
)

var dsKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Config configures a Controller. Client and Informers are required; every
// other zero value means the documented default.
type Config struct {
	// Client writes pods, ControllerRevisions, DaemonSet status and
	// events.
	Client kubernetes.Interface
	// Informers is the shared informer factory the controller reads
	// DaemonSets, pods, nodes and ControllerRevisions from. New registers
	// its informers; the caller starts it.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events. Nil sends them to the API server through
	// Client while Run runs.
	Recorder record.EventRecorder
	// Workers is how many DaemonSets are synced at once. Zero is 2.
	Workers int
	// BurstReplicas caps the pods one sync creates, and those it deletes.
	// Zero is 250.
	BurstReplicas int
	// FailedPodBackoff is the delay before a failed pod on a node is
	// deleted again after the last time; it doubles up to
	// MaxFailedPodBackoff. Zero is one second.
	FailedPodBackoff time.Duration
	// MaxFailedPodBackoff caps FailedPodBackoff. Zero is 15 minutes.
	MaxFailedPodBackoff time.Duration
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
	if c.BurstReplicas == 0 {
		c.BurstReplicas = defaultBurstReplicas
	}
	if c.FailedPodBackoff == 0 {
		c.FailedPodBackoff = defaultFailedPodBackoff
	}
	if c.MaxFailedPodBackoff == 0 {
		c.MaxFailedPodBackoff = defaultMaxFailedBackoff
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
	case c.BurstReplicas < 0:
		return fmt.Errorf("burst replicas %d is negative", c.BurstReplicas)
	case c.FailedPodBackoff < 0 || c.MaxFailedPodBackoff < 0:
		return errors.New("failed pod backoff must not be negative")
	}
	if d := c.withDefaults(); d.MaxFailedPodBackoff < d.FailedPodBackoff {
		return fmt.Errorf("max failed pod backoff %v is below failed pod backoff %v", d.MaxFailedPodBackoff, d.FailedPodBackoff)
	}
	return nil
}

// Controller is the DaemonSet controller. Build it with New, then call Run
// once.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	daemonSets appslisters.DaemonSetLister
	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	revisions  appslisters.ControllerRevisionLister
	synced     []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]

	// recorder is set by New from Config, or by Run.
	recorder record.EventRecorder

	expectations *expectations
	// failedPods paces the deletion of failed pods per DaemonSet and node
	// (it fights a node agent that keeps failing them). It is safe for
	// concurrent use.
	failedPods *flowcontrol.Backoff
}

// New checks cfg and returns a Controller with its informers and event
// handlers registered on cfg.Informers. It does not call the API.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("daemonset controller config: %w", err)
	}
	cfg = cfg.withDefaults()
	backoff := flowcontrol.NewBackOff(cfg.FailedPodBackoff, cfg.MaxFailedPodBackoff)
	backoff.Clock = cfg.Clock
	c := &Controller{
		cfg:      cfg,
		client:   cfg.Client,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		recorder: cfg.Recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset", Clock: cfg.Clock}),
		expectations: newExpectations(),
		failedPods:   backoff,
	}
	dsInformer := cfg.Informers.Apps().V1().DaemonSets()
	podInformer := cfg.Informers.Core().V1().Pods()
	nodeInformer := cfg.Informers.Core().V1().Nodes()
	revInformer := cfg.Informers.Apps().V1().ControllerRevisions()
	c.daemonSets = dsInformer.Lister()
	c.pods = podInformer.Lister()
	c.nodes = nodeInformer.Lister()
	c.revisions = revInformer.Lister()
	for _, reg := range []struct {
		name     string
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{"daemonset", dsInformer.Informer(), c.daemonSetHandler()},
		{"pod", podInformer.Informer(), c.podHandler()},
		{"node", nodeInformer.Informer(), c.nodeHandler()},
		{"controllerrevision", revInformer.Informer(), c.revisionHandler()},
	} {
		if _, err := reg.informer.AddEventHandler(reg.handler); err != nil {
			return nil, fmt.Errorf("%s informer: %w", reg.name, err)
		}
		c.synced = append(c.synced, reg.informer.HasSynced)
	}
	return c, nil
}

// Run waits for the informer caches, then syncs DaemonSets with
// cfg.Workers workers until ctx is done, and returns nil. It returns an
// error only if the caches could not sync. Call it once.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer b.Shutdown()
		c.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "daemonset-controller"})
	}
	c.log.Info("starting")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("daemonset controller: informer caches did not sync")
	}
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	// Forget backoff entries of nodes long quiet.
	wg.Go(func() {
		t := c.clock.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				c.failedPods.GC()
			}
		}
	})
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
			c.log.Debug("sync conflicted; retrying", "daemonset", key, "err", err)
		} else {
			c.log.Error("sync failed; retrying", "daemonset", key, "err", err)
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

func (c *Controller) enqueue(ds *appsv1.DaemonSet) {
	key, err := cache.MetaNamespaceKeyFunc(ds)
	if err != nil {
		return
	}
	c.queue.Add(key)
}

func (c *Controller) enqueueAfter(ds *appsv1.DaemonSet, d time.Duration) {
	key, err := cache.MetaNamespaceKeyFunc(ds)
	if err != nil {
		return
	}
	c.queue.AddAfter(key, d)
}

func (c *Controller) daemonSetHandler() cache.ResourceEventHandler {
	asDS := func(obj any) *appsv1.DaemonSet {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		ds, _ := obj.(*appsv1.DaemonSet)
		return ds
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if ds := asDS(obj); ds != nil {
				c.enqueue(ds)
			}
		},
		UpdateFunc: func(_, cur any) {
			if ds := asDS(cur); ds != nil {
				c.enqueue(ds)
			}
		},
		DeleteFunc: func(obj any) {
			if ds := asDS(obj); ds != nil {
				if key, err := cache.MetaNamespaceKeyFunc(ds); err == nil {
					c.expectations.forget(key)
				}
				c.enqueue(ds)
			}
		},
	}
}

func (c *Controller) podHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}
}

func (c *Controller) addPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		// Seen for the first time while being deleted (after a relist).
		c.deletePod(p)
		return
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		ds := c.resolveControllerRef(p.Namespace, ref)
		if ds == nil {
			return
		}
		if key, err := cache.MetaNamespaceKeyFunc(ds); err == nil {
			c.expectations.created(key)
		}
		c.enqueue(ds)
		return
	}
	for _, ds := range c.daemonSetsSelecting(p) {
		c.enqueue(ds)
	}
}

func (c *Controller) updatePod(old, cur any) {
	oldPod, ok1 := old.(*corev1.Pod)
	curPod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || curPod.ResourceVersion != "" && curPod.ResourceVersion == oldPod.ResourceVersion {
		// A periodic resync: nothing changed.
		return
	}
	if curPod.DeletionTimestamp != nil && oldPod.DeletionTimestamp == nil {
		c.deletePod(curPod)
		return
	}
	curRef, oldRef := metav1.GetControllerOf(curPod), metav1.GetControllerOf(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if ds := c.resolveControllerRef(oldPod.Namespace, oldRef); ds != nil {
			c.enqueue(ds)
		}
	}
	if curRef != nil {
		ds := c.resolveControllerRef(curPod.Namespace, curRef)
		if ds == nil {
			return
		}
		c.enqueue(ds)
		// A pod that just became ready becomes available minReadySeconds
		// later.
		if ds.Spec.MinReadySeconds > 0 && !isReady(oldPod) && isReady(curPod) {
			c.enqueueAfter(ds, time.Duration(ds.Spec.MinReadySeconds)*time.Second)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(curPod.Labels, oldPod.Labels) {
		for _, ds := range c.daemonSetsSelecting(curPod) {
			c.enqueue(ds)
		}
	}
}

func (c *Controller) deletePod(obj any) {
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
	ds := c.resolveControllerRef(p.Namespace, ref)
	if ds == nil {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(ds); err == nil {
		c.expectations.deleted(key)
	}
	c.enqueue(ds)
}

func (c *Controller) nodeHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			node, ok := obj.(*corev1.Node)
			if !ok {
				return
			}
			for _, ds := range c.allDaemonSets() {
				if run, _ := shouldRun(node, ds); run {
					c.enqueue(ds)
				}
			}
		},
		UpdateFunc: func(old, cur any) {
			oldNode, ok1 := old.(*corev1.Node)
			curNode, ok2 := cur.(*corev1.Node)
			if !ok1 || !ok2 || !placementChanged(oldNode, curNode) {
				return
			}
			for _, ds := range c.allDaemonSets() {
				oldRun, oldStay := shouldRun(oldNode, ds)
				curRun, curStay := shouldRun(curNode, ds)
				if oldRun != curRun || oldStay != curStay {
					c.enqueue(ds)
				}
			}
		},
		DeleteFunc: func(any) {
			// Pods waiting for the node can never run: the syncs delete
			// them.
			for _, ds := range c.allDaemonSets() {
				c.enqueue(ds)
			}
		},
	}
}

// placementChanged reports whether a node update can change which daemon
// pods belong on it: its labels, taints or name fields.
func placementChanged(old, cur *corev1.Node) bool {
	return !reflect.DeepEqual(old.Labels, cur.Labels) || !reflect.DeepEqual(old.Spec.Taints, cur.Spec.Taints)
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
			if ds := c.resolveControllerRef(r.Namespace, ref); ds != nil {
				c.enqueue(ds)
			}
			return
		}
		for _, ds := range c.allDaemonSets() {
			if ds.Namespace != r.Namespace {
				continue
			}
			if sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(r.Labels)) {
				c.enqueue(ds)
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueOwner,
		UpdateFunc: func(_, cur any) { enqueueOwner(cur) },
		DeleteFunc: enqueueOwner,
	}
}

func (c *Controller) allDaemonSets() []*appsv1.DaemonSet {
	all, err := c.daemonSets.List(labels.Everything())
	if err != nil {
		return nil
	}
	return all
}

// resolveControllerRef returns the DaemonSet a controller reference names,
// if the cache has it with that UID.
func (c *Controller) resolveControllerRef(ns string, ref *metav1.OwnerReference) *appsv1.DaemonSet {
	if ref.Kind != dsKind.Kind || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return nil
	}
	ds, err := c.daemonSets.DaemonSets(ns).Get(ref.Name)
	if err != nil || ds.UID != ref.UID {
		return nil
	}
	return ds
}

// daemonSetsSelecting returns the DaemonSets whose selector matches an
// orphan pod's labels (candidates to adopt it).
func (c *Controller) daemonSetsSelecting(p *corev1.Pod) []*appsv1.DaemonSet {
	if len(p.Labels) == 0 {
		return nil
	}
	all, err := c.daemonSets.DaemonSets(p.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.DaemonSet
	for _, ds := range all {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		out = append(out, ds)
	}
	return out
}
