// Package schedtest builds the pods and nodes that scheduler tests
// need, in the style of net/http/httptest: short chains instead of
// struct literals five levels deep.
//
//	pod := schedtest.Pod("web").Req("cpu", "500m").Label("app", "web").Obj()
//	node := schedtest.Node("n1").Cap("cpu", "4", "memory", "8Gi", "pods", "110").Obj()
package schedtest

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// PodBuilder builds a pod.
type PodBuilder struct{ p v1.Pod }

// Pod starts a pod in namespace "default" with one container "c" and
// UID "uid-<name>".
func Pod(name string) *PodBuilder {
	return &PodBuilder{p: v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: v1.PodSpec{
			SchedulerName: "default-scheduler",
			Containers:    []v1.Container{{Name: "c", Image: "app:1"}},
		},
	}}
}

// Obj returns the pod.
func (b *PodBuilder) Obj() *v1.Pod { p := b.p.DeepCopy(); return p }

// Namespace sets the namespace.
func (b *PodBuilder) Namespace(ns string) *PodBuilder { b.p.Namespace = ns; return b }

// UID sets the UID.
func (b *PodBuilder) UID(uid string) *PodBuilder { b.p.UID = types.UID(uid); return b }

// Node binds the pod to a node.
func (b *PodBuilder) Node(name string) *PodBuilder { b.p.Spec.NodeName = name; return b }

// Label adds labels, as key, value pairs.
func (b *PodBuilder) Label(kv ...string) *PodBuilder {
	if b.p.Labels == nil {
		b.p.Labels = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.p.Labels[kv[i]] = kv[i+1]
	}
	return b
}

// Priority sets spec.priority.
func (b *PodBuilder) Priority(p int32) *PodBuilder { b.p.Spec.Priority = &p; return b }

// PreemptNever sets spec.preemptionPolicy to Never.
func (b *PodBuilder) PreemptNever() *PodBuilder {
	n := v1.PreemptNever
	b.p.Spec.PreemptionPolicy = &n
	return b
}

// Created sets creationTimestamp.
func (b *PodBuilder) Created(t metav1.Time) *PodBuilder { b.p.CreationTimestamp = t; return b }

// Started sets status.startTime.
func (b *PodBuilder) Started(t metav1.Time) *PodBuilder { b.p.Status.StartTime = &t; return b }

// Terminating sets a deletion timestamp.
func (b *PodBuilder) Terminating() *PodBuilder {
	now := metav1.Now()
	b.p.DeletionTimestamp = &now
	return b
}

// Nominated sets status.nominatedNodeName.
func (b *PodBuilder) Nominated(node string) *PodBuilder {
	b.p.Status.NominatedNodeName = node
	return b
}

// SchedulerName sets spec.schedulerName.
func (b *PodBuilder) SchedulerName(n string) *PodBuilder { b.p.Spec.SchedulerName = n; return b }

// Image sets the first container's image.
func (b *PodBuilder) Image(image string) *PodBuilder { b.p.Spec.Containers[0].Image = image; return b }

// Container adds a container with an image.
func (b *PodBuilder) Container(image string) *PodBuilder {
	b.p.Spec.Containers = append(b.p.Spec.Containers, v1.Container{Name: fmt.Sprintf("c%d", len(b.p.Spec.Containers)), Image: image})
	return b
}

// Req sets requests of the first container, as name, quantity pairs.
func (b *PodBuilder) Req(kv ...string) *PodBuilder {
	b.p.Spec.Containers[0].Resources.Requests = list(b.p.Spec.Containers[0].Resources.Requests, kv)
	return b
}

// InitReq adds an init container with requests.
func (b *PodBuilder) InitReq(kv ...string) *PodBuilder {
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, v1.Container{
		Name: fmt.Sprintf("init%d", len(b.p.Spec.InitContainers)), Image: "init:1",
		Resources: v1.ResourceRequirements{Requests: list(nil, kv)},
	})
	return b
}

// SidecarReq adds a restartable init container (a sidecar) with requests.
func (b *PodBuilder) SidecarReq(kv ...string) *PodBuilder {
	always := v1.ContainerRestartPolicyAlways
	b.p.Spec.InitContainers = append(b.p.Spec.InitContainers, v1.Container{
		Name: fmt.Sprintf("sidecar%d", len(b.p.Spec.InitContainers)), Image: "sidecar:1", RestartPolicy: &always,
		Resources: v1.ResourceRequirements{Requests: list(nil, kv)},
	})
	return b
}

// Overhead sets spec.overhead.
func (b *PodBuilder) Overhead(kv ...string) *PodBuilder { b.p.Spec.Overhead = list(nil, kv); return b }

// HostPort adds a host port to the first container.
func (b *PodBuilder) HostPort(ip string, proto v1.Protocol, port int32) *PodBuilder {
	b.p.Spec.Containers[0].Ports = append(b.p.Spec.Containers[0].Ports, v1.ContainerPort{HostIP: ip, Protocol: proto, HostPort: port, ContainerPort: port})
	return b
}

// NodeSelector adds nodeSelector entries, as key, value pairs.
func (b *PodBuilder) NodeSelector(kv ...string) *PodBuilder {
	if b.p.Spec.NodeSelector == nil {
		b.p.Spec.NodeSelector = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.p.Spec.NodeSelector[kv[i]] = kv[i+1]
	}
	return b
}

func (b *PodBuilder) affinity() *v1.Affinity {
	if b.p.Spec.Affinity == nil {
		b.p.Spec.Affinity = &v1.Affinity{}
	}
	return b.p.Spec.Affinity
}

// NodeAffinityIn requires a node label to be one of values (one more
// ORed term).
func (b *PodBuilder) NodeAffinityIn(key string, values ...string) *PodBuilder {
	a := b.affinity()
	if a.NodeAffinity == nil {
		a.NodeAffinity = &v1.NodeAffinity{}
	}
	if a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &v1.NodeSelector{}
	}
	ns := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: v1.NodeSelectorOpIn, Values: values}}})
	return b
}

// PreferredNodeAffinity prefers nodes with key=value, with a weight.
func (b *PodBuilder) PreferredNodeAffinity(weight int32, key, value string) *PodBuilder {
	a := b.affinity()
	if a.NodeAffinity == nil {
		a.NodeAffinity = &v1.NodeAffinity{}
	}
	a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution, v1.PreferredSchedulingTerm{
		Weight:     weight,
		Preference: v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{{Key: key, Operator: v1.NodeSelectorOpIn, Values: []string{value}}}},
	})
	return b
}

// Term is a pod affinity term selecting pods with label key=value in the
// pod's namespace, over a topology key.
func Term(topologyKey, key, value string) v1.PodAffinityTerm {
	return v1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
		TopologyKey:   topologyKey,
	}
}

// PodAffinity adds a required pod affinity term.
func (b *PodBuilder) PodAffinity(t v1.PodAffinityTerm) *PodBuilder {
	a := b.affinity()
	if a.PodAffinity == nil {
		a.PodAffinity = &v1.PodAffinity{}
	}
	a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, t)
	return b
}

// PodAntiAffinity adds a required pod anti-affinity term.
func (b *PodBuilder) PodAntiAffinity(t v1.PodAffinityTerm) *PodBuilder {
	a := b.affinity()
	if a.PodAntiAffinity == nil {
		a.PodAntiAffinity = &v1.PodAntiAffinity{}
	}
	a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, t)
	return b
}

// PreferredPodAffinity adds a preferred pod affinity term.
func (b *PodBuilder) PreferredPodAffinity(weight int32, t v1.PodAffinityTerm) *PodBuilder {
	a := b.affinity()
	if a.PodAffinity == nil {
		a.PodAffinity = &v1.PodAffinity{}
	}
	a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, v1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t})
	return b
}

// PreferredPodAntiAffinity adds a preferred pod anti-affinity term.
func (b *PodBuilder) PreferredPodAntiAffinity(weight int32, t v1.PodAffinityTerm) *PodBuilder {
	a := b.affinity()
	if a.PodAntiAffinity == nil {
		a.PodAntiAffinity = &v1.PodAntiAffinity{}
	}
	a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, v1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t})
	return b
}

// Toleration adds a toleration (operator Equal when value is set, else
// Exists).
func (b *PodBuilder) Toleration(key, value string, effect v1.TaintEffect) *PodBuilder {
	op := v1.TolerationOpExists
	if value != "" {
		op = v1.TolerationOpEqual
	}
	b.p.Spec.Tolerations = append(b.p.Spec.Tolerations, v1.Toleration{Key: key, Operator: op, Value: value, Effect: effect})
	return b
}

// Spread adds a topology spread constraint over pods with label
// key=value.
func (b *PodBuilder) Spread(maxSkew int32, topologyKey string, when v1.UnsatisfiableConstraintAction, key, value string) *PodBuilder {
	b.p.Spec.TopologySpreadConstraints = append(b.p.Spec.TopologySpreadConstraints, v1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: topologyKey, WhenUnsatisfiable: when,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
	})
	return b
}

// SpreadMinDomains sets minDomains on the last spread constraint.
func (b *PodBuilder) SpreadMinDomains(n int32) *PodBuilder {
	b.p.Spec.TopologySpreadConstraints[len(b.p.Spec.TopologySpreadConstraints)-1].MinDomains = &n
	return b
}

// SchedulingGate adds a scheduling gate.
func (b *PodBuilder) SchedulingGate(name string) *PodBuilder {
	b.p.Spec.SchedulingGates = append(b.p.Spec.SchedulingGates, v1.PodSchedulingGate{Name: name})
	return b
}

// NodeBuilder builds a node.
type NodeBuilder struct{ n v1.Node }

// Node starts a node with label kubernetes.io/hostname=<name>, Ready,
// and allocatable cpu 4, memory 8Gi, pods 110.
func Node(name string) *NodeBuilder {
	b := &NodeBuilder{n: v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{v1.LabelHostname: name}},
		Status: v1.NodeStatus{
			Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue}},
		},
	}}
	return b.Cap("cpu", "4", "memory", "8Gi", "pods", "110")
}

// Obj returns the node.
func (b *NodeBuilder) Obj() *v1.Node { return b.n.DeepCopy() }

// Cap sets capacity and allocatable, as name, quantity pairs, on top of
// what is set.
func (b *NodeBuilder) Cap(kv ...string) *NodeBuilder {
	b.n.Status.Allocatable = list(b.n.Status.Allocatable, kv)
	b.n.Status.Capacity = list(b.n.Status.Capacity, kv)
	return b
}

// Label adds labels, as key, value pairs.
func (b *NodeBuilder) Label(kv ...string) *NodeBuilder {
	for i := 0; i+1 < len(kv); i += 2 {
		b.n.Labels[kv[i]] = kv[i+1]
	}
	return b
}

// Taint adds a taint.
func (b *NodeBuilder) Taint(key, value string, effect v1.TaintEffect) *NodeBuilder {
	b.n.Spec.Taints = append(b.n.Spec.Taints, v1.Taint{Key: key, Value: value, Effect: effect})
	return b
}

// Unschedulable cordons the node.
func (b *NodeBuilder) Unschedulable() *NodeBuilder { b.n.Spec.Unschedulable = true; return b }

// Image adds an image the node has, with its size in bytes.
func (b *NodeBuilder) Image(size int64, names ...string) *NodeBuilder {
	b.n.Status.Images = append(b.n.Status.Images, v1.ContainerImage{Names: names, SizeBytes: size})
	return b
}

func list(rl v1.ResourceList, kv []string) v1.ResourceList {
	if rl == nil {
		rl = v1.ResourceList{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		rl[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return rl
}

// NodeInfo returns a NodeInfo of node holding pods (which must parse).
func NodeInfo(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	n := framework.NewNodeInfo()
	if node != nil {
		n.SetNode(node)
	}
	for _, p := range pods {
		n.AddPod(framework.MustPodInfo(p))
	}
	return n
}
