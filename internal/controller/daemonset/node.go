package daemonset

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	schedulinghelpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// templateGenerationKey is the annotation apps/v1 DaemonSets keep their
// template generation in; pods carry it in the pod-template-generation
// label.
const (
	templateGenerationKey   = "deprecated.daemonset.template.generation"
	templateGenerationLabel = "pod-template-generation"
)

// shouldRun reports whether a daemon pod of ds belongs on node (run) and
// whether one already there may stay (stay: it tolerates the node's
// NoExecute taints even if not its NoSchedule ones).
func shouldRun(node *corev1.Node, ds *appsv1.DaemonSet) (run, stay bool) {
	return newPlacer(ds).fits(node)
}

// placer answers shouldRun for one DaemonSet and many nodes, with the
// daemon pod and its node affinity built once.
type placer struct {
	nodeName    string
	tolerations []corev1.Toleration
	affinity    nodeaffinity.RequiredNodeAffinity
}

func newPlacer(ds *appsv1.DaemonSet) *placer {
	pod := &corev1.Pod{ObjectMeta: ds.Spec.Template.ObjectMeta, Spec: *ds.Spec.Template.Spec.DeepCopy()}
	pod.Namespace = ds.Namespace
	addDaemonTolerations(&pod.Spec)
	return &placer{
		nodeName:    ds.Spec.Template.Spec.NodeName,
		tolerations: pod.Spec.Tolerations,
		affinity:    nodeaffinity.GetRequiredNodeAffinity(pod),
	}
}

// fits is shouldRun for the placer's DaemonSet.
func (pl *placer) fits(node *corev1.Node) (run, stay bool) {
	if pl.nodeName != "" && pl.nodeName != node.Name {
		return false, false
	}
	if ok, err := pl.affinity.Match(node); err != nil || !ok {
		return false, false
	}
	untolerated := func(effects ...corev1.TaintEffect) bool {
		_, found := schedulinghelpers.FindMatchingUntoleratedTaint(logr.Discard(), node.Spec.Taints, pl.tolerations, func(t *corev1.Taint) bool {
			return slices.Contains(effects, t.Effect)
		}, true)
		return found
	}
	if untolerated(corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute) {
		return false, !untolerated(corev1.TaintEffectNoExecute)
	}
	return true, true
}

// addDaemonTolerations adds the tolerations every daemon pod has, as
// upstream: it keeps running on nodes that are not ready, unreachable,
// under pressure or cordoned, and (with host networking) whose network is
// not ready.
func addDaemonTolerations(spec *corev1.PodSpec) {
	add := func(key string, effect corev1.TaintEffect) {
		addOrUpdateToleration(spec, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect})
	}
	add(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
}

// addOrUpdateToleration replaces the toleration with t's key, operator,
// value and effect (a user's tolerationSeconds on not-ready, say, gives
// way to tolerating forever), or appends t.
func addOrUpdateToleration(spec *corev1.PodSpec, t corev1.Toleration) {
	for i, cur := range spec.Tolerations {
		if cur.Key == t.Key && cur.Operator == t.Operator && cur.Value == t.Value && cur.Effect == t.Effect {
			if !equality.Semantic.DeepEqual(cur, t) {
				spec.Tolerations[i] = t
			}
			return
		}
	}
	spec.Tolerations = append(spec.Tolerations, t)
}

// nodeAffinityFor returns affinity with its required node affinity
// replaced by the one term that places a pod on node; the caller checked
// that node satisfies the terms it replaces. The result is a copy.
func nodeAffinityFor(affinity *corev1.Affinity, node string) *corev1.Affinity {
	term := corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{
		Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
	}}}
	out := affinity.DeepCopy()
	if out == nil {
		out = &corev1.Affinity{}
	}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}}
	return out
}

// targetNode returns the node a daemon pod is on or meant for: its
// spec.nodeName, else the node of its metadata.name affinity term.
func targetNode(p *corev1.Pod) (string, error) {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName, nil
	}
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", fmt.Errorf("pod %s/%s has no node affinity", p.Namespace, p.Name)
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == metav1.ObjectNameField && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
				return f.Values[0], nil
			}
		}
	}
	return "", fmt.Errorf("pod %s/%s has no metadata.name node affinity term", p.Namespace, p.Name)
}

// templateGeneration returns a DaemonSet's template generation, or nil
// when it has none (not written through the API server).
func templateGeneration(ds *appsv1.DaemonSet) *int64 {
	v, ok := ds.Annotations[templateGenerationKey]
	if !ok {
		return nil
	}
	g, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil
	}
	return &g
}

// isUpdated reports whether a pod runs the DaemonSet's current template:
// its revision hash, or (for pods of older controllers) its template
// generation, matches.
func isUpdated(p *corev1.Pod, hash string, generation *int64) bool {
	if generation != nil && p.Labels[templateGenerationLabel] == strconv.FormatInt(*generation, 10) {
		return true
	}
	return hash != "" && p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
}

// isReady reports whether a pod's Ready condition is True.
func isReady(p *corev1.Pod) bool {
	return readyCondition(p) != nil
}

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
func isAvailable(p *corev1.Pod, minReadySeconds int32, now metav1.Time) bool {
	c := readyCondition(p)
	if c == nil {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now.Time)
}
