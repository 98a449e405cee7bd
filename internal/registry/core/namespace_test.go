package core_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func basicNamespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: newUID()}}
}

func TestNamespaceCreate(t *testing.T) {
	r := lookup(t, "/namespaces")
	cases := []struct {
		name       string
		mutate     func(*corev1.Namespace)
		want       []fieldErr
		finalizers []corev1.FinalizerName
	}{
		{"AddsKubernetesFinalizer", func(*corev1.Namespace) {}, nil, []corev1.FinalizerName{"kubernetes"}},
		{"KeepsOtherFinalizers", func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{"example.com/cleanup"} }, nil,
			[]corev1.FinalizerName{"example.com/cleanup", "kubernetes"}},
		{"DoesNotRepeatKubernetesFinalizer", func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{"kubernetes"} }, nil,
			[]corev1.FinalizerName{"kubernetes"}},
		{"RejectsUnqualifiedFinalizer", func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{"cleanup"} },
			[]fieldErr{invalid("spec.finalizers")}, nil},
		{"RejectsMalformedFinalizer", func(ns *corev1.Namespace) { ns.Spec.Finalizers = []corev1.FinalizerName{"example.com/a/b"} },
			[]fieldErr{invalid("spec.finalizers")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := basicNamespace()
			ns.Status.Phase = corev1.NamespaceTerminating // a client may not set it
			tc.mutate(ns)
			wantErrs(t, create(t, r, ns), tc.want...)
			if tc.finalizers == nil {
				return
			}
			if diff := cmp.Diff(tc.finalizers, ns.Spec.Finalizers); diff != "" {
				t.Errorf("finalizers (-want +got):\n%s", diff)
			}
			if ns.Status.Phase != corev1.NamespaceActive || ns.Labels[corev1.LabelMetadataName] != "team-a" {
				t.Errorf("phase %q, labels %v", ns.Status.Phase, ns.Labels)
			}
		})
	}
}

func TestNamespaceUpdate(t *testing.T) {
	r := lookup(t, "/namespaces")
	old := basicNamespace()
	create(t, r, old)
	t.Run("FinalizersChangeOnlyThroughFinalize", func(t *testing.T) {
		ns := old.DeepCopy()
		ns.Spec.Finalizers = nil
		wantErrs(t, update(t, r, ns, old))
		if diff := cmp.Diff(old.Spec.Finalizers, ns.Spec.Finalizers); diff != "" {
			t.Errorf("finalizers changed (-want +got):\n%s", diff)
		}
	})
	t.Run("NameLabelRestored", func(t *testing.T) {
		ns := old.DeepCopy()
		ns.Labels = map[string]string{corev1.LabelMetadataName: "other", "team": "a"}
		wantErrs(t, update(t, r, ns, old))
		if diff := cmp.Diff(map[string]string{corev1.LabelMetadataName: "team-a", "team": "a"}, ns.Labels); diff != "" {
			t.Errorf("labels (-want +got):\n%s", diff)
		}
	})
	t.Run("StatusKept", func(t *testing.T) {
		ns := old.DeepCopy()
		ns.Status.Phase = corev1.NamespaceTerminating
		update(t, r, ns, old)
		if ns.Status.Phase != corev1.NamespaceActive {
			t.Errorf("phase = %q", ns.Status.Phase)
		}
	})
}

func TestNamespaceStatus(t *testing.T) {
	r := lookup(t, "/namespaces")
	old := basicNamespace()
	create(t, r, old)
	now := metav1.Now()
	cases := []struct {
		name     string
		deleting bool
		phase    corev1.NamespacePhase
		want     []fieldErr
	}{
		{"ActiveWhileLive", false, corev1.NamespaceActive, nil},
		{"RejectsTerminatingWhileLive", false, corev1.NamespaceTerminating, []fieldErr{invalid("status.Phase")}},
		{"TerminatingWhileDeleted", true, corev1.NamespaceTerminating, nil},
		{"RejectsActiveWhileDeleted", true, corev1.NamespaceActive, []fieldErr{invalid("status.Phase")}},
		{"RejectsUnknownPhase", false, "Sleeping", []fieldErr{invalid("status.Phase")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stored := old.DeepCopy()
			if tc.deleting {
				stored.DeletionTimestamp = &now
			}
			ns := stored.DeepCopy()
			ns.Status.Phase = tc.phase
			wantErrs(t, updateStatus(t, r, ns, stored), tc.want...)
		})
	}
}

func TestNamespaceSelectableFields(t *testing.T) {
	ns := basicNamespace()
	ns.Status.Phase = corev1.NamespaceTerminating
	got := lookup(t, "/namespaces").SelectableFields(ns)
	if diff := cmp.Diff(fields.Set{"status.phase": "Terminating", "name": "team-a"}, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
