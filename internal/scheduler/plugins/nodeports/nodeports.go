// Package nodeports holds the NodePorts filter: a pod's host ports must
// be free on the node (the wildcard address 0.0.0.0 conflicts with every
// address).
package nodeports

import (
	"context"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "NodePorts"

// ErrReason is the reason a node is rejected.
const ErrReason = "node(s) didn't have free ports for the requested pod ports"

const stateKey framework.StateKey = "PreFilter" + Name

// NodePorts is the plugin.
type NodePorts struct{}

var (
	_ framework.PreFilterPlugin   = &NodePorts{}
	_ framework.FilterPlugin      = &NodePorts{}
	_ framework.EnqueueExtensions = &NodePorts{}
)

// New is the plugin's factory.
func New(*framework.Handle) (framework.Plugin, error) { return &NodePorts{}, nil }

// Name returns Name.
func (pl *NodePorts) Name() string { return Name }

type preFilterState []v1.ContainerPort

func (s preFilterState) Clone() framework.StateData { return s }

// PreFilter collects the pod's host ports, and skips the filter when
// there are none.
func (pl *NodePorts) PreFilter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	ports := framework.HostPorts(pod.Pod)
	if len(ports) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	state.Write(stateKey, preFilterState(ports))
	return nil, nil
}

// Filter rejects a node where one of the ports is taken.
func (pl *NodePorts) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	ports, err := framework.ReadState[preFilterState](state, stateKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	for _, p := range ports {
		if node.UsedPorts.Conflicts(p.HostIP, string(p.Protocol), p.HostPort) {
			return framework.NewStatus(framework.Unschedulable, ErrReason)
		}
	}
	return nil
}

// EventsToRegister: a pod that held a port went away, or a node came.
func (pl *NodePorts) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPod, ActionType: framework.Delete},
		{Resource: framework.Node, ActionType: framework.Add},
	}
}
