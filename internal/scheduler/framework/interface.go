package framework

import (
	"context"
	"log/slog"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Score bounds: every Score plugin's normalized scores lie in
// [MinNodeScore, MaxNodeScore] before its weight is applied.
const (
	MinNodeScore int64 = 0
	MaxNodeScore int64 = 100
)

// Plugin is what every plugin is: a name, unique in a registry.
type Plugin interface {
	Name() string
}

// PreFilterPlugin runs once per scheduling cycle before filtering. It
// computes per-pod state into the CycleState for its Filter, or rejects
// the pod outright (the rejection applies to every node).
type PreFilterPlugin interface {
	Plugin
	// PreFilter may return a result that narrows the nodes to look at,
	// Skip to have its Filter not called this cycle, a rejection, or an
	// Error. nodes are every node of the snapshot; the callee must not
	// modify them.
	PreFilter(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) (*PreFilterResult, *Status)
}

// PreFilterExtensions is an optional interface of a PreFilterPlugin whose
// state depends on other pods (affinity, topology spread). Preemption
// calls it to update that state when it pretends to remove or add pods on
// a node. Both methods change state in place; state is a clone the
// caller owns.
type PreFilterExtensions interface {
	AddPod(ctx context.Context, state *CycleState, pod *PodInfo, added *PodInfo, node *NodeInfo) *Status
	RemovePod(ctx context.Context, state *CycleState, pod *PodInfo, removed *PodInfo, node *NodeInfo) *Status
}

// FilterPlugin says whether a pod fits a node. Filter is called
// concurrently for different nodes with the same state, which it must
// only read.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// PostFilterPlugin runs when no node fits (preemption). It returns the
// node the pod is nominated to, if any.
type PostFilterPlugin interface {
	Plugin
	PostFilter(ctx context.Context, state *CycleState, pod *PodInfo, statuses *NodeToStatus) (*PostFilterResult, *Status)
}

// PreScorePlugin runs once per cycle before scoring, with the feasible
// nodes; it may return Skip to have its Score not called this cycle.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks a feasible node. Score is called concurrently for
// different nodes with the same state, which it must only read. Without
// a NormalizeScorer, scores must lie in [MinNodeScore, MaxNodeScore].
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (int64, *Status)
}

// NormalizeScorer is an optional interface of a ScorePlugin: it rescales
// the plugin's raw scores of all feasible nodes, in place, into
// [MinNodeScore, MaxNodeScore].
type NormalizeScorer interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *PodInfo, scores []NodeScore) *Status
}

// ReservePlugin is told when a node has been chosen for a pod (Reserve),
// and when that choice is dropped because a later step failed
// (Unreserve). Unreserve must be idempotent and must not fail.
type ReservePlugin interface {
	Plugin
	Reserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status
	Unreserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string)
}

// BindPlugin binds a pod to a node. Bind plugins run in order until one
// returns anything but Skip.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status
}

// EnqueueExtensions is an optional interface of any plugin that rejects
// pods: it names the cluster events after which a pod it rejected may
// fit, so that the queue retries only those pods.
type EnqueueExtensions interface {
	EventsToRegister() []ClusterEvent
}

// PreFilterResult narrows a cycle to some nodes.
type PreFilterResult struct {
	// NodeNames, when not nil, are the only nodes worth filtering.
	NodeNames sets.Set[string]
}

// AllNodes reports whether the result does not narrow anything.
func (r *PreFilterResult) AllNodes() bool { return r == nil || r.NodeNames == nil }

// Merge intersects two results.
func (r *PreFilterResult) Merge(o *PreFilterResult) *PreFilterResult {
	switch {
	case r.AllNodes() && o.AllNodes():
		return nil
	case r.AllNodes():
		return o
	case o.AllNodes():
		return r
	}
	return &PreFilterResult{NodeNames: r.NodeNames.Intersection(o.NodeNames)}
}

// PostFilterResult is the outcome of preemption.
type PostFilterResult struct {
	// NominatedNodeName is where the pod should go once victims are gone;
	// "" clears an earlier nomination.
	NominatedNodeName string
}

// NodeScore is a node's score from one plugin, or the total.
type NodeScore struct {
	Name  string
	Score int64
}

// SharedLister reads the snapshot of the current cycle. NodeInfos it
// returns are shared and read-only.
type SharedLister interface {
	// List returns every node, in a stable order.
	List() []*NodeInfo
	// HavePodsWithAffinityList returns the nodes holding a pod with an
	// affinity or anti-affinity term.
	HavePodsWithAffinityList() []*NodeInfo
	// HavePodsWithRequiredAntiAffinityList returns the nodes holding a
	// pod with a required anti-affinity term.
	HavePodsWithRequiredAntiAffinityList() []*NodeInfo
	// Get returns a node by name, or nil.
	Get(name string) *NodeInfo
}

// NamespaceLister reads namespaces (for affinity namespace selectors).
// client-go's corev1 NamespaceLister satisfies it.
type NamespaceLister interface {
	List(selector labels.Selector) ([]*v1.Namespace, error)
	Get(name string) (*v1.Namespace, error)
}

// Nominator knows the pods that preemption nominated to nodes and that
// wait for their victims to go.
type Nominator interface {
	// NominatedPodsForNode returns the pods nominated to a node; the
	// caller owns the slice.
	NominatedPodsForNode(nodeName string) []*PodInfo
}

// Handle is what plugins may use. Plugins keep the pointer; fields are
// set before any factory runs and do not change afterwards. Fields a
// plugin does not use may be nil in its tests.
type Handle struct {
	// Snapshot is the cycle's view of the cluster, updated in place by
	// the scheduler between cycles.
	Snapshot SharedLister
	// Client reaches the API (bindings, status patches, deletions).
	Client kubernetes.Interface
	// Namespaces reads namespace labels.
	Namespaces NamespaceLister
	// Nominator lists pods nominated to nodes.
	Nominator Nominator
	// Events records events on pods.
	Events record.EventRecorder
	// Clock tells the time.
	Clock clock.PassiveClock
	// Logger logs.
	Logger *slog.Logger
	// Parallelizer runs work across nodes.
	Parallelizer Parallelizer
	// SchedulerName is the name of the scheduler the plugins run in.
	SchedulerName string
	// Framework runs the other plugins (preemption filters what-if
	// nodes). Set by NewFramework before the factories run.
	Framework *Framework
}
