package deployment

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons, as upstream spells them (kubectl matches some).
const (
	reasonNewRSCreated    = "NewReplicaSetCreated"
	reasonFoundNewRS      = "FoundNewReplicaSet"
	reasonRSUpdated       = "ReplicaSetUpdated"
	reasonNewRSAvailable  = "NewReplicaSetAvailable"
	reasonTimedOut        = "ProgressDeadlineExceeded"
	reasonPaused          = "DeploymentPaused"
	reasonResumed         = "DeploymentResumed"
	reasonFailedRSCreate  = "ReplicaSetCreateError"
	reasonMinAvailable    = "MinimumReplicasAvailable"
	reasonMinUnavailable  = "MinimumReplicasUnavailable"
	msgMinAvailable       = "Deployment has minimum availability."
	msgMinUnavailable     = "Deployment does not have minimum availability."
	noProgressDeadlineSet = math.MaxInt32
)

func (c *Controller) condition(t appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
	now := metav1.NewTime(c.clock.Now())
	return appsv1.DeploymentCondition{Type: t, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
}

func getCondition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition records cond unless a condition of its type with the same
// status and reason is there already; a change of reason alone keeps the
// transition time.
func setCondition(st *appsv1.DeploymentStatus, cond appsv1.DeploymentCondition) {
	cur := getCondition(*st, cond.Type)
	if cur != nil && cur.Status == cond.Status && cur.Reason == cond.Reason {
		return
	}
	if cur != nil && cur.Status == cond.Status {
		cond.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, cond.Type)
	st.Conditions = append(st.Conditions, cond)
}

func removeCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	st.Conditions = slices.DeleteFunc(slices.Clone(st.Conditions), func(c appsv1.DeploymentCondition) bool { return c.Type == t })
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
}

func hasProgressDeadline(d *appsv1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds != nil && *d.Spec.ProgressDeadlineSeconds != noProgressDeadlineSet
}

// complete reports whether st shows every replica updated and available
// for d's current generation.
func complete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	n := desired(d)
	return st.UpdatedReplicas == n && st.Replicas == n && st.AvailableReplicas == n && st.ObservedGeneration >= d.Generation
}

// progressing reports whether st shows progress over d's last status.
func progressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// timedOut reports whether the Progressing condition in st is older than
// the progress deadline.
func (c *Controller) timedOut(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	cond := getCondition(*st, appsv1.DeploymentProgressing)
	if cond == nil || cond.Reason == reasonNewRSAvailable {
		return false
	}
	if cond.Reason == reasonTimedOut {
		return true
	}
	deadline := cond.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second)
	return deadline.Before(c.clock.Now())
}

// computeStatus is d's status from its revisions.
func computeStatus(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) appsv1.DeploymentStatus {
	all := nonNil(append(slices.Clone(old), newRS)...)
	available := sum(all, availableReplicas)
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            sum(all, statusReplicas),
		UpdatedReplicas:     sum(nonNil(newRS), statusReplicas),
		ReadyReplicas:       sum(all, readyReplicas),
		AvailableReplicas:   available,
		UnavailableReplicas: max(sum(all, specReplicas)-available, 0),
		CollisionCount:      d.Status.CollisionCount,
		Conditions:          slices.Clone(d.Status.Conditions),
	}
	var terminating *int32
	for _, rs := range all {
		if rs.Status.TerminatingReplicas != nil {
			if terminating == nil {
				terminating = new(int32)
			}
			*terminating += *rs.Status.TerminatingReplicas
		}
	}
	st.TerminatingReplicas = terminating
	return st
}

func (c *Controller) setAvailability(d *appsv1.Deployment, st *appsv1.DeploymentStatus) {
	if st.AvailableReplicas >= desired(d)-maxUnavailable(d) {
		setCondition(st, c.condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinAvailable, msgMinAvailable))
	} else {
		setCondition(st, c.condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinUnavailable, msgMinUnavailable))
	}
}

// syncStatus writes d's status from its revisions, without judging
// progress (deleting, paused and scaling syncs).
func (c *Controller) syncStatus(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	st := computeStatus(d, newRS, old)
	c.setAvailability(d, &st)
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		return nil
	}
	d.Status = st
	return c.writeStatus(ctx, d)
}

// syncRolloutStatus writes d's status after a rollout step, with the
// Progressing condition, and requeues d for its progress deadline.
func (c *Controller) syncRolloutStatus(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	st := computeStatus(d, newRS, old)
	c.setAvailability(d, &st)
	if !hasProgressDeadline(d) {
		removeCondition(&st, appsv1.DeploymentProgressing)
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	done := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == reasonNewRSAvailable
	if hasProgressDeadline(d) && !done {
		subject := fmt.Sprintf("Deployment %q", d.Name)
		if newRS != nil {
			subject = fmt.Sprintf("ReplicaSet %q", newRS.Name)
		}
		switch {
		case complete(d, &st):
			setCondition(&st, c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSAvailable, subject+" has successfully progressed."))
		case progressing(d, &st):
			cond := c.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, subject+" is progressing.")
			// Progress refreshes the update time even when the reason
			// stays: that is what the deadline counts from.
			if cur != nil {
				if cur.Status == corev1.ConditionTrue {
					cond.LastTransitionTime = cur.LastTransitionTime
				}
				removeCondition(&st, appsv1.DeploymentProgressing)
			}
			setCondition(&st, cond)
		case c.timedOut(d, &st):
			setCondition(&st, c.condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, subject+" has timed out progressing."))
		}
	}
	if f := replicaFailure(newRS, old); f != nil {
		setCondition(&st, *f)
	} else {
		removeCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		c.requeueForDeadline(d, &st)
		return nil
	}
	d.Status = st
	return c.writeStatus(ctx, d)
}

// replicaFailure turns a ReplicaFailure condition of the new revision (or
// else of an old one) into the Deployment's.
func replicaFailure(newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	for _, rs := range nonNil(append([]*appsv1.ReplicaSet{newRS}, old...)...) {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return &appsv1.DeploymentCondition{
					Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason, Message: c.Message,
					LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime,
				}
			}
		}
	}
	return nil
}

// requeueForDeadline comes back to a rollout that is not progressing when
// its progress deadline passes, to report it timed out.
func (c *Controller) requeueForDeadline(d *appsv1.Deployment, st *appsv1.DeploymentStatus) {
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil || complete(d, st) || cur.Reason == reasonTimedOut {
		return
	}
	after := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(c.clock.Now())
	if after < time.Second {
		c.enqueue(d)
		return
	}
	c.enqueueAfter(d, after)
}

// writeStatus writes d's status (and, as upstream's API allows through
// the status subresource, its revision annotation) and refreshes d from
// the answer. A Deployment gone meanwhile is no error.
func (c *Controller) writeStatus(ctx context.Context, d *appsv1.Deployment) error {
	updated, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	*d = *updated
	return nil
}
