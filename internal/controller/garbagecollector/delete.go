package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/metadata"
)

// errUnknownKind means an object or owner is of a kind discovery does not
// (yet) list; the work is retried after backoff, by which time a
// rediscovery may know it.
var errUnknownKind = errors.New("kind not served")

// client returns the metadata client for id's kind and namespace.
func (c *Collector) client(id identity) (metadata.ResourceInterface, resource, error) {
	res, ok := c.catalog.lookup(id.groupKind())
	if !ok {
		return nil, resource{}, fmt.Errorf("%s: %w", id.groupKind(), errUnknownKind)
	}
	r := c.cfg.Metadata.Resource(res.gvr)
	if res.namespaced {
		return r.Namespace(id.namespace), res, nil
	}
	return r, res, nil
}

// get reads the object n stands for; nil when it is gone or replaced by
// another object of the same name.
func (c *Collector) get(ctx context.Context, id identity) (*metav1.PartialObjectMetadata, error) {
	cl, _, err := c.client(id)
	if err != nil {
		return nil, err
	}
	obj, err := cl.Get(ctx, id.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	if obj.UID != id.uid {
		return nil, nil
	}
	return obj, nil
}

// gone tells the graph that n does not exist, as its monitor would.
func (c *Collector) gone(n *node) {
	s := c.graph.snapshot(n)
	c.graphChanges.Add(&event{
		typ:     deleteEvent,
		virtual: true,
		obj:     &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: s.id.name, Namespace: s.id.namespace, UID: s.id.uid}},
	})
}

// attemptDelete decides n's fate: an object all of whose owners are gone
// (or deleting it in the foreground) is deleted; one with an owner left
// loses its references to the others; an owner deleting in the foreground
// loses its finalizer once no blocking dependent is left.
func (c *Collector) attemptDelete(ctx context.Context, n *node) error {
	s := c.graph.snapshot(n)
	if s.virtual {
		obj, err := c.get(ctx, s.id)
		if err != nil {
			return err
		}
		if obj == nil {
			c.absent.add(s.id)
			c.gone(n)
		}
		return nil
	}
	if s.beingDeleted && !s.deletingDependents {
		return nil // already going, nothing of ours to do
	}
	latest, err := c.get(ctx, s.id)
	if err != nil {
		return err
	}
	if latest == nil {
		c.gone(n)
		return nil
	}
	if latest.DeletionTimestamp != nil && !hasFinalizer(latest, foregroundFinalizer) {
		return nil // going already; its monitor will tell
	}
	if s.deletingDependents {
		return c.finishForeground(ctx, n, latest)
	}
	if len(latest.OwnerReferences) == 0 {
		return nil
	}
	solid, dangling, waiting, err := c.classify(ctx, s.id, latest)
	if err != nil {
		return err
	}
	switch {
	case len(solid) > 0:
		if len(dangling)+len(waiting) == 0 {
			return nil
		}
		// It has a live owner: it stays, without the others.
		drop := map[types.UID]bool{}
		for _, r := range append(dangling, waiting...) {
			drop[r.UID] = true
		}
		refs := slices.DeleteFunc(slices.Clone(latest.OwnerReferences), func(r metav1.OwnerReference) bool { return drop[r.UID] })
		return c.patchOwners(ctx, s.id, latest, refs)
	case len(waiting) > 0 && len(s.dependents) > 0:
		// Its owner deletes in the foreground and it has dependents of its
		// own: it goes in the foreground too. If one of its dependents
		// also waits on its dependents, they may be waiting on each other:
		// stop blocking the owners first.
		for _, d := range s.dependents {
			if c.graph.isDeletingDependents(d) {
				refs := slices.Clone(latest.OwnerReferences)
				for i := range refs {
					if blocks(refs[i]) {
						refs[i].BlockOwnerDeletion = new(bool)
					}
				}
				if err := c.patchOwners(ctx, s.id, latest, refs); err != nil {
					return err
				}
				break
			}
		}
		return c.delete(ctx, s.id, latest, metav1.DeletePropagationForeground)
	default:
		policy := metav1.DeletePropagationBackground
		switch {
		case hasFinalizer(latest, orphanFinalizer):
			policy = metav1.DeletePropagationOrphan
		case hasFinalizer(latest, foregroundFinalizer):
			policy = metav1.DeletePropagationForeground
		}
		return c.delete(ctx, s.id, latest, policy)
	}
}

// classify sorts latest's owner references: solid (the owner exists and
// is not deleting in the foreground), dangling (the owner is gone) and
// waiting (the owner deletes in the foreground).
func (c *Collector) classify(ctx context.Context, dep identity, latest *metav1.PartialObjectMetadata) (solid, dangling, waiting []metav1.OwnerReference, err error) {
	for _, ref := range latest.OwnerReferences {
		owner := identity{apiVersion: ref.APIVersion, kind: ref.Kind, name: ref.Name, uid: ref.UID, namespace: dep.namespace}
		res, ok := c.catalog.lookup(owner.groupKind())
		if !ok {
			return nil, nil, nil, fmt.Errorf("owner %s of %s: %w", owner, dep, errUnknownKind)
		}
		if res.namespaced && dep.namespace == "" {
			// A cluster-scoped object cannot be owned by a namespaced
			// one: the reference cannot be resolved, so it protects the
			// object rather than doom it.
			c.events.Eventf(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: dep.apiVersion, Kind: dep.kind}, ObjectMeta: latest.ObjectMeta},
				corev1.EventTypeWarning, "OwnerRefInvalidNamespace", "ownerRef %s/%s %s does not exist in namespace %q", ref.APIVersion, ref.Kind, ref.Name, dep.namespace)
			solid = append(solid, ref)
			continue
		}
		if !res.namespaced {
			owner.namespace = ""
		}
		if c.absent.has(owner) {
			dangling = append(dangling, ref)
			continue
		}
		obj, err := c.get(ctx, owner)
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case obj == nil:
			c.absent.add(owner)
			dangling = append(dangling, ref)
		case obj.DeletionTimestamp != nil && hasFinalizer(obj, foregroundFinalizer):
			waiting = append(waiting, ref)
		default:
			solid = append(solid, ref)
		}
	}
	return solid, dangling, waiting, nil
}

// finishForeground removes the foregroundDeletion finalizer from an owner
// once no dependent blocks it, and otherwise makes sure its blocking
// dependents are on their way out.
func (c *Collector) finishForeground(ctx context.Context, n *node, latest *metav1.PartialObjectMetadata) error {
	blocking := c.graph.blockingDependents(n)
	if len(blocking) == 0 {
		return c.removeFinalizer(ctx, n, latest, foregroundFinalizer)
	}
	for _, d := range blocking {
		if !c.graph.isBeingDeleted(d) {
			c.attemptToDelete.Add(d)
		}
	}
	// The dependents' deletions bring the owner back here.
	return nil
}

// orphanDependents removes n from its dependents' owner references, then
// n's orphan finalizer.
func (c *Collector) orphanDependents(ctx context.Context, n *node) error {
	s := c.graph.snapshot(n)
	var errs []error
	for _, d := range s.dependents {
		ds := c.graph.snapshot(d)
		latest, err := c.get(ctx, ds.id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if latest == nil {
			continue
		}
		refs := slices.DeleteFunc(slices.Clone(latest.OwnerReferences), func(r metav1.OwnerReference) bool { return r.UID == s.id.uid })
		if len(refs) == len(latest.OwnerReferences) {
			continue
		}
		if err := c.patchOwners(ctx, ds.id, latest, refs); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	latest, err := c.get(ctx, s.id)
	if err != nil || latest == nil {
		return err
	}
	return c.removeFinalizer(ctx, n, latest, orphanFinalizer)
}

// patchOwners sets latest's owner references to refs with a merge patch
// that also carries its uid and resourceVersion, so that it fails rather
// than edit a newer or another object. A vanished object is no error; a
// conflict is returned, to retry with fresh data.
func (c *Collector) patchOwners(ctx context.Context, id identity, latest *metav1.PartialObjectMetadata, refs []metav1.OwnerReference) error {
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": refs, "uid": latest.UID, "resourceVersion": latest.ResourceVersion,
	}})
	if err != nil {
		return err
	}
	return c.patch(ctx, id, patch, "owner references")
}

// removeFinalizer removes f from latest, guarded like patchOwners.
func (c *Collector) removeFinalizer(ctx context.Context, n *node, latest *metav1.PartialObjectMetadata, f string) error {
	if !hasFinalizer(latest, f) {
		return nil
	}
	fins := slices.DeleteFunc(slices.Clone(latest.Finalizers), func(s string) bool { return s == f })
	if fins == nil {
		fins = []string{}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": fins, "uid": latest.UID, "resourceVersion": latest.ResourceVersion,
	}})
	if err != nil {
		return err
	}
	return c.patch(ctx, c.graph.snapshot(n).id, patch, "finalizer "+f)
}

func (c *Collector) patch(ctx context.Context, id identity, patch []byte, what string) error {
	cl, _, err := c.client(id)
	if err != nil {
		return err
	}
	_, err = cl.Patch(ctx, id.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patch %s of %s: %w", what, id, err)
	}
	c.log.Debug("patched", "object", id.String(), "what", what)
	return nil
}

// delete deletes latest with policy, on condition that it is still the
// object that was judged (same UID and resourceVersion).
func (c *Collector) delete(ctx context.Context, id identity, latest *metav1.PartialObjectMetadata, policy metav1.DeletionPropagation) error {
	cl, _, err := c.client(id)
	if err != nil {
		return err
	}
	uid, rv := latest.UID, latest.ResourceVersion
	err = cl.Delete(ctx, id.name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
		PropagationPolicy: &policy,
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	c.log.Info("deleted", "object", id.String(), "propagation", policy)
	return nil
}
