package deployment

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/dump"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Annotations the controller keeps on Deployments and ReplicaSets, as
// upstream names them.
const (
	// RevisionAnnotation holds a ReplicaSet's revision number, and on the
	// Deployment the revision of its newest ReplicaSet.
	RevisionAnnotation = "deployment.kubernetes.io/revision"
	// RevisionHistoryAnnotation lists a ReplicaSet's earlier revision
	// numbers, comma separated, when a rollback made it new again.
	RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"
	// DesiredReplicasAnnotation is spec.replicas of the Deployment when
	// the controller last sized the ReplicaSet.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// MaxReplicasAnnotation is spec.replicas plus maxSurge at that time.
	MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"

	lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
	rollbackToAnnotation  = "deprecated.deployment.rollback.to"

	// maxRevisionHistoryChars bounds RevisionHistoryAnnotation.
	maxRevisionHistoryChars = 2000
)

// templateHash returns the pod-template-hash of template with the given
// collision count, computed as upstream does so that ReplicaSet names
// match: FNV-32a over the template's hash dump and the little-endian
// count, printed in decimal and re-spelled in the alphabet of generated
// names.
func templateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*template))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoringHash reports whether two templates are the same but for
// the pod-template-hash label.
func equalIgnoringHash(a, b *corev1.PodTemplateSpec) bool {
	strip := func(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
		if _, ok := t.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; !ok {
			return t
		}
		cp := *t
		cp.Labels = maps.Clone(t.Labels)
		delete(cp.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		return &cp
	}
	return apiequality.Semantic.DeepEqual(strip(a), strip(b))
}

// revision reads rs's revision annotation; missing or invalid is 0.
func revision(rs *appsv1.ReplicaSet) int64 {
	n, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revision(rs))
	}
	return m
}

// byCreation orders ReplicaSets oldest first, then by name.
func byCreation(a, b *appsv1.ReplicaSet) int {
	if a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return strings.Compare(a.Name, b.Name)
	}
	if a.CreationTimestamp.Before(&b.CreationTimestamp) {
		return -1
	}
	return 1
}

// byRevision orders ReplicaSets by revision, then by creation.
func byRevision(a, b *appsv1.ReplicaSet) int {
	if c := cmp.Compare(revision(a), revision(b)); c != 0 {
		return c
	}
	return byCreation(a, b)
}

// splitRevisions returns the ReplicaSet whose template is the
// Deployment's (the oldest, if several are) and the others, oldest first.
func splitRevisions(d *appsv1.Deployment, rss []*appsv1.ReplicaSet) (newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) {
	sorted := slices.Clone(rss)
	slices.SortFunc(sorted, byCreation)
	for _, rs := range sorted {
		if newRS == nil && equalIgnoringHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

func replicasOf(rs *appsv1.ReplicaSet) int32 {
	if rs == nil || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

func desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// active returns the ReplicaSets (nil ones left out) that want pods.
func active(rss ...*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicasOf(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

func nonNil(rss ...*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil {
			out = append(out, rs)
		}
	}
	return out
}

// sum adds f over the ReplicaSets, skipping nil ones.
func sum(rss []*appsv1.ReplicaSet, f func(*appsv1.ReplicaSet) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += f(rs)
		}
	}
	return n
}

func specReplicas(rs *appsv1.ReplicaSet) int32      { return replicasOf(rs) }
func statusReplicas(rs *appsv1.ReplicaSet) int32    { return rs.Status.Replicas }
func readyReplicas(rs *appsv1.ReplicaSet) int32     { return rs.Status.ReadyReplicas }
func availableReplicas(rs *appsv1.ReplicaSet) int32 { return rs.Status.AvailableReplicas }

// livePods is an upper bound on rs's pods: its size, or more while its
// controller has yet to delete the pods above a new, smaller size.
func livePods(rs *appsv1.ReplicaSet) int32 { return max(replicasOf(rs), rs.Status.Replicas) }

// isRolling reports whether d uses the RollingUpdate strategy.
func isRolling(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
}

// surgeAndUnavailable resolves maxSurge (rounded up) and maxUnavailable
// (rounded down) against spec.replicas; both zero would block a rollout,
// so maxUnavailable is then 1.
func surgeAndUnavailable(d *appsv1.Deployment) (surge, unavailable int32) {
	if !isRolling(d) || d.Spec.Strategy.RollingUpdate == nil {
		return 0, 0
	}
	ru := d.Spec.Strategy.RollingUpdate
	n := int(desired(d))
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(ru.MaxSurge, intstr.FromString("25%")), n, true)
	if err != nil {
		s = 0
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(ru.MaxUnavailable, intstr.FromString("25%")), n, false)
	if err != nil {
		u = 0
	}
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u)
}

// maxSurge is how many pods above spec.replicas a rollout may run.
func maxSurge(d *appsv1.Deployment) int32 {
	s, _ := surgeAndUnavailable(d)
	return s
}

// maxUnavailable is how many pods below spec.replicas may be unavailable
// during a rollout, at most spec.replicas.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if !isRolling(d) || desired(d) == 0 {
		return 0
	}
	_, u := surgeAndUnavailable(d)
	return min(u, desired(d))
}

// annotationInt reads an int32 annotation of rs.
func annotationInt(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// setReplicasAnnotations records d's size on rs; it reports a change.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, want, maxTotal int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	changed := false
	for k, v := range map[string]string{DesiredReplicasAnnotation: strconv.Itoa(int(want)), MaxReplicasAnnotation: strconv.Itoa(int(maxTotal))} {
		if rs.Annotations[k] != v {
			rs.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

func replicasAnnotationsStale(rs *appsv1.ReplicaSet, want, maxTotal int32) bool {
	d, ok1 := annotationInt(rs, DesiredReplicasAnnotation)
	m, ok2 := annotationInt(rs, MaxReplicasAnnotation)
	return !ok1 || !ok2 || d != want || m != maxTotal
}

// skipCopy lists the Deployment annotations that are not copied to its
// ReplicaSets.
func skipCopy(key string) bool {
	switch key {
	case lastAppliedAnnotation, RevisionAnnotation, RevisionHistoryAnnotation,
		DesiredReplicasAnnotation, MaxReplicasAnnotation, rollbackToAnnotation:
		return true
	}
	return false
}

// copyAnnotations copies d's annotations (but the controller's own) to
// rs; it reports a change.
func copyAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	changed := false
	for k, v := range d.Annotations {
		if skipCopy(k) {
			continue
		}
		if rs.Annotations == nil {
			rs.Annotations = map[string]string{}
		}
		if cur, ok := rs.Annotations[k]; ok && cur == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	return changed
}

// setNewAnnotations brings the annotations of the new ReplicaSet up to
// date: the Deployment's own, revision newRevision (keeping any earlier
// revision in the history), and, for a ReplicaSet about to be created,
// the replicas annotations. It reports a change.
func setNewAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision int64, exists bool) bool {
	changed := copyAnnotations(d, rs)
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	oldRaw, had := rs.Annotations[RevisionAnnotation]
	old, err := strconv.ParseInt(oldRaw, 10, 64)
	if err != nil && oldRaw != "" {
		// Someone wrote garbage; leave it for them to see.
		return changed
	}
	if old < newRevision {
		rs.Annotations[RevisionAnnotation] = strconv.FormatInt(newRevision, 10)
		changed = true
		if had {
			rs.Annotations[RevisionHistoryAnnotation] = appendHistory(rs.Annotations[RevisionHistoryAnnotation], oldRaw)
		}
	}
	if !exists && setReplicasAnnotations(rs, desired(d), desired(d)+maxSurge(d)) {
		changed = true
	}
	return changed
}

// appendHistory appends rev to a comma-separated history, dropping the
// oldest entries to stay within maxRevisionHistoryChars.
func appendHistory(history, rev string) string {
	if history == "" {
		return rev
	}
	parts := append(strings.Split(history, ","), rev)
	for len(parts) > 1 && len(strings.Join(parts, ",")) > maxRevisionHistoryChars {
		parts = parts[1:]
	}
	return strings.Join(parts, ",")
}

// proportion returns how many of the replicas to add (negative: remove)
// rs gets when d is resized mid-rollout: its share of the new size in the
// ratio it had of the old one, bounded by what is left to hand out.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added int32) int32 {
	if rs == nil || replicasOf(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	left := toAdd - added
	share := fraction(d, rs)
	if toAdd > 0 {
		return min(share, left)
	}
	return max(share, left)
}

// fraction is rs's proportional change for d's new size.
func fraction(d *appsv1.Deployment, rs *appsv1.ReplicaSet) int32 {
	if desired(d) == 0 {
		return -replicasOf(rs)
	}
	total := desired(d) + maxSurge(d)
	before, ok := annotationInt(rs, MaxReplicasAnnotation)
	if !ok || before == 0 {
		before = d.Status.Replicas
	}
	if before == 0 {
		return 0
	}
	size := float64(replicasOf(rs)) * float64(total) / float64(before)
	return int32(math.Round(size)) - replicasOf(rs)
}
