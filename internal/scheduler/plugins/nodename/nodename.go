// Package nodename holds the NodeName filter: a pod that names a node in
// spec.nodeName fits only that node.
package nodename

import (
	"context"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "NodeName"

// ErrReason is the reason a node is rejected.
const ErrReason = "node(s) didn't match the requested node name"

// NodeName is the plugin.
type NodeName struct{}

var (
	_ framework.FilterPlugin      = &NodeName{}
	_ framework.EnqueueExtensions = &NodeName{}
)

// New is the plugin's factory.
func New(*framework.Handle) (framework.Plugin, error) { return &NodeName{}, nil }

// Name returns Name.
func (pl *NodeName) Name() string { return Name }

// Filter rejects every node but the one the pod names, if it names one.
func (pl *NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if want := pod.Pod.Spec.NodeName; want != "" && want != node.Node().Name {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)
	}
	return nil
}

// EventsToRegister: only a new node can be the named one.
func (pl *NodeName) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{{Resource: framework.Node, ActionType: framework.Add}}
}
