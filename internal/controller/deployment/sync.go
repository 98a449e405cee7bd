package deployment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// controllerKind is what the controller writes into its ReplicaSets'
// ownerReferences.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// sync brings the Deployment at key (namespace/name) toward its spec. It
// returns an error when the work must be retried.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we made
	}
	cached, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deployment %s: %w", key, err)
	}
	d := cached.DeepCopy()
	if err := c.syncDeployment(ctx, d); err != nil {
		return fmt.Errorf("deployment %s: %w", key, err)
	}
	return nil
}

func (c *Controller) syncDeployment(ctx context.Context, d *appsv1.Deployment) error {
	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		c.events.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return c.writeStatus(ctx, d)
		}
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		c.log.Error("invalid selector", "deployment", keyOf(d), "err", err)
		return nil
	}
	rss, err := c.claimReplicaSets(ctx, d, selector)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		newRS, old := splitRevisions(d, rss)
		return c.syncStatus(ctx, d, newRS, old)
	}
	if err := c.checkPaused(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.scaleOnly(ctx, d, rss)
	}
	if c.isScalingEvent(d, rss) {
		return c.scaleOnly(ctx, d, rss)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return c.rolloutRecreate(ctx, d, rss, selector)
	}
	return c.rolloutRolling(ctx, d, rss)
}

// claimReplicaSets returns the ReplicaSets d owns after adopting orphans
// its selector matches and releasing owned ones it no longer matches.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, selector labels.Selector) ([]*appsv1.ReplicaSet, error) {
	all, err := c.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list replicasets: %w", err)
	}
	slices.SortFunc(all, func(a, b *appsv1.ReplicaSet) int { return strings.Compare(a.Name, b.Name) })
	var (
		owned    []*appsv1.ReplicaSet
		errs     []error
		canAdopt *bool
	)
	for _, rs := range all {
		ref := metav1.GetControllerOfNoCopy(rs)
		matches := selector.Matches(labels.Set(rs.Labels))
		switch {
		case ref != nil && ref.UID != d.UID:
		case ref != nil && matches:
			owned = append(owned, rs)
		case ref != nil:
			if d.DeletionTimestamp == nil {
				if _, err := c.patchOwner(ctx, rs, releasePatch(d.UID, rs.UID)); err != nil {
					errs = append(errs, fmt.Errorf("release replicaset %s: %w", rs.Name, err))
				}
			}
		case matches && d.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			if canAdopt == nil {
				ok := c.freshAndAlive(ctx, d)
				canAdopt = &ok
			}
			if !*canAdopt {
				continue
			}
			adopted, err := c.patchOwner(ctx, rs, adoptPatch(*metav1.NewControllerRef(d, controllerKind), rs.UID))
			if err != nil {
				errs = append(errs, fmt.Errorf("adopt replicaset %s: %w", rs.Name, err))
				continue
			}
			if adopted != nil {
				owned = append(owned, adopted)
			}
		}
	}
	return owned, errors.Join(errs...)
}

func (c *Controller) freshAndAlive(ctx context.Context, d *appsv1.Deployment) bool {
	fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	return err == nil && fresh.UID == d.UID && fresh.DeletionTimestamp == nil
}

func adoptPatch(ref metav1.OwnerReference, uid types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{ref}, "uid": uid}})
	return b
}

func releasePatch(owner, uid types.UID) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []map[string]any{{"$patch": "delete", "uid": owner}}, "uid": uid}})
	return b
}

// patchOwner applies an ownerReferences patch to rs and returns the
// result; a ReplicaSet gone or replaced (the uid in the patch no longer
// matches) is no error, and nil.
func (c *Controller) patchOwner(ctx context.Context, rs *appsv1.ReplicaSet, patch []byte) (*appsv1.ReplicaSet, error) {
	out, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil, nil
	}
	return out, err
}

// checkPaused keeps the Progressing condition in step with spec.paused.
func (c *Controller) checkPaused(ctx context.Context, d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == reasonTimedOut {
		// A timed-out rollout stays reported as such until it progresses.
		return nil
	}
	pausedNoted := cond != nil && cond.Reason == reasonPaused
	switch {
	case d.Spec.Paused && !pausedNoted:
		setCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused"))
	case !d.Spec.Paused && pausedNoted:
		setCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed"))
	default:
		return nil
	}
	return c.writeStatus(ctx, d)
}

// isScalingEvent reports whether spec.replicas changed since the active
// ReplicaSets were last sized.
func (c *Controller) isScalingEvent(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) bool {
	for _, rs := range active(rss...) {
		if want, ok := annotationInt(rs, DesiredReplicasAnnotation); ok && want != desired(d) {
			return true
		}
	}
	return false
}

// scaleOnly resizes the existing revisions without rolling out (paused
// Deployments and scaling events), then cleans up and reports status.
func (c *Controller) scaleOnly(ctx context.Context, d *appsv1.Deployment, rss []*appsv1.ReplicaSet) error {
	newRS, old, err := c.revisions(ctx, d, rss, false)
	if err != nil {
		return err
	}
	if err := c.scale(ctx, d, newRS, old); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, d, newRS, old)
}

// scale sizes the revisions of d for spec.replicas: the one active
// revision takes it all; a saturated new revision takes it all and the
// old go to zero; otherwise (mid-rollout) the change is shared out in
// proportion to each revision's size, the rest to the largest.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	if rs := activeOrLatest(newRS, old); rs != nil {
		// Also when the size is right: stale replicas annotations would
		// make every sync look like a scaling event.
		_, err := c.scaleReplicaSet(ctx, d, rs, desired(d))
		return err
	}
	if saturated(d, newRS) {
		for _, rs := range active(old...) {
			if _, err := c.scaleReplicaSet(ctx, d, rs, 0); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRolling(d) {
		return nil
	}
	all := active(append(slices.Clone(old), newRS)...)
	allowed := desired(d)
	if allowed > 0 {
		allowed += maxSurge(d)
	}
	toAdd := allowed - sum(all, specReplicas)
	switch {
	case toAdd > 0:
		// Largest first, newer first among equals.
		slices.SortStableFunc(all, func(a, b *appsv1.ReplicaSet) int {
			if replicasOf(a) != replicasOf(b) {
				return int(replicasOf(b) - replicasOf(a))
			}
			return -byCreation(a, b)
		})
	case toAdd < 0:
		// Largest first, older first among equals.
		slices.SortStableFunc(all, func(a, b *appsv1.ReplicaSet) int {
			if replicasOf(a) != replicasOf(b) {
				return int(replicasOf(b) - replicasOf(a))
			}
			return byCreation(a, b)
		})
	}
	sizes := make([]int32, len(all))
	var added int32
	for i, rs := range all {
		sizes[i] = replicasOf(rs)
		if toAdd != 0 {
			p := proportion(d, rs, toAdd, added)
			sizes[i] += p
			added += p
		}
	}
	if toAdd != 0 && len(all) > 0 {
		sizes[0] = max(sizes[0]+toAdd-added, 0)
	}
	for i, rs := range all {
		if _, err := c.scaleReplicaSet(ctx, d, rs, sizes[i]); err != nil {
			return err
		}
	}
	return nil
}

// activeOrLatest returns the only active revision, or, when none is
// active, the new one or else the newest old one; nil when several are
// active.
func activeOrLatest(newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(old) == 0 {
		return nil
	}
	all := active(append(slices.Clone(old), newRS)...)
	switch len(all) {
	case 0:
		if newRS != nil {
			return newRS
		}
		newest := slices.Clone(old)
		slices.SortFunc(newest, byCreation)
		return newest[len(newest)-1]
	case 1:
		return all[0]
	}
	return nil
}

// saturated reports whether rs runs all of d's replicas, available.
func saturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	want, ok := annotationInt(rs, DesiredReplicasAnnotation)
	return ok && want == desired(d) && replicasOf(rs) == desired(d) && rs.Status.AvailableReplicas == desired(d)
}

// scaleReplicaSet sets rs's size (and replicas annotations) and returns
// the updated copy; it writes nothing when both are current.
func (c *Controller) scaleReplicaSet(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, size int32) (*appsv1.ReplicaSet, error) {
	resize := replicasOf(rs) != size
	maxTotal := desired(d) + maxSurge(d)
	if !resize && !replicasAnnotationsStale(rs, desired(d), maxTotal) {
		return rs, nil
	}
	from := replicasOf(rs)
	cp := rs.DeepCopy()
	cp.Spec.Replicas = &size
	setReplicasAnnotations(cp, desired(d), maxTotal)
	updated, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("scale replicaset %s to %d: %w", rs.Name, size, err)
	}
	if resize {
		dir := "up"
		if size < from {
			dir = "down"
		}
		c.events.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", dir, rs.Name, from, size)
	}
	return updated, nil
}

// cleanup deletes the oldest old revisions beyond revisionHistoryLimit,
// skipping any that still has pods or has not been observed at its size.
func (c *Controller) cleanup(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range old {
		if rs != nil && rs.DeletionTimestamp == nil {
			cleanable = append(cleanable, rs)
		}
	}
	extra := len(cleanable) - int(*d.Spec.RevisionHistoryLimit)
	if extra <= 0 {
		return nil
	}
	slices.SortFunc(cleanable, byRevision)
	for _, rs := range cleanable[:extra] {
		if rs.Status.Replicas != 0 || replicasOf(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		uid := rs.UID
		err := c.client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete old replicaset %s: %w", rs.Name, err)
		}
	}
	return nil
}
