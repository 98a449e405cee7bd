package core_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func basicNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: newUID()},
		Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("4"), corev1.ResourceMemory: mustQuantity("8Gi"), corev1.ResourcePods: mustQuantity("110")},
		},
	}
}

func TestNodeValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Node)
		want   []fieldErr
	}{
		{"ValidNode", func(*corev1.Node) {}, nil},
		{"ValidDualStackPodCIDRs", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24", "fd00:42:1::/64"} }, nil},
		{"ValidTaints", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{
				{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule},
				{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute},
			}
		}, nil},
		{"RejectsBadPodCIDR", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/33"} }, []fieldErr{invalid("spec.podCIDRs[0]")}},
		{"RejectsPodCIDRWithHostBits", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.1/24"} }, []fieldErr{invalid("spec.podCIDRs[0]")}},
		{"RejectsTwoCIDRsOfOneFamily", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24", "10.42.2.0/24"} },
			[]fieldErr{invalid("spec.podCIDRs")}},
		{"RejectsDuplicateCIDR", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24", "10.42.1.0/24"} },
			[]fieldErr{invalid("spec.podCIDRs"), duplicate("spec.podCIDRs[1]")}},
		{"RejectsTaintWithBadKey", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "bad key", Effect: corev1.TaintEffectNoSchedule}}
		}, []fieldErr{invalid("metadata.taints[0].key")}},
		{"RejectsTaintWithBadValue", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Value: "bad value", Effect: corev1.TaintEffectNoSchedule}}
		}, []fieldErr{invalid("metadata.taints[0].value")}},
		{"RejectsTaintWithoutEffect", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k"}} }, []fieldErr{required("metadata.taints[0].effect")}},
		{"RejectsUnknownTaintEffect", func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: "NoScheduleNoAdmit"}} },
			[]fieldErr{notSupported("metadata.taints[0].effect")}},
		{"RejectsDuplicateTaint", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Value: "a", Effect: corev1.TaintEffectNoSchedule}, {Key: "k", Value: "b", Effect: corev1.TaintEffectNoSchedule}}
		}, []fieldErr{duplicate("metadata.taints[1]")}},
		{"RejectsNegativeCapacity", func(n *corev1.Node) { n.Status.Capacity[corev1.ResourceCPU] = mustQuantity("-1") },
			[]fieldErr{invalid("status.capacity.cpu"), invalid("status.allocatable.cpu")}},
		{"RejectsFractionalPods", func(n *corev1.Node) {
			n.Status.Allocatable = corev1.ResourceList{corev1.ResourcePods: mustQuantity("1.5")}
		},
			[]fieldErr{invalid("status.allocatable.pods")}},
		{"RejectsMalformedTaintsAnnotation", func(n *corev1.Node) {
			n.Annotations = map[string]string{corev1.TaintsAnnotationKey: "{not json"}
		}, []fieldErr{invalid("metadata.annotations")}},
		{"RejectsBadTaintInAnnotation", func(n *corev1.Node) {
			n.Annotations = map[string]string{corev1.TaintsAnnotationKey: `[{"key":"k","effect":"Sometimes"}]`}
		}, []fieldErr{notSupported("metadata.annotations.scheduler.alpha.kubernetes.io/taints[0].effect")}},
		{"RejectsAvoidPodsWithoutController", func(n *corev1.Node) {
			n.Annotations = map[string]string{corev1.PreferAvoidPodsAnnotationKey: `{"preferAvoidPods":[{"podSignature":{"podController":{"kind":"ReplicaSet","name":"a","uid":"u","apiVersion":"apps/v1"}}}]}`}
		}, []fieldErr{invalid("metadata.annotations.scheduler.alpha.kubernetes.io/preferAvoidPods[0].PodSignature.PodController.Controller")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := basicNode()
			tc.mutate(n)
			wantErrs(t, create(t, lookup(t, "/nodes"), n), tc.want...)
		})
	}
}

func TestNodeCreate_KeepsStatus(t *testing.T) {
	n := basicNode()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	create(t, lookup(t, "/nodes"), n)
	if len(n.Status.Conditions) != 1 {
		t.Errorf("conditions = %v: a node registers with its status", n.Status.Conditions)
	}
}

func TestNodeUpdate(t *testing.T) {
	r := lookup(t, "/nodes")
	stored := func(mutate func(*corev1.Node)) *corev1.Node {
		n := basicNode()
		mutate(n)
		if errs := create(t, r, n); len(errs) != 0 {
			t.Fatal(errs)
		}
		return n
	}
	cases := []struct {
		name   string
		old    func(*corev1.Node)
		mutate func(*corev1.Node)
		want   []fieldErr
	}{
		{"AllowsSettingPodCIDROnce", func(*corev1.Node) {}, func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24"} }, nil},
		{"AllowsLegacyPodCIDRField", func(*corev1.Node) {}, func(n *corev1.Node) { n.Spec.PodCIDR = "10.42.1.0/24" }, nil},
		{"RejectsPodCIDRChange", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24"} },
			func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.2.0/24"}; n.Spec.PodCIDR = "" }, []fieldErr{forbidden("spec.podCIDRs")}},
		{"RejectsPodCIDRRemoval", func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.42.1.0/24"} },
			func(n *corev1.Node) { n.Spec.PodCIDRs = nil; n.Spec.PodCIDR = "" }, []fieldErr{forbidden("spec.podCIDRs")}},
		{"AllowsSettingProviderIDOnce", func(*corev1.Node) {}, func(n *corev1.Node) { n.Spec.ProviderID = "skiff://node-1" }, nil},
		{"RejectsProviderIDChange", func(n *corev1.Node) { n.Spec.ProviderID = "skiff://node-1" },
			func(n *corev1.Node) { n.Spec.ProviderID = "skiff://node-2" }, []fieldErr{forbidden("spec.providerID")}},
		{"RejectsExternalIDChange", func(*corev1.Node) {}, func(n *corev1.Node) { n.Spec.DoNotUseExternalID = "x" }, []fieldErr{forbidden("spec.externalID")}},
		{"AllowsCordon", func(*corev1.Node) {}, func(n *corev1.Node) { n.Spec.Unschedulable = true }, nil},
		{"RejectsBadTaintOnUpdate", func(*corev1.Node) {}, func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "k"}} },
			[]fieldErr{required("metadata.taints[0].effect"), required("metadata.taints[0].effect")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := stored(tc.old)
			n := old.DeepCopy()
			tc.mutate(n)
			wantErrs(t, update(t, r, n, old), tc.want...)
		})
	}
}

func TestNodeStatusUpdate(t *testing.T) {
	r := lookup(t, "/nodes")
	old := basicNode()
	create(t, r, old)
	t.Run("RejectsDuplicateAddresses", func(t *testing.T) {
		n := old.DeepCopy()
		a := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}
		n.Status.Addresses = []corev1.NodeAddress{a, a}
		wantErrs(t, updateStatus(t, r, n, old), duplicate("status.addresses[1]"))
	})
	t.Run("SpecUnchanged", func(t *testing.T) {
		n := old.DeepCopy()
		n.Spec.Unschedulable = true
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		wantErrs(t, updateStatus(t, r, n, old))
	})
}

func TestNodeSelectableFields(t *testing.T) {
	n := basicNode()
	n.Spec.Unschedulable = true
	got := lookup(t, "/nodes").SelectableFields(n)
	if diff := cmp.Diff("true", got["spec.unschedulable"]); diff != "" {
		t.Errorf("spec.unschedulable (-want +got):\n%s", diff)
	}
}
