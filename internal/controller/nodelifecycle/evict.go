package nodelifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// evictIfDue deletes pod when the NoExecute taints of its node say so, and
// otherwise returns how long until they might (zero: never, as things
// stand). As upstream's taint eviction:
//
//   - a taint the pod does not tolerate evicts it at once;
//   - a taint tolerated with tolerationSeconds evicts it that long after
//     the taint was added (its timeAdded; for a taint without one, since
//     this controller first saw it); the earliest such time wins;
//   - a taint tolerated without tolerationSeconds never evicts.
//
// Timing from timeAdded, where upstream times from when its controller
// first noticed, keeps the deadline across controller restarts.
func (c *Controller) evictIfDue(ctx context.Context, pod *corev1.Pod, node *corev1.Node) (time.Duration, error) {
	if pod.DeletionTimestamp != nil {
		return 0, nil
	}
	taints := noExecuteTaints(node)
	if len(taints) == 0 {
		return 0, nil
	}
	now := c.cfg.Clock.Now()
	var deadline time.Time
	for i := range taints {
		t := &taints[i]
		tol := c.tolerationFor(pod, t)
		if tol == nil {
			return 0, c.evict(ctx, pod, fmt.Sprintf("taint %s not tolerated", t.ToString()))
		}
		if tol.TolerationSeconds == nil {
			continue
		}
		at := c.taintStart(node, t).Add(time.Duration(max(*tol.TolerationSeconds, 0)) * time.Second)
		if deadline.IsZero() || at.Before(deadline) {
			deadline = at
		}
	}
	if deadline.IsZero() {
		return 0, nil
	}
	if now.Before(deadline) {
		return deadline.Sub(now), nil
	}
	return 0, c.evict(ctx, pod, "toleration expired")
}

// tolerationFor returns the pod's first toleration of taint t, or nil.
func (c *Controller) tolerationFor(pod *corev1.Pod, t *corev1.Taint) *corev1.Toleration {
	for i := range pod.Spec.Tolerations {
		if pod.Spec.Tolerations[i].ToleratesTaint(c.logr, t, false) {
			return &pod.Spec.Tolerations[i]
		}
	}
	return nil
}

// taintStart is when a NoExecute taint was added.
func (c *Controller) taintStart(node *corev1.Node, t *corev1.Taint) time.Time {
	if t.TimeAdded != nil {
		return t.TimeAdded.Time
	}
	key := node.Name + "\x00" + t.Key + "=" + t.Value
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	at, ok := c.taintSeen[key]
	if !ok {
		at = c.cfg.Clock.Now()
		c.taintSeen[key] = at
	}
	return at
}

// forgetTaintsSeen drops the first-seen times of a deleted node's taints.
func (c *Controller) forgetTaintsSeen(node string) {
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	for k := range c.taintSeen {
		if len(k) > len(node) && k[:len(node)+1] == node+"\x00" {
			delete(c.taintSeen, k)
		}
	}
}

// forgetStaleTaintsSeen drops the first-seen times of taints a node no
// longer has.
func (c *Controller) forgetStaleTaintsSeen(node *corev1.Node) {
	have := map[string]bool{}
	for _, t := range noExecuteTaints(node) {
		have[node.Name+"\x00"+t.Key+"="+t.Value] = true
	}
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	for k := range c.taintSeen {
		if len(k) > len(node.Name) && k[:len(node.Name)+1] == node.Name+"\x00" && !have[k] {
			delete(c.taintSeen, k)
		}
	}
}

// evict adds the DisruptionTarget condition to the pod's status and
// deletes it gracefully, both with its UID as a precondition. A pod that
// is already gone is not an error.
func (c *Controller) evict(ctx context.Context, pod *corev1.Pod, why string) error {
	c.recorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
	cond := corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: ReasonDeletionByTaintManager, Message: "Taint manager: deleting due to NoExecute taint",
		LastTransitionTime: metav1.NewTime(c.cfg.Clock.Now()),
	}
	if old := podCondition(pod, corev1.DisruptionTarget); old == nil || old.Status != corev1.ConditionTrue || old.Reason != cond.Reason {
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": pod.UID},
			"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
		})
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil {
			return ignoreGone(fmt.Errorf("pod %s/%s: add DisruptionTarget condition: %w", pod.Namespace, pod.Name, err))
		}
	}
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if err != nil {
		return ignoreGone(fmt.Errorf("pod %s/%s: evict: %w", pod.Namespace, pod.Name, err))
	}
	c.log.Info("evicted pod", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName, "why", why)
	return nil
}
