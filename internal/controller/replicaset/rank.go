package replicaset

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// deletionCostAnnotation lets users say which pods to delete first: lower
// cost goes first.
const deletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// podsToDelete returns the n pods of pods to delete first (see the package
// documentation for the order). related are the active pods of every
// ReplicaSet with the same owner as this one (or of this one alone); a pod
// on a node crowded with related pods goes before one on a quieter node.
// The caller owns the returned slice; pods is not modified.
func podsToDelete(pods, related []*corev1.Pod, n int, now time.Time) []*corev1.Pod {
	if n >= len(pods) {
		return slices.Clone(pods)
	}
	onNode := map[string]int{}
	for _, p := range related {
		if p.Spec.NodeName != "" {
			onNode[p.Spec.NodeName]++
		}
	}
	ranked := make([]rankedPod, len(pods))
	for i, p := range pods {
		ranked[i] = rankedPod{pod: p, crowd: onNode[p.Spec.NodeName]}
		if p.Spec.NodeName == "" {
			ranked[i].crowd = 0
		}
	}
	slices.SortStableFunc(ranked, func(a, b rankedPod) int { return compareForDeletion(a, b, now) })
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = ranked[i].pod
	}
	return out
}

type rankedPod struct {
	pod *corev1.Pod
	// crowd is the number of related pods on this pod's node.
	crowd int
}

// compareForDeletion orders a before b (negative) when a should be
// deleted first.
func compareForDeletion(a, b rankedPod, now time.Time) int {
	pa, pb := a.pod, b.pod
	// Not on a node before on a node.
	if c := cmp.Compare(boolRank(pa.Spec.NodeName != ""), boolRank(pb.Spec.NodeName != "")); c != 0 {
		return c
	}
	// Pending before Unknown before Running.
	if c := cmp.Compare(phaseRank(pa.Status.Phase), phaseRank(pb.Status.Phase)); c != 0 {
		return c
	}
	// Not ready before ready.
	ra, rb := readySince(pa), readySince(pb)
	if c := cmp.Compare(boolRank(ra != nil), boolRank(rb != nil)); c != 0 {
		return c
	}
	// Lower deletion cost first.
	if c := cmp.Compare(deletionCost(pa), deletionCost(pb)); c != 0 {
		return c
	}
	// Crowded nodes first.
	if c := cmp.Compare(b.crowd, a.crowd); c != 0 {
		return c
	}
	// Ready for less time first.
	if ra != nil && rb != nil {
		if c := cmp.Compare(ageBucket(*ra, now), ageBucket(*rb, now)); c != 0 {
			return c
		}
	}
	// More restarts first.
	if c := cmp.Compare(restarts(pb), restarts(pa)); c != 0 {
		return c
	}
	// Newer first; an unset creation time counts as newest.
	ca, cb := pa.CreationTimestamp, pb.CreationTimestamp
	if ca.IsZero() != cb.IsZero() {
		if ca.IsZero() {
			return -1
		}
		return 1
	}
	if !ca.IsZero() {
		if c := cmp.Compare(ageBucket(ca, now), ageBucket(cb, now)); c != 0 {
			return c
		}
	}
	return cmp.Compare(pa.UID, pb.UID)
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodPending:
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodRunning:
		return 2
	}
	return 0
}

// readySince returns when pod became ready, or nil when it is not ready.
func readySince(pod *corev1.Pod) *metav1.Time {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type == corev1.PodReady {
			if c.Status != corev1.ConditionTrue {
				return nil
			}
			return &c.LastTransitionTime
		}
	}
	return nil
}

// deletionCost reads the pod-deletion-cost annotation; missing or invalid
// is zero.
func deletionCost(pod *corev1.Pod) int64 {
	v, ok := pod.Annotations[deletionCostAnnotation]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return n
}

// restarts is the highest restart count of pod's containers.
func restarts(pod *corev1.Pod) int32 {
	var n int32
	for _, s := range pod.Status.ContainerStatuses {
		n = max(n, s.RestartCount)
	}
	return n
}

// ageBucket puts the age of t at now on a log-2 scale of nanoseconds: two
// times fall in the same bucket when their ages are within a factor of
// two. Younger times have smaller buckets; times in the future are 0.
func ageBucket(t metav1.Time, now time.Time) int {
	age := now.Sub(t.Time)
	if age <= 0 {
		return 0
	}
	return int(math.Log2(float64(age)))
}
