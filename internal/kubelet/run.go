package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/kubelet/prober"
	"github.com/skiff-sh/skiff/internal/kubelet/status"
)

// Kubelet is the node agent core. Make one with New; its methods are safe
// for concurrent use.
type Kubelet struct {
	cfg    Config
	log    *slog.Logger
	clock  clock.WithTicker
	client kubernetes.Interface
	rt     runtimeapi.RuntimeServiceClient
	img    runtimeapi.ImageServiceClient

	ready     chan struct{}
	readyOnce sync.Once

	status      *status.Manager
	probes      *prober.Manager
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	// restarts backs off crashing containers, pulls failing image pulls,
	// sandboxes failing sandbox creation.
	restarts, pulls, sandboxes *backoff
	metrics                    *metrics

	// Set by run before any pod is synced, read-only after.
	podInformer     cache.SharedIndexInformer
	serviceLister   corelisters.ServiceLister
	serviceInformer cache.SharedIndexInformer
	runtimeName     string

	// mu guards everything below.
	mu sync.Mutex
	// pods are the pods bound to this node, by UID, as last seen.
	pods map[types.UID]*corev1.Pod
	// workers are the running pod workers.
	workers map[types.UID]*podWorker
	// admitted are the pods that passed admission and have not finished:
	// what new pods are checked against.
	admitted map[types.UID]*corev1.Pod
	// node is this node's Node as last seen.
	node *corev1.Node
	// podCIDRs are the node's pod CIDRs, once known; cidrsSent says the
	// network and runtime were told.
	podCIDRs  []string
	cidrsSent bool
	// nodeIPs are the node's addresses for hostIP(s).
	nodeIPs []string
	// machine is the host's info, and allocatable what pods may use.
	machine     MachineInfo
	capacity    corev1.ResourceList
	allocatable corev1.ResourceList
	// runtimeErr says why the runtime is not ready ("" when it is);
	// networkErr the same for the pod network.
	runtimeErr, networkErr string
	// memoryPressure is set while memory.available is under the eviction
	// threshold.
	memoryPressure bool
	// events is false while the runtime event stream is down (then the
	// relist runs every second).
	events bool
	// evictions are pods the eviction manager chose, for their workers
	// to end.
	evictions map[types.UID]*terminalStatus
	// ctx is Run's context, for work started by callbacks.
	ctx context.Context

	// qosMu guards qosApplied, the last resources written to each QoS
	// cgroup.
	qosMu      sync.Mutex
	qosApplied map[string]string
	// messages caches termination messages by container ID.
	messages sync.Map
}

func newKubelet(cfg Config) *Kubelet {
	k := &Kubelet{
		cfg:        cfg,
		log:        cfg.Logger,
		clock:      cfg.Clock,
		client:     cfg.Client,
		rt:         cfg.Runtime,
		img:        cfg.Images,
		ready:      make(chan struct{}),
		restarts:   newBackoff(cfg.Clock, backoffInitial, backoffMax),
		pulls:      newBackoff(cfg.Clock, backoffInitial, backoffMax),
		sandboxes:  newBackoff(cfg.Clock, time.Second, backoffMax),
		pods:       map[types.UID]*corev1.Pod{},
		workers:    map[types.UID]*podWorker{},
		admitted:   map[types.UID]*corev1.Pod{},
		evictions:  map[types.UID]*terminalStatus{},
		qosApplied: map[string]string{},
		metrics:    newMetrics(cfg.Metrics),
	}
	k.broadcaster = record.NewBroadcaster()
	k.recorder = k.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})
	k.status, _ = status.New(status.Config{Client: cfg.Client, Clock: cfg.Clock, Logger: cfg.Logger.WithGroup("status")})
	k.probes, _ = prober.NewManager(prober.Config{
		Runner:   &prober.Runner{Exec: criExecer{k.rt}},
		OnChange: k.enqueue,
		OnFailure: func(pod *corev1.Pod, container string, kind prober.Kind, msg string) {
			if ref := containerRef(pod, container); ref != nil {
				k.recorder.Eventf(ref, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
			}
		},
		Clock:  cfg.Clock,
		Logger: cfg.Logger.WithGroup("prober"),
	})
	return k
}

func (k *Kubelet) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k.mu.Lock()
	k.ctx = ctx
	k.mu.Unlock()

	ver, err := k.rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return fmt.Errorf("kubelet: container runtime: %w", err)
	}
	k.runtimeName = ver.RuntimeName
	if k.runtimeName == "" {
		k.runtimeName = "cri"
	}
	k.log.Info("container runtime", "name", ver.RuntimeName, "version", ver.RuntimeVersion)

	events := k.cfg.EventClient
	if events == nil {
		events = k.client
	}
	k.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: events.CoreV1().Events("")})
	defer k.broadcaster.Shutdown()

	if err := k.initNode(ctx); err != nil {
		return err
	}
	if err := k.registerNode(ctx); err != nil {
		return err
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// Pods bound to this node.
	podFactory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.cfg.NodeName).String()
		}))
	k.podInformer = podFactory.Core().V1().Pods().Informer()
	k.podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { k.podChanged(obj, true) },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Pod)
			n, ok2 := obj.(*corev1.Pod)
			k.podChanged(obj, !ok1 || !ok2 || !onlyStatusChanged(o, n))
		},
		DeleteFunc: k.podDeleted,
	})
	// Services, for the environment of containers.
	svcFactory := informers.NewSharedInformerFactory(k.client, 0)
	k.serviceInformer = svcFactory.Core().V1().Services().Informer()
	k.serviceLister = svcFactory.Core().V1().Services().Lister()
	// This node, for its pod CIDR and allocatable.
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.cfg.NodeName).String()
		}))
	nodeInformer := nodeFactory.Core().V1().Nodes().Informer()
	nodeInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.nodeChanged(ctx, obj) },
		UpdateFunc: func(_, obj any) { k.nodeChanged(ctx, obj) },
	})
	podFactory.Start(ctx.Done())
	svcFactory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer svcFactory.Shutdown()
	defer nodeFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), k.podInformer.HasSynced, k.serviceInformer.HasSynced, nodeInformer.HasSynced) {
		return ctx.Err()
	}

	wg.Go(func() { k.status.Run(ctx) })
	defer k.probes.Stop()

	// Adopt what the runtime holds: every pod it knows gets a worker,
	// which removes those no longer bound here.
	k.adoptRunning(ctx)
	k.sendPodCIDRs(ctx)
	if err := k.relist(ctx); err != nil {
		k.log.Warn("first relist failed", "err", err)
	}
	k.readyOnce.Do(func() { close(k.ready) })
	k.log.Info("kubelet ready", "node", k.cfg.NodeName)

	wg.Go(func() { k.runEvents(ctx) })
	wg.Go(func() { k.runRelist(ctx) })
	wg.Go(func() { k.runLease(ctx) })
	wg.Go(func() { k.runNodeStatus(ctx) })
	if k.cfg.EvictionMemoryAvailable.Sign() > 0 {
		wg.Go(func() { k.runEviction(ctx) })
	}
	<-ctx.Done()
	k.stopWorkers()
	return nil
}

// podChanged handles an informer add or update.
func (k *Kubelet) podChanged(obj any, sync bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	k.pods[pod.UID] = pod
	k.mu.Unlock()
	k.status.Observe(pod)
	if !sync {
		return
	}
	if pod.DeletionTimestamp != nil {
		k.interruptSync(pod.UID)
	}
	k.enqueue(pod.UID)
}

// onlyStatusChanged reports whether an update of a pod changed nothing the
// pod's worker acts on: its status (most often the kubelet's own write
// coming back) and bookkeeping, as upstream's kubelet tells apart. The
// status manager still sees it (Observe), and makes the status right if
// someone else changed it (the node lifecycle controller, say).
func onlyStatusChanged(old, cur *corev1.Pod) bool {
	return apiequality.Semantic.DeepEqual(old.Spec, cur.Spec) &&
		apiequality.Semantic.DeepEqual(old.Labels, cur.Labels) &&
		apiequality.Semantic.DeepEqual(old.Annotations, cur.Annotations) &&
		apiequality.Semantic.DeepEqual(old.DeletionTimestamp, cur.DeletionTimestamp) &&
		apiequality.Semantic.DeepEqual(old.DeletionGracePeriodSeconds, cur.DeletionGracePeriodSeconds)
}

// podDeleted handles an informer delete.
func (k *Kubelet) podDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	delete(k.pods, pod.UID)
	k.mu.Unlock()
	k.interruptSync(pod.UID)
	k.enqueue(pod.UID)
}

func (k *Kubelet) podByUID(uid types.UID) *corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pods[uid]
}

func (k *Kubelet) lookupPod(namespace, name string) (*corev1.Pod, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var found *corev1.Pod
	for _, p := range k.pods {
		if p.Namespace == namespace && p.Name == name {
			// Of two pods with one name (a delete and a re-create), the
			// newer.
			if found == nil || p.CreationTimestamp.After(found.CreationTimestamp.Time) {
				found = p
			}
		}
	}
	return found, found != nil
}

func (k *Kubelet) listPods() []*corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(k.pods))
	for _, p := range k.pods {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return compareStrings(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out
}

func (k *Kubelet) findContainer(ctx context.Context, namespace, podName, name string, previous bool) (ContainerRef, error) {
	pod, ok := k.lookupPod(namespace, podName)
	if !ok {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w", namespace, podName, ErrPodNotFound)
	}
	if findContainer(pod, name) == nil {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: container %s: %w", namespace, podName, name, ErrContainerNotFound)
	}
	rp, err := k.observe(ctx, pod.UID)
	if err != nil {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w", namespace, podName, err)
	}
	c := rp.latest(name)
	if previous {
		c = rp.previous(name)
	}
	if c == nil {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: container %s: %w", namespace, podName, name, ErrContainerNotFound)
	}
	return ContainerRef{
		PodUID:    pod.UID,
		SandboxID: sandboxOf(rp, c),
		ID:        c.Id,
		Name:      name,
		Attempt:   c.GetMetadata().GetAttempt(),
		LogPath:   c.LogPath,
		Running:   c.State == runtimeapi.ContainerState_CONTAINER_RUNNING,
	}, nil
}

// sandboxOf finds the sandbox a container instance belongs to.
func sandboxOf(rp *runtimePod, c *runtimeapi.ContainerStatus) string { return rp.sandboxOf[c.Id] }

// nodeIPStrings returns the node's IPs (hostIPs), and the pod CIDRs.
func (k *Kubelet) nodeIPStrings() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.nodeIPs)
}

// initNode reads the machine and picks the node IP.
func (k *Kubelet) initNode(ctx context.Context) error {
	info, err := k.cfg.Machine.Info()
	if err != nil {
		return fmt.Errorf("kubelet: machine info: %w", err)
	}
	ip := k.cfg.NodeIP
	if ip == nil {
		ip = defaultNodeIP()
	}
	if ip == nil {
		return errors.New("kubelet: cannot find the node's IP; set Config.NodeIP")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.machine = info
	k.nodeIPs = []string{ip.String()}
	k.capacity, k.allocatable = k.resourcesLocked(info)
	if k.cfg.PodCIDR != "" {
		k.podCIDRs = []string{k.cfg.PodCIDR}
	}
	return nil
}

// resourcesLocked computes capacity and allocatable.
func (k *Kubelet) resourcesLocked(info MachineInfo) (capacity, allocatable corev1.ResourceList) {
	capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(info.NumCPU), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(info.MemoryCapacity, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(info.EphemeralStorage, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(k.cfg.MaxPods), resource.DecimalSI),
		"hugepages-1Gi":                 *resource.NewQuantity(0, resource.BinarySI),
		"hugepages-2Mi":                 *resource.NewQuantity(0, resource.BinarySI),
	}
	allocatable = corev1.ResourceList{}
	for name, q := range capacity {
		a := q.DeepCopy()
		if r, ok := k.cfg.Reserved[name]; ok {
			a.Sub(r)
		}
		if name == corev1.ResourceMemory && k.cfg.EvictionMemoryAvailable.Sign() > 0 {
			a.Sub(k.cfg.EvictionMemoryAvailable)
		}
		if a.Sign() < 0 {
			a = *resource.NewQuantity(0, q.Format)
		}
		allocatable[name] = a
	}
	return capacity, allocatable
}

// defaultNodeIP is the host's first global unicast IPv4 address, else
// IPv6, else loopback.
func defaultNodeIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var v6 net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP
		}
		if v6 == nil {
			v6 = n.IP
		}
	}
	if v6 != nil {
		return v6
	}
	return net.IPv4(127, 0, 0, 1)
}

func (k *Kubelet) stopWorkers() {
	k.mu.Lock()
	ws := make([]*podWorker, 0, len(k.workers))
	for _, w := range k.workers {
		ws = append(ws, w)
	}
	k.mu.Unlock()
	for _, w := range ws {
		<-w.done
	}
}
