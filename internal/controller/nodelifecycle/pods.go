package nodelifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// What the controller writes on the pods of a lost node.
const (
	// ReasonNodeLost is status.reason of a pod whose node stopped
	// reporting; kubectl shows it in STATUS, and "Unknown" once the pod
	// is being deleted.
	ReasonNodeLost = "NodeLost"
	// AnnotationStatusBeforeNodeLost holds, as JSON, the phase and Ready
	// status a pod had before it was marked lost, so that they can be put
	// back when the node returns.
	AnnotationStatusBeforeNodeLost = "node-lifecycle.skiff.sh/status-before-node-lost"
	// ReasonDeletionByTaintManager is the reason of the DisruptionTarget
	// condition set on a pod evicted for a NoExecute taint (upstream's).
	ReasonDeletionByTaintManager = "DeletionByTaintManager"
)

// savedStatus is the value of AnnotationStatusBeforeNodeLost.
type savedStatus struct {
	Phase corev1.PodPhase        `json:"phase"`
	Ready corev1.ConditionStatus `json:"ready,omitempty"`
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func isLost(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodUnknown && p.Status.Reason == ReasonNodeLost
}

// syncPod brings one pod in line with its node's health, then evicts it
// if a NoExecute taint it does not tolerate long enough says so. It
// returns when to look again for an eviction that is due later (zero:
// no need). It is idempotent.
//
// The pod's status, by its node's Ready condition:
//
//	Unknown (node silent):   phase Unknown, reason NodeLost, Ready False;
//	                         the phase and Ready status before are saved
//	                         in an annotation (finished pods are left alone)
//	False (node NotReady):   Ready False, unless the node agent reported
//	                         the pod Ready after the node went NotReady
//	True or False again:     a pod marked lost gets its saved phase and
//	                         Ready status back, unless the node agent
//	                         wrote a newer status meanwhile
func (c *Controller) syncPod(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, fmt.Errorf("key %q: %w", key, err)
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pod %s: %w", key, err)
	}
	if pod.Spec.NodeName == "" {
		return 0, nil
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return 0, nil // the pod garbage collector's business
	}
	if err != nil {
		return 0, fmt.Errorf("node %s: %w", pod.Spec.NodeName, err)
	}

	if ready := readyCondition(node); ready != nil {
		switch ready.Status {
		case corev1.ConditionUnknown:
			pod, err = c.markLost(ctx, pod, node)
		case corev1.ConditionFalse:
			pod, err = c.restore(ctx, pod, node)
			if err == nil {
				pod, err = c.markNotReady(ctx, pod, node, ready)
			}
		case corev1.ConditionTrue:
			pod, err = c.restore(ctx, pod, node)
		}
		if err != nil {
			return 0, err
		}
	}
	return c.evictIfDue(ctx, pod, node)
}

// markLost marks a pod of a silent node as lost. It returns the pod as
// last written.
func (c *Controller) markLost(ctx context.Context, pod *corev1.Pod, node *corev1.Node) (*corev1.Pod, error) {
	if isTerminal(pod) {
		return pod, nil
	}
	ready := podCondition(pod, corev1.PodReady)
	if isLost(pod) && (ready == nil || ready.Status != corev1.ConditionTrue) {
		return pod, nil
	}
	pods := c.client.CoreV1().Pods(pod.Namespace)
	if !isLost(pod) {
		// Save what the node agent last said, so it can come back.
		saved := savedStatus{Phase: pod.Status.Phase}
		if ready != nil {
			saved.Ready = ready.Status
		}
		patch, err := annotationPatch(pod, &saved)
		if err != nil {
			return pod, err
		}
		pod, err = pods.Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			return pod, ignoreGone(fmt.Errorf("pod %s/%s: save status: %w", pod.Namespace, pod.Name, err))
		}
	}
	want := pod.DeepCopy()
	want.Status.Phase = corev1.PodUnknown
	want.Status.Reason = ReasonNodeLost
	want.Status.Message = fmt.Sprintf("Node %s which was running pod %s is unresponsive", node.Name, pod.Name)
	setPodCondition(want, corev1.PodReady, corev1.ConditionFalse, c.cfg.Clock.Now())
	got, err := pods.UpdateStatus(ctx, want, metav1.UpdateOptions{})
	if err != nil {
		return pod, ignoreGone(fmt.Errorf("pod %s/%s: mark lost: %w", pod.Namespace, pod.Name, err))
	}
	c.recorder.Eventf(pod, corev1.EventTypeWarning, "NodeNotReady", "Node %s is unreachable; pod status is Unknown", node.Name)
	c.log.Info("marked pod of a silent node lost", "pod", pod.Namespace+"/"+pod.Name, "node", node.Name)
	return got, nil
}

// markNotReady sets Ready False on a pod of a node that reports NotReady,
// as upstream does, unless the node agent reported the pod Ready after the
// node went NotReady (then the agent knows better).
func (c *Controller) markNotReady(ctx context.Context, pod *corev1.Pod, node *corev1.Node, nodeReady *corev1.NodeCondition) (*corev1.Pod, error) {
	ready := podCondition(pod, corev1.PodReady)
	if isTerminal(pod) || ready == nil || ready.Status != corev1.ConditionTrue {
		return pod, nil
	}
	if ready.LastTransitionTime.After(nodeReady.LastTransitionTime.Time) {
		return pod, nil
	}
	want := pod.DeepCopy()
	setPodCondition(want, corev1.PodReady, corev1.ConditionFalse, c.cfg.Clock.Now())
	got, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, want, metav1.UpdateOptions{})
	if err != nil {
		return pod, ignoreGone(fmt.Errorf("pod %s/%s: mark not ready: %w", pod.Namespace, pod.Name, err))
	}
	c.recorder.Eventf(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	return got, nil
}

// restore undoes markLost once the node reports again. A pod whose status
// the node agent rewrote meanwhile only loses the annotation.
func (c *Controller) restore(ctx context.Context, pod *corev1.Pod, node *corev1.Node) (*corev1.Pod, error) {
	raw, ok := pod.Annotations[AnnotationStatusBeforeNodeLost]
	if !ok {
		return pod, nil
	}
	pods := c.client.CoreV1().Pods(pod.Namespace)
	var saved savedStatus
	if err := json.Unmarshal([]byte(raw), &saved); err != nil || !validPhase(saved.Phase) {
		c.log.Warn("unreadable saved status; dropping it, the node agent will report", "pod", pod.Namespace+"/"+pod.Name, "value", raw)
		c.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedToRestoreStatus", "Cannot read annotation %s=%q; status left to the node agent", AnnotationStatusBeforeNodeLost, raw)
	} else if isLost(pod) {
		want := pod.DeepCopy()
		want.Status.Phase, want.Status.Reason, want.Status.Message = saved.Phase, "", ""
		if saved.Ready != "" {
			setPodCondition(want, corev1.PodReady, saved.Ready, c.cfg.Clock.Now())
		}
		got, err := pods.UpdateStatus(ctx, want, metav1.UpdateOptions{})
		if err != nil {
			return pod, ignoreGone(fmt.Errorf("pod %s/%s: restore status: %w", pod.Namespace, pod.Name, err))
		}
		pod = got
		c.recorder.Eventf(pod, corev1.EventTypeNormal, "NodeReachable", "Node %s reports again; pod status restored to %s", node.Name, saved.Phase)
		c.log.Info("node reports again; restored pod status", "pod", pod.Namespace+"/"+pod.Name, "phase", saved.Phase)
	}
	patch, err := annotationPatch(pod, nil)
	if err != nil {
		return pod, err
	}
	got, err := pods.Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return pod, ignoreGone(fmt.Errorf("pod %s/%s: drop saved status: %w", pod.Namespace, pod.Name, err))
	}
	return got, nil
}

func validPhase(p corev1.PodPhase) bool {
	switch p {
	case corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown:
		return true
	}
	return false
}

// annotationPatch is a merge patch that sets (saved non-nil) or removes
// AnnotationStatusBeforeNodeLost, with pod's UID as a precondition.
func annotationPatch(pod *corev1.Pod, saved *savedStatus) ([]byte, error) {
	var value any // JSON null removes the key
	if saved != nil {
		b, err := json.Marshal(saved)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		value = string(b)
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         pod.UID,
		"annotations": map[string]any{AnnotationStatusBeforeNodeLost: value},
	}})
}

// setPodCondition sets the status of the pod's condition of type t,
// moving its transition time when the status changes. A missing condition
// is left missing.
func setPodCondition(p *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus, now time.Time) {
	if cond := podCondition(p, t); cond != nil && cond.Status != s {
		cond.Status = s
		cond.LastTransitionTime = metav1.NewTime(now)
	}
}

// ignoreGone turns "the pod is gone" into success: nothing is left to do.
func ignoreGone(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
