// Package nodeipam gives every Node a pod CIDR, as upstream's node IPAM
// controller does with its range allocator: the pod network on each node
// takes pod IPs from the node's spec.podCIDRs.
//
// Each cluster CIDR (one per IP family; default 10.42.0.0/16) is cut into
// node-sized subnets (/24 for IPv4 and /64 for IPv6 by default). A node
// without spec.podCIDRs gets the next free subnet of every cluster CIDR,
// written with one merge patch of spec.podCIDR and spec.podCIDRs; a node
// that is deleted gives its subnets back. Each allocation scans on from
// the subnet after the previous one, so released subnets are reused late
// rather than at once (stale routes to them have time to go).
//
// Nothing is stored but the nodes themselves: when the controller starts
// (or a new leader takes over) it first marks every subnet that existing
// nodes hold, and only then allocates, so a restart never hands out a
// subnet twice. A node whose CIDR lies outside the cluster CIDRs, or
// clashes with another node's, is reported (log and event) and left as it
// is: spec.podCIDR is immutable.
//
// When a cluster CIDR has no free subnet left, the node gets a
// CIDRNotAvailable event and is retried with backoff until one is freed.
package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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

// Defaults.
var (
	DefaultClusterCIDR = netip.MustParsePrefix("10.42.0.0/16")
)

const (
	DefaultNodeMaskSizeIPv4 = 24
	DefaultNodeMaskSizeIPv6 = 64
	defaultWorkers          = 10
)

// Event reasons.
const (
	ReasonCIDRNotAvailable     = "CIDRNotAvailable"
	ReasonCIDRAssignmentFailed = "CIDRAssignmentFailed"
	ReasonCIDRConflict         = "CIDRConflict"
)

// EventRecorder records events; record.EventRecorder satisfies it.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures the controller. Client and Informers are required;
// every other zero value is a documented default.
type Config struct {
	// Client patches Nodes and records events.
	Client kubernetes.Interface
	// Informers is the shared informer factory; the caller starts it after
	// New.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock times retries. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events on Nodes. Nil sends them to the API server
	// through Client while Run runs.
	Recorder EventRecorder
	// ClusterCIDRs are the ranges pod CIDRs are cut from: one, or two of
	// different IP families (dual stack; every node then gets one subnet
	// of each, in this order). Nil means [10.42.0.0/16].
	ClusterCIDRs []netip.Prefix
	// NodeMaskSizeIPv4 and NodeMaskSizeIPv6 are the prefix lengths of a
	// node's subnet. Zero means 24 and 64.
	NodeMaskSizeIPv4, NodeMaskSizeIPv6 int
	// Workers is how many nodes are synced at once. Zero means 10.
	Workers int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.ClusterCIDRs == nil {
		c.ClusterCIDRs = []netip.Prefix{DefaultClusterCIDR}
	}
	if c.NodeMaskSizeIPv4 == 0 {
		c.NodeMaskSizeIPv4 = DefaultNodeMaskSizeIPv4
	}
	if c.NodeMaskSizeIPv6 == 0 {
		c.NodeMaskSizeIPv6 = DefaultNodeMaskSizeIPv6
	}
	if c.Workers == 0 {
		c.Workers = defaultWorkers
	}
	return c
}

// validate checks c and returns the cidrSets it describes.
func (c Config) validate() ([]*cidrSet, error) {
	switch {
	case c.Client == nil:
		return nil, errors.New("client is required")
	case c.Informers == nil:
		return nil, errors.New("informer factory is required")
	case c.Workers < 0:
		return nil, fmt.Errorf("workers %d is negative", c.Workers)
	case len(c.ClusterCIDRs) == 0:
		return nil, errors.New("no cluster CIDR")
	case len(c.ClusterCIDRs) > 2:
		return nil, fmt.Errorf("%d cluster CIDRs: at most one per IP family", len(c.ClusterCIDRs))
	case len(c.ClusterCIDRs) == 2 && c.ClusterCIDRs[0].Addr().Is4() == c.ClusterCIDRs[1].Addr().Is4():
		return nil, fmt.Errorf("cluster CIDRs %s and %s: dual stack needs one of each IP family", c.ClusterCIDRs[0], c.ClusterCIDRs[1])
	}
	var sets []*cidrSet
	for _, p := range c.ClusterCIDRs {
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("cluster CIDR %s: IPv4-mapped IPv6 addresses are not allowed", p)
		}
		bits := c.NodeMaskSizeIPv4
		if p.Addr().Is6() {
			bits = c.NodeMaskSizeIPv6
		}
		s, err := newCIDRSet(p, bits)
		if err != nil {
			return nil, err
		}
		sets = append(sets, s)
	}
	return sets, nil
}

// Controller assigns pod CIDRs to Nodes.
type Controller struct {
	cfg        Config
	log        *slog.Logger
	client     kubernetes.Interface
	recorder   EventRecorder
	broadcast  record.EventBroadcaster // nil when cfg.Recorder was given
	nodeLister corelisters.NodeLister
	synced     cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]

	// mu guards sets and held.
	mu   sync.Mutex
	sets []*cidrSet
	// waiting holds the names of nodes that found a cluster CIDR full;
	// they are queued again whenever subnets are released.
	waiting map[string]bool
	// held records, per node name, the subnets this controller counts as
	// the node's (allocated by it or occupied from the node's spec), and
	// the node's UID, so that a node deleted and created again under the
	// same name releases the old subnets.
	held map[string]holding
}

type holding struct {
	uid     types.UID
	subnets []netip.Prefix
}

// New checks cfg and registers the controller's informer and handlers. It
// does not call the API server.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	sets, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("nodeipam controller: %w", err)
	}
	nodes := cfg.Informers.Core().V1().Nodes()
	c := &Controller{
		cfg:        cfg,
		log:        cfg.Logger,
		client:     cfg.Client,
		recorder:   cfg.Recorder,
		nodeLister: nodes.Lister(),
		synced:     nodes.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeipam", Clock: cfg.Clock},
		),
		sets:    sets,
		held:    map[string]holding{},
		waiting: map[string]bool{},
	}
	if c.recorder == nil {
		c.broadcast = record.NewBroadcaster()
		c.recorder = c.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "node-ipam-controller"})
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("nodeipam controller: node handler: %w", err)
	}
	return c, nil
}

func (c *Controller) enqueue(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		c.queue.Add(n.Name)
	}
}

// Run waits for the node cache, marks the subnets existing nodes hold,
// then assigns subnets until ctx is done. It always returns nil: failures
// are logged, reported as events and retried with backoff.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.broadcast != nil {
		c.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer c.broadcast.Shutdown()
	}
	c.log.Info("starting", "clusterCIDRs", c.cfg.ClusterCIDRs)
	defer c.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return nil
	}
	if err := c.occupyExisting(); err != nil {
		return fmt.Errorf("nodeipam controller: %w", err)
	}
	for range c.cfg.Workers {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

// occupyExisting marks the subnets of every node in the cache as used.
// It runs before any allocation.
func (c *Controller) occupyExisting() error {
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range nodes {
		if len(nodeCIDRs(n)) > 0 {
			c.occupyLocked(n)
		}
	}
	c.log.Info("marked the subnets of existing nodes", "nodes", len(nodes), "free", c.freeLocked())
	return nil
}

func (c *Controller) freeLocked() []int {
	free := make([]int, len(c.sets))
	for i, s := range c.sets {
		free[i] = s.free
	}
	return free
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
		c.log.Warn("sync failed; will retry", "node", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// nodeCIDRs returns the pod CIDRs a node's spec holds (podCIDRs, or the
// older single podCIDR), skipping any that do not parse.
func nodeCIDRs(n *corev1.Node) []netip.Prefix {
	strs := n.Spec.PodCIDRs
	if len(strs) == 0 && n.Spec.PodCIDR != "" {
		strs = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range strs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// sync brings the controller's view of node name in line with the API:
// it releases the subnets of a deleted node, records the subnets a node
// already has, and assigns subnets to a node without any. It is
// idempotent.
func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodeLister.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		c.releaseLocked(name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}

	c.mu.Lock()
	if h, ok := c.held[name]; ok && h.uid != node.UID {
		// Deleted and created again before we saw the delete.
		c.releaseLocked(name)
	}
	if len(nodeCIDRs(node)) > 0 {
		c.occupyLocked(node)
		c.mu.Unlock()
		return nil
	}
	if h, ok := c.held[name]; ok {
		// Allocated earlier, but the patch was lost or the cache lags:
		// write the same subnets again.
		c.mu.Unlock()
		return c.assign(ctx, node, h.subnets)
	}
	subnets := make([]netip.Prefix, 0, len(c.sets))
	for _, s := range c.sets {
		p, err := s.allocate()
		if err != nil {
			for i, q := range subnets {
				c.sets[i].release(q)
			}
			c.waiting[name] = true
			c.mu.Unlock()
			c.recorder.Eventf(node, corev1.EventTypeWarning, ReasonCIDRNotAvailable, "No pod CIDR available: %v", err)
			return fmt.Errorf("node %s: allocate pod CIDR: %w", node.Name, err)
		}
		subnets = append(subnets, p)
	}
	c.held[name] = holding{uid: node.UID, subnets: subnets}
	delete(c.waiting, name)
	c.mu.Unlock()
	return c.assign(ctx, node, subnets)
}

// assign writes subnets into node's spec. On failure it releases them,
// unless the node got CIDRs some other way meanwhile (then the next sync
// records those).
func (c *Controller) assign(ctx context.Context, node *corev1.Node, subnets []netip.Prefix) error {
	strs := make([]string, len(subnets))
	for i, p := range subnets {
		strs[i] = p.String()
	}
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{"podCIDR": strs[0], "podCIDRs": strs},
	})
	if err != nil {
		return fmt.Errorf("node %s: %w", node.Name, err)
	}
	_, err = c.client.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err == nil {
		c.log.Info("assigned pod CIDRs", "node", node.Name, "podCIDRs", strs)
		return nil
	}
	if apierrors.IsNotFound(err) {
		// Deleted meanwhile: the delete event releases.
		return nil
	}
	c.mu.Lock()
	c.releaseLocked(node.Name)
	c.mu.Unlock()
	c.recorder.Eventf(node, corev1.EventTypeWarning, ReasonCIDRAssignmentFailed, "Failed to assign pod CIDRs %v: %v", strs, err)
	return fmt.Errorf("node %s: assign pod CIDRs %v: %w", node.Name, strs, err)
}

// occupyLocked makes the controller count node's own CIDRs as its
// subnets, releasing whatever it counted before if that differs.
func (c *Controller) occupyLocked(node *corev1.Node) {
	cidrs := nodeCIDRs(node)
	if h, ok := c.held[node.Name]; ok && h.uid == node.UID && slices.Equal(h.subnets, cidrs) {
		return
	}
	c.releaseLocked(node.Name)
	c.held[node.Name] = holding{uid: node.UID, subnets: cidrs}
	for _, p := range cidrs {
		inRange, conflict := false, false
		for _, s := range c.sets {
			in, clash := s.occupy(p)
			inRange = inRange || in
			conflict = conflict || clash
		}
		switch {
		case !inRange:
			c.log.Warn("node pod CIDR outside the cluster CIDRs", "node", node.Name, "podCIDR", p, "clusterCIDRs", c.cfg.ClusterCIDRs)
		case conflict:
			c.log.Warn("node pod CIDR overlaps another node's", "node", node.Name, "podCIDR", p)
			c.recorder.Eventf(node, corev1.EventTypeWarning, ReasonCIDRConflict, "Pod CIDR %s overlaps another node's", p)
		}
	}
}

// releaseLocked gives back the subnets counted for node name, and queues
// the nodes waiting for a subnet again.
func (c *Controller) releaseLocked(name string) {
	delete(c.waiting, name)
	h, ok := c.held[name]
	if !ok {
		return
	}
	delete(c.held, name)
	for _, p := range h.subnets {
		for _, s := range c.sets {
			s.release(p)
		}
	}
	c.log.Info("released pod CIDRs", "node", name, "podCIDRs", h.subnets)
	for w := range c.waiting {
		c.queue.Add(w)
	}
}
