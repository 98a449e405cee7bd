package daemonset

import (
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const ns = "ns"

func ptrTo[T any](v T) *T { return &v }

// newDS returns a DaemonSet as the API server stores it (defaults, the
// template generation annotation).
func newDS(name string, change ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: "1",
			Annotations: map[string]string{templateGenerationKey: "1"},
		},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "agent:1"}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{
					MaxUnavailable: ptrTo(intstr.FromInt32(1)),
					MaxSurge:       ptrTo(intstr.FromInt32(0)),
				},
			},
			RevisionHistoryLimit: ptrTo(int32(10)),
		},
	}
	for _, f := range change {
		f(ds)
	}
	return ds
}

func newNode(name string, change ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1", Labels: map[string]string{"kubernetes.io/hostname": name}}}
	for _, f := range change {
		f(n)
	}
	return n
}

func taint(key string, effect corev1.TaintEffect) func(*corev1.Node) {
	return func(n *corev1.Node) { n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect}) }
}

// newTemplate changes the DaemonSet's image, as the API server records a
// template change (generation and template generation up).
func newTemplate(image string) func(*appsv1.DaemonSet) {
	return func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Containers[0].Image = image
		ds.Generation++
		g := *templateGeneration(ds) + 1
		ds.Annotations[templateGenerationKey] = strconv.FormatInt(g, 10)
	}
}

func ready(p *corev1.Pod) {
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
}

// readyAll marks every pod ready (the scheduler and node agent did their
// part).
func (h *harness) readyAll() {
	h.t.Helper()
	for _, p := range h.pods(ns) {
		if !isReady(p) && p.DeletionTimestamp == nil {
			h.setPod(p, ready)
		}
	}
	h.Refresh()
}

// TestSync drives the controller through DaemonSet placements and
// updates, one sync at a time, and compares the calls it makes with
// golden traces.
func TestSync(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"creates_one_pod_per_eligible_node", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent"),
				newNode("plain"),
				newNode("gpu", taint("dedicated", corev1.TaintEffectNoSchedule)),
				newNode("cordoned-not-ready", taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule), taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)),
			)
			h.sync("revision 1; pods on plain and cordoned-not-ready, none on the tainted gpu node", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.sync("pods seen and ready: status", "ns/agent")
			h.Golden()
		}},
		{"honours_node_selector_and_affinity", func(t *testing.T) {
			h := newHarness(t, nil, newDS("sel", func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
				ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
					}}},
				}}
			}),
				newNode("ssd-a", func(n *corev1.Node) { n.Labels["disk"], n.Labels["zone"] = "ssd", "a" }),
				newNode("ssd-c", func(n *corev1.Node) { n.Labels["disk"], n.Labels["zone"] = "ssd", "c" }),
				newNode("hdd-a", func(n *corev1.Node) { n.Labels["disk"], n.Labels["zone"] = "hdd", "a" }),
			)
			h.sync("only ssd-a fits; its pod's affinity names the node", "ns/sel")
			h.Golden()
		}},
		{"host_network_pods_tolerate_network_unavailable", func(t *testing.T) {
			h := newHarness(t, nil, newDS("cni", func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.HostNetwork = true
				ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(300))}}
			}), newNode("fresh", taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)))
			h.sync("the user's not-ready toleration becomes unlimited; network-unavailable tolerated", "ns/cni")
			h.Golden()
		}},
		{"follows_node_taints", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent"), newNode("n1"), newNode("n2"))
			h.sync("create", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.setNode("n1", taint("maintenance", corev1.TaintEffectNoSchedule))
			h.setNode("n2", taint("evict", corev1.TaintEffectNoExecute))
			h.Refresh()
			h.sync("NoSchedule on n1: the pod stays, misscheduled; NoExecute on n2: the pod goes", "ns/agent")
			h.Golden()
		}},
		{"replaces_failed_pods_with_backoff", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent"), newNode("n1"))
			h.sync("create", "ns/agent")
			h.Refresh()
			fail := func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodFailed }
			h.setPod(h.pods(ns)[0], fail)
			h.Refresh()
			h.sync("failed pod deleted; the error rate-limits the retry", "ns/agent")
			h.Refresh()
			h.sync("replacement created", "ns/agent")
			h.Refresh()
			h.setPod(h.pods(ns)[0], fail)
			h.Refresh()
			h.sync("failed again within a second: wait out the backoff", "ns/agent")
			h.Refresh()
			h.clock.Step(2 * time.Second)
			h.sync("backoff over: delete it", "ns/agent")
			h.Golden()
		}},
		{"removes_extra_pods_and_pods_of_gone_nodes", func(t *testing.T) {
			ds := newDS("agent")
			mk := func(name, node string, age time.Duration) *corev1.Pod {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
					Name: name, Namespace: ns, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(-age)),
					Labels: map[string]string{"app": "agent"}, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, dsKind)},
				}}
				p.Spec.Affinity = nodeAffinityFor(nil, node)
				return p
			}
			h := newHarness(t, nil, ds, newNode("n1"), mk("old", "n1", time.Hour), mk("new", "n1", time.Minute), mk("lost", "gone", time.Hour))
			h.sync("keep the oldest on n1; delete the pod meant for a gone node", "ns/agent")
			h.Golden()
		}},
		{"rolling_update_replaces_one_node_at_a_time", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent"), newNode("n1"), newNode("n2"), newNode("n3"))
			h.sync("create", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.sync("all ready", "ns/agent")
			h.Refresh()
			h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate("agent:2"))
			h.Refresh()
			h.sync("new template: revision 2; one old pod deleted (maxUnavailable 1)", "ns/agent")
			h.Refresh()
			h.sync("its node gets a revision-2 pod", "ns/agent")
			h.Refresh()
			h.sync("not ready yet: no more deletions", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.sync("ready: the next old pod goes", "ns/agent")
			h.Golden()
		}},
		{"rolling_update_with_surge_keeps_old_pods_until_new_are_available", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent", func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptrTo(intstr.FromInt32(0)), MaxSurge: ptrTo(intstr.FromInt32(1))}
			}), newNode("n1"), newNode("n2"))
			h.sync("create", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate("agent:2"))
			h.Refresh()
			h.sync("new template: a revision-2 pod beside n1's old pod", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.sync("new pod available: manage deletes n1's old pod", "ns/agent")
			h.Refresh()
			h.sync("n2 surges", "ns/agent")
			h.Golden()
		}},
		{"on_delete_strategy_waits_for_deletions", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent", func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
			}), newNode("n1"))
			h.sync("create", "ns/agent")
			h.Refresh()
			h.readyAll()
			h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate("agent:2"))
			h.Refresh()
			h.sync("new template: revision 2, the old pod stays", "ns/agent")
			h.Golden()
		}},
		{"rollback_renumbers_the_old_revision", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent"), newNode("n1"))
			h.sync("revision 1", "ns/agent")
			h.Refresh()
			h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate("agent:2"))
			h.Refresh()
			h.sync("revision 2", "ns/agent")
			h.Refresh()
			h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate("agent:1"))
			h.Refresh()
			h.sync("back to agent:1: its revision becomes 3", "ns/agent")
			h.Golden()
		}},
		{"cleans_up_history_past_the_limit", func(t *testing.T) {
			h := newHarness(t, nil, newDS("agent", func(ds *appsv1.DaemonSet) { ds.Spec.RevisionHistoryLimit = ptrTo(int32(1)) }), newNode("n1"))
			h.sync("revision 1", "ns/agent")
			h.Refresh()
			for _, img := range []string{"agent:2", "agent:3"} {
				h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate(img))
				h.Refresh()
				h.sync("new template "+img, "ns/agent")
				h.Refresh()
			}
			h.setDaemonSet(h.daemonSet(ns, "agent"), newTemplate("agent:4"))
			h.Refresh()
			h.sync("revision 4: keep 1 old revision besides those pods use", "ns/agent")
			h.Golden()
		}},
		{"adopts_orphans_and_bad_input", func(t *testing.T) {
			orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns, UID: "uid-orphan", Labels: map[string]string{"app": "agent"}}}
			orphan.Spec.NodeName = "n1"
			onDelete := func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
			}
			h := newHarness(t, nil, newDS("agent", onDelete), newDS("all", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = &metav1.LabelSelector{} }),
				newNode("n1"), orphan)
			h.sync("adopt the orphan on n1: no new pod there", "ns/agent")
			h.sync("empty selector: refused", "ns/all")
			h.sync("no such daemonset", "ns/missing")
			h.sync("malformed key", "a/b/c")
			h.Golden()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
