package framework

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// NodeToStatus holds why each node was rejected. Nodes not in the map
// (not evaluated because PreFilter narrowed the set, or rejected as a
// whole by PreFilter) have the absent status.
type NodeToStatus struct {
	m      map[string]*Status
	absent *Status
}

// NewNodeToStatus returns an empty map whose absent nodes are
// UnschedulableAndUnresolvable without a reason.
func NewNodeToStatus() *NodeToStatus {
	return &NodeToStatus{m: map[string]*Status{}, absent: NewStatus(UnschedulableAndUnresolvable)}
}

// Set records a node's status.
func (n *NodeToStatus) Set(node string, s *Status) { n.m[node] = s }

// SetAbsent sets the status of nodes not in the map.
func (n *NodeToStatus) SetAbsent(s *Status) { n.absent = s }

// Get returns a node's status (the absent status when unset).
func (n *NodeToStatus) Get(node string) *Status {
	if s, ok := n.m[node]; ok {
		return s
	}
	return n.absent
}

// Len is how many nodes have their own status.
func (n *NodeToStatus) Len() int { return len(n.m) }

// ForEach calls f for every node with its own status.
func (n *NodeToStatus) ForEach(f func(node string, s *Status)) {
	for k, v := range n.m {
		f(k, v)
	}
}

// NoNodesAvailableMsg is the message when the cluster has no nodes.
const NoNodesAvailableMsg = "no nodes available to schedule pods"

// FitError says why a pod fits no node. Its Error() is the message of
// the PodScheduled condition and of the FailedScheduling event, in
// upstream's form:
//
//	0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod..
type FitError struct {
	Pod         *v1.Pod
	NumAllNodes int
	Diagnosis   Diagnosis
}

// Diagnosis collects the statuses of a failed cycle.
type Diagnosis struct {
	NodeToStatus *NodeToStatus
	// UnschedulablePlugins are the plugins that rejected the pod; the
	// queue retries it on the events they registered for.
	UnschedulablePlugins sets.Set[string]
	// PreFilterMsg is set when PreFilter rejected the pod everywhere.
	PreFilterMsg string
	// PostFilterMsg is preemption's explanation.
	PostFilterMsg string
}

// Error formats the message: the count of nodes, then each distinct
// reason with the number of nodes that gave it, sorted as strings.
func (f *FitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available:", f.NumAllNodes)
	if f.Diagnosis.PreFilterMsg != "" {
		fmt.Fprintf(&b, " %s.", f.Diagnosis.PreFilterMsg)
	} else if hist := f.reasonHistogram(); len(hist) > 0 {
		fmt.Fprintf(&b, " %s.", strings.Join(hist, ", "))
	}
	if f.Diagnosis.PostFilterMsg != "" {
		fmt.Fprintf(&b, " %s.", f.Diagnosis.PostFilterMsg)
	}
	return b.String()
}

func (f *FitError) reasonHistogram() []string {
	counts := map[string]int{}
	nts := f.Diagnosis.NodeToStatus
	if nts == nil {
		return nil
	}
	for _, s := range nts.m {
		for _, r := range s.Reasons() {
			counts[r]++
		}
	}
	if absent := f.NumAllNodes - len(nts.m); absent > 0 {
		for _, r := range nts.absent.Reasons() {
			counts[r] += absent
		}
	}
	out := make([]string, 0, len(counts))
	for r, n := range counts {
		out = append(out, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(out)
	return out
}
