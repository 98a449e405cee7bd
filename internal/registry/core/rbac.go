package core

import (
	"context"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// RBAC objects are stored and validated here. Upstream's escalation
// check (a user may only grant permissions they hold) belongs to
// authorization and is not part of this package.

func (b *builder) roles() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        rbacv1.SchemeGroupVersion,
		Resource:            "roles",
		Kind:                "Role",
		ListKind:            "RoleList",
		SingularName:        "role",
		Namespaced:          true,
		New:                 func() runtime.Object { return &rbacv1.Role{} },
		NewList:             func() runtime.Object { return &rbacv1.RoleList{} },
		NameValidation:      nameIsPathSegment,
		AllowCreateOnUpdate: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validatePolicyRules(obj.(*rbacv1.Role).Rules, true)
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validatePolicyRules(obj.(*rbacv1.Role).Rules, true)
		},
	}
}

func (b *builder) clusterRoles() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        rbacv1.SchemeGroupVersion,
		Resource:            "clusterroles",
		Kind:                "ClusterRole",
		ListKind:            "ClusterRoleList",
		SingularName:        "clusterrole",
		New:                 func() runtime.Object { return &rbacv1.ClusterRole{} },
		NewList:             func() runtime.Object { return &rbacv1.ClusterRoleList{} },
		NameValidation:      nameIsPathSegment,
		AllowCreateOnUpdate: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateClusterRole(obj.(*rbacv1.ClusterRole), false)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			// Selectors stored with label values upstream now refuses
			// stay acceptable.
			o := old.(*rbacv1.ClusterRole)
			lenient := false
			if o.AggregationRule != nil {
				for i := range o.AggregationRule.ClusterRoleSelectors {
					lenient = lenient || metav1validation.LabelSelectorHasInvalidLabelValue(&o.AggregationRule.ClusterRoleSelectors[i])
				}
			}
			return validateClusterRole(obj.(*rbacv1.ClusterRole), lenient)
		},
	}
}

func (b *builder) roleBindings() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        rbacv1.SchemeGroupVersion,
		Resource:            "rolebindings",
		Kind:                "RoleBinding",
		ListKind:            "RoleBindingList",
		SingularName:        "rolebinding",
		Namespaced:          true,
		New:                 func() runtime.Object { return &rbacv1.RoleBinding{} },
		NewList:             func() runtime.Object { return &rbacv1.RoleBindingList{} },
		NameValidation:      nameIsPathSegment,
		AllowCreateOnUpdate: true,
		Default: func(obj runtime.Object) {
			rb := obj.(*rbacv1.RoleBinding)
			defaultBinding(&rb.RoleRef, rb.Subjects)
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			rb := obj.(*rbacv1.RoleBinding)
			return validateBinding(rb.RoleRef, rb.Subjects, true)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			rb, o := obj.(*rbacv1.RoleBinding), old.(*rbacv1.RoleBinding)
			return append(validateBinding(rb.RoleRef, rb.Subjects, true), validateRoleRefUpdate(rb.RoleRef, o.RoleRef)...)
		},
	}
}

func (b *builder) clusterRoleBindings() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        rbacv1.SchemeGroupVersion,
		Resource:            "clusterrolebindings",
		Kind:                "ClusterRoleBinding",
		ListKind:            "ClusterRoleBindingList",
		SingularName:        "clusterrolebinding",
		New:                 func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		NewList:             func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },
		NameValidation:      nameIsPathSegment,
		AllowCreateOnUpdate: true,
		Default: func(obj runtime.Object) {
			crb := obj.(*rbacv1.ClusterRoleBinding)
			defaultBinding(&crb.RoleRef, crb.Subjects)
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			crb := obj.(*rbacv1.ClusterRoleBinding)
			return validateBinding(crb.RoleRef, crb.Subjects, false)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			crb, o := obj.(*rbacv1.ClusterRoleBinding), old.(*rbacv1.ClusterRoleBinding)
			return append(validateBinding(crb.RoleRef, crb.Subjects, false), validateRoleRefUpdate(crb.RoleRef, o.RoleRef)...)
		},
	}
}

// defaultBinding sets the API groups clients may leave out: the roleRef's
// (rbac.authorization.k8s.io) and that of User and Group subjects.
func defaultBinding(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup == "" && (s.Kind == rbacv1.UserKind || s.Kind == rbacv1.GroupKind) {
			s.APIGroup = rbacv1.GroupName
		}
	}
}

// validatePolicyRules: every rule has verbs, and either resources with
// API groups or (cluster roles only) non-resource URLs, never both.
func validatePolicyRules(rules []rbacv1.PolicyRule, namespaced bool) field.ErrorList {
	var allErrs field.ErrorList
	for i, r := range rules {
		p := field.NewPath("rules").Index(i)
		if len(r.Verbs) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
		}
		if len(r.NonResourceURLs) > 0 {
			if namespaced {
				allErrs = append(allErrs, field.Invalid(p.Child("nonResourceURLs"), r.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
			}
			if len(r.APIGroups) > 0 || len(r.Resources) > 0 || len(r.ResourceNames) > 0 {
				allErrs = append(allErrs, field.Invalid(p.Child("nonResourceURLs"), r.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
			}
			continue
		}
		if len(r.APIGroups) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
		}
		if len(r.Resources) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
		}
	}
	return allErrs
}

func validateClusterRole(cr *rbacv1.ClusterRole, allowInvalidLabelValues bool) field.ErrorList {
	allErrs := validatePolicyRules(cr.Rules, false)
	if cr.AggregationRule == nil {
		return allErrs
	}
	p := field.NewPath("aggregationRule", "clusterRoleSelectors")
	if len(cr.AggregationRule.ClusterRoleSelectors) == 0 {
		allErrs = append(allErrs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
	}
	opts := metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: allowInvalidLabelValues}
	for i := range cr.AggregationRule.ClusterRoleSelectors {
		sel := &cr.AggregationRule.ClusterRoleSelectors[i]
		errs := metav1validation.ValidateLabelSelector(sel, opts, p.Index(i))
		allErrs = append(allErrs, errs...)
		if len(errs) == 0 {
			if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
				allErrs = append(allErrs, field.Invalid(p.Index(i), sel, "invalid label selector."))
			}
		}
	}
	return allErrs
}

// validateBinding checks a (Cluster)RoleBinding's roleRef and subjects.
// Namespaced bindings may refer to Roles and ClusterRoles; their
// ServiceAccount subjects default to the binding's namespace, while
// ClusterRoleBindings must name it.
func validateBinding(ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	var allErrs field.ErrorList
	refPath := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		allErrs = append(allErrs, field.NotSupported(refPath.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = []string{"Role", "ClusterRole"}
	}
	if !slices.Contains(kinds, ref.Kind) {
		allErrs = append(allErrs, field.NotSupported(refPath.Child("kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(refPath.Child("name"), ""))
	} else {
		allErrs = append(allErrs, invalidMsgs(refPath.Child("name"), ref.Name, nameIsPathSegment(ref.Name, false))...)
	}
	for i, s := range subjects {
		p := field.NewPath("subjects").Index(i)
		if s.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name != "" {
				allErrs = append(allErrs, invalidMsgs(p.Child("name"), s.Name, apimachineryvalidation.ValidateServiceAccountName(s.Name, false))...)
			}
			if s.APIGroup != "" {
				allErrs = append(allErrs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{""}))
			}
			if !namespaced && s.Namespace == "" {
				allErrs = append(allErrs, field.Required(p.Child("namespace"), ""))
			}
		case rbacv1.UserKind, rbacv1.GroupKind:
			if s.APIGroup != rbacv1.GroupName {
				allErrs = append(allErrs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
			}
		default:
			allErrs = append(allErrs, field.NotSupported(p.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
		}
	}
	return allErrs
}

func validateRoleRefUpdate(ref, old rbacv1.RoleRef) field.ErrorList {
	if ref != old {
		return field.ErrorList{field.Invalid(field.NewPath("roleRef"), ref, "cannot change roleRef")}
	}
	return nil
}
