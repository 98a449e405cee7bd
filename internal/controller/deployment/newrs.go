package deployment

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// revisions splits d's ReplicaSets into the new one (whose template is
// d's) and the old ones, brings the new one's revision and annotations up
// to date, and, when create is set and there is no new ReplicaSet yet,
// creates it. newRS is nil when there is none and create is false.
func (c *Controller) revisions(ctx context.Context, d *appsv1.Deployment, rss []*appsv1.ReplicaSet, create bool) (newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, err error) {
	existing, old := splitRevisions(d, rss)
	newRS, err = c.newReplicaSet(ctx, d, existing, old, create)
	if err != nil {
		return nil, nil, err
	}
	return newRS, old, nil
}

func (c *Controller) newReplicaSet(ctx context.Context, d *appsv1.Deployment, existing *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, error) {
	next := maxRevision(old) + 1

	if existing != nil {
		cp := existing.DeepCopy()
		changed := setNewAnnotations(d, cp, next, true)
		if cp.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			cp.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			changed = true
		}
		if changed {
			updated, err := c.client.AppsV1().ReplicaSets(cp.Namespace).Update(ctx, cp, metav1.UpdateOptions{})
			if err != nil {
				return nil, fmt.Errorf("update replicaset %s: %w", cp.Name, err)
			}
			cp = updated
		}
		statusChanged := setDeploymentRevision(d, cp.Annotations[RevisionAnnotation])
		if hasProgressDeadline(d) && getCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonFoundNewRS, fmt.Sprintf("Found new replica set %q", cp.Name)))
			statusChanged = true
		}
		if statusChanged {
			if err := c.writeStatus(ctx, d); err != nil {
				return nil, err
			}
		}
		return cp, nil
	}
	if !create {
		return nil, nil
	}

	template := d.Spec.Template.DeepCopy()
	hash := templateHash(template, d.Status.CollisionCount)
	template.Labels = maps.Clone(template.Labels)
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Labels:          template.Labels,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        new(int32),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        *template,
		},
	}
	size := newReplicaSetSize(d, append(old, rs), rs)
	rs.Spec.Replicas = &size
	setNewAnnotations(d, rs, next, false)

	created, err := c.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	alreadyExisted := false
	switch {
	case apierrors.IsAlreadyExists(err):
		// Our cache may be behind (we created it), or another template
		// hashes to the same name.
		found, getErr := c.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		if getErr != nil {
			return nil, fmt.Errorf("get replicaset %s: %w", rs.Name, getErr)
		}
		if ref := metav1.GetControllerOfNoCopy(found); ref != nil && ref.UID == d.UID && equalIgnoringHash(&d.Spec.Template, &found.Spec.Template) {
			created, alreadyExisted = found, true
			break
		}
		// A hash collision: count it, so the next attempt hashes
		// differently.
		n := int32(1)
		if d.Status.CollisionCount != nil {
			n = *d.Status.CollisionCount + 1
		}
		d.Status.CollisionCount = &n
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("replicaset name %s taken by another template; collision count now %d", rs.Name, n)
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(d) {
			setCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonFailedRSCreate, msg))
			if werr := c.writeStatus(ctx, d); werr != nil {
				c.log.Info("could not record failed creation", "deployment", keyOf(d), "err", werr)
			}
		}
		c.events.Eventf(d, corev1.EventTypeWarning, reasonFailedRSCreate, "%s", msg)
		return nil, fmt.Errorf("create replicaset %s: %w", rs.Name, err)
	}
	if !alreadyExisted && size > 0 {
		c.events.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, size)
	}
	statusChanged := setDeploymentRevision(d, strconv.FormatInt(next, 10))
	if !alreadyExisted && hasProgressDeadline(d) {
		setCondition(&d.Status, c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSCreated, fmt.Sprintf("Created new replica set %q", created.Name)))
		statusChanged = true
	}
	if statusChanged {
		if err := c.writeStatus(ctx, d); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// setDeploymentRevision sets d's revision annotation; it reports a change.
func setDeploymentRevision(d *appsv1.Deployment, rev string) bool {
	if rev == "" || d.Annotations[RevisionAnnotation] == rev {
		return false
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = rev
	return true
}

// newReplicaSetSize is how many replicas the new ReplicaSet may have now:
// all of them for Recreate; for RollingUpdate, as many more as keep the
// total within spec.replicas + maxSurge.
//
// The total counts each ReplicaSet's pods as the larger of its size and
// the pods it last reported. Upstream sums sizes alone, so a scale-up
// decided right after an old ReplicaSet was scaled down runs beside the
// pods that ReplicaSet has not deleted yet, and the pods briefly exceed
// replicas + maxSurge (kubernetes/kubernetes#95498 is the terminating
// half of that). Waiting for the ReplicaSet to report its smaller count
// costs one status write and keeps the surge a bound on live pods.
func newReplicaSetSize(d *appsv1.Deployment, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) int32 {
	if !isRolling(d) {
		return desired(d)
	}
	cur := sum(all, livePods)
	limit := desired(d) + maxSurge(d)
	if cur >= limit {
		return replicasOf(newRS)
	}
	up := min(limit-cur, desired(d)-replicasOf(newRS))
	return replicasOf(newRS) + max(up, 0)
}
