package core_test

import (
	"context"
	"errors"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

func TestLeaseValidate(t *testing.T) {
	cases := []struct {
		name string
		spec coordinationv1.LeaseSpec
		want []fieldErr
	}{
		{"Valid", coordinationv1.LeaseSpec{HolderIdentity: ptrTo("node-1"), LeaseDurationSeconds: ptrTo(int32(40)), LeaseTransitions: ptrTo(int32(0))}, nil},
		{"ValidEmpty", coordinationv1.LeaseSpec{}, nil},
		{"ValidStrategy", coordinationv1.LeaseSpec{Strategy: ptrTo(coordinationv1.OldestEmulationVersion), PreferredHolder: ptrTo("a")}, nil},
		{"ValidCustomStrategy", coordinationv1.LeaseSpec{Strategy: ptrTo(coordinationv1.CoordinatedLeaseStrategy("example.com/fastest"))}, nil},
		{"RejectsZeroDuration", coordinationv1.LeaseSpec{LeaseDurationSeconds: ptrTo(int32(0))}, []fieldErr{invalid("spec.leaseDurationSeconds")}},
		{"RejectsNegativeTransitions", coordinationv1.LeaseSpec{LeaseTransitions: ptrTo(int32(-1))}, []fieldErr{invalid("spec.leaseTransitions")}},
		{"RejectsUnknownStrategy", coordinationv1.LeaseSpec{Strategy: ptrTo(coordinationv1.CoordinatedLeaseStrategy("Newest"))}, []fieldErr{notSupported("spec.strategy")}},
		{"RejectsPreferredHolderWithoutStrategy", coordinationv1.LeaseSpec{PreferredHolder: ptrTo("a")}, []fieldErr{forbidden("spec.preferredHolder")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &coordinationv1.Lease{ObjectMeta: objMeta, Spec: tc.spec}
			r := lookup(t, "coordination.k8s.io/leases")
			wantErrs(t, create(t, r, l), tc.want...)
			wantErrs(t, update(t, r, l.DeepCopy(), l), tc.want...)
		})
	}
}

func TestSystemPriorityClasses(t *testing.T) {
	r := lookup(t, "scheduling.k8s.io/priorityclasses")
	got := map[string]int32{}
	for _, pc := range core.SystemPriorityClasses() {
		if errs := create(t, r, pc); len(errs) != 0 {
			t.Errorf("%s: %v", pc.Name, errs)
		}
		got[pc.Name] = pc.Value
	}
	if got["system-cluster-critical"] != 2000000000 || got["system-node-critical"] != 2000001000 {
		t.Errorf("values = %v", got)
	}
}

func TestPriorityClassValidate(t *testing.T) {
	cases := []struct {
		name string
		pc   schedulingv1.PriorityClass
		want []fieldErr
	}{
		{"Valid", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000000000}, nil},
		{"ValidNegative", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "low"}, Value: -10}, nil},
		{"RejectsValueAboveUserMaximum", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000000001}, []fieldErr{forbidden("value")}},
		{"RejectsReservedName", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-mine"}, Value: 10}, []fieldErr{forbidden("metadata.name")}},
		{"RejectsBuiltInWithOtherValue", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical"}, Value: 10}, []fieldErr{forbidden("metadata.name")}},
		{"RejectsBuiltInAsDefault", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-cluster-critical"}, Value: 2000000000, GlobalDefault: true},
			[]fieldErr{forbidden("metadata.name")}},
		{"RejectsUnknownPreemptionPolicy", schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, PreemptionPolicy: ptrTo(corev1.PreemptionPolicy("Always"))},
			[]fieldErr{notSupported("preemptionPolicy")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrs(t, create(t, lookup(t, "scheduling.k8s.io/priorityclasses"), tc.pc.DeepCopy()), tc.want...)
		})
	}
}

func TestPriorityClassUpdate(t *testing.T) {
	r := lookup(t, "scheduling.k8s.io/priorityclasses")
	old := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}
	create(t, r, old)
	t.Run("AllowsDescriptionChange", func(t *testing.T) {
		pc := old.DeepCopy()
		pc.Description = "important"
		wantErrs(t, update(t, r, pc, old))
	})
	t.Run("RejectsValueChange", func(t *testing.T) {
		pc := old.DeepCopy()
		pc.Value = 2000
		wantErrs(t, update(t, r, pc, old), forbidden("value"))
	})
	t.Run("RejectsPreemptionPolicyChange", func(t *testing.T) {
		pc := old.DeepCopy()
		pc.PreemptionPolicy = ptrTo(corev1.PreemptNever)
		wantErrs(t, update(t, r, pc, old), invalid("preemptionPolicy"))
	})
}

// defaultClass is a PriorityClasses that knows one global default.
type defaultClass struct {
	name string
	err  error
}

func (d defaultClass) GlobalDefault(context.Context) (*schedulingv1.PriorityClass, error) {
	if d.err != nil || d.name == "" {
		return nil, d.err
	}
	return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: d.name}, GlobalDefault: true}, nil
}

func TestPriorityClass_OneGlobalDefault(t *testing.T) {
	ctx := context.Background()
	pc := func(name string) *schedulingv1.PriorityClass {
		return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: 10, GlobalDefault: true}
	}
	cases := []struct {
		name    string
		lister  core.PriorityClasses
		update  bool
		obj     *schedulingv1.PriorityClass
		wantErr bool
	}{
		{"FirstDefault", defaultClass{}, false, pc("a"), false},
		{"RejectsSecondDefault", defaultClass{name: "a"}, false, pc("b"), true},
		{"RejectsMarkingAnotherDefault", defaultClass{name: "a"}, true, pc("b"), true},
		{"AllowsUpdatingTheDefault", defaultClass{name: "a"}, true, pc("a"), false},
		{"NonDefaultIsNotChecked", defaultClass{err: errors.New("boom")}, false, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, false},
		{"LookupFailureForbids", defaultClass{err: errors.New("cache not synced")}, false, pc("b"), true},
		{"NoListerNoCheck", nil, false, pc("b"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := lookupIn(t, core.Config{PriorityClasses: tc.lister}, "scheduling.k8s.io/priorityclasses")
			var err error
			if tc.update {
				err = r.BeforeUpdate(ctx, tc.obj, tc.obj.DeepCopy())
			} else {
				err = r.BeforeCreate(ctx, tc.obj)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !apierrors.IsForbidden(err) {
				t.Errorf("err = %v, want 403 Forbidden", err)
			}
		})
	}
}

func TestRoleValidate(t *testing.T) {
	cases := []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  []fieldErr
	}{
		{"Valid", []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}, nil},
		{"RequiresVerbs", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}, []fieldErr{required("rules[0].verbs")}},
		{"RequiresAPIGroupsAndResources", []rbacv1.PolicyRule{{Verbs: []string{"get"}}},
			[]fieldErr{required("rules[0].apiGroups"), required("rules[0].resources")}},
		{"RejectsNonResourceURLsInNamespace", []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}},
			[]fieldErr{invalid("rules[0].nonResourceURLs")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			role := &rbacv1.Role{ObjectMeta: objMeta, Rules: tc.rules}
			r := lookup(t, "rbac.authorization.k8s.io/roles")
			wantErrs(t, create(t, r, role), tc.want...)
			wantErrs(t, update(t, r, role.DeepCopy(), role), tc.want...)
		})
	}
}

func TestClusterRoleValidate(t *testing.T) {
	sel := func(m map[string]string) metav1.LabelSelector { return metav1.LabelSelector{MatchLabels: m} }
	cases := []struct {
		name string
		cr   rbacv1.ClusterRole
		want []fieldErr
	}{
		{"ValidNonResourceURLs", rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/readyz"}}}}, nil},
		{"ValidAggregation", rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			sel(map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"})}}}, nil},
		{"RejectsMixedRule", rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}, Resources: []string{"pods"}}}},
			[]fieldErr{invalid("rules[0].nonResourceURLs")}},
		{"RequiresSelectors", rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{}}, []fieldErr{required("aggregationRule.clusterRoleSelectors")}},
		{"RejectsBadSelector", rbacv1.ClusterRole{AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}}}},
			[]fieldErr{invalid("aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := tc.cr.DeepCopy()
			cr.Name = "viewer"
			wantErrs(t, create(t, lookup(t, "rbac.authorization.k8s.io/clusterroles"), cr), tc.want...)
		})
	}
}

func TestBindingValidate(t *testing.T) {
	sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "default"}
	cases := []struct {
		name      string
		ref       rbacv1.RoleRef
		subjects  []rbacv1.Subject
		want      []fieldErr // for a RoleBinding
		wantClust []fieldErr // for a ClusterRoleBinding
	}{
		{"ValidUserAndGroup", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			[]rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}, {Kind: rbacv1.GroupKind, Name: "system:authenticated"}}, nil, nil},
		{"ServiceAccountNamespaceRequiredForClusterBinding", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			[]rbacv1.Subject{sa}, nil, []fieldErr{required("subjects[0].namespace")}},
		{"RoleOnlyInNamespace", rbacv1.RoleRef{Kind: "Role", Name: "edit"}, nil, nil, []fieldErr{notSupported("roleRef.kind")}},
		{"RejectsUnknownRefKind", rbacv1.RoleRef{Kind: "Policy", Name: "x"}, nil, []fieldErr{notSupported("roleRef.kind")}, []fieldErr{notSupported("roleRef.kind")}},
		{"RejectsOtherAPIGroup", rbacv1.RoleRef{APIGroup: "example.com", Kind: "ClusterRole", Name: "x"}, nil,
			[]fieldErr{notSupported("roleRef.apiGroup")}, []fieldErr{notSupported("roleRef.apiGroup")}},
		{"RequiresRefName", rbacv1.RoleRef{Kind: "ClusterRole"}, nil, []fieldErr{required("roleRef.name")}, []fieldErr{required("roleRef.name")}},
		{"RejectsBadRefName", rbacv1.RoleRef{Kind: "ClusterRole", Name: "a/b"}, nil, []fieldErr{invalid("roleRef.name")}, []fieldErr{invalid("roleRef.name")}},
		{"RejectsUnknownSubjectKind", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}, []rbacv1.Subject{{Kind: "Robot", Name: "r2"}},
			[]fieldErr{notSupported("subjects[0].kind")}, []fieldErr{notSupported("subjects[0].kind")}},
		{"RequiresSubjectName", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"}, []rbacv1.Subject{{Kind: rbacv1.UserKind}},
			[]fieldErr{required("subjects[0].name")}, []fieldErr{required("subjects[0].name")}},
		{"RejectsBadServiceAccountName", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			[]rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "Bad_Name", Namespace: "default"}},
			[]fieldErr{invalid("subjects[0].name")}, []fieldErr{invalid("subjects[0].name")}},
		{"RejectsServiceAccountAPIGroup", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			[]rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, APIGroup: "rbac.authorization.k8s.io", Name: "default", Namespace: "default"}},
			[]fieldErr{notSupported("subjects[0].apiGroup")}, []fieldErr{notSupported("subjects[0].apiGroup")}},
		{"RejectsUserInOtherGroup", rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
			[]rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "example.com", Name: "alice"}},
			[]fieldErr{notSupported("subjects[0].apiGroup")}, []fieldErr{notSupported("subjects[0].apiGroup")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rb := &rbacv1.RoleBinding{ObjectMeta: objMeta, RoleRef: tc.ref, Subjects: append([]rbacv1.Subject(nil), tc.subjects...)}
			wantErrs(t, create(t, lookup(t, "rbac.authorization.k8s.io/rolebindings"), rb), tc.want...)
			crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, RoleRef: tc.ref, Subjects: append([]rbacv1.Subject(nil), tc.subjects...)}
			wantErrs(t, create(t, lookup(t, "rbac.authorization.k8s.io/clusterrolebindings"), crb), tc.wantClust...)
		})
	}
}

func TestBinding_RoleRefImmutable(t *testing.T) {
	old := &rbacv1.RoleBinding{ObjectMeta: objMeta, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}}
	r := lookup(t, "rbac.authorization.k8s.io/rolebindings")
	t.Run("AllowsSubjectChange", func(t *testing.T) {
		rb := old.DeepCopy()
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "bob"}}
		wantErrs(t, update(t, r, rb, old))
	})
	t.Run("RejectsRoleRefChange", func(t *testing.T) {
		rb := old.DeepCopy()
		rb.RoleRef.Name = "edit"
		errs := update(t, r, rb, old)
		wantErrs(t, errs, invalid("roleRef"))
		if len(errs) == 1 && errs[0].Detail != "cannot change roleRef" {
			t.Errorf("detail = %q", errs[0].Detail)
		}
	})
	t.Run("ClusterRoleBindingToo", func(t *testing.T) {
		o := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "web"}, RoleRef: old.RoleRef}
		crb := o.DeepCopy()
		crb.RoleRef.Name = "edit"
		wantErrs(t, update(t, lookup(t, "rbac.authorization.k8s.io/clusterrolebindings"), crb, o), invalid("roleRef"))
	})
}
