package framework

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ErrPodNotFound is returned when a pod to remove is not on a node.
var ErrPodNotFound = errors.New("pod not found")

// NodeInfo is a node with the pods the scheduler counts on it (bound and
// assumed) and the sums that filtering and scoring read. Plugins get
// NodeInfos from a snapshot and must treat them as read-only; the
// preemption plugin works on clones.
type NodeInfo struct {
	node *v1.Node

	// Pods are every pod on the node.
	Pods []*PodInfo
	// PodsWithAffinity are the pods with any pod (anti-)affinity term.
	PodsWithAffinity []*PodInfo
	// PodsWithRequiredAntiAffinity are the pods with a required
	// anti-affinity term.
	PodsWithRequiredAntiAffinity []*PodInfo
	// UsedPorts are the host ports the pods hold.
	UsedPorts HostPortInfo
	// Requested is the sum of the pods' requests.
	Requested Resource
	// NonZeroRequested is the sum of the pods' NonZeroRequests.
	NonZeroRequested Resource
	// Allocatable is the node's status.allocatable.
	Allocatable Resource
	// ImageStates are the node's images that ImageLocality scores, by
	// every name the node reports for them.
	ImageStates map[string]*ImageStateSummary
	// Generation increases on every change; the cache uses it to copy
	// only changed nodes into a snapshot.
	Generation int64
}

// ImageStateSummary is what ImageLocality knows about an image on a node.
type ImageStateSummary struct {
	// Size in bytes.
	Size int64
	// NumNodes is how many nodes have the image.
	NumNodes int
}

// NewNodeInfo returns a NodeInfo without a node, holding pods.
func NewNodeInfo(pods ...*PodInfo) *NodeInfo {
	n := &NodeInfo{UsedPorts: HostPortInfo{}}
	for _, p := range pods {
		n.AddPod(p)
	}
	return n
}

// Node returns the node, or nil when only pods are known (they were seen
// before their node).
func (n *NodeInfo) Node() *v1.Node {
	if n == nil {
		return nil
	}
	return n.node
}

// SetNode sets the node and its allocatable resources.
func (n *NodeInfo) SetNode(node *v1.Node) {
	n.node = node
	n.Allocatable = NewResource(node.Status.Allocatable)
}

// RemoveNode forgets the node but keeps the pods.
func (n *NodeInfo) RemoveNode() { n.node = nil }

// AddPod counts pi on the node.
func (n *NodeInfo) AddPod(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if pi.HasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if len(pi.RequiredAntiAffinityTerms) > 0 {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.Requested.Add(&pi.Requests)
	n.NonZeroRequested.Add(&pi.NonZeroRequests)
	n.updatePorts(pi.Pod, true)
}

// RemovePod stops counting the pod with pod's UID. It returns an error
// wrapping ErrPodNotFound when the node does not hold it.
func (n *NodeInfo) RemovePod(pod *v1.Pod) error {
	i := slices.IndexFunc(n.Pods, func(p *PodInfo) bool { return p.Pod.UID == pod.UID })
	if i < 0 {
		return fmt.Errorf("pod %s/%s on node %s: %w", pod.Namespace, pod.Name, n.name(), ErrPodNotFound)
	}
	pi := n.Pods[i]
	n.Pods = removeAt(n.Pods, i)
	n.PodsWithAffinity = removeUID(n.PodsWithAffinity, pod.UID)
	n.PodsWithRequiredAntiAffinity = removeUID(n.PodsWithRequiredAntiAffinity, pod.UID)
	n.Requested.Sub(&pi.Requests)
	n.NonZeroRequested.Sub(&pi.NonZeroRequests)
	n.updatePorts(pi.Pod, false)
	return nil
}

func (n *NodeInfo) name() string {
	if n.node == nil {
		return "<unknown>"
	}
	return n.node.Name
}

// removeAt removes element i without keeping order, clearing the freed
// slot so the pod can be collected.
func removeAt(s []*PodInfo, i int) []*PodInfo {
	last := len(s) - 1
	s[i] = s[last]
	s[last] = nil
	return s[:last]
}

func removeUID(s []*PodInfo, uid types.UID) []*PodInfo {
	for i, p := range s {
		if p.Pod.UID == uid {
			return removeAt(s, i)
		}
	}
	return s
}

func (n *NodeInfo) updatePorts(pod *v1.Pod, add bool) {
	for _, p := range HostPorts(pod) {
		if add {
			n.UsedPorts.Add(p.HostIP, string(p.Protocol), p.HostPort)
		} else {
			n.UsedPorts.Remove(p.HostIP, string(p.Protocol), p.HostPort)
		}
	}
}

// HostPorts returns the ports of pod's containers and sidecars (restartable
// init containers) that claim a host port. The caller owns the slice.
func HostPorts(pod *v1.Pod) []v1.ContainerPort {
	var out []v1.ContainerPort
	add := func(cs []v1.Container, sidecarsOnly bool) {
		for i := range cs {
			if sidecarsOnly && (cs[i].RestartPolicy == nil || *cs[i].RestartPolicy != v1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range cs[i].Ports {
				if p.HostPort > 0 {
					out = append(out, p)
				}
			}
		}
	}
	add(pod.Spec.InitContainers, true)
	add(pod.Spec.Containers, false)
	return out
}

// Clone returns a copy that can be changed without touching n. PodInfos
// and the node object are shared (they are immutable).
func (n *NodeInfo) Clone() *NodeInfo {
	c := &NodeInfo{
		node:             n.node,
		Pods:             slices.Clone(n.Pods),
		UsedPorts:        n.UsedPorts.Clone(),
		Requested:        n.Requested.Clone(),
		NonZeroRequested: n.NonZeroRequested.Clone(),
		Allocatable:      n.Allocatable.Clone(),
		ImageStates:      maps.Clone(n.ImageStates),
		Generation:       n.Generation,
	}
	if len(n.PodsWithAffinity) > 0 {
		c.PodsWithAffinity = slices.Clone(n.PodsWithAffinity)
	}
	if len(n.PodsWithRequiredAntiAffinity) > 0 {
		c.PodsWithRequiredAntiAffinity = slices.Clone(n.PodsWithRequiredAntiAffinity)
	}
	return c
}

// HostPortInfo records host ports in use: IP → "protocol/port" set. The
// zero IP "0.0.0.0" (or an empty HostIP) conflicts with every address.
type HostPortInfo map[string]map[ProtocolPort]struct{}

// ProtocolPort is a protocol and a port.
type ProtocolPort struct {
	Protocol string
	Port     int32
}

const wildcardIP = "0.0.0.0"

func normalizePort(ip, protocol string) (string, string) {
	if ip == "" {
		ip = wildcardIP
	}
	if protocol == "" {
		protocol = string(v1.ProtocolTCP)
	}
	return ip, protocol
}

// Add records a port; port 0 (no host port) is ignored.
func (h HostPortInfo) Add(ip, protocol string, port int32) {
	if port <= 0 {
		return
	}
	ip, protocol = normalizePort(ip, protocol)
	m := h[ip]
	if m == nil {
		m = map[ProtocolPort]struct{}{}
		h[ip] = m
	}
	m[ProtocolPort{protocol, port}] = struct{}{}
}

// Remove forgets a port.
func (h HostPortInfo) Remove(ip, protocol string, port int32) {
	if port <= 0 {
		return
	}
	ip, protocol = normalizePort(ip, protocol)
	if m := h[ip]; m != nil {
		delete(m, ProtocolPort{protocol, port})
		if len(m) == 0 {
			delete(h, ip)
		}
	}
}

// Conflicts reports whether the port is taken on ip, counting the
// wildcard address on either side.
func (h HostPortInfo) Conflicts(ip, protocol string, port int32) bool {
	if port <= 0 {
		return false
	}
	ip, protocol = normalizePort(ip, protocol)
	pp := ProtocolPort{protocol, port}
	if ip == wildcardIP {
		for _, m := range h {
			if _, ok := m[pp]; ok {
				return true
			}
		}
		return false
	}
	for _, key := range []string{ip, wildcardIP} {
		if _, ok := h[key][pp]; ok {
			return true
		}
	}
	return false
}

// Clone returns a deep copy.
func (h HostPortInfo) Clone() HostPortInfo {
	c := make(HostPortInfo, len(h))
	for ip, m := range h {
		c[ip] = maps.Clone(m)
	}
	return c
}
