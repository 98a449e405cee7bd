// Package nodeaffinity holds the NodeAffinity plugin: spec.nodeSelector
// and required node affinity filter nodes, preferred node affinity
// scores them. Matching is k8s.io/component-helpers' nodeaffinity, the
// same code the kubelet admits pods with.
package nodeaffinity

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "NodeAffinity"

// ErrReason is the reason a node is rejected.
const ErrReason = "node(s) didn't match Pod's node affinity/selector"

const (
	preFilterKey framework.StateKey = "PreFilter" + Name
	preScoreKey  framework.StateKey = "PreScore" + Name
)

// NodeAffinity is the plugin.
type NodeAffinity struct{}

var (
	_ framework.PreFilterPlugin   = &NodeAffinity{}
	_ framework.FilterPlugin      = &NodeAffinity{}
	_ framework.PreScorePlugin    = &NodeAffinity{}
	_ framework.ScorePlugin       = &NodeAffinity{}
	_ framework.NormalizeScorer   = &NodeAffinity{}
	_ framework.EnqueueExtensions = &NodeAffinity{}
)

// New is the plugin's factory.
func New(*framework.Handle) (framework.Plugin, error) { return &NodeAffinity{}, nil }

// Name returns Name.
func (pl *NodeAffinity) Name() string { return Name }

type preFilterState struct {
	required nodeaffinity.RequiredNodeAffinity
}

func (s *preFilterState) Clone() framework.StateData { return s }

// PreFilter parses the pod's selector and required affinity; it skips the
// filter when there are none. When every required term names nodes by
// metadata.name, only those nodes are filtered.
func (pl *NodeAffinity) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	spec := &pod.Pod.Spec
	req := requiredTerms(spec.Affinity)
	if len(spec.NodeSelector) == 0 && req == nil {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(preFilterKey, &preFilterState{required: nodeaffinity.GetRequiredNodeAffinity(pod.Pod)})
	if req == nil {
		return nil, nil
	}
	names := sets.New[string]()
	for _, t := range req.NodeSelectorTerms {
		found := false
		for _, r := range t.MatchFields {
			if r.Key == metav1.ObjectNameField && r.Operator == v1.NodeSelectorOpIn {
				if found {
					// Two name requirements in a term intersect; leave it
					// to Filter.
					return nil, nil
				}
				names.Insert(r.Values...)
				found = true
			}
		}
		if !found {
			return nil, nil
		}
	}
	return &framework.PreFilterResult{NodeNames: names}, nil
}

func requiredTerms(a *v1.Affinity) *v1.NodeSelector {
	if a == nil || a.NodeAffinity == nil {
		return nil
	}
	return a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
}

// Filter rejects a node that does not match.
func (pl *NodeAffinity) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	ok, err := s.required.Match(node.Node())
	if err != nil {
		return framework.AsStatus(err)
	}
	if !ok {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)
	}
	return nil
}

type preScoreState struct {
	preferred *nodeaffinity.PreferredSchedulingTerms
}

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore parses the preferred terms; it skips scoring without any.
func (pl *NodeAffinity) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	a := pod.Pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return framework.AsStatus(err)
	}
	state.Write(preScoreKey, &preScoreState{preferred: terms})
	return nil
}

// Score is the sum of the weights of the preferred terms the node
// matches.
func (pl *NodeAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, err := framework.ReadState[*preScoreState](state, preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	return s.preferred.Score(node.Node()), nil
}

// NormalizeScore scales the best node to MaxNodeScore.
func (pl *NodeAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []framework.NodeScore) *framework.Status {
	return framework.DefaultNormalizeScore(framework.MaxNodeScore, false, scores)
}

// EventsToRegister: a node came or its labels changed.
func (pl *NodeAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel}}
}
