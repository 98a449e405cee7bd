package core_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLimitRangeValidate(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = mustQuantity(kv[i+1])
		}
		return out
	}
	cases := []struct {
		name  string
		items []corev1.LimitRangeItem
		want  []fieldErr
	}{
		{"ValidContainer", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Min: rl("cpu", "100m"), Max: rl("cpu", "2"), Default: rl("cpu", "1")}}, nil},
		{"ValidPod", []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Max: rl("memory", "4Gi")}}, nil},
		{"ValidClaim", []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim, Max: rl("storage", "10Gi")}}, nil},
		{"ValidCustomType", []corev1.LimitRangeItem{{Type: "example.com/thing", Max: rl("example.com/widgets", "2")}}, nil},
		{"RejectsUnknownType", []corev1.LimitRangeItem{{Type: "Node", Max: rl("cpu", "1")}}, []fieldErr{invalid("spec.limits[0].type")}},
		{"RejectsDuplicateType", []corev1.LimitRangeItem{{Type: corev1.LimitTypePod}, {Type: corev1.LimitTypePod}}, []fieldErr{duplicate("spec.limits[1].type")}},
		{"RejectsNonContainerResource", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: rl("pods", "1")}},
			// Defaulting copies max into default and defaultRequest.
			[]fieldErr{invalid("spec.limits[0].max[pods]"), invalid("spec.limits[0].default[pods]"), invalid("spec.limits[0].defaultRequest[pods]")}},
		{"RejectsUnknownResource", []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim, Max: rl("storage", "1Gi", "disks", "1")}},
			[]fieldErr{invalid("spec.limits[0].max[disks]")}},
		{"RejectsDefaultsOnPod", []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Default: rl("cpu", "1"), DefaultRequest: rl("cpu", "1")}},
			[]fieldErr{forbidden("spec.limits[0].default"), forbidden("spec.limits[0].defaultRequest")}},
		{"ClaimNeedsStorageBound", []corev1.LimitRangeItem{{Type: corev1.LimitTypePersistentVolumeClaim}}, []fieldErr{required("spec.limits[0].limits")}},
		{"RejectsMinAboveMax", []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Min: rl("cpu", "2"), Max: rl("cpu", "1")}},
			[]fieldErr{invalid("spec.limits[0].min[cpu]")}},
		{"RejectsDefaultAboveMax", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Max: rl("cpu", "1"), Default: rl("cpu", "2")}},
			[]fieldErr{invalid("spec.limits[0].default[cpu]"), invalid("spec.limits[0].defaultRequest[cpu]")}},
		{"RejectsDefaultRequestAboveDefault", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, Default: rl("cpu", "1"), DefaultRequest: rl("cpu", "2")}},
			[]fieldErr{invalid("spec.limits[0].defaultRequest[cpu]")}},
		{"RejectsRatioBelowOne", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer, MaxLimitRequestRatio: rl("cpu", "500m")}},
			[]fieldErr{invalid("spec.limits[0].maxLimitRequestRatio[cpu]")}},
		{"RejectsRatioAboveMaxOverMin", []corev1.LimitRangeItem{{Type: corev1.LimitTypePod, Min: rl("cpu", "1"), Max: rl("cpu", "2"), MaxLimitRequestRatio: rl("cpu", "3")}},
			[]fieldErr{invalid("spec.limits[0].maxLimitRequestRatio[cpu]")}},
		{"RejectsUnequalDefaultsForExtendedResource", []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Default: rl("example.com/gpu", "2"), DefaultRequest: rl("example.com/gpu", "1")}},
			[]fieldErr{invalid("spec.limits[0].defaultRequest[example.com/gpu]")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lr := &corev1.LimitRange{ObjectMeta: objMeta, Spec: corev1.LimitRangeSpec{Limits: tc.items}}
			r := lookup(t, "/limitranges")
			wantErrs(t, create(t, r, lr), tc.want...)
			wantErrs(t, update(t, r, lr.DeepCopy(), lr), tc.want...)
		})
	}
}

func TestResourceQuotaValidate(t *testing.T) {
	hard := func(kv ...string) corev1.ResourceList {
		out := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			out[corev1.ResourceName(kv[i])] = mustQuantity(kv[i+1])
		}
		return out
	}
	cases := []struct {
		name string
		spec corev1.ResourceQuotaSpec
		want []fieldErr
	}{
		{"Valid", corev1.ResourceQuotaSpec{Hard: hard("pods", "10", "requests.cpu", "4", "count/deployments.apps", "5", "requests.example.com/gpu", "2", "requests.hugepages-2Mi", "1Gi")}, nil},
		{"ValidScopes", corev1.ResourceQuotaSpec{Hard: hard("pods", "10", "cpu", "2"), Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating}}, nil},
		{"ValidScopeSelector", corev1.ResourceQuotaSpec{Hard: hard("pods", "10"), ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
			{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}},
		}}}, nil},
		{"RejectsNegative", corev1.ResourceQuotaSpec{Hard: hard("cpu", "-1")}, []fieldErr{invalid("spec.hard[cpu]")}},
		{"RejectsFractionalCount", corev1.ResourceQuotaSpec{Hard: hard("pods", "1.5")}, []fieldErr{invalid("spec.hard[pods]")}},
		{"RejectsNonQuotaResource", corev1.ResourceQuotaSpec{Hard: hard("storage", "1Gi")}, []fieldErr{invalid("spec.hard[storage]")}},
		{"RejectsUnknownResource", corev1.ResourceQuotaSpec{Hard: hard("widgets", "1")}, []fieldErr{invalid("spec.hard[widgets]"), invalid("spec.hard[widgets]")}},
		{"RejectsUnknownScope", corev1.ResourceQuotaSpec{Hard: hard("pods", "1"), Scopes: []corev1.ResourceQuotaScope{"Sometimes"}}, []fieldErr{invalid("spec.scopes")}},
		{"RejectsScopeForResource", corev1.ResourceQuotaSpec{Hard: hard("services", "1"), Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}},
			[]fieldErr{invalid("spec.scopes")}},
		{"RejectsConflictingScopes", corev1.ResourceQuotaSpec{Hard: hard("pods", "1"), Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating}},
			[]fieldErr{invalid("spec.scopes")}},
		{"RejectsSelectorOperatorForBestEffort", corev1.ResourceQuotaSpec{Hard: hard("pods", "1"), ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
			{ScopeName: corev1.ResourceQuotaScopeBestEffort, Operator: corev1.ScopeSelectorOpIn, Values: []string{"x"}},
		}}}, []fieldErr{invalid("spec.scopeSelector.matchExpressions.operator")}},
		{"RejectsInWithoutValues", corev1.ResourceQuotaSpec{Hard: hard("pods", "1"), ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
			{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn},
		}}}, []fieldErr{required("spec.scopeSelector.matchExpressions.values")}},
		{"RejectsUnknownOperator", corev1.ResourceQuotaSpec{Hard: hard("pods", "1"), ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
			{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: "Like"},
		}}}, []fieldErr{invalid("spec.scopeSelector.matchExpressions.operator")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &corev1.ResourceQuota{ObjectMeta: objMeta, Spec: tc.spec}
			wantErrs(t, create(t, lookup(t, "/resourcequotas"), q), tc.want...)
		})
	}
}

func TestResourceQuotaUpdate(t *testing.T) {
	r := lookup(t, "/resourcequotas")
	old := &corev1.ResourceQuota{ObjectMeta: objMeta, Spec: corev1.ResourceQuotaSpec{
		Hard: corev1.ResourceList{corev1.ResourcePods: mustQuantity("10")}, Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort},
	}}
	t.Run("AllowsHardChange", func(t *testing.T) {
		q := old.DeepCopy()
		q.Spec.Hard[corev1.ResourcePods] = mustQuantity("20")
		wantErrs(t, update(t, r, q, old))
	})
	t.Run("RejectsScopeChange", func(t *testing.T) {
		q := old.DeepCopy()
		q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotBestEffort}
		wantErrs(t, update(t, r, q, old), invalid("spec.scopes"))
	})
	t.Run("StatusChecked", func(t *testing.T) {
		q := old.DeepCopy()
		q.Status.Used = corev1.ResourceList{corev1.ResourcePods: mustQuantity("-1"), "widgets": mustQuantity("1")}
		wantErrs(t, updateStatus(t, r, q, old), invalid("status.used[pods]"), invalid("status.used[widgets]"), invalid("status.used[widgets]"))
	})
	t.Run("CreateClearsStatus", func(t *testing.T) {
		q := old.DeepCopy()
		q.Status.Used = corev1.ResourceList{corev1.ResourcePods: mustQuantity("-1")}
		wantErrs(t, create(t, r, q))
		if q.Status.Used != nil {
			t.Errorf("status kept: %v", q.Status)
		}
	})
}
