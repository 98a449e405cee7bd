package cache

import (
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Snapshot is the cluster as one scheduling cycle sees it. The scheduler
// owns one and refreshes it with Cache.UpdateSnapshot between cycles;
// during a cycle it does not change, so plugins read it without locks.
type Snapshot struct {
	nodeInfoMap                      map[string]*framework.NodeInfo
	nodeInfoList                     []*framework.NodeInfo
	havePodsWithAffinity             []*framework.NodeInfo
	havePodsWithRequiredAntiAffinity []*framework.NodeInfo
	// generation is the cache generation the snapshot reflects.
	generation int64
}

var _ framework.SharedLister = (*Snapshot)(nil)

// NewEmptySnapshot returns a snapshot with no nodes.
func NewEmptySnapshot() *Snapshot {
	return &Snapshot{nodeInfoMap: map[string]*framework.NodeInfo{}}
}

// NewSnapshot builds a snapshot directly from objects, for tests and
// tools: pods are counted on their spec.nodeName. It panics on a pod
// whose affinity does not parse.
func NewSnapshot(pods []*v1.Pod, nodes []*v1.Node) *Snapshot {
	c := New(nil)
	for _, n := range nodes {
		c.AddNode(n)
	}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			continue
		}
		if err := c.AddPod(p); err != nil {
			panic(err)
		}
	}
	s := NewEmptySnapshot()
	if err := c.UpdateSnapshot(s); err != nil {
		panic(err)
	}
	return s
}

// List returns the nodes, zones interleaved.
func (s *Snapshot) List() []*framework.NodeInfo { return s.nodeInfoList }

// HavePodsWithAffinityList returns the nodes with a pod that has an
// affinity or anti-affinity term.
func (s *Snapshot) HavePodsWithAffinityList() []*framework.NodeInfo { return s.havePodsWithAffinity }

// HavePodsWithRequiredAntiAffinityList returns the nodes with a pod that
// has a required anti-affinity term.
func (s *Snapshot) HavePodsWithRequiredAntiAffinityList() []*framework.NodeInfo {
	return s.havePodsWithRequiredAntiAffinity
}

// Get returns a node by name, or nil.
func (s *Snapshot) Get(name string) *framework.NodeInfo { return s.nodeInfoMap[name] }

// NumNodes is the number of nodes.
func (s *Snapshot) NumNodes() int { return len(s.nodeInfoList) }

// UpdateSnapshot brings s up to date, copying only the nodes that changed
// since s was last updated. s must be used with this cache only. The
// lists are rebuilt only when nodes come or go or a node starts or stops
// holding pods with affinity.
func (c *Cache) UpdateSnapshot(s *Snapshot) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rebuildAll, rebuildAffinity bool
	for it := c.head; it != nil; it = it.next {
		if it.info.Generation <= s.generation {
			break
		}
		node := it.info.Node()
		if node == nil {
			continue
		}
		existing, ok := s.nodeInfoMap[node.Name]
		if !ok {
			rebuildAll = true
			existing = &framework.NodeInfo{}
			s.nodeInfoMap[node.Name] = existing
		}
		clone := it.info.Clone()
		clone.ImageStates = c.imageSummariesLocked(node)
		if (len(existing.PodsWithAffinity) > 0) != (len(clone.PodsWithAffinity) > 0) ||
			(len(existing.PodsWithRequiredAntiAffinity) > 0) != (len(clone.PodsWithRequiredAntiAffinity) > 0) {
			rebuildAffinity = true
		}
		// Copy in place: the lists hold pointers to these NodeInfos.
		*existing = *clone
	}
	if c.head != nil {
		s.generation = c.head.info.Generation
	}
	if len(s.nodeInfoMap) > c.tree.len() {
		for name := range s.nodeInfoMap {
			if it, ok := c.nodes[name]; !ok || it.info.Node() == nil {
				delete(s.nodeInfoMap, name)
			}
		}
		rebuildAll = true
	}
	if rebuildAll || rebuildAffinity {
		c.rebuildListsLocked(s, rebuildAll)
	}
	if len(s.nodeInfoList) != c.tree.len() || len(s.nodeInfoMap) != c.tree.len() {
		// Never expected; rebuild from scratch rather than schedule on a
		// wrong picture.
		c.log.Error("snapshot out of step with the cache; rebuilding", "snapshotNodes", len(s.nodeInfoList), "cacheNodes", c.tree.len())
		*s = *NewEmptySnapshot()
		for _, name := range c.tree.list() {
			it := c.nodes[name]
			clone := it.info.Clone()
			clone.ImageStates = c.imageSummariesLocked(it.info.Node())
			s.nodeInfoMap[name] = clone
		}
		if c.head != nil {
			s.generation = c.head.info.Generation
		}
		c.rebuildListsLocked(s, true)
		if len(s.nodeInfoList) != c.tree.len() {
			return fmt.Errorf("snapshot has %d nodes, cache %d", len(s.nodeInfoList), c.tree.len())
		}
	}
	return nil
}

func (c *Cache) rebuildListsLocked(s *Snapshot, all bool) {
	if all {
		names := c.tree.list()
		s.nodeInfoList = slices.Grow(s.nodeInfoList[:0], len(names))
		for _, name := range names {
			if ni := s.nodeInfoMap[name]; ni != nil {
				s.nodeInfoList = append(s.nodeInfoList, ni)
			}
		}
	}
	s.havePodsWithAffinity = s.havePodsWithAffinity[:0]
	s.havePodsWithRequiredAntiAffinity = s.havePodsWithRequiredAntiAffinity[:0]
	for _, ni := range s.nodeInfoList {
		if len(ni.PodsWithAffinity) > 0 {
			s.havePodsWithAffinity = append(s.havePodsWithAffinity, ni)
		}
		if len(ni.PodsWithRequiredAntiAffinity) > 0 {
			s.havePodsWithRequiredAntiAffinity = append(s.havePodsWithRequiredAntiAffinity, ni)
		}
	}
}

// nodeTree orders nodes so that consecutive nodes come from different
// zones (topology.kubernetes.io/zone, with region): a cycle that stops
// after enough feasible nodes still sees every zone.
type nodeTree struct {
	zones  []string            // in order of first appearance
	byZone map[string][]string // zone → node names, in order of addition
	n      int
	cached []string // the interleaved list, nil when stale
}

func newNodeTree() *nodeTree { return &nodeTree{byZone: map[string][]string{}} }

func zoneOf(node *v1.Node) string {
	region, zone := node.Labels[v1.LabelTopologyRegion], node.Labels[v1.LabelTopologyZone]
	if region == "" && zone == "" {
		return ""
	}
	return region + ":\x00:" + zone
}

func (t *nodeTree) add(node *v1.Node) {
	z := zoneOf(node)
	names, ok := t.byZone[z]
	if !ok {
		t.zones = append(t.zones, z)
	}
	t.byZone[z] = append(names, node.Name)
	t.n++
	t.cached = nil
}

func (t *nodeTree) remove(node *v1.Node) {
	z := zoneOf(node)
	names := t.byZone[z]
	i := slices.Index(names, node.Name)
	if i < 0 {
		return
	}
	names = slices.Delete(names, i, i+1)
	t.n--
	t.cached = nil
	if len(names) > 0 {
		t.byZone[z] = names
		return
	}
	delete(t.byZone, z)
	t.zones = slices.DeleteFunc(t.zones, func(s string) bool { return s == z })
}

func (t *nodeTree) len() int { return t.n }

// list returns the names round-robin across zones. The caller must not
// modify it.
func (t *nodeTree) list() []string {
	if t.cached != nil {
		return t.cached
	}
	out := make([]string, 0, t.n)
	for i := 0; len(out) < t.n; i++ {
		for _, z := range t.zones {
			if names := t.byZone[z]; i < len(names) {
				out = append(out, names[i])
			}
		}
	}
	t.cached = out
	return out
}
