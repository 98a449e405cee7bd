package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// MirrorManagedBy is the value of discoveryv1.LabelManagedBy on mirrored
// slices; upstream's mirroring controller uses the same one.
const MirrorManagedBy = "endpointslicemirroring-controller.k8s.io"

// MaxMirroredPerSubset is how many addresses of one Endpoints subset are
// mirrored at most (upstream's --mirroring-max-endpoints-per-subset
// default); ready addresses go first.
const MaxMirroredPerSubset = 1000

// ReasonMirroringTruncated is the reason of the warning event recorded on
// Endpoints whose subsets were too big to mirror whole.
const ReasonMirroringTruncated = "EndpointsMirroringTruncated"

// Mirror copies hand-written Endpoints into EndpointSlices, as upstream's
// endpointslicemirroring-controller does, so that readers of slices (the
// service proxy, DNS) also see Services without a selector.
//
// An Endpoints object is mirrored when its Service exists and has no
// selector, and it is neither labelled endpointslice.kubernetes.io/
// skip-mirror=true (the API server's own "kubernetes" Endpoints is) nor a
// leader election lock. Each address becomes an endpoint (ready for
// addresses, not ready for notReadyAddresses, with its node, hostname and
// target), grouped by address type and port set into slices of at most
// Config.MaxEndpointsPerSlice. Mirrored slices carry the Endpoints'
// labels and annotations (but last-change-trigger-time and
// last-applied-configuration) plus kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by=endpointslicemirroring-
// controller.k8s.io, and are owned by the Endpoints. They are deleted when
// mirroring stops applying. Writes follow the same plan as Controller's.
type Mirror struct {
	cfg       Config
	log       *slog.Logger
	client    kubernetes.Interface
	recorder  EventRecorder
	broadcast record.EventBroadcaster // nil when cfg.Recorder was given

	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	tracker   *tracker
}

// NewMirror checks cfg and registers the mirroring controller's informers
// and handlers. It does not call the API server.
func NewMirror(cfg Config) (*Mirror, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("endpointslice mirroring controller: %w", err)
	}
	core := cfg.Informers.Core().V1()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	m := &Mirror{
		cfg:       cfg,
		log:       cfg.Logger,
		client:    cfg.Client,
		recorder:  cfg.Recorder,
		services:  core.Services().Lister(),
		endpoints: core.Endpoints().Lister(),
		slices:    sliceInf.Lister(),
		synced: []cache.InformerSynced{
			core.Services().Informer().HasSynced, core.Endpoints().Informer().HasSynced, sliceInf.Informer().HasSynced,
		},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpointslicemirroring", Clock: cfg.Clock},
		),
		tracker: newTracker(),
	}
	if m.recorder == nil {
		m.broadcast = record.NewBroadcaster()
		m.recorder = m.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-slice-mirroring-controller"})
	}
	byKey := cache.ResourceEventHandlerFuncs{
		AddFunc:    m.enqueue,
		UpdateFunc: func(_, obj any) { m.enqueue(obj) },
		DeleteFunc: m.enqueue,
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{core.Services().Informer(), byKey},
		{core.Endpoints().Informer(), byKey},
		{sliceInf.Informer(), sliceEvents{managedBy: MirrorManagedBy, queue: m.queue, tracker: m.tracker}.handler()},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("endpointslice mirroring controller: event handler: %w", err)
		}
	}
	return m, nil
}

func (m *Mirror) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		m.log.Warn("object without a key", "err", err)
		return
	}
	m.queue.Add(key)
}

// Run waits for the caches, queues the Services of every mirrored slice
// (to clean up after a stop), then mirrors until ctx is done. It always
// returns nil: failures are logged, reported and retried.
func (m *Mirror) Run(ctx context.Context) error {
	defer m.queue.ShutDown()
	if m.broadcast != nil {
		m.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.client.CoreV1().Events("")})
		defer m.broadcast.Shutdown()
	}
	m.log.Info("starting")
	defer m.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), m.synced...) {
		return nil
	}
	if list, err := m.slices.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: MirrorManagedBy})); err == nil {
		for _, s := range list {
			if k, ok := serviceKeyOf(s, MirrorManagedBy); ok {
				m.queue.Add(k)
			}
		}
	}
	for range m.cfg.Workers {
		go wait.UntilWithContext(ctx, m.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (m *Mirror) worker(ctx context.Context) {
	for m.processNext(ctx) {
	}
}

func (m *Mirror) processNext(ctx context.Context) bool {
	key, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(key)
	if err := m.sync(ctx, key); err != nil {
		if !errors.Is(err, errStaleCache) {
			m.log.Warn("sync failed; will retry", "endpoints", key, "err", err)
		}
		m.queue.AddRateLimited(key)
		return true
	}
	m.queue.Forget(key)
	return true
}

// sync mirrors the Endpoints with the given key, or deletes its mirrored
// slices when mirroring does not apply. It is idempotent.
func (m *Mirror) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	existing, err := m.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name,
		discoveryv1.LabelManagedBy:   MirrorManagedBy,
	}))
	if err != nil {
		return fmt.Errorf("endpoints %s: list endpointslices: %w", key, err)
	}
	if m.tracker.stale(key, existing) {
		return fmt.Errorf("endpoints %s: %w", key, errStaleCache)
	}
	ep, err := m.endpoints.Endpoints(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("endpoints %s: %w", key, err)
	}
	if err != nil {
		ep = nil
	}
	svc, err := m.services.Services(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("service %s: %w", key, err)
	}
	if err != nil {
		svc = nil
	}

	var p plan
	if !mirrored(ep, svc) {
		p.deletes = existing
	} else {
		o := endpointsOwner(ep)
		var mine []*discoveryv1.EndpointSlice
		for _, s := range existing {
			if o.owns(s) {
				mine = append(mine, s)
			} else {
				p.deletes = append(p.deletes, s)
			}
		}
		want, dropped := mirrorDesired(ep)
		if dropped > 0 {
			m.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonMirroringTruncated,
				"%d addresses not mirrored: not IP addresses, or beyond %d in a subset", dropped, MaxMirroredPerSubset)
		}
		q := reconcile(o, want, mine, m.cfg.MaxEndpointsPerSlice)
		p.creates, p.updates, p.deletes = q.creates, q.updates, append(p.deletes, q.deletes...)
	}
	if err := apply(ctx, m.client, m.tracker, m.log, key, p); err != nil {
		if ep != nil {
			m.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonFailedToUpdateEndpointSlices, "Error mirroring Endpoints %s to EndpointSlices: %v", key, err)
		}
		return err
	}
	return nil
}

// mirrored reports whether ep is to be mirrored (see Mirror).
func mirrored(ep *corev1.Endpoints, svc *corev1.Service) bool {
	if ep == nil || svc == nil || svc.Spec.Selector != nil {
		return false
	}
	if ep.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return false
	}
	_, lock := ep.Annotations["control-plane.alpha.kubernetes.io/leader"]
	return !lock
}

// endpointsOwner describes the slices that mirror ep.
func endpointsOwner(ep *corev1.Endpoints) owner {
	lbls := maps.Clone(ep.Labels)
	if lbls == nil {
		lbls = map[string]string{}
	}
	lbls[discoveryv1.LabelServiceName] = ep.Name
	lbls[discoveryv1.LabelManagedBy] = MirrorManagedBy
	var ann map[string]string
	for k, v := range ep.Annotations {
		if k == corev1.EndpointsLastChangeTriggerTime || k == corev1.LastAppliedConfigAnnotation {
			continue
		}
		if ann == nil {
			ann = map[string]string{}
		}
		ann[k] = v
	}
	return owner{
		namespace: ep.Namespace, name: ep.Name, labels: lbls, annotations: ann,
		ref: metav1.OwnerReference{
			APIVersion: "v1", Kind: "Endpoints", Name: ep.Name, UID: ep.UID,
			Controller: new(true), BlockOwnerDeletion: new(true),
		},
	}
}

// mirrorDesired turns ep's subsets into endpoints by address type and port
// set. It returns how many addresses it left out: beyond
// MaxMirroredPerSubset in a subset (not-ready ones first), or unparsable.
func mirrorDesired(ep *corev1.Endpoints) (desiredSet, int) {
	out := desiredSet{}
	dropped := 0
	for _, ss := range ep.Subsets {
		ports := make([]discoveryv1.EndpointPort, 0, len(ss.Ports))
		for _, p := range ss.Ports {
			ports = append(ports, discoveryv1.EndpointPort{Name: new(p.Name), Port: new(p.Port), Protocol: new(p.Protocol), AppProtocol: p.AppProtocol})
		}
		pk := portsKey(ports)
		room := MaxMirroredPerSubset
		for _, list := range []struct {
			addrs []corev1.EndpointAddress
			ready bool
		}{{ss.Addresses, true}, {ss.NotReadyAddresses, false}} {
			for _, a := range list.addrs {
				ip, err := netip.ParseAddr(a.IP)
				if err != nil || room == 0 {
					dropped++
					continue
				}
				room--
				ip = ip.Unmap()
				at := discoveryv1.AddressTypeIPv4
				if ip.Is6() {
					at = discoveryv1.AddressTypeIPv6
				}
				e := discoveryv1.Endpoint{
					Addresses:  []string{ip.String()},
					Conditions: discoveryv1.EndpointConditions{Ready: new(list.ready)},
					TargetRef:  a.TargetRef.DeepCopy(),
				}
				if a.NodeName != nil {
					e.NodeName = new(*a.NodeName)
				}
				if a.Hostname != "" {
					e.Hostname = new(a.Hostname)
				}
				if out[at] == nil {
					out[at] = map[string]*portGroup{}
				}
				g := out[at][pk]
				if g == nil {
					g = &portGroup{ports: ports, endpoints: map[string]discoveryv1.Endpoint{}}
					out[at][pk] = g
				}
				g.endpoints[endpointKey(e)] = e
			}
		}
	}
	return out, dropped
}
