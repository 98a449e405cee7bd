package noderesources

import (
	"context"
	"math"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// BalancedAllocationName is BalancedAllocation's name in the registry.
const BalancedAllocationName = "NodeResourcesBalancedAllocation"

// BalancedAllocation scores nodes by how evenly cpu and memory would be
// used after placing the pod: (1 − |cpu fraction − memory fraction| / 2)
// × MaxNodeScore, with fractions capped at 1. It counts actual requests,
// not the scoring defaults, and skips pods that request neither.
type BalancedAllocation struct{}

var (
	_ framework.PreScorePlugin = &BalancedAllocation{}
	_ framework.ScorePlugin    = &BalancedAllocation{}
)

// NewBalancedAllocation is BalancedAllocation's factory.
func NewBalancedAllocation(*framework.Handle) (framework.Plugin, error) {
	return &BalancedAllocation{}, nil
}

// Name returns BalancedAllocationName.
func (pl *BalancedAllocation) Name() string { return BalancedAllocationName }

// PreScore skips pods without cpu or memory requests: every node would
// score the same.
func (pl *BalancedAllocation) PreScore(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	if pod.Requests.MilliCPU == 0 && pod.Requests.Memory == 0 {
		return framework.NewStatus(framework.Skip)
	}
	return nil
}

// Score returns the balance score.
func (pl *BalancedAllocation) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	alloc, used, req := &node.Allocatable, &node.Requested, &pod.Requests
	var fractions [2]float64
	n := 0
	for _, r := range [...][2]int64{
		{alloc.MilliCPU, used.MilliCPU + req.MilliCPU},
		{alloc.Memory, used.Memory + req.Memory},
	} {
		if r[0] == 0 {
			continue
		}
		fractions[n] = min(float64(r[1])/float64(r[0]), 1)
		n++
	}
	std := 0.0
	if n == 2 {
		std = math.Abs(fractions[0]-fractions[1]) / 2
	}
	return int64((1 - std) * float64(framework.MaxNodeScore)), nil
}
