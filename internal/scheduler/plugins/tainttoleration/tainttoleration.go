// Package tainttoleration holds the TaintToleration plugin: a pod fits a
// node only if it tolerates the node's NoSchedule and NoExecute taints,
// and nodes with fewer untolerated PreferNoSchedule taints score higher.
package tainttoleration

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "TaintToleration"

const preScoreKey framework.StateKey = "PreScore" + Name

// TaintToleration is the plugin.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin      = &TaintToleration{}
	_ framework.PreScorePlugin    = &TaintToleration{}
	_ framework.ScorePlugin       = &TaintToleration{}
	_ framework.NormalizeScorer   = &TaintToleration{}
	_ framework.EnqueueExtensions = &TaintToleration{}
)

// New is the plugin's factory.
func New(*framework.Handle) (framework.Plugin, error) { return &TaintToleration{}, nil }

// Name returns Name.
func (pl *TaintToleration) Name() string { return Name }

// ErrReason formats the reason for an untolerated taint, as upstream:
// "node(s) had untolerated taint {key: value}".
func ErrReason(t v1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

func tolerated(tolerations []v1.Toleration, taint *v1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(logr.Discard(), taint, false) {
			return true
		}
	}
	return false
}

// Filter rejects a node with a NoSchedule or NoExecute taint the pod does
// not tolerate, naming the first one.
func (pl *TaintToleration) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	taints := node.Node().Spec.Taints
	for i := range taints {
		t := &taints[i]
		if t.Effect != v1.TaintEffectNoSchedule && t.Effect != v1.TaintEffectNoExecute {
			continue
		}
		if !tolerated(pod.Pod.Spec.Tolerations, t) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason(*t))
		}
	}
	return nil
}

type preScoreState []v1.Toleration

func (s preScoreState) Clone() framework.StateData { return s }

// PreScore keeps the tolerations that can tolerate PreferNoSchedule
// taints (effect PreferNoSchedule or empty).
func (pl *TaintToleration) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	var tols preScoreState
	for _, t := range pod.Pod.Spec.Tolerations {
		if t.Effect == "" || t.Effect == v1.TaintEffectPreferNoSchedule {
			tols = append(tols, t)
		}
	}
	state.Write(preScoreKey, tols)
	return nil
}

// Score counts the node's untolerated PreferNoSchedule taints (fewer is
// better; NormalizeScore reverses).
func (pl *TaintToleration) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	tols, err := framework.ReadState[preScoreState](state, preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	var n int64
	taints := node.Node().Spec.Taints
	for i := range taints {
		if taints[i].Effect == v1.TaintEffectPreferNoSchedule && !tolerated(tols, &taints[i]) {
			n++
		}
	}
	return n, nil
}

// NormalizeScore gives MaxNodeScore to the nodes with the fewest
// untolerated taints.
func (pl *TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []framework.NodeScore) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, true, scores)
}

// EventsToRegister: a node came or its taints changed.
func (pl *TaintToleration) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeTaint}}
}
