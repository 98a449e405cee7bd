package job

import (
	"slices"
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

// isFinished reports whether a Job has its terminal condition (Complete
// or Failed, True).
func isFinished(j *batchv1.Job) bool {
	return findCondition(j.Status.Conditions, batchv1.JobComplete, corev1.ConditionTrue) != nil ||
		findCondition(j.Status.Conditions, batchv1.JobFailed, corev1.ConditionTrue) != nil
}

func isIndexed(j *batchv1.Job) bool {
	return j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion
}

func isSuspended(j *batchv1.Job) bool { return j.Spec.Suspend != nil && *j.Spec.Suspend }

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// findCondition returns the condition of type t with status st, pointing
// into list, or nil.
func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType, st corev1.ConditionStatus) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t && list[i].Status == st {
			return &list[i]
		}
	}
	return nil
}

func newCondition(t batchv1.JobConditionType, reason, message string, now time.Time) *batchv1.JobCondition {
	return &batchv1.JobCondition{
		Type:               t,
		Status:             corev1.ConditionTrue,
		LastProbeTime:      metav1.NewTime(now),
		LastTransitionTime: metav1.NewTime(now),
		Reason:             reason,
		Message:            message,
	}
}

// ensureCondition sets the condition of type t to the given status,
// reason and message. A missing condition is added only with status
// True (nothing to False means nothing). It reports whether list changed.
func ensureCondition(list []batchv1.JobCondition, t batchv1.JobConditionType, st corev1.ConditionStatus, reason, message string, now time.Time) ([]batchv1.JobCondition, bool) {
	for i := range list {
		if list[i].Type != t {
			continue
		}
		if list[i].Status == st && list[i].Reason == reason && list[i].Message == message {
			return list, false
		}
		c := newCondition(t, reason, message, now)
		c.Status = st
		list[i] = *c
		return list, true
	}
	if st == corev1.ConditionFalse {
		return list, false
	}
	c := newCondition(t, reason, message, now)
	c.Status = st
	return append(list, *c), true
}

func uidSet(uids []types.UID) sets.Set[string] {
	s := make(sets.Set[string], len(uids))
	for _, u := range uids {
		s.Insert(string(u))
	}
	return s
}

// sortByIndex orders pods by completion index, pods without one last.
func sortByIndex(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := completionIndex(pods[i]), completionIndex(pods[j])
		if a == noIndex || b == noIndex {
			return b == noIndex && a != noIndex
		}
		return a < b
	})
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func containsString(list []string, s string) bool { return slices.Contains(list, s) }

func ptrTo[T any](v T) *T { return &v }
