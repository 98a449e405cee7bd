package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/scheduler/cache"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/queue"
)

// eventWriters is how many events are written at once.
const eventWriters = 16

// instance is one term of scheduling: everything the scheduler knows,
// built fresh when it starts leading and dropped when it stops.
type instance struct {
	cfg    *Config
	log    *slog.Logger
	client kubernetes.Interface

	factory  informers.SharedInformerFactory
	podStore toolscache.Store
	// handlers are the event handler registrations; scheduling starts
	// once each has seen the initial list.
	handlers     []toolscache.ResourceEventHandlerRegistration
	eventsClient kubernetes.Interface
	broadcaster  record.EventBroadcaster
	recorder     record.EventRecorder

	cache    *cache.Cache
	queue    *queue.Queue
	fw       *framework.Framework
	snapshot *cache.Snapshot

	// Only the scheduling goroutine uses these.
	rand               *rand.Rand
	nextStartNodeIndex int

	// async counts bindings and status updates in flight.
	async sync.WaitGroup
	// bindings holds a token per binding in flight.
	bindings chan struct{}
}

func (s *Scheduler) newInstance() (*instance, error) {
	in, err := newInstance(&s.cfg, s.client)
	if err != nil {
		return nil, err
	}
	in.broadcaster = record.NewBroadcaster()
	in.recorder = in.broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: s.cfg.SchedulerName, Host: s.cfg.LeaderElection.Identity})
	in.fw.Handle().Events = in.recorder
	in.factory = informers.NewSharedInformerFactoryWithOptions(s.client, 0, informers.WithTransform(stripForCache))
	in.addHandlers(s.events)
	return in, nil
}

// newInstance builds the parts that need no informers: tests drive them
// directly.
func newInstance(cfg *Config, client kubernetes.Interface) (*instance, error) {
	in := &instance{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   client,
		cache:    cache.New(cfg.Logger.WithGroup("cache")),
		snapshot: cache.NewEmptySnapshot(),
		rand:     cfg.Rand,
		bindings: make(chan struct{}, cfg.MaxInFlightBindings),
	}
	h := &framework.Handle{
		Snapshot:      in.snapshot,
		Client:        client,
		Clock:         cfg.Clock,
		Logger:        cfg.Logger.WithGroup("plugins"),
		Parallelizer:  framework.Parallelizer{Parallelism: cfg.Parallelism},
		SchedulerName: cfg.SchedulerName,
	}
	fw, err := framework.NewFramework(cfg.Registry, cfg.Plugins, h)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	in.fw = fw
	q, err := queue.New(queue.Config{
		Clock:              cfg.Clock,
		InitialBackoff:     cfg.PodInitialBackoff,
		MaxBackoff:         cfg.PodMaxBackoff,
		MaxInUnschedulable: cfg.PodMaxInUnschedulable,
		PluginEvents:       fw.EventsToRegister(),
		Logger:             cfg.Logger.WithGroup("queue"),
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	in.queue = q
	h.Nominator = q
	return in, nil
}

// stripForCache drops what the scheduler never reads before informers
// store objects: managed fields and the last-applied annotation on every
// object; on pods also volumes, container environments, commands,
// mounts, probes, lifecycle hooks and container statuses. A pod's
// requests, ports, images, affinity, tolerations and the rest of its
// scheduling fields stay. Status patches are computed between two
// stripped copies, so what is dropped here is never written back.
func stripForCache(obj any) (any, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		if _, ok := a[v1.LastAppliedConfigAnnotation]; ok {
			a = maps.Clone(a)
			delete(a, v1.LastAppliedConfigAnnotation)
			m.SetAnnotations(a)
		}
	}
	if pod, ok := obj.(*v1.Pod); ok {
		pod.Spec.Volumes = nil
		stripContainers(pod.Spec.InitContainers)
		stripContainers(pod.Spec.Containers)
		pod.Spec.EphemeralContainers = nil
		pod.Status.InitContainerStatuses = nil
		pod.Status.ContainerStatuses = nil
		pod.Status.EphemeralContainerStatuses = nil
	}
	return obj, nil
}

func stripContainers(cs []v1.Container) {
	for i := range cs {
		c := &cs[i]
		c.Command, c.Args, c.Env, c.EnvFrom = nil, nil, nil, nil
		c.VolumeMounts, c.VolumeDevices = nil, nil
		c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Lifecycle = nil, nil, nil, nil
		c.SecurityContext = nil
	}
}

// run starts the informers, waits for them to sync, and schedules until
// ctx is done; then it waits for bindings in flight.
func (in *instance) run(ctx context.Context) error {
	sink := newAsyncSink(&typedcorev1.EventSinkImpl{Interface: in.eventsClient.CoreV1().Events("")}, eventWriters, in.log.WithGroup("events"))
	stopEvents := in.broadcaster.StartRecordingToSink(sink)
	defer func() {
		in.async.Wait()
		stopEvents.Stop()
		in.broadcaster.Shutdown()
		sink.wait()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in.factory.Start(ctx.Done())
	defer in.factory.Shutdown()
	for typ, ok := range in.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("scheduler: informer for %v did not sync", typ)
		}
	}
	// The stores are full; wait until the handlers have also seen every
	// node and pod, or the first pods would be scheduled against a
	// partial cache.
	synced := make([]toolscache.InformerSynced, len(in.handlers))
	for i, h := range in.handlers {
		synced[i] = h.HasSynced
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	nodes, pods, _ := in.cache.Counts()
	a, b, u := in.queue.Counts()
	in.log.Info("scheduling", "nodes", nodes, "boundPods", pods, "pendingPods", a+b+u)
	go in.queue.Run(ctx)
	for {
		qp, err := in.queue.Pop(ctx)
		if err != nil {
			if errors.Is(err, queue.ErrClosed) || ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		in.scheduleOne(ctx, qp)
	}
}

func assigned(pod *v1.Pod) bool { return pod.Spec.NodeName != "" }

func podOf(obj any) (*v1.Pod, bool) {
	switch t := obj.(type) {
	case *v1.Pod:
		return t, true
	case toolscache.DeletedFinalStateUnknown:
		p, ok := t.Obj.(*v1.Pod)
		return p, ok
	}
	return nil, false
}

func nodeOf(obj any) (*v1.Node, bool) {
	switch t := obj.(type) {
	case *v1.Node:
		return t, true
	case toolscache.DeletedFinalStateUnknown:
		n, ok := t.Obj.(*v1.Node)
		return n, ok
	}
	return nil, false
}

// addHandlers wires informer events to the cache and the queue. Pods
// leave the informer when they finish (the field selector drops
// Succeeded and Failed), which counts as a delete.
func (in *instance) addHandlers(events kubernetes.Interface) {
	in.eventsClient = events
	podInformer := in.factory.InformerFor(&v1.Pod{}, func(c kubernetes.Interface, resync time.Duration) toolscache.SharedIndexInformer {
		return coreinformers.NewFilteredPodInformer(c, metav1.NamespaceAll, resync, toolscache.Indexers{}, func(o *metav1.ListOptions) {
			o.FieldSelector = fields.AndSelectors(
				fields.OneTermNotEqualSelector("status.phase", string(v1.PodSucceeded)),
				fields.OneTermNotEqualSelector("status.phase", string(v1.PodFailed)),
			).String()
		})
	})
	in.podStore = podInformer.GetStore()
	in.addHandler(podInformer, toolscache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := podOf(obj)
			return ok && assigned(p)
		},
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { in.onAssignedPodAdd(obj.(*v1.Pod)) },
			UpdateFunc: func(old, obj any) { in.onAssignedPodUpdate(old.(*v1.Pod), obj.(*v1.Pod)) },
			DeleteFunc: func(obj any) {
				if p, ok := podOf(obj); ok {
					in.onAssignedPodDelete(p)
				}
			},
		},
	})
	in.addHandler(podInformer, toolscache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			p, ok := podOf(obj)
			return ok && !assigned(p) && p.Spec.SchedulerName == in.cfg.SchedulerName
		},
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { in.onPendingPodAdd(obj.(*v1.Pod)) },
			UpdateFunc: func(old, obj any) { in.onPendingPodUpdate(old.(*v1.Pod), obj.(*v1.Pod)) },
			DeleteFunc: func(obj any) {
				if p, ok := podOf(obj); ok {
					in.onPendingPodDelete(p)
				}
			},
		},
	})
	nodeInformer := in.factory.Core().V1().Nodes().Informer()
	in.addHandler(nodeInformer, toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { in.onNodeAdd(obj.(*v1.Node)) },
		UpdateFunc: func(old, obj any) { in.onNodeUpdate(old.(*v1.Node), obj.(*v1.Node)) },
		DeleteFunc: func(obj any) {
			if n, ok := nodeOf(obj); ok {
				in.onNodeDelete(n)
			}
		},
	})
	in.fw.Handle().Namespaces = in.factory.Core().V1().Namespaces().Lister()
}

func (in *instance) addHandler(inf toolscache.SharedIndexInformer, h toolscache.ResourceEventHandler) {
	reg, err := inf.AddEventHandler(h)
	if err != nil {
		// Only an informer that already stopped refuses handlers; this
		// one has not started.
		panic(fmt.Sprintf("scheduler: add event handler: %v", err))
	}
	in.handlers = append(in.handlers, reg)
}

func (in *instance) onAssignedPodAdd(pod *v1.Pod) {
	if err := in.cache.AddPod(pod); err != nil {
		in.log.Error("add pod to cache", "pod", key(pod), "err", err)
		return
	}
	in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Add})
}

func (in *instance) onAssignedPodUpdate(old, pod *v1.Pod) {
	if err := in.cache.UpdatePod(old, pod); err != nil {
		in.log.Error("update pod in cache", "pod", key(pod), "err", err)
		return
	}
	if a := podUpdateAction(old, pod); a != 0 {
		in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: a})
	}
}

func (in *instance) onAssignedPodDelete(pod *v1.Pod) {
	if err := in.cache.RemovePod(pod); err != nil && !errors.Is(err, cache.ErrPodUnknown) {
		in.log.Error("remove pod from cache", "pod", key(pod), "err", err)
	}
	in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Delete})
}

func (in *instance) onPendingPodAdd(pod *v1.Pod) {
	if err := in.queue.Add(pod); err != nil {
		in.log.Error("queue pod", "pod", key(pod), "err", err)
	}
}

func (in *instance) onPendingPodUpdate(old, pod *v1.Pod) {
	if err := in.queue.Update(old, pod); err != nil {
		in.log.Error("requeue pod", "pod", key(pod), "err", err)
	}
}

// onPendingPodDelete runs for a pending pod that was deleted, or that
// got bound (it leaves this handler's filter).
func (in *instance) onPendingPodDelete(pod *v1.Pod) {
	in.queue.Delete(pod)
	if !in.cache.IsAssumedPod(pod) {
		return
	}
	// Assumed: bound (the assigned handler, which runs on its own
	// goroutine, confirms it) or deleted while its binding was in flight?
	// The informer's store knows. A deleted one would otherwise hold its
	// room until the scheduler restarts.
	if obj, ok, _ := in.podStore.GetByKey(key(pod)); ok {
		if cur, ok := obj.(*v1.Pod); ok && cur.UID == pod.UID {
			return
		}
	}
	if err := in.cache.RemovePod(pod); err != nil && !errors.Is(err, cache.ErrPodUnknown) {
		in.log.Error("remove deleted assumed pod", "pod", key(pod), "err", err)
	}
}

func (in *instance) onNodeAdd(node *v1.Node) {
	in.cache.AddNode(node)
	in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add})
}

func (in *instance) onNodeUpdate(old, node *v1.Node) {
	in.cache.UpdateNode(old, node)
	if a := nodeUpdateAction(old, node); a != 0 {
		in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.Node, ActionType: a})
	}
}

func (in *instance) onNodeDelete(node *v1.Node) {
	in.cache.RemoveNode(node)
	in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Delete})
}

// nodeUpdateAction classifies what changed in a node for the queue; a
// heartbeat alone is 0.
func nodeUpdateAction(old, node *v1.Node) framework.ActionType {
	var a framework.ActionType
	if !equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) {
		a |= framework.UpdateNodeAllocatable
	}
	if !equality.Semantic.DeepEqual(old.Labels, node.Labels) {
		a |= framework.UpdateNodeLabel
	}
	if old.Spec.Unschedulable != node.Spec.Unschedulable || !equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) {
		a |= framework.UpdateNodeTaint
	}
	if !conditionsEqual(old.Status.Conditions, node.Status.Conditions) {
		a |= framework.UpdateNodeCondition
	}
	if !equality.Semantic.DeepEqual(old.Status.Images, node.Status.Images) {
		a |= framework.UpdateNodeImages
	}
	return a
}

func conditionsEqual(a, b []v1.NodeCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status {
			return false
		}
	}
	return true
}

// podUpdateAction classifies what changed in a bound pod; a status
// update alone is 0.
func podUpdateAction(old, pod *v1.Pod) framework.ActionType {
	var a framework.ActionType
	if !equality.Semantic.DeepEqual(old.Labels, pod.Labels) {
		a |= framework.UpdatePodLabel
	}
	or, nr := framework.PodRequests(old), framework.PodRequests(pod)
	if nr.MilliCPU < or.MilliCPU || nr.Memory < or.Memory || nr.EphemeralStorage < or.EphemeralStorage {
		a |= framework.UpdatePodScaleDown
	}
	return a
}

func key(pod *v1.Pod) string { return pod.Namespace + "/" + pod.Name }
