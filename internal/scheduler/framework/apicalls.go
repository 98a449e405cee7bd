package framework

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
)

// PatchPodStatus sends the difference between old's status and status
// as a strategic merge patch of pods/status (conditions merge by type),
// with old's UID as a precondition. It does nothing when they are equal.
func PatchPodStatus(ctx context.Context, client kubernetes.Interface, old *v1.Pod, status *v1.PodStatus) error {
	oldData, err := json.Marshal(v1.Pod{Status: old.Status})
	if err != nil {
		return fmt.Errorf("pod %s/%s: encode status: %w", old.Namespace, old.Name, err)
	}
	newData, err := json.Marshal(v1.Pod{Status: *status})
	if err != nil {
		return fmt.Errorf("pod %s/%s: encode status: %w", old.Namespace, old.Name, err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, &v1.Pod{})
	if err != nil {
		return fmt.Errorf("pod %s/%s: make status patch: %w", old.Namespace, old.Name, err)
	}
	if string(patch) == "{}" {
		return nil
	}
	patch, err = withUID(patch, old.UID)
	if err != nil {
		return fmt.Errorf("pod %s/%s: make status patch: %w", old.Namespace, old.Name, err)
	}
	if _, err := client.CoreV1().Pods(old.Namespace).Patch(ctx, old.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("pod %s/%s: patch status: %w", old.Namespace, old.Name, err)
	}
	return nil
}

// withUID adds metadata.uid to a patch: the server rejects it with a
// conflict when the pod was replaced by another of the same name.
func withUID(patch []byte, uid types.UID) ([]byte, error) {
	if uid == "" {
		return patch, nil
	}
	var m map[string]any
	if err := json.Unmarshal(patch, &m); err != nil {
		return nil, err
	}
	m["metadata"] = map[string]any{"uid": string(uid)}
	return json.Marshal(m)
}

// SetPodCondition sets c in status, replacing a condition of the same
// type. It keeps the old LastTransitionTime when the status value does
// not change, and reports whether anything changed (LastProbeTime and
// LastTransitionTime alone do not count).
func SetPodCondition(status *v1.PodStatus, c v1.PodCondition) bool {
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		changed := old.Status != c.Status || old.Reason != c.Reason || old.Message != c.Message
		*old = c
		return changed
	}
	status.Conditions = append(status.Conditions, c)
	return true
}
