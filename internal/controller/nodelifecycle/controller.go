package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// podsByNodeIndex indexes the pod cache by spec.nodeName.
const podsByNodeIndex = "nodelifecycle.skiff.sh/node"

// Controller watches node health, taints unhealthy nodes, marks and
// evicts their pods. See the package documentation.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	logr      logr.Logger // for the API helpers that take one
	client    kubernetes.Interface
	recorder  EventRecorder
	broadcast record.EventBroadcaster // nil when cfg.Recorder was given

	nodes  corelisters.NodeLister
	pods   corelisters.PodLister
	podIdx cache.Indexer
	leases coordinationlisters.LeaseLister
	synced []cache.InformerSynced

	// podQueue holds pods to mark and check for eviction; nodeQueue
	// holds nodes whose NoSchedule taints to reconcile.
	podQueue  workqueue.TypedRateLimitingInterface[string]
	nodeQueue workqueue.TypedRateLimitingInterface[string]

	// mu guards health, known, zones and taintQueues. Only the monitor
	// pass writes health and known; the taint pass reads them.
	mu     sync.Mutex
	health map[string]*nodeHealth
	known  map[string]bool
	zones  map[string]zoneState
	// taintQueues are the rate-limited queues of nodes waiting for a
	// NoExecute taint, per zone.
	taintQueues map[string]*taintQueue

	// seenMu guards taintSeen.
	seenMu sync.Mutex
	// taintSeen records when a NoExecute taint without timeAdded (one not
	// added by this controller) was first seen, keyed by node and taint.
	taintSeen map[string]time.Time
}

// New checks cfg and registers the controller's informers and handlers.
// It does not call the API server.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("nodelifecycle controller: %w", err)
	}
	core := cfg.Informers.Core().V1()
	leases := cfg.Informers.Coordination().V1().Leases()
	podInf := core.Pods().Informer()
	if err := podInf.AddIndexers(cache.Indexers{podsByNodeIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("nodelifecycle controller: pod index: %w", err)
	}
	c := &Controller{
		cfg:      cfg,
		log:      cfg.Logger,
		logr:     logr.FromSlogHandler(cfg.Logger.Handler()),
		client:   cfg.Client,
		recorder: cfg.Recorder,
		nodes:    core.Nodes().Lister(),
		pods:     core.Pods().Lister(),
		podIdx:   podInf.GetIndexer(),
		leases:   leases.Lister(),
		synced: []cache.InformerSynced{
			core.Nodes().Informer().HasSynced, podInf.HasSynced, leases.Informer().HasSynced,
		},
		podQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodelifecycle-pods", Clock: cfg.Clock},
		),
		nodeQueue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodelifecycle-nodes", Clock: cfg.Clock},
		),
		health:      map[string]*nodeHealth{},
		known:       map[string]bool{},
		zones:       map[string]zoneState{},
		taintQueues: map[string]*taintQueue{},
		taintSeen:   map[string]time.Time{},
	}
	if c.recorder == nil {
		c.broadcast = record.NewBroadcaster()
		c.recorder = c.broadcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "node-controller"})
	}
	if _, err := core.Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.nodeChanged(nil, obj) },
		UpdateFunc: c.nodeChanged,
		DeleteFunc: func(obj any) { c.nodeChanged(obj, nil) },
	}); err != nil {
		return nil, fmt.Errorf("nodelifecycle controller: node handler: %w", err)
	}
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.podChanged,
		UpdateFunc: func(_, obj any) { c.podChanged(obj) },
	}); err != nil {
		return nil, fmt.Errorf("nodelifecycle controller: pod handler: %w", err)
	}
	return c, nil
}

// nodeChanged queues the node for its NoSchedule taints, and its pods when
// its Ready condition or NoExecute taints changed.
func (c *Controller) nodeChanged(old, cur any) {
	oldNode, curNode := asNode(old), asNode(cur)
	n := curNode
	if n == nil {
		n = oldNode
	}
	if n == nil {
		return
	}
	if curNode != nil {
		c.nodeQueue.Add(n.Name)
	}
	if oldNode != nil && curNode != nil &&
		readyStatus(oldNode) == readyStatus(curNode) &&
		apiequality.Semantic.DeepEqual(noExecuteTaints(oldNode), noExecuteTaints(curNode)) {
		return
	}
	c.queuePodsOf(n.Name)
}

func asNode(obj any) *corev1.Node {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	n, _ := obj.(*corev1.Node)
	return n
}

func (c *Controller) podChanged(obj any) {
	if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
		c.podQueue.Add(p.Namespace + "/" + p.Name)
	}
}

// queuePodsOf queues every pod bound to node.
func (c *Controller) queuePodsOf(node string) {
	for _, p := range c.podsOf(node) {
		c.podQueue.Add(p.Namespace + "/" + p.Name)
	}
}

// podsOf returns the cached pods bound to node, sorted by key.
func (c *Controller) podsOf(node string) []*corev1.Pod {
	objs, err := c.podIdx.ByIndex(podsByNodeIndex, node)
	if err != nil {
		c.log.Warn("pods of node", "node", node, "err", err)
		return nil
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		if a.Namespace != b.Namespace {
			return strings.Compare(a.Namespace, b.Namespace)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return pods
}

// lease returns the node's Lease, or nil.
func (c *Controller) lease(node string) *coordinationv1.Lease {
	l, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(node)
	if err != nil {
		return nil
	}
	return l
}

// Run waits for the caches, then runs the health monitor every
// Config.MonitorPeriod, the taint queues every 100ms and the pod and node
// workers, until ctx is done. It always returns nil: failures are logged
// and retried.
func (c *Controller) Run(ctx context.Context) error {
	defer c.podQueue.ShutDown()
	defer c.nodeQueue.ShutDown()
	if c.broadcast != nil {
		c.broadcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer c.broadcast.Shutdown()
	}
	c.log.Info("starting", "gracePeriod", c.cfg.GracePeriod, "monitorPeriod", c.cfg.MonitorPeriod)
	defer c.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.every(ctx, c.cfg.MonitorPeriod, c.monitorNodeHealth) })
	wg.Go(func() { c.every(ctx, taintPassPeriod, c.doNoExecuteTaintingPass) })
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processPod(ctx) {
			}
		})
	}
	wg.Go(func() {
		for c.processNode(ctx) {
		}
	})
	<-ctx.Done()
	c.podQueue.ShutDown()
	c.nodeQueue.ShutDown()
	return nil
}

// every runs fn now and then every period of the injected clock until
// ctx is done.
func (c *Controller) every(ctx context.Context, period time.Duration, fn func(context.Context)) {
	t := c.cfg.Clock.NewTicker(period)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (c *Controller) processPod(ctx context.Context) bool {
	key, quit := c.podQueue.Get()
	if quit {
		return false
	}
	defer c.podQueue.Done(key)
	after, err := c.syncPod(ctx, key)
	switch {
	case err != nil:
		c.log.Warn("pod sync failed; will retry", "pod", key, "err", err)
		c.podQueue.AddRateLimited(key)
	case after > 0:
		c.podQueue.Forget(key)
		c.podQueue.AddAfter(key, after)
	default:
		c.podQueue.Forget(key)
	}
	return true
}

func (c *Controller) processNode(ctx context.Context) bool {
	key, quit := c.nodeQueue.Get()
	if quit {
		return false
	}
	defer c.nodeQueue.Done(key)
	if err := c.syncNoScheduleTaints(ctx, key); err != nil {
		c.log.Warn("node taint sync failed; will retry", "node", key, "err", err)
		c.nodeQueue.AddRateLimited(key)
		return true
	}
	c.nodeQueue.Forget(key)
	return true
}
