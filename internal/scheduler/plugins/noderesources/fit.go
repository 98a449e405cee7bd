// Package noderesources holds the two plugins that compare a pod's
// requests with a node's allocatable resources: Fit, which filters nodes
// without room and scores the least allocated higher (LeastAllocated),
// and BalancedAllocation, which scores nodes whose cpu and memory stay
// evenly used. They share the request arithmetic, so they share a
// package, as upstream's do.
package noderesources

import (
	"context"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// FitName is Fit's name in the registry.
const FitName = "NodeResourcesFit"

// Reasons Fit rejects a node with.
const (
	// ErrReasonTooManyPods: the node holds its allocatable number of pods.
	ErrReasonTooManyPods = "Too many pods"
	// insufficientPrefix precedes the resource name: "Insufficient cpu".
	insufficientPrefix = "Insufficient "
)

const fitStateKey framework.StateKey = "PreFilter" + FitName

// Fit is the NodeResourcesFit plugin.
type Fit struct{}

var (
	_ framework.PreFilterPlugin   = &Fit{}
	_ framework.FilterPlugin      = &Fit{}
	_ framework.ScorePlugin       = &Fit{}
	_ framework.EnqueueExtensions = &Fit{}
)

// NewFit is Fit's factory.
func NewFit(*framework.Handle) (framework.Plugin, error) { return &Fit{}, nil }

// Name returns FitName.
func (pl *Fit) Name() string { return FitName }

type fitState struct{ req *framework.Resource }

func (s *fitState) Clone() framework.StateData { return s }

// PreFilter records the pod's effective requests (init containers,
// sidecars and overhead counted; see framework.NewPodInfo).
func (pl *Fit) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	state.Write(fitStateKey, &fitState{req: &pod.Requests})
	return nil, nil
}

// InsufficientResource is one resource a node lacks.
type InsufficientResource struct {
	Name      v1.ResourceName
	Reason    string
	Requested int64
	Used      int64
	Capacity  int64
	// Unresolvable: the pod asks for more than the node has even when
	// empty, so preemption cannot help.
	Unresolvable bool
}

// Filter rejects a node that cannot hold one more pod or lacks any
// requested resource, giving one reason per missing resource.
func (pl *Fit) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*fitState](state, fitStateKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	insufficient := Fits(s.req, node)
	if len(insufficient) == 0 {
		return nil
	}
	code := framework.Unschedulable
	reasons := make([]string, 0, len(insufficient))
	for _, r := range insufficient {
		reasons = append(reasons, r.Reason)
		if r.Unresolvable {
			code = framework.UnschedulableAndUnresolvable
		}
	}
	return framework.NewStatus(code, reasons...)
}

// Fits lists what node lacks to run a pod requesting req: the pod count
// first, then cpu, memory, ephemeral-storage and the scalar resources in
// name order.
func Fits(req *framework.Resource, node *framework.NodeInfo) []InsufficientResource {
	var out []InsufficientResource
	alloc, used := &node.Allocatable, &node.Requested
	if int64(len(node.Pods))+1 > alloc.AllowedPodNumber {
		out = append(out, InsufficientResource{Name: v1.ResourcePods, Reason: ErrReasonTooManyPods, Requested: 1, Used: int64(len(node.Pods)), Capacity: alloc.AllowedPodNumber})
	}
	if req.IsZero() {
		return out
	}
	check := func(name v1.ResourceName, want, have, inUse int64) {
		if want == 0 || want <= have-inUse {
			return
		}
		out = append(out, InsufficientResource{
			Name: name, Reason: insufficientPrefix + string(name),
			Requested: want, Used: inUse, Capacity: have,
			Unresolvable: want > have,
		})
	}
	check(v1.ResourceCPU, req.MilliCPU, alloc.MilliCPU, used.MilliCPU)
	check(v1.ResourceMemory, req.Memory, alloc.Memory, used.Memory)
	check(v1.ResourceEphemeralStorage, req.EphemeralStorage, alloc.EphemeralStorage, used.EphemeralStorage)
	if len(req.Scalar) > 0 {
		names := make([]v1.ResourceName, 0, len(req.Scalar))
		for n := range req.Scalar {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			check(n, req.Scalar[n], alloc.Scalar[n], used.Scalar[n])
		}
	}
	return out
}

// Score is LeastAllocated: for cpu and memory, the share of the node
// left free after placing the pod (counting default requests for
// containers that set none), averaged, in [0, MaxNodeScore].
func (pl *Fit) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	alloc, used, req := &node.Allocatable, &node.NonZeroRequested, &pod.NonZeroRequests
	var sum, weights int64
	for _, r := range [...][3]int64{
		{alloc.MilliCPU, used.MilliCPU + req.MilliCPU},
		{alloc.Memory, used.Memory + req.Memory},
	} {
		capacity, requested := r[0], r[1]
		if capacity == 0 {
			continue
		}
		weights++
		if requested > capacity {
			continue
		}
		sum += (capacity - requested) * framework.MaxNodeScore / capacity
	}
	if weights == 0 {
		return 0, nil
	}
	return sum / weights, nil
}

// EventsToRegister: a pod went away or shrank, a node came or grew.
func (pl *Fit) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPod, ActionType: framework.Delete | framework.UpdatePodScaleDown},
		{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeAllocatable},
	}
}
