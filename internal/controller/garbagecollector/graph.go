package garbagecollector

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Finalizers the API server adds for the two deletion modes that need the
// collector.
const (
	orphanFinalizer     = metav1.FinalizerOrphanDependents
	foregroundFinalizer = metav1.FinalizerDeleteDependents
)

// identity names an object: its kind and version, where it lives, its UID.
type identity struct {
	apiVersion, kind string
	namespace, name  string
	uid              types.UID
}

func (id identity) String() string {
	if id.namespace == "" {
		return fmt.Sprintf("%s %s %s (%s)", id.apiVersion, id.kind, id.name, id.uid)
	}
	return fmt.Sprintf("%s %s %s/%s (%s)", id.apiVersion, id.kind, id.namespace, id.name, id.uid)
}

func (id identity) groupKind() schema.GroupKind {
	gv, err := schema.ParseGroupVersion(id.apiVersion)
	if err != nil {
		return schema.GroupKind{Kind: id.kind}
	}
	return schema.GroupKind{Group: gv.Group, Kind: id.kind}
}

// node is an object in the ownership graph. Its fields are guarded by the
// graph's mutex.
type node struct {
	id identity
	// owners are the object's ownerReferences as last seen.
	owners []metav1.OwnerReference
	// dependents are the nodes that name this one as an owner.
	dependents map[*node]struct{}
	// virtual nodes are only known as someone's owner; the collector
	// checks with the API whether they exist.
	virtual bool
	// beingDeleted: the object has a deletionTimestamp.
	beingDeleted bool
	// deletingDependents: being deleted in the foreground (it carries the
	// foregroundDeletion finalizer); its dependents go first.
	deletingDependents bool
	// orphaning: being deleted with the orphan finalizer.
	orphaning bool
}

// graph is the ownership graph of every object the monitors see, keyed
// by UID. Only the graph goroutine changes its shape; workers read it.
type graph struct {
	// mu guards nodes and every node's fields.
	mu    sync.RWMutex
	nodes map[types.UID]*node
}

func newGraph() *graph { return &graph{nodes: map[types.UID]*node{}} }

// eventType is what happened to an object.
type eventType int

const (
	addEvent eventType = iota
	updateEvent
	deleteEvent
)

// event is a change of the graph: an object seen by a monitor, or the
// collector's conclusion that a virtual node does not exist (virtual).
type event struct {
	typ     eventType
	obj     *metav1.PartialObjectMetadata
	gvk     schema.GroupVersionKind
	virtual bool
}

// outcome lists the nodes that a change of the graph makes worth another
// look: to be checked for deletion, or to have their dependents orphaned.
type outcome struct {
	attemptToDelete []*node
	attemptToOrphan []*node
}

func hasFinalizer(m metav1.Object, f string) bool { return slices.Contains(m.GetFinalizers(), f) }

func identityOf(obj *metav1.PartialObjectMetadata, gvk schema.GroupVersionKind) identity {
	return identity{apiVersion: gvk.GroupVersion().String(), kind: gvk.Kind, namespace: obj.Namespace, name: obj.Name, uid: obj.UID}
}

// apply changes the graph for e and returns what needs attention, in UID
// order.
func (g *graph) apply(e event) outcome {
	out := g.applyChange(e)
	byUID := func(a, b *node) int { return strings.Compare(string(a.id.uid), string(b.id.uid)) }
	slices.SortFunc(out.attemptToDelete, byUID)
	slices.SortFunc(out.attemptToOrphan, byUID)
	return out
}

func (g *graph) applyChange(e event) outcome {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out outcome
	obj := e.obj
	existing := g.nodes[obj.UID]

	if e.typ == deleteEvent {
		if existing == nil {
			return out
		}
		if e.virtual && !existing.virtual && (existing.id.name != obj.Name || existing.id.namespace != obj.Namespace) {
			// The collector found nothing where a dependent's reference
			// pointed, but the object exists under other coordinates:
			// keep it, and let the dependents check their references.
			for dep := range existing.dependents {
				out.attemptToDelete = append(out.attemptToDelete, dep)
			}
			return out
		}
		g.removeLocked(existing)
		for dep := range existing.dependents {
			out.attemptToDelete = append(out.attemptToDelete, dep)
		}
		for _, ref := range existing.owners {
			if owner := g.nodes[ref.UID]; owner != nil && owner.deletingDependents {
				// A foreground deletion may have waited for this one.
				out.attemptToDelete = append(out.attemptToDelete, owner)
			}
		}
		return out
	}

	if existing == nil {
		n := &node{id: identityOf(obj, e.gvk), owners: slices.Clone(obj.OwnerReferences), dependents: map[*node]struct{}{}}
		g.nodes[obj.UID] = n
		out.attemptToDelete = append(out.attemptToDelete, g.linkOwnersLocked(n, n.owners)...)
		g.transitionsLocked(n, obj, &out)
		return out
	}

	if existing.virtual {
		// A virtual node's identity was a guess from an ownerReference;
		// now we know.
		existing.virtual = false
	}
	existing.id = identityOf(obj, e.gvk)
	added, removed, changed := diffOwners(existing.owners, obj.OwnerReferences)
	if len(added)+len(removed)+len(changed) > 0 {
		// An owner deleting in the foreground waits for blocking
		// dependents; one that is no longer (or no longer blocking) may
		// let it finish.
		for _, ref := range append(removed, changed...) {
			if owner := g.nodes[ref.UID]; owner != nil && owner.deletingDependents {
				out.attemptToDelete = append(out.attemptToDelete, owner)
			}
		}
		existing.owners = slices.Clone(obj.OwnerReferences)
		out.attemptToDelete = append(out.attemptToDelete, g.linkOwnersLocked(existing, added)...)
		for _, ref := range removed {
			if owner := g.nodes[ref.UID]; owner != nil {
				delete(owner.dependents, existing)
			}
		}
	}
	g.transitionsLocked(existing, obj, &out)
	return out
}

// linkOwnersLocked records n as a dependent of each owner in refs,
// creating virtual nodes for owners not seen yet, and returns the nodes to
// check with the API: those virtual nodes, and n itself when a reference
// does not match the owner as observed (another namespace, kind or name),
// since such a reference may be dangling or invalid.
func (g *graph) linkOwnersLocked(n *node, refs []metav1.OwnerReference) []*node {
	var check []*node
	suspicious := false
	for _, ref := range refs {
		owner := g.nodes[ref.UID]
		if owner != nil && !owner.virtual {
			gv, _ := schema.ParseGroupVersion(ref.APIVersion)
			switch {
			case owner.id.namespace != "" && owner.id.namespace != n.id.namespace:
				suspicious = true
			case owner.id.kind != ref.Kind || owner.id.name != ref.Name || owner.id.groupKind().Group != gv.Group:
				suspicious = true
			}
		}
		if owner == nil {
			owner = &node{
				id: identity{apiVersion: ref.APIVersion, kind: ref.Kind, namespace: n.id.namespace, name: ref.Name, uid: ref.UID},
				// The namespace is the dependent's: namespaced owners
				// must live there. The monitors correct it for
				// cluster-scoped owners when they see them.
				dependents: map[*node]struct{}{},
				virtual:    true,
			}
			g.nodes[ref.UID] = owner
			check = append(check, owner)
		}
		owner.dependents[n] = struct{}{}
	}
	if suspicious {
		check = append(check, n)
	}
	return check
}

func (g *graph) removeLocked(n *node) {
	delete(g.nodes, n.id.uid)
	for _, ref := range n.owners {
		if owner := g.nodes[ref.UID]; owner != nil {
			delete(owner.dependents, n)
		}
	}
}

// transitionsLocked notes deletion state from obj: an orphan finalizer
// queues the orphaning of n's dependents; a foreground finalizer makes n
// wait for its dependents, which are all queued for deletion.
func (g *graph) transitionsLocked(n *node, obj *metav1.PartialObjectMetadata, out *outcome) {
	n.beingDeleted = obj.DeletionTimestamp != nil
	n.orphaning = n.beingDeleted && hasFinalizer(obj, orphanFinalizer)
	if n.orphaning {
		out.attemptToOrphan = append(out.attemptToOrphan, n)
	}
	foreground := n.beingDeleted && hasFinalizer(obj, foregroundFinalizer)
	if foreground && !n.deletingDependents {
		for dep := range n.dependents {
			out.attemptToDelete = append(out.attemptToDelete, dep)
		}
		out.attemptToDelete = append(out.attemptToDelete, n)
	}
	n.deletingDependents = foreground
}

// diffOwners compares two ownerReference lists by UID: references only in
// cur (added), only in old (removed), and in both with a different
// blockOwnerDeletion (changed, as in old).
func diffOwners(old, cur []metav1.OwnerReference) (added, removed, changed []metav1.OwnerReference) {
	byUID := map[types.UID]metav1.OwnerReference{}
	for _, r := range old {
		byUID[r.UID] = r
	}
	for _, r := range cur {
		o, ok := byUID[r.UID]
		if !ok {
			added = append(added, r)
			continue
		}
		if blocks(o) != blocks(r) {
			changed = append(changed, o)
		}
		delete(byUID, r.UID)
	}
	for _, r := range old {
		if _, ok := byUID[r.UID]; ok {
			removed = append(removed, r)
		}
	}
	return added, removed, changed
}

func blocks(r metav1.OwnerReference) bool {
	return r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion
}

// snapshot is a copy of a node's state for a worker.
type snapshot struct {
	id                 identity
	virtual            bool
	beingDeleted       bool
	deletingDependents bool
	dependents         []*node
}

func (g *graph) snapshot(n *node) snapshot {
	g.mu.RLock()
	defer g.mu.RUnlock()
	s := snapshot{id: n.id, virtual: n.virtual, beingDeleted: n.beingDeleted, deletingDependents: n.deletingDependents}
	for d := range n.dependents {
		s.dependents = append(s.dependents, d)
	}
	slices.SortFunc(s.dependents, func(a, b *node) int { return strings.Compare(string(a.id.uid), string(b.id.uid)) })
	return s
}

// blockingDependents returns the dependents of n whose reference to n has
// blockOwnerDeletion, and whether each is being deleted.
func (g *graph) blockingDependents(n *node) []*node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*node
	for d := range n.dependents {
		for _, ref := range d.owners {
			if ref.UID == n.id.uid && blocks(ref) {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// isDeletingDependents reads the flag under the lock.
func (g *graph) isDeletingDependents(n *node) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return n.deletingDependents
}

func (g *graph) isBeingDeleted(n *node) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return n.beingDeleted
}

// lookup returns the node with uid, or nil.
func (g *graph) lookup(uid types.UID) *node {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.nodes[uid]
}
