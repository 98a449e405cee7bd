package statefulset

import (
	"regexp"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podName matches "<parent>-<ordinal>".
var podName = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// parentAndOrdinal splits a pod's name into its StatefulSet's name and
// its ordinal; the ordinal is -1 when the name has none.
func parentAndOrdinal(p *corev1.Pod) (string, int) {
	m := podName.FindStringSubmatch(p.Name)
	if m == nil {
		return "", -1
	}
	ord, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return m[1], -1
	}
	return m[1], int(ord)
}

func ordinal(p *corev1.Pod) int {
	_, ord := parentAndOrdinal(p)
	return ord
}

// isMemberOf reports whether a pod's name makes it one of the set's.
func isMemberOf(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	parent, _ := parentAndOrdinal(p)
	return parent == set.Name
}

func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicas(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// inRange reports whether a pod's ordinal is one the set wants now.
func inRange(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	ord := ordinal(p)
	return ord >= startOrdinal(set) && ord < startOrdinal(set)+replicas(set)
}

func nameFor(set *appsv1.StatefulSet, ord int) string {
	return set.Name + "-" + strconv.Itoa(ord)
}

// claimName is the name of the claim of a volumeClaimTemplate for a pod.
func claimName(set *appsv1.StatefulSet, claim *corev1.PersistentVolumeClaim, ord int) string {
	return claim.Name + "-" + set.Name + "-" + strconv.Itoa(ord)
}

// newPod returns the pod of ordinal ord from set's template (set is the
// set at a revision), with its identity, claims and revision label.
func newPod(set *appsv1.StatefulSet, ord int, revision string) *corev1.Pod {
	t := &set.Spec.Template
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            nameFor(set, ord),
			Namespace:       set.Namespace,
			Labels:          copyMap(t.Labels),
			Annotations:     copyMap(t.Annotations),
			Finalizers:      append([]string(nil), t.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, setKind)},
		},
		Spec: *t.Spec.DeepCopy(),
	}
	setIdentity(set, p)
	setStorage(set, p)
	p.Labels[appsv1.StatefulSetRevisionLabel] = revision
	return p
}

// setIdentity gives a pod its ordinal's identity: hostname, subdomain and
// the pod-name and pod-index labels.
func setIdentity(set *appsv1.StatefulSet, p *corev1.Pod) {
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels[appsv1.StatefulSetPodNameLabel] = p.Name
	p.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal(p))
	p.Spec.Hostname = p.Name
	p.Spec.Subdomain = set.Spec.ServiceName
}

// identityMatches reports whether a pod's identity labels are its
// ordinal's (hostname and subdomain are immutable once created).
func identityMatches(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	parent, ord := parentAndOrdinal(p)
	return ord >= 0 && parent == set.Name && p.Namespace == set.Namespace &&
		p.Labels[appsv1.StatefulSetPodNameLabel] == p.Name &&
		p.Labels[appsv1.PodIndexLabel] == strconv.Itoa(ord)
}

// setStorage puts the set's claims in a pod's volumes, replacing template
// volumes of the same name.
func setStorage(set *appsv1.StatefulSet, p *corev1.Pod) {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return
	}
	ord := ordinal(p)
	claims := map[string]string{}
	for i := range set.Spec.VolumeClaimTemplates {
		c := &set.Spec.VolumeClaimTemplates[i]
		claims[c.Name] = claimName(set, c, ord)
	}
	var vols []corev1.Volume
	for _, v := range p.Spec.Volumes {
		if _, ok := claims[v.Name]; !ok {
			vols = append(vols, v)
		}
	}
	for i := range set.Spec.VolumeClaimTemplates {
		c := &set.Spec.VolumeClaimTemplates[i]
		vols = append(vols, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claims[c.Name]},
		}})
	}
	p.Spec.Volumes = vols
}

func storageMatches(set *appsv1.StatefulSet, p *corev1.Pod) bool {
	ord := ordinal(p)
	vols := map[string]corev1.Volume{}
	for _, v := range p.Spec.Volumes {
		vols[v.Name] = v
	}
	for i := range set.Spec.VolumeClaimTemplates {
		c := &set.Spec.VolumeClaimTemplates[i]
		v, ok := vols[c.Name]
		if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claimName(set, c, ord) {
			return false
		}
	}
	return true
}

// revision is the name of the revision a pod was made from.
func revision(p *corev1.Pod) string { return p.Labels[appsv1.StatefulSetRevisionLabel] }

// The pod states the controller acts on. A pod the controller is about
// to create has no phase; the API server sets Pending on create.
func isCreated(p *corev1.Pod) bool     { return p.Status.Phase != "" }
func isFailed(p *corev1.Pod) bool      { return p.Status.Phase == corev1.PodFailed }
func isSucceeded(p *corev1.Pod) bool   { return p.Status.Phase == corev1.PodSucceeded }
func isPending(p *corev1.Pod) bool     { return p.Status.Phase == corev1.PodPending }
func isTerminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

func isRunningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && isReady(p)
}

func isRunningAndAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return p.Status.Phase == corev1.PodRunning && isAvailable(p, minReadySeconds, now)
}

// isHealthy reports whether a pod runs, is ready and is not going away.
func isHealthy(p *corev1.Pod) bool { return isRunningAndReady(p) && !isTerminating(p) }

func isReady(p *corev1.Pod) bool { return readyCondition(p) != nil }

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// isAvailable reports whether a pod has been ready for minReadySeconds.
func isAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := readyCondition(p)
	if c == nil {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
