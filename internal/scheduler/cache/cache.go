// Package cache keeps the scheduler's picture of the cluster between
// scheduling cycles: every node, the pods bound to it, and the pods the
// scheduler has assumed onto it while their binding is in flight.
//
// Informer handlers feed it (AddNode, AddPod, ...), the scheduling loop
// assumes pods (AssumePod) and, on a failed binding, forgets them
// (ForgetPod). Once the informer reports the bound pod, AddPod confirms
// the assumption. Before each cycle, UpdateSnapshot copies into the
// cycle's Snapshot only the nodes that changed since the last copy:
//
//	head ─► n7 (gen 912) ─► n3 (gen 910) ─► n1 (gen 870) ─► ...
//	         └─ copied ──────┘   snapshot generation 900: stop here
//
// Nodes are kept in a list ordered by their last change, newest first;
// every change stamps the node with the cache's next generation and
// moves it to the head. A cycle that follows one binding copies one node.
package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Errors the cache returns, wrapped with the pod or node.
var (
	// ErrPodAssumed is returned when a pod the cache already has is
	// assumed again.
	ErrPodAssumed = errors.New("pod already in the cache")
	// ErrPodNotAssumed is returned when forgetting a pod that is not
	// assumed (the informer confirmed it, or it was never assumed).
	ErrPodNotAssumed = errors.New("pod not assumed")
	// ErrPodUnknown is returned when removing a pod the cache does not
	// have.
	ErrPodUnknown = errors.New("pod not in the cache")
)

// Cache is the scheduler's node cache. It is safe for concurrent use.
type Cache struct {
	log *slog.Logger

	mu sync.Mutex
	// nodes holds every node the cache knows, and "ghost" nodes that
	// only hold pods whose node has not been seen (or was deleted while
	// they still ran). Guarded by mu, like every field below.
	nodes map[string]*nodeItem
	// head is the most recently changed node.
	head *nodeItem
	// tree orders the real nodes for snapshots, zones interleaved.
	tree *nodeTree
	// pods are the pods in the cache by UID.
	pods map[types.UID]*podState
	// assumed are the UIDs of pods assumed and not yet confirmed.
	assumed sets.Set[types.UID]
	// images are the nodes holding each image name.
	images map[string]*imageState
	// generation is the last generation given to a node.
	generation int64
}

type nodeItem struct {
	info       *framework.NodeInfo
	prev, next *nodeItem
}

type podState struct {
	pi *framework.PodInfo
}

type imageState struct {
	size  int64
	nodes sets.Set[string]
}

// New returns an empty cache; a nil logger discards.
func New(logger *slog.Logger) *Cache {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{
		log:     logger,
		nodes:   map[string]*nodeItem{},
		tree:    newNodeTree(),
		pods:    map[types.UID]*podState{},
		assumed: sets.New[types.UID](),
		images:  map[string]*imageState{},
	}
}

func podKey(pod *v1.Pod) string { return pod.Namespace + "/" + pod.Name }

// touchLocked stamps a node with the next generation and moves it to the
// head of the list.
func (c *Cache) touchLocked(name string) {
	it := c.nodes[name]
	c.generation++
	it.info.Generation = c.generation
	if c.head == it {
		return
	}
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	it.prev, it.next = nil, c.head
	if c.head != nil {
		c.head.prev = it
	}
	c.head = it
}

// itemLocked returns the item of a node, creating a ghost one.
func (c *Cache) itemLocked(name string) *nodeItem {
	it, ok := c.nodes[name]
	if !ok {
		it = &nodeItem{info: framework.NewNodeInfo()}
		c.nodes[name] = it
	}
	return it
}

func (c *Cache) removeItemLocked(name string) {
	it := c.nodes[name]
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	if c.head == it {
		c.head = it.next
	}
	delete(c.nodes, name)
}

func (c *Cache) addPodLocked(pi *framework.PodInfo) {
	name := pi.Pod.Spec.NodeName
	c.itemLocked(name).info.AddPod(pi)
	c.touchLocked(name)
	c.pods[pi.Pod.UID] = &podState{pi: pi}
}

func (c *Cache) removePodLocked(pod *v1.Pod) error {
	name := pod.Spec.NodeName
	it, ok := c.nodes[name]
	if !ok {
		return fmt.Errorf("pod %s: node %s: %w", podKey(pod), name, ErrPodUnknown)
	}
	if err := it.info.RemovePod(pod); err != nil {
		return err
	}
	if it.info.Node() == nil && len(it.info.Pods) == 0 {
		c.removeItemLocked(name)
	} else {
		c.touchLocked(name)
	}
	delete(c.pods, pod.UID)
	return nil
}

// AssumePod counts a pod on pi.Pod.Spec.NodeName before its binding is
// confirmed, so that the next cycles see the room it takes. pi.Pod must
// be the scheduler's own copy with spec.nodeName set. It returns an
// error wrapping ErrPodAssumed if the pod is already in the cache.
func (c *Cache) AssumePod(pi *framework.PodInfo) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pi.Pod.UID]; ok {
		return fmt.Errorf("pod %s: %w", podKey(pi.Pod), ErrPodAssumed)
	}
	c.addPodLocked(pi)
	c.assumed.Insert(pi.Pod.UID)
	return nil
}

// ForgetPod drops an assumed pod whose binding failed. It returns an
// error wrapping ErrPodNotAssumed when the pod is not assumed on that
// node.
func (c *Cache) ForgetPod(pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok || !c.assumed.Has(pod.UID) || ps.pi.Pod.Spec.NodeName != pod.Spec.NodeName {
		return fmt.Errorf("pod %s: %w", podKey(pod), ErrPodNotAssumed)
	}
	if err := c.removePodLocked(ps.pi.Pod); err != nil {
		return err
	}
	c.assumed.Delete(pod.UID)
	return nil
}

// IsAssumedPod reports whether the pod is assumed and not yet confirmed.
func (c *Cache) IsAssumedPod(pod *v1.Pod) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assumed.Has(pod.UID)
}

// AddPod records a pod bound to a node, as the informer reports it. An
// assumed pod is confirmed (and moved if it was bound elsewhere); a pod
// already added is updated. It fails only when the pod does not parse.
func (c *Cache) AddPod(pod *v1.Pod) error {
	pi, err := framework.NewPodInfo(pod)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[pod.UID]; ok {
		if err := c.removePodLocked(ps.pi.Pod); err != nil {
			return err
		}
		if c.assumed.Has(pod.UID) && ps.pi.Pod.Spec.NodeName != pod.Spec.NodeName {
			c.log.Warn("pod bound to a different node than assumed", "pod", podKey(pod), "assumed", ps.pi.Pod.Spec.NodeName, "bound", pod.Spec.NodeName)
		}
		c.assumed.Delete(pod.UID)
	}
	c.addPodLocked(pi)
	return nil
}

// UpdatePod replaces a bound pod's object (labels, requests after a
// resize). An unknown pod is added.
func (c *Cache) UpdatePod(_, pod *v1.Pod) error { return c.AddPod(pod) }

// RemovePod forgets a pod that was deleted or finished. It returns an
// error wrapping ErrPodUnknown when the cache does not have it.
func (c *Cache) RemovePod(pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok {
		return fmt.Errorf("pod %s: %w", podKey(pod), ErrPodUnknown)
	}
	c.assumed.Delete(pod.UID)
	return c.removePodLocked(ps.pi.Pod)
}

// AddNode records a node (or replaces it: UpdateNode is the same).
func (c *Cache) AddNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.itemLocked(node.Name)
	old := it.info.Node()
	if old != nil {
		c.removeImagesLocked(old)
	}
	// A node keeps its place in the order unless its zone changes.
	if old == nil || zoneOf(old) != zoneOf(node) {
		if old != nil {
			c.tree.remove(old)
		}
		c.tree.add(node)
	}
	it.info.SetNode(node)
	c.addImagesLocked(node)
	c.touchLocked(node.Name)
}

// UpdateNode records a node's new state.
func (c *Cache) UpdateNode(_, node *v1.Node) { c.AddNode(node) }

// RemoveNode forgets a node. Its pods stay counted (on a node without an
// object, left out of snapshots) until the informer reports them gone.
func (c *Cache) RemoveNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[node.Name]
	if !ok || it.info.Node() == nil {
		return
	}
	c.removeImagesLocked(it.info.Node())
	c.tree.remove(it.info.Node())
	it.info.RemoveNode()
	if len(it.info.Pods) == 0 {
		c.removeItemLocked(node.Name)
		return
	}
	c.touchLocked(node.Name)
}

func (c *Cache) addImagesLocked(node *v1.Node) {
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			st := c.images[name]
			if st == nil {
				st = &imageState{size: img.SizeBytes, nodes: sets.New[string]()}
				c.images[name] = st
			}
			st.nodes.Insert(node.Name)
		}
	}
}

func (c *Cache) removeImagesLocked(node *v1.Node) {
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if st := c.images[name]; st != nil {
				st.nodes.Delete(node.Name)
				if st.nodes.Len() == 0 {
					delete(c.images, name)
				}
			}
		}
	}
}

// imageSummariesLocked builds a node's image states from the cache's
// image counts at this moment.
func (c *Cache) imageSummariesLocked(node *v1.Node) map[string]*framework.ImageStateSummary {
	if len(node.Status.Images) == 0 {
		return nil
	}
	out := make(map[string]*framework.ImageStateSummary, len(node.Status.Images))
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if st := c.images[name]; st != nil {
				out[name] = &framework.ImageStateSummary{Size: st.size, NumNodes: st.nodes.Len()}
			}
		}
	}
	return out
}

// Counts returns how many nodes (with an object) and pods the cache
// holds, and how many of the pods are assumed.
func (c *Cache) Counts() (nodes, pods, assumed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tree.len(), len(c.pods), c.assumed.Len()
}

// NodeOf returns the node a pod is counted on, and whether the cache has
// the pod.
func (c *Cache) NodeOf(uid types.UID) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[uid]
	if !ok {
		return "", false
	}
	return ps.pi.Pod.Spec.NodeName, true
}
