package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

const (
	// DefaultMaxEndpointsPerSlice is upstream's default.
	DefaultMaxEndpointsPerSlice = 100
	// maxEndpointsPerSliceLimit is the API's limit.
	maxEndpointsPerSliceLimit = 1000
	defaultWorkers            = 5
)

// ReasonFailedToUpdateEndpointSlices is the reason of the warning event
// recorded on a Service whose slices could not be written.
const ReasonFailedToUpdateEndpointSlices = "FailedToUpdateEndpointSlices"

// EventRecorder records events; record.EventRecorder satisfies it.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures the controller. Client and Informers are required;
// every other zero value is a documented default.
type Config struct {
	// Client writes EndpointSlices and events.
	Client kubernetes.Interface
	// Informers is the shared informer factory; the caller starts it after
	// New.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock times retries. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events. Nil sends them to the API server through
	// Client while Run runs.
	Recorder EventRecorder
	// MaxEndpointsPerSlice bounds the endpoints of one slice (upstream's
	// --max-endpoints-per-slice). Zero means 100; at most 1000.
	MaxEndpointsPerSlice int
	// Workers is how many Services are synced at once. Zero means 5.
	Workers int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.MaxEndpointsPerSlice == 0 {
		c.MaxEndpointsPerSlice = DefaultMaxEndpointsPerSlice
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
	case c.MaxEndpointsPerSlice < 1 || c.MaxEndpointsPerSlice > maxEndpointsPerSliceLimit:
		return fmt.Errorf("max endpoints per slice %d is not in [1, %d]", c.MaxEndpointsPerSlice, maxEndpointsPerSliceLimit)
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	}
	return nil
}

// Controller keeps EndpointSlices in step with Services and pods.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	client    kubernetes.Interface
	recorder  EventRecorder
	broadcast record.EventBroadcaster // nil when cfg.Recorder was given

	services corelisters.ServiceLister
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	tracker  *tracker
}

// New checks cfg and registers the controller's informers and handlers. It
// does not call the API server.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("endpointslice controller: %w", err)
	}
	core := cfg.Informers.Core().V1()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	c := &Controller{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   cfg.Client,
		recorder: cfg.Recorder,
		services: core.Services().Lister(),
		pods:     core.Pods().Lister(),
		nodes:    core.Nodes().Lister(),
		slices:   sliceInf.Lister(),
		synced: []cache.InformerSynced{
			core.Services().Informer().HasSynced, core.Pods().Informer().HasSynced,
			core.Nodes().Informer().HasSynced, sliceInf.Informer().HasSynced,
		},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpointslice", Clock: cfg.Clock},
		),
		tracker: newTracker(),
	}
	if c.recorder == nil {
		c.broadcast = record.NewBroadcaster()
		c.recorder = c.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-slice-controller"})
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{core.Services().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.serviceChanged,
			UpdateFunc: func(_, obj any) { c.serviceChanged(obj) },
			DeleteFunc: c.serviceChanged,
		}},
		{core.Pods().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.podChanged(nil, obj) },
			UpdateFunc: c.podChanged,
			DeleteFunc: func(obj any) { c.podChanged(obj, nil) },
		}},
		{sliceInf.Informer(), sliceEvents{managedBy: ManagedBy, queue: c.queue, tracker: c.tracker}.handler()},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("endpointslice controller: event handler: %w", err)
		}
	}
	return c, nil
}

func (c *Controller) serviceChanged(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Warn("object without a key", "err", err)
		return
	}
	c.queue.Add(key)
}

// podChanged queues the Services that select the pod before or after a
// change. old or cur is nil for an add or a delete.
func (c *Controller) podChanged(old, cur any) {
	oldPod, curPod := asPod(old), asPod(cur)
	if oldPod != nil && curPod != nil && !relevantChange(oldPod, curPod) {
		return
	}
	keys := map[string]bool{}
	for _, p := range []*corev1.Pod{oldPod, curPod} {
		if p == nil {
			continue
		}
		for _, k := range c.servicesSelecting(p) {
			keys[k] = true
		}
	}
	for k := range keys {
		c.queue.Add(k)
	}
}

func asPod(obj any) *corev1.Pod {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

// relevantChange reports whether a pod update can change any slice.
func relevantChange(old, cur *corev1.Pod) bool {
	if old.ResourceVersion == cur.ResourceVersion {
		return false // a resync
	}
	return !maps.Equal(old.Labels, cur.Labels) ||
		(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil) ||
		old.Status.Phase != cur.Status.Phase ||
		podReady(old) != podReady(cur) ||
		!slices.Equal(old.Status.PodIPs, cur.Status.PodIPs) || old.Status.PodIP != cur.Status.PodIP ||
		old.Spec.NodeName != cur.Spec.NodeName ||
		old.Spec.Hostname != cur.Spec.Hostname || old.Spec.Subdomain != cur.Spec.Subdomain ||
		!apiequality.Semantic.DeepEqual(containerPorts(old), containerPorts(cur))
}

func containerPorts(p *corev1.Pod) [][]corev1.ContainerPort {
	var out [][]corev1.ContainerPort
	for _, c := range p.Spec.InitContainers {
		out = append(out, c.Ports)
	}
	for _, c := range p.Spec.Containers {
		out = append(out, c.Ports)
	}
	return out
}

// servicesSelecting returns the keys of the Services in pod's namespace
// whose selector matches it.
func (c *Controller) servicesSelecting(pod *corev1.Pod) []string {
	svcs, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		c.log.Warn("list services", "namespace", pod.Namespace, "err", err)
		return nil
	}
	var keys []string
	for _, s := range svcs {
		if s.Spec.Selector != nil && labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			keys = append(keys, s.Namespace+"/"+s.Name)
		}
	}
	return keys
}

// serviceKeyOf returns the key of the Service a slice managed by
// managedBy belongs to.
func serviceKeyOf(s *discoveryv1.EndpointSlice, managedBy string) (string, bool) {
	if s == nil || s.Labels[discoveryv1.LabelManagedBy] != managedBy {
		return "", false
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return "", false
	}
	return s.Namespace + "/" + name, true
}

// sliceEvents turns slice events into queued Service keys for the
// controller whose slices carry managedBy: changes we did not cause
// (including a slice that stopped being ours) and deletions we did not
// make.
type sliceEvents struct {
	managedBy string
	queue     workqueue.TypedInterface[string]
	tracker   *tracker
}

func (e sliceEvents) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.changed(nil, obj) },
		UpdateFunc: e.changed,
		DeleteFunc: e.deleted,
	}
}

func (e sliceEvents) changed(old, cur any) {
	oldS, _ := old.(*discoveryv1.EndpointSlice)
	curS, _ := cur.(*discoveryv1.EndpointSlice)
	keys := map[string]bool{}
	if k, ok := serviceKeyOf(curS, e.managedBy); ok && !e.tracker.echo(k, curS) {
		keys[k] = true
	}
	if k, ok := serviceKeyOf(oldS, e.managedBy); ok {
		if k2, ok2 := serviceKeyOf(curS, e.managedBy); !ok2 || k2 != k {
			keys[k] = true
		}
	}
	for k := range keys {
		e.queue.Add(k)
	}
}

func (e sliceEvents) deleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, _ := obj.(*discoveryv1.EndpointSlice)
	k, ok := serviceKeyOf(s, e.managedBy)
	if !ok {
		return
	}
	if !e.tracker.gone(k, s.UID) {
		e.queue.Add(k)
	}
}

// Run waits for the caches, then syncs Services until ctx is done. It
// always returns nil: failures are logged, reported and retried.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.broadcast != nil {
		c.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer c.broadcast.Shutdown()
	}
	c.log.Info("starting", "maxEndpointsPerSlice", c.cfg.MaxEndpointsPerSlice)
	defer c.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	c.queueOrphans()
	for range c.cfg.Workers {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

// queueOrphans queues the Services of every managed slice, so that slices
// left behind by a Service deleted while no controller ran are removed.
func (c *Controller) queueOrphans() {
	list, err := c.slices.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: ManagedBy}))
	if err != nil {
		c.log.Warn("list endpointslices", "err", err)
		return
	}
	for _, s := range list {
		if k, ok := serviceKeyOf(s, ManagedBy); ok {
			c.queue.Add(k)
		}
	}
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		if errors.Is(err, errStaleCache) {
			c.log.Debug("cache behind our writes; will retry", "service", key)
		} else {
			c.log.Warn("sync failed; will retry", "service", key, "err", err)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// errStaleCache is returned by sync when the slice cache has not caught up
// with our own writes; the Service is retried.
var errStaleCache = errors.New("endpointslice cache predates our last write")

// sync writes the slices of the Service with the given key. It is
// idempotent.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	existing, err := c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   ManagedBy,
	}))
	if err != nil {
		return fmt.Errorf("service %s: list endpointslices: %w", key, err)
	}
	if c.tracker.stale(key, existing) {
		return fmt.Errorf("service %s: %w", key, errStaleCache)
	}

	svc, err := c.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("service %s: %w", key, err)
	}
	var p plan
	if err != nil || svc.Spec.Selector == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		// No Service, or one whose endpoints are not ours to compute.
		p.deletes = existing
	} else {
		pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
		if err != nil {
			return fmt.Errorf("service %s: list pods: %w", key, err)
		}
		// Slices of an earlier Service of the same name go; the rest are
		// reconciled.
		o := serviceOwner(svc)
		var mine []*discoveryv1.EndpointSlice
		for _, s := range existing {
			if o.owns(s) {
				mine = append(mine, s)
			} else {
				p.deletes = append(p.deletes, s)
			}
		}
		want := desired(svc, pods, c.zoneOf)
		q := reconcile(o, want, mine, c.cfg.MaxEndpointsPerSlice)
		p.creates, p.updates, p.deletes = q.creates, q.updates, append(p.deletes, q.deletes...)
	}
	if err := apply(ctx, c.client, c.tracker, c.log, key, p); err != nil {
		if svc != nil {
			c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonFailedToUpdateEndpointSlices, "Error updating Endpoint Slices for Service %s: %v", key, err)
		}
		return err
	}
	return nil
}

func (c *Controller) zoneOf(node string) string {
	n, err := c.nodes.Get(node)
	if err != nil {
		return ""
	}
	return n.Labels[corev1.LabelTopologyZone]
}

// apply sends a plan: creates, then updates, then deletes, so that an
// endpoint moving between slices is never missing. It records every write
// in t, and stops at the first error (the sync is retried and plans again
// from the cache).
func apply(ctx context.Context, client kubernetes.Interface, t *tracker, log *slog.Logger, key string, p plan) error {
	api := client.DiscoveryV1().EndpointSlices
	for _, s := range p.creates {
		got, err := api(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			return fmt.Errorf("service %s: create endpointslice: %w", key, err)
		}
		t.wrote(key, got)
	}
	for _, s := range p.updates {
		got, err := api(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("service %s: update endpointslice %s: %w", key, s.Name, err)
		}
		t.wrote(key, got)
	}
	// Listers return slices in no particular order: delete by name, so
	// that what the controller does is the same every time.
	slices.SortFunc(p.deletes, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range p.deletes {
		err := api(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("service %s: delete endpointslice %s: %w", key, s.Name, err)
		}
		t.deletedSlice(key, s.UID)
	}
	if n := len(p.creates) + len(p.updates) + len(p.deletes); n > 0 {
		log.Debug("wrote endpointslices", "service", key, "created", len(p.creates), "updated", len(p.updates), "deleted", len(p.deletes))
	}
	return nil
}
