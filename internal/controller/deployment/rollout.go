package deployment

import (
	"context"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// rolloutRolling takes one step of a RollingUpdate: scale the new
// revision up within the surge, else scale old revisions down within the
// unavailability budget, else (complete) clean up old revisions; then
// report.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rss []*appsv1.ReplicaSet) error {
	newRS, old, err := c.revisions(ctx, d, rss, true)
	if err != nil {
		return err
	}
	all := append(slices.Clone(old), newRS)

	scaledUp, newRS, err := c.scaleUpNew(ctx, d, all, newRS)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, d, newRS, old)
	}
	scaledDown, old, err := c.scaleDownOld(ctx, d, old, newRS)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, newRS, old)
	}
	if complete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, newRS, old)
}

// scaleUpNew sizes the new revision toward spec.replicas within the surge
// (or down to spec.replicas if it is above).
func (c *Controller) scaleUpNew(ctx context.Context, d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, *appsv1.ReplicaSet, error) {
	cur := replicasOf(newRS)
	var size int32
	switch {
	case cur == desired(d):
		return false, newRS, nil
	case cur > desired(d):
		size = desired(d)
	default:
		size = newReplicaSetSize(d, all, newRS)
	}
	if size == cur {
		return false, newRS, nil
	}
	updated, err := c.scaleReplicaSet(ctx, d, newRS, size)
	if err != nil {
		return false, nil, err
	}
	return true, updated, nil
}

// scaleDownOld scales old revisions down as far as keeping spec.replicas -
// maxUnavailable pods available allows: first their unavailable pods,
// oldest revision first, then available ones. It returns the updated old
// revisions.
func (c *Controller) scaleDownOld(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (bool, []*appsv1.ReplicaSet, error) {
	oldActive := active(old...)
	if sum(oldActive, specReplicas) == 0 {
		return false, old, nil
	}
	all := append(slices.Clone(oldActive), newRS)
	minAvailable := desired(d) - maxUnavailable(d)
	newUnavailable := replicasOf(newRS) - keptAvailable(newRS)
	budget := sum(all, specReplicas) - minAvailable - newUnavailable
	if budget <= 0 {
		return false, old, nil
	}
	updated := map[types.UID]*appsv1.ReplicaSet{}

	// Unhealthy pods first: removing them costs no availability.
	slices.SortFunc(oldActive, byCreation)
	var cleaned int32
	for i, rs := range oldActive {
		if cleaned >= budget {
			break
		}
		unhealthy := replicasOf(rs) - keptAvailable(rs)
		if replicasOf(rs) == 0 || unhealthy <= 0 {
			continue
		}
		n := min(budget-cleaned, unhealthy)
		up, err := c.scaleReplicaSet(ctx, d, rs, replicasOf(rs)-n)
		if err != nil {
			return false, nil, err
		}
		oldActive[i], updated[rs.UID] = up, up
		cleaned += n
	}

	// Then available pods, keeping minAvailable.
	all = append(slices.Clone(oldActive), newRS)
	available := sum(all, keptAvailable)
	var scaled int32
	if available > minAvailable {
		total := available - minAvailable
		for i, rs := range oldActive {
			if scaled >= total {
				break
			}
			if replicasOf(rs) == 0 {
				continue
			}
			n := min(replicasOf(rs), total-scaled)
			up, err := c.scaleReplicaSet(ctx, d, rs, replicasOf(rs)-n)
			if err != nil {
				return false, nil, err
			}
			oldActive[i], updated[rs.UID] = up, up
			scaled += n
		}
	}
	out := slices.Clone(old)
	for i, rs := range out {
		if up, ok := updated[rs.UID]; ok {
			out[i] = up
		}
	}
	return cleaned+scaled > 0, out, nil
}

// keptAvailable counts rs's available pods that it keeps: no more than
// its size. A ReplicaSet just scaled down still reports the pods it is
// deleting as available until its controller catches up; counting them
// (as upstream does) could take availability below the floor.
func keptAvailable(rs *appsv1.ReplicaSet) int32 {
	return min(replicasOf(rs), rs.Status.AvailableReplicas)
}

// rolloutRecreate takes one step of a Recreate rollout: old revisions to
// zero, then, once none of their pods is left, the new revision to
// spec.replicas.
func (c *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rss []*appsv1.ReplicaSet, selector labels.Selector) error {
	newRS, old, err := c.revisions(ctx, d, rss, false)
	if err != nil {
		return err
	}
	scaledDown := false
	for i, rs := range old {
		if replicasOf(rs) == 0 {
			continue
		}
		up, err := c.scaleReplicaSet(ctx, d, rs, 0)
		if err != nil {
			return err
		}
		old[i] = up
		scaledDown = true
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, d, newRS, old)
	}
	running, err := c.oldPodsRunning(d, newRS, old, selector)
	if err != nil {
		return err
	}
	if running {
		return c.syncRolloutStatus(ctx, d, newRS, old)
	}
	if newRS == nil {
		if newRS, old, err = c.revisions(ctx, d, rss, true); err != nil {
			return err
		}
	}
	if newRS, err = c.scaleReplicaSet(ctx, d, newRS, desired(d)); err != nil {
		return err
	}
	if complete(d, &d.Status) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, d, newRS, old)
}

// oldPodsRunning reports whether an old revision still has pods that are
// not finished: Recreate starts no new pod beside them.
func (c *Controller) oldPodsRunning(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, selector labels.Selector) (bool, error) {
	if sum(old, statusReplicas) > 0 {
		return true, nil
	}
	oldUIDs := map[types.UID]bool{}
	for _, rs := range old {
		oldUIDs[rs.UID] = true
	}
	pods, err := c.podLister.Pods(d.Namespace).List(selector)
	if err != nil {
		return false, err
	}
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil || !oldUIDs[ref.UID] || (newRS != nil && ref.UID == newRS.UID) {
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		return true, nil
	}
	return false, nil
}
