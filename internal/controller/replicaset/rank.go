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
	// Every criterion is computed once per pod, not once per comparison.
	ranks := make([]rankedPod, len(pods))
	ranked := make([]*rankedPod, len(pods))
	for i, p := range pods {
		ranks[i] = rankOf(p, onNode, now)
		ranked[i] = &ranks[i]
	}
	// The UID makes the order total, so an unstable sort is repeatable.
	slices.SortFunc(ranked, compareForDeletion)
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = ranked[i].pod
	}
	return out
}

// rankedPod is a pod with its deletion criteria, each ordered so that a
// smaller value goes first.
type rankedPod struct {
	pod      *corev1.Pod
	assigned int // 0 not on a node, 1 on one
	phase    int // Pending, Unknown, Running
	ready    int // 0 not ready, 1 ready
	cost     int64
	crowd    int // minus the related pods on its node
	readyAge int // log-2 bucket of how long it has been ready
	restarts int32
	created  int // -1 unknown, else log-2 bucket of its age
}

func rankOf(p *corev1.Pod, onNode map[string]int, now time.Time) rankedPod {
	r := rankedPod{pod: p, phase: phaseRank(p.Status.Phase), cost: deletionCost(p), restarts: -restarts(p), created: -1}
	if p.Spec.NodeName != "" {
		r.assigned = 1
		r.crowd = -onNode[p.Spec.NodeName]
	}
	if since := readySince(p); since != nil {
		r.ready = 1
		r.readyAge = ageBucket(*since, now)
	}
	if !p.CreationTimestamp.IsZero() {
		r.created = ageBucket(p.CreationTimestamp, now)
	}
	return r
}

// compareForDeletion orders a before b (negative) when a should be
// deleted first.
func compareForDeletion(a, b *rankedPod) int {
	if c := cmp.Compare(a.assigned, b.assigned); c != 0 {
		return c
	}
	if c := cmp.Compare(a.phase, b.phase); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ready, b.ready); c != 0 {
		return c
	}
	if c := cmp.Compare(a.cost, b.cost); c != 0 {
		return c
	}
	if c := cmp.Compare(a.crowd, b.crowd); c != 0 {
		return c
	}
	if a.ready == 1 {
		if c := cmp.Compare(a.readyAge, b.readyAge); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(a.restarts, b.restarts); c != 0 {
		return c
	}
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return cmp.Compare(a.pod.UID, b.pod.UID)
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
