package framework

import "fmt"

// EventResource is the kind of object a ClusterEvent is about.
type EventResource string

// The resources the scheduler watches.
const (
	// AssignedPod is a pod bound to a node.
	AssignedPod EventResource = "AssignedPod"
	// Node is a node.
	Node EventResource = "Node"
	// WildCard matches every resource.
	WildCard EventResource = "*"
)

// ActionType is a bit set of what happened to an object.
type ActionType uint32

// The actions. Node and pod updates are split by what changed, so that a
// node's heartbeat does not retry every pod waiting for more cpu.
const (
	Add ActionType = 1 << iota
	Delete
	UpdateNodeAllocatable
	UpdateNodeLabel
	UpdateNodeTaint
	UpdateNodeCondition
	UpdateNodeImages
	UpdatePodLabel
	UpdatePodScaleDown
	UpdatePodOther

	// Update is any update.
	Update = UpdateNodeAllocatable | UpdateNodeLabel | UpdateNodeTaint | UpdateNodeCondition | UpdateNodeImages | UpdatePodLabel | UpdatePodScaleDown | UpdatePodOther
	// All is any action.
	All = Add | Delete | Update
)

// ClusterEvent is something that happened in the cluster that may make
// pods fit.
type ClusterEvent struct {
	Resource   EventResource
	ActionType ActionType
}

// Match reports whether e (an event that happened) is covered by
// registered (an event a plugin registered for).
func (registered ClusterEvent) Match(e ClusterEvent) bool {
	return (registered.Resource == WildCard || registered.Resource == e.Resource) && registered.ActionType&e.ActionType != 0
}

func (e ClusterEvent) String() string { return fmt.Sprintf("%s/%#x", e.Resource, uint32(e.ActionType)) }

// EventUnscheduledPodUpdate is a pending pod's own update; it retries
// only that pod.
var EventUnscheduledPodUpdate = ClusterEvent{Resource: "UnscheduledPod", ActionType: Update}

// EventUnschedulableTimeout retries pods that waited too long.
var EventUnschedulableTimeout = ClusterEvent{Resource: WildCard, ActionType: All}
