// Package endpoints keeps the core/v1 Endpoints object of every Service
// with a selector in step with the pods it selects, as upstream's
// endpoints controller does. (The service proxy reads EndpointSlices, made
// by package endpointslice; Endpoints remain for the clients that still
// read them.)
//
// A Service is synced when it changes, when a pod it selects (before or
// after the change) appears, changes or goes, and when its Endpoints
// object is deleted. A sync lists the selected pods from the cache and
// computes the subsets:
//
//   - a pod takes part when it has an IP, has not finished (phase
//     Succeeded or Failed) and is not being deleted — unless the Service
//     sets publishNotReadyAddresses, which keeps terminating pods too;
//   - its address is the pod IP of the Service's first IP family, with
//     the node name, a reference to the pod, and the pod's hostname when
//     the pod's subdomain names the Service;
//   - it is ready when the pod's Ready condition is True, or always with
//     publishNotReadyAddresses; otherwise it is listed as not ready;
//   - each Service port maps to the pod's port: the targetPort number, or
//     the container port whose name (and protocol) the targetPort names —
//     a pod without that named port is left out of that port only;
//   - a headless Service without ports lists addresses without ports.
//
// Addresses that serve the same ports share a subset. The Endpoints object
// has the Service's name and labels, plus service.kubernetes.io/headless
// for headless Services; beyond 1000 addresses it is truncated (ready
// addresses first) and annotated endpoints.kubernetes.io/over-capacity.
// It is written only when its content differs from the cached one, compared
// without regard to order, since the API server stores subsets in its own
// canonical order. Services without a selector and ExternalName Services
// are left alone (their Endpoints, if any, belong to the user); the
// Endpoints of a deleted Service are deleted, including leftovers found
// at start.
package endpoints

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

const (
	// MaxAddresses is how many addresses one Endpoints object holds at
	// most (upstream's limit).
	MaxAddresses = 1000
	// overCapacityTruncated is the value of corev1.EndpointsOverCapacity
	// on a truncated object.
	overCapacityTruncated = "truncated"
	// leaderAnnotation marks Endpoints used as leader election locks by
	// old components: they have no Service and must not be deleted.
	leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"
	defaultWorkers   = 5
)

// Event reasons.
const (
	ReasonFailedToCreateEndpoint = "FailedToCreateEndpoint"
	ReasonFailedToUpdateEndpoint = "FailedToUpdateEndpoint"
)

// EventRecorder records events; record.EventRecorder satisfies it.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures the controller. Client and Informers are required;
// every other zero value is a documented default.
type Config struct {
	// Client writes Endpoints and events.
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

// Controller keeps Endpoints in step with Services and pods.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	client    kubernetes.Interface
	recorder  EventRecorder
	broadcast record.EventBroadcaster // nil when cfg.Recorder was given

	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	endpoints corelisters.EndpointsLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]

	// mu guards stale.
	mu sync.Mutex
	// stale maps a Service key to the resourceVersion its Endpoints had
	// before our last update: while the cache still shows that version it
	// lags behind our own write, and a sync waits rather than act on it.
	stale map[string]string
}

// New checks cfg and registers the controller's informers and handlers. It
// does not call the API server.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("endpoints controller: %w", err)
	}
	core := cfg.Informers.Core().V1()
	c := &Controller{
		cfg:       cfg,
		log:       cfg.Logger,
		client:    cfg.Client,
		recorder:  cfg.Recorder,
		services:  core.Services().Lister(),
		pods:      core.Pods().Lister(),
		endpoints: core.Endpoints().Lister(),
		synced: []cache.InformerSynced{
			core.Services().Informer().HasSynced, core.Pods().Informer().HasSynced, core.Endpoints().Informer().HasSynced,
		},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "endpoints", Clock: cfg.Clock},
		),
		stale: map[string]string{},
	}
	if c.recorder == nil {
		c.broadcast = record.NewBroadcaster()
		c.recorder = c.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoint-controller"})
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{core.Services().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueKey,
			UpdateFunc: func(_, obj any) { c.enqueueKey(obj) },
			DeleteFunc: c.enqueueKey,
		}},
		{core.Pods().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.podChanged(nil, obj) },
			UpdateFunc: c.podChanged,
			DeleteFunc: func(obj any) { c.podChanged(obj, nil) },
		}},
		{core.Endpoints().Informer(), cache.ResourceEventHandlerFuncs{
			DeleteFunc: c.enqueueKey,
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, fmt.Errorf("endpoints controller: event handler: %w", err)
		}
	}
	return c, nil
}

// enqueueKey queues the namespace/name of a Service or Endpoints.
func (c *Controller) enqueueKey(obj any) {
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

// relevantChange reports whether a pod update can change any Endpoints.
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
		if s.Spec.Selector == nil {
			continue
		}
		if labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			keys = append(keys, s.Namespace+"/"+s.Name)
		}
	}
	return keys
}

// Run waits for the caches, queues every existing Endpoints object (to
// delete those whose Service is gone), then syncs Services until ctx is
// done. It always returns nil: failures are logged and retried.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.broadcast != nil {
		c.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer c.broadcast.Shutdown()
	}
	c.log.Info("starting")
	defer c.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	c.queueLeftovers()
	for range c.cfg.Workers {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

// queueLeftovers queues the key of every Endpoints object but leader
// election locks; sync deletes those without a Service.
func (c *Controller) queueLeftovers() {
	list, err := c.endpoints.List(labels.Everything())
	if err != nil {
		c.log.Warn("list endpoints; leftovers stay until their key is synced", "err", err)
		return
	}
	for _, ep := range list {
		if _, ok := ep.Annotations[leaderAnnotation]; ok {
			continue
		}
		c.queue.Add(ep.Namespace + "/" + ep.Name)
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
		c.log.Warn("sync failed; will retry", "service", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// errStaleCache is returned by sync when the Endpoints cache has not yet
// caught up with our own last write; the key is retried.
var errStaleCache = errors.New("endpoints cache predates our last write")

// sync writes the Endpoints of the Service with the given key. It is
// idempotent.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.stale, key)
		c.mu.Unlock()
		if _, err := c.endpoints.Endpoints(ns).Get(name); apierrors.IsNotFound(err) {
			return nil
		}
		err := c.client.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("service %s: %w", key, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		return nil
	}
	pods, err := c.pods.Pods(ns).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return fmt.Errorf("service %s: list pods: %w", key, err)
	}
	subsets := Subsets(svc, pods)

	current, err := c.endpoints.Endpoints(ns).Get(name)
	create := apierrors.IsNotFound(err)
	switch {
	case create:
		current = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	case err != nil:
		return fmt.Errorf("endpoints %s: %w", key, err)
	default:
		c.mu.Lock()
		staleRV, ok := c.stale[key]
		c.mu.Unlock()
		if ok && staleRV == current.ResourceVersion {
			return fmt.Errorf("endpoints %s: %w", key, errStaleCache)
		}
	}

	want := current.DeepCopy()
	want.Subsets = subsets
	want.Labels = endpointsLabels(svc)
	truncated := truncate(want)
	if truncated {
		if want.Annotations == nil {
			want.Annotations = map[string]string{}
		}
		want.Annotations[corev1.EndpointsOverCapacity] = overCapacityTruncated
	} else {
		delete(want.Annotations, corev1.EndpointsOverCapacity)
	}
	if !create && sameSubsets(current.Subsets, want.Subsets) &&
		maps.Equal(current.Labels, want.Labels) && maps.Equal(current.Annotations, want.Annotations) {
		return nil
	}

	endpoints := c.client.CoreV1().Endpoints(ns)
	if create {
		_, err = endpoints.Create(ctx, want, metav1.CreateOptions{})
	} else {
		var updated *corev1.Endpoints
		updated, err = endpoints.Update(ctx, want, metav1.UpdateOptions{})
		if err == nil && updated.ResourceVersion != current.ResourceVersion {
			c.mu.Lock()
			c.stale[key] = current.ResourceVersion
			c.mu.Unlock()
		}
	}
	switch {
	case err == nil:
		c.log.Debug("wrote endpoints", "service", key, "addresses", countAddresses(want.Subsets), "truncated", truncated)
		return nil
	case create && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil
	case create:
		c.recorder.Eventf(want, corev1.EventTypeWarning, ReasonFailedToCreateEndpoint, "Failed to create endpoint for service %s: %v", key, err)
		return fmt.Errorf("create endpoints %s: %w", key, err)
	default:
		c.recorder.Eventf(want, corev1.EventTypeWarning, ReasonFailedToUpdateEndpoint, "Failed to update endpoint %s: %v", key, err)
		return fmt.Errorf("update endpoints %s: %w", key, err)
	}
}

// endpointsLabels are the Service's labels, plus the headless marker.
func endpointsLabels(svc *corev1.Service) map[string]string {
	out := maps.Clone(svc.Labels)
	if out == nil {
		out = map[string]string{}
	}
	delete(out, corev1.IsHeadlessService)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		out[corev1.IsHeadlessService] = ""
	}
	return out
}

// Subsets computes the subsets of svc's Endpoints from the pods it
// selects, in a canonical order: subsets by their ports, addresses by IP
// then pod UID. The caller owns the result.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	type entry struct {
		ports             []corev1.EndpointPort
		ready, notReady   []corev1.EndpointAddress
		readyKey, portKey string
	}
	groups := map[string]*entry{}
	for _, pod := range pods {
		if !inEndpoints(pod, svc.Spec.PublishNotReadyAddresses) {
			continue
		}
		addr, ok := podAddress(svc, pod)
		if !ok {
			continue
		}
		var ports []corev1.EndpointPort
		if len(svc.Spec.Ports) == 0 {
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				continue
			}
		} else {
			for i := range svc.Spec.Ports {
				sp := &svc.Spec.Ports[i]
				num, ok := findPort(pod, sp)
				if !ok {
					continue
				}
				ports = append(ports, corev1.EndpointPort{Name: sp.Name, Port: num, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
			}
			if len(ports) == 0 {
				continue
			}
		}
		slices.SortFunc(ports, comparePorts)
		key := portsKey(ports)
		g := groups[key]
		if g == nil {
			g = &entry{ports: ports}
			groups[key] = g
		}
		if svc.Spec.PublishNotReadyAddresses || podReady(pod) {
			g.ready = append(g.ready, addr)
		} else {
			g.notReady = append(g.notReady, addr)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(groups))
	out := make([]corev1.EndpointSubset, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		slices.SortFunc(g.ready, compareAddresses)
		slices.SortFunc(g.notReady, compareAddresses)
		out = append(out, corev1.EndpointSubset{Addresses: g.ready, NotReadyAddresses: g.notReady, Ports: g.ports})
	}
	return out
}

// inEndpoints reports whether pod takes part in Endpoints at all.
func inEndpoints(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podAddress builds pod's address for svc: the pod IP of the Service's
// first IP family. ok is false when the pod has no IP of that family.
func podAddress(svc *corev1.Service, pod *corev1.Pod) (corev1.EndpointAddress, bool) {
	want6 := false
	switch {
	case len(svc.Spec.IPFamilies) > 0:
		want6 = svc.Spec.IPFamilies[0] == corev1.IPv6Protocol
	case svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone:
		want6 = isIPv6(svc.Spec.ClusterIP)
	default:
		want6 = isIPv6(pod.Status.PodIP)
	}
	ips := pod.Status.PodIPs
	if len(ips) == 0 {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil || a.Unmap().Is6() != want6 {
			continue
		}
		addr := corev1.EndpointAddress{
			IP: ip.IP,
			TargetRef: &corev1.ObjectReference{
				Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			},
		}
		if pod.Spec.NodeName != "" {
			addr.NodeName = new(pod.Spec.NodeName)
		}
		if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
			addr.Hostname = pod.Spec.Hostname
		}
		return addr, true
	}
	return corev1.EndpointAddress{}, false
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Unmap().Is6()
}

// findPort resolves a Service port's targetPort on pod: a number as is, a
// name through the ports of the pod's containers and sidecars (init
// containers that keep running), matching the protocol too.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true // upstream defaults targetPort to port
		}
		return tp.IntVal, true
	}
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	match := func(cs []corev1.Container, sidecarsOnly bool) (int32, bool) {
		for i := range cs {
			if sidecarsOnly && (cs[i].RestartPolicy == nil || *cs[i].RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range cs[i].Ports {
				pp := p.Protocol
				if pp == "" {
					pp = corev1.ProtocolTCP
				}
				if p.Name == tp.StrVal && pp == proto {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if n, ok := match(pod.Spec.Containers, false); ok {
		return n, true
	}
	return match(pod.Spec.InitContainers, true)
}

func comparePorts(a, b corev1.EndpointPort) int {
	return cmp.Or(
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Protocol, b.Protocol),
		cmp.Compare(deref(a.AppProtocol), deref(b.AppProtocol)),
	)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func portsKey(ports []corev1.EndpointPort) string {
	k := ""
	for _, p := range ports {
		k += fmt.Sprintf("%s/%d/%s/%s;", p.Name, p.Port, p.Protocol, deref(p.AppProtocol))
	}
	return k
}

func compareAddresses(a, b corev1.EndpointAddress) int {
	x, errX := netip.ParseAddr(a.IP)
	y, errY := netip.ParseAddr(b.IP)
	if errX == nil && errY == nil {
		if c := x.Compare(y); c != 0 {
			return c
		}
	} else if c := cmp.Compare(a.IP, b.IP); c != 0 {
		return c
	}
	return cmp.Compare(uidOf(a), uidOf(b))
}

func uidOf(a corev1.EndpointAddress) types.UID {
	if a.TargetRef == nil {
		return ""
	}
	return a.TargetRef.UID
}

func countAddresses(subsets []corev1.EndpointSubset) int {
	n := 0
	for _, ss := range subsets {
		n += len(ss.Addresses) + len(ss.NotReadyAddresses)
	}
	return n
}

// truncate cuts ep down to MaxAddresses addresses and reports whether it
// had to. Ready addresses go first; the room left is shared between the
// subsets in proportion to their sizes.
func truncate(ep *corev1.Endpoints) bool {
	ready, notReady := 0, 0
	for _, ss := range ep.Subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready+notReady <= MaxAddresses {
		return false
	}
	// share cuts the lists chosen by pick to room addresses in total.
	share := func(room, total int, pick func(*corev1.EndpointSubset) *[]corev1.EndpointAddress) {
		left := room
		for i := range ep.Subsets {
			l := pick(&ep.Subsets[i])
			n := int(math.Ceil(float64(len(*l)) / float64(total) * float64(room)))
			n = min(n, left, len(*l))
			*l = (*l)[:n]
			left -= n
		}
	}
	if ready >= MaxAddresses {
		share(MaxAddresses, ready, func(ss *corev1.EndpointSubset) *[]corev1.EndpointAddress { return &ss.Addresses })
		share(0, 1, func(ss *corev1.EndpointSubset) *[]corev1.EndpointAddress { return &ss.NotReadyAddresses })
	} else {
		share(MaxAddresses-ready, notReady, func(ss *corev1.EndpointSubset) *[]corev1.EndpointAddress { return &ss.NotReadyAddresses })
	}
	// Drop subsets left without addresses.
	ep.Subsets = slices.DeleteFunc(ep.Subsets, func(ss corev1.EndpointSubset) bool {
		return len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0
	})
	for i := range ep.Subsets {
		if len(ep.Subsets[i].NotReadyAddresses) == 0 {
			ep.Subsets[i].NotReadyAddresses = nil
		}
	}
	return true
}

// flatKey identifies one (address, port) pair of an Endpoints object.
type flatKey struct {
	ip   string
	uid  types.UID
	port portKey
}

// portKey is an EndpointPort made comparable with ==.
type portKey struct {
	name        string
	port        int32
	protocol    corev1.Protocol
	appProtocol string
}

type flatValue struct {
	ready    bool
	hostname string
	nodeName string
	ref      corev1.ObjectReference
}

// flatten expands subsets into their (address, port) pairs, so that two
// packings of the same content compare equal. A subset without ports
// counts as one port numbered -1.
func flatten(subsets []corev1.EndpointSubset) map[flatKey]flatValue {
	out := map[flatKey]flatValue{}
	for _, ss := range subsets {
		ports := ss.Ports
		if len(ports) == 0 {
			ports = []corev1.EndpointPort{{Port: -1}}
		}
		for _, p := range ports {
			pk := portKey{name: p.Name, port: p.Port, protocol: p.Protocol, appProtocol: deref(p.AppProtocol)}
			for _, list := range []struct {
				addrs []corev1.EndpointAddress
				ready bool
			}{{ss.Addresses, true}, {ss.NotReadyAddresses, false}} {
				for _, a := range list.addrs {
					v := flatValue{ready: list.ready, hostname: a.Hostname}
					if a.NodeName != nil {
						v.nodeName = *a.NodeName
					}
					if a.TargetRef != nil {
						v.ref = *a.TargetRef
						v.ref.ResourceVersion = ""
					}
					out[flatKey{ip: a.IP, uid: uidOf(a), port: pk}] = v
				}
			}
		}
	}
	return out
}

// sameSubsets reports whether two subset lists hold the same addresses,
// ports and readiness, in whatever packing and order.
func sameSubsets(a, b []corev1.EndpointSubset) bool {
	return maps.Equal(flatten(a), flatten(b))
}
