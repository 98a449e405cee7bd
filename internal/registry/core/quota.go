package core

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// LimitRanges and ResourceQuotas are stored and validated here; admission
// (defaults from limit ranges, quota enforcement) is not part of this
// package.

func (b *builder) limitRanges() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        corev1.SchemeGroupVersion,
		Resource:            "limitranges",
		Kind:                "LimitRange",
		ListKind:            "LimitRangeList",
		SingularName:        "limitrange",
		ShortNames:          []string{"limits"},
		Namespaced:          true,
		New:                 func() runtime.Object { return &corev1.LimitRange{} },
		NewList:             func() runtime.Object { return &corev1.LimitRangeList{} },
		AllowCreateOnUpdate: true,
		Default:             func(obj runtime.Object) { defaultLimitRange(obj.(*corev1.LimitRange)) },
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateLimitRange(obj.(*corev1.LimitRange))
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validateLimitRange(obj.(*corev1.LimitRange))
		},
	}
}

func (b *builder) resourceQuotas() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "resourcequotas",
		Kind:         "ResourceQuota",
		ListKind:     "ResourceQuotaList",
		SingularName: "resourcequota",
		ShortNames:   []string{"quota"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ResourceQuota{} },
		NewList:      func() runtime.Object { return &corev1.ResourceQuotaList{} },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			obj.(*corev1.ResourceQuota).Status = corev1.ResourceQuotaStatus{}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			q := obj.(*corev1.ResourceQuota)
			return append(validateQuotaSpec(&q.Spec, field.NewPath("spec")), validateQuotaStatus(&q.Status)...)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			q, o := obj.(*corev1.ResourceQuota), old.(*corev1.ResourceQuota)
			allErrs := validateQuotaSpec(&q.Spec, field.NewPath("spec"))
			if !sameScopes(q.Spec.Scopes, o.Spec.Scopes) {
				allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "scopes"), q.Spec.Scopes, fieldImmutableErrorMsg))
			}
			return allErrs
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
				return validateQuotaStatus(&obj.(*corev1.ResourceQuota).Status)
			},
		},
	}
}

// defaultLimitRange: for Container limits, default falls back to max and
// defaultRequest to default, then to min.
func defaultLimitRange(lr *corev1.LimitRange) {
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		if item.Default == nil {
			item.Default = corev1.ResourceList{}
		}
		if item.DefaultRequest == nil {
			item.DefaultRequest = corev1.ResourceList{}
		}
		for k, v := range item.Max {
			if _, ok := item.Default[k]; !ok {
				item.Default[k] = v.DeepCopy()
			}
		}
		for k, v := range item.Default {
			if _, ok := item.DefaultRequest[k]; !ok {
				item.DefaultRequest[k] = v.DeepCopy()
			}
		}
		for k, v := range item.Min {
			if _, ok := item.DefaultRequest[k]; !ok {
				item.DefaultRequest[k] = v.DeepCopy()
			}
		}
	}
}

// validateLimitRange is upstream's ValidateLimitRange without metadata:
// known types and resource names, one item per type, and min <=
// defaultRequest <= default <= max, ratios >= 1 and <= max/min.
func validateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	var allErrs field.ErrorList
	fldPath := field.NewPath("spec", "limits")
	types := map[corev1.LimitType]bool{}
	for i := range lr.Spec.Limits {
		p := fldPath.Index(i)
		item := &lr.Spec.Limits[i]
		allErrs = append(allErrs, validateLimitRangeType(item.Type, p.Child("type"))...)
		if types[item.Type] {
			allErrs = append(allErrs, field.Duplicate(p.Child("type"), item.Type))
		}
		types[item.Type] = true

		keys := map[corev1.ResourceName]bool{}
		collect := func(list corev1.ResourceList, name string) {
			for k := range list {
				allErrs = append(allErrs, validateLimitRangeResourceName(item.Type, k, p.Child(name).Key(string(k)))...)
				keys[k] = true
			}
		}
		collect(item.Max, "max")
		collect(item.Min, "min")
		if item.Type == corev1.LimitTypePod {
			if len(item.Default) > 0 {
				allErrs = append(allErrs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
			if len(item.DefaultRequest) > 0 {
				allErrs = append(allErrs, field.Forbidden(p.Child("defaultRequest"), "may not be specified when `type` is 'Pod'"))
			}
		} else {
			collect(item.Default, "default")
			collect(item.DefaultRequest, "defaultRequest")
		}
		if item.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := item.Min[corev1.ResourceStorage]
			_, hasMax := item.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				allErrs = append(allErrs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		collect(item.MaxLimitRequestRatio, "maxLimitRequestRatio")

		names := make([]corev1.ResourceName, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		slices.Sort(names) // stable error order
		for _, k := range names {
			minQ, hasMin := item.Min[k]
			maxQ, hasMax := item.Max[k]
			def, hasDef := item.Default[k]
			defReq, hasDefReq := item.DefaultRequest[k]
			ratio, hasRatio := item.MaxLimitRequestRatio[k]
			if item.Type == corev1.LimitTypePod {
				hasDef, hasDefReq = false, false
			}
			if hasMin && hasMax && minQ.Cmp(maxQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("min").Key(string(k)), minQ, fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
			}
			if hasDefReq && hasMin && minQ.Cmp(defReq) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), defReq, fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), defReq.String())))
			}
			if hasDefReq && hasMax && defReq.Cmp(maxQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), defReq, fmt.Sprintf("default request value %s is greater than max value %s", defReq.String(), maxQ.String())))
			}
			if hasDefReq && hasDef && defReq.Cmp(def) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), defReq, fmt.Sprintf("default request value %s is greater than default limit value %s", defReq.String(), def.String())))
			}
			if hasDef && hasMin && minQ.Cmp(def) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("default").Key(string(k)), minQ, fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), def.String())))
			}
			if hasDef && hasMax && def.Cmp(maxQ) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("default").Key(string(k)), maxQ, fmt.Sprintf("default value %s is greater than max value %s", def.String(), maxQ.String())))
			}
			if hasRatio && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("maxLimitRequestRatio").Key(string(k)), ratio, fmt.Sprintf("ratio %s is less than 1", ratio.String())))
			}
			if hasRatio && hasMin && hasMax {
				r, lo, hi := float64(ratio.Value()), minQ.Value(), maxQ.Value()
				if ratio.Value() < resource.MaxMilliValue && lo < resource.MaxMilliValue && hi < resource.MaxMilliValue {
					r, lo, hi = float64(ratio.MilliValue())/1000, minQ.MilliValue(), maxQ.MilliValue()
				}
				if limit := float64(hi) / float64(lo); r > limit {
					allErrs = append(allErrs, field.Invalid(p.Child("maxLimitRequestRatio").Key(string(k)), ratio, fmt.Sprintf("ratio %s is greater than max/min = %f", ratio.String(), limit)))
				}
			}
			// Resources that cannot be overcommitted (extended resources,
			// hugepages) must default request and limit alike.
			if !isOvercommitAllowed(k) && hasDef && hasDefReq && def.Cmp(defReq) != 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("defaultRequest").Key(string(k)), defReq, fmt.Sprintf("default value %s must equal to defaultRequest value %s in %s", def.String(), defReq.String(), k)))
			}
		}
	}
	return allErrs
}

func validateLimitRangeType(t corev1.LimitType, fldPath *field.Path) field.ErrorList {
	if errs := invalidMsgs(fldPath, t, validation.IsQualifiedName(string(t))); len(errs) != 0 {
		return errs
	}
	if !strings.Contains(string(t), "/") {
		switch t {
		case corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim:
		default:
			return field.ErrorList{field.Invalid(fldPath, t, "must be a standard limit type or fully qualified")}
		}
	}
	return nil
}

func validateLimitRangeResourceName(t corev1.LimitType, name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	if t == corev1.LimitTypePod || t == corev1.LimitTypeContainer {
		return validateContainerResourceName(name, fldPath)
	}
	return validateResourceName(name, fldPath)
}

func validateQuotaSpec(spec *corev1.ResourceQuotaSpec, fldPath *field.Path) field.ErrorList {
	allErrs := validateQuotaList(spec.Hard, fldPath.Child("hard"))
	allErrs = append(allErrs, validateQuotaScopes(spec, fldPath)...)
	if spec.ScopeSelector != nil {
		allErrs = append(allErrs, validateScopeSelector(spec, fldPath.Child("scopeSelector"))...)
	}
	return allErrs
}

func validateQuotaStatus(status *corev1.ResourceQuotaStatus) field.ErrorList {
	p := field.NewPath("status")
	return append(validateQuotaList(status.Hard, p.Child("hard")), validateQuotaList(status.Used, p.Child("used"))...)
}

func validateQuotaList(list corev1.ResourceList, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for k, v := range list {
		p := fldPath.Key(string(k))
		allErrs = append(allErrs, validateQuotaResourceName(k, p)...)
		allErrs = append(allErrs, validateResourceQuantityValue(k, v, p)...)
	}
	return allErrs
}

var conflictingScopes = [][2]corev1.ResourceQuotaScope{
	{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
	{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
}

func validateQuotaScopes(spec *corev1.ResourceQuotaSpec, fldPath *field.Path) field.ErrorList {
	if len(spec.Scopes) == 0 {
		return nil
	}
	var allErrs field.ErrorList
	p := fldPath.Child("scopes")
	set := map[corev1.ResourceQuotaScope]bool{}
	for _, s := range spec.Scopes {
		if !isStandardQuotaScope(s) {
			allErrs = append(allErrs, field.Invalid(p, spec.Scopes, "unsupported scope"))
		}
		for k := range spec.Hard {
			if isStandardQuotaResourceName(k) && !quotaScopeValidForResource(s, k) {
				allErrs = append(allErrs, field.Invalid(p, spec.Scopes, "unsupported scope applied to resource"))
			}
		}
		set[s] = true
	}
	for _, pair := range conflictingScopes {
		if set[pair[0]] && set[pair[1]] {
			allErrs = append(allErrs, field.Invalid(p, spec.Scopes, "conflicting scopes"))
		}
	}
	return allErrs
}

func validateScopeSelector(spec *corev1.ResourceQuotaSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	p := fldPath.Child("matchExpressions")
	set := map[corev1.ResourceQuotaScope]bool{}
	for _, req := range spec.ScopeSelector.MatchExpressions {
		if !isStandardQuotaScope(req.ScopeName) {
			allErrs = append(allErrs, field.Invalid(p.Child("scopeName"), req.ScopeName, "unsupported scope"))
		}
		for k := range spec.Hard {
			if isStandardQuotaResourceName(k) && !quotaScopeValidForResource(req.ScopeName, k) {
				allErrs = append(allErrs, field.Invalid(p, spec.ScopeSelector, "unsupported scope applied to resource"))
			}
		}
		switch req.ScopeName {
		case corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeTerminating,
			corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
			if req.Operator != corev1.ScopeSelectorOpExists {
				allErrs = append(allErrs, field.Invalid(p.Child("operator"), req.Operator,
					"must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
			}
		}
		switch req.Operator {
		case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
			if len(req.Values) == 0 {
				allErrs = append(allErrs, field.Required(p.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
			}
		case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
			if len(req.Values) != 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("values"), req.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
			}
		default:
			allErrs = append(allErrs, field.Invalid(p.Child("operator"), req.Operator, "not a valid selector operator"))
		}
		set[req.ScopeName] = true
	}
	for _, pair := range conflictingScopes {
		if set[pair[0]] && set[pair[1]] {
			allErrs = append(allErrs, field.Invalid(p, spec.Scopes, "conflicting scopes"))
		}
	}
	return allErrs
}

func sameScopes(a, b []corev1.ResourceQuotaScope) bool {
	set := func(s []corev1.ResourceQuotaScope) map[corev1.ResourceQuotaScope]bool {
		m := map[corev1.ResourceQuotaScope]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) {
		return false
	}
	for k := range sa {
		if !sb[k] {
			return false
		}
	}
	return true
}

func isStandardQuotaScope(s corev1.ResourceQuotaScope) bool {
	switch s {
	case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
		corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort,
		corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity,
		corev1.ResourceQuotaScopeVolumeAttributesClass:
		return true
	}
	return false
}

// quotaScopeValidForResource: pod scopes limit pod counts and compute
// resources, BestEffort only pod counts, VolumeAttributesClass claims.
func quotaScopeValidForResource(s corev1.ResourceQuotaScope, name corev1.ResourceName) bool {
	podCompute := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory}
	switch s {
	case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort,
		corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return name == corev1.ResourcePods || slices.Contains(podCompute, name)
	case corev1.ResourceQuotaScopeBestEffort:
		return name == corev1.ResourcePods
	case corev1.ResourceQuotaScopeVolumeAttributesClass:
		return name == corev1.ResourcePersistentVolumeClaims || name == corev1.ResourceRequestsStorage
	}
	return true
}

// Resource name classes, as upstream's core helpers define them.

const requestsHugePagesPrefix = "requests.hugepages-"

func isHugePageResourceName(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

func isQuotaHugePageResourceName(name corev1.ResourceName) bool {
	return isHugePageResourceName(name) || strings.HasPrefix(string(name), requestsHugePagesPrefix)
}

// isNativeResource: unprefixed, or prefixed with a kubernetes.io domain.
func isNativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), corev1.ResourceDefaultNamespacePrefix)
}

// isExtendedResourceName: a qualified name outside kubernetes.io that is
// also valid behind the "requests." quota prefix.
func isExtendedResourceName(name corev1.ResourceName) bool {
	if isNativeResource(name) || strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix) {
		return false
	}
	return len(validation.IsQualifiedName(corev1.DefaultResourceRequestsPrefix+string(name))) == 0
}

func isOvercommitAllowed(name corev1.ResourceName) bool {
	return isNativeResource(name) && !isHugePageResourceName(name)
}

var integerResources = []corev1.ResourceName{
	corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceSecrets, corev1.ResourceConfigMaps, corev1.ResourcePersistentVolumeClaims,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
}

func isIntegerResourceName(name corev1.ResourceName) bool {
	return slices.Contains(integerResources, name) || isExtendedResourceName(name)
}

var standardQuotaResources = []corev1.ResourceName{
	corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory, corev1.ResourceRequestsStorage, corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory, corev1.ResourceLimitsEphemeralStorage,
	corev1.ResourcePods, corev1.ResourceQuotas, corev1.ResourceServices, corev1.ResourceReplicationControllers,
	corev1.ResourceSecrets, corev1.ResourcePersistentVolumeClaims, corev1.ResourceConfigMaps,
	corev1.ResourceServicesNodePorts, corev1.ResourceServicesLoadBalancers,
}

func isStandardQuotaResourceName(name corev1.ResourceName) bool {
	return slices.Contains(standardQuotaResources, name) || isQuotaHugePageResourceName(name)
}

// isStandardResourceName: the unprefixed names any ResourceList may hold.
func isStandardResourceName(name corev1.ResourceName) bool {
	return slices.Contains(standardQuotaResources, name) || name == corev1.ResourceStorage || isQuotaHugePageResourceName(name)
}

func isStandardContainerResourceName(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return isHugePageResourceName(name)
}

func validateResourceName(name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	if errs := invalidMsgs(fldPath, name, validation.IsQualifiedName(string(name))); len(errs) != 0 {
		return errs
	}
	if !strings.Contains(string(name), "/") && !isStandardResourceName(name) {
		return field.ErrorList{field.Invalid(fldPath, name, "must be a standard resource type or fully qualified")}
	}
	return nil
}

func validateContainerResourceName(name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	allErrs := validateResourceName(name, fldPath)
	if !strings.Contains(string(name), "/") {
		if !isStandardContainerResourceName(name) {
			return append(allErrs, field.Invalid(fldPath, name, "must be a standard resource for containers"))
		}
	} else if !isNativeResource(name) && !isExtendedResourceName(name) {
		return append(allErrs, field.Invalid(fldPath, name, "doesn't follow extended resource name standard"))
	}
	return allErrs
}

func validateQuotaResourceName(name corev1.ResourceName, fldPath *field.Path) field.ErrorList {
	allErrs := validateResourceName(name, fldPath)
	if !strings.Contains(string(name), "/") && !isStandardQuotaResourceName(name) {
		allErrs = append(allErrs, field.Invalid(fldPath, name, "must be a standard resource for quota"))
	}
	return allErrs
}

// validateResourceQuantityValue: not negative, and whole for resources
// counted in units.
func validateResourceQuantityValue(name corev1.ResourceName, q resource.Quantity, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if q.Sign() < 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, q.String(), isNegativeErrorMsg))
	}
	if isIntegerResourceName(name) && q.MilliValue()%1000 != 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, q, "must be an integer"))
	}
	return allErrs
}
