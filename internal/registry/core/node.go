package core

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoExecute, corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule}

const podCIDRImmutableMsg = "node updates may not change podCIDR except from \"\" to valid"

func (b *builder) nodes() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "nodes",
		Kind:         "Node",
		ListKind:     "NodeList",
		SingularName: "node",
		ShortNames:   []string{"no"},
		New:          func() runtime.Object { return &corev1.Node{} },
		NewList:      func() runtime.Object { return &corev1.NodeList{} },
		// A node agent registers its node with its status.
		StatusOnCreate: true,
		Default:        func(obj runtime.Object) { defaultNode(obj.(*corev1.Node)) },
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateNode(obj.(*corev1.Node), nil)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			n, o := obj.(*corev1.Node), old.(*corev1.Node)
			return append(validateNode(n, o), validateNodeUpdate(n, o)...)
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
				return validateNodeUpdate(obj.(*corev1.Node), old.(*corev1.Node))
			},
		},
		SelectableFields: func(obj runtime.Object) fields.Set {
			return fields.Set{"spec.unschedulable": strconv.FormatBool(obj.(*corev1.Node).Spec.Unschedulable)}
		},
		FieldLabels: []string{"spec.unschedulable"},
	}
}

// defaultNode keeps spec.podCIDR the first of spec.podCIDRs (a client
// that sets only podCIDR gets podCIDRs from it, as upstream's conversion
// does) and defaults status.allocatable to status.capacity.
func defaultNode(n *corev1.Node) {
	if len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		n.Spec.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	n.Spec.PodCIDR = ""
	if len(n.Spec.PodCIDRs) > 0 {
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	}
	if n.Status.Allocatable == nil && n.Status.Capacity != nil {
		n.Status.Allocatable = n.Status.Capacity.DeepCopy()
	}
}

// validateNode is upstream's ValidateNode without the object metadata.
// old (nil on create) lets CIDRs the stored node had pass the legacy
// checks.
func validateNode(n, old *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	allErrs := validateNodeAnnotations(n.Annotations, metaPath.Child("annotations"))
	// Upstream reports taints under metadata; clients see that path.
	allErrs = append(allErrs, validateTaints(n.Spec.Taints, metaPath.Child("taints"))...)
	allErrs = append(allErrs, validateNodeResources(n)...)

	p := field.NewPath("spec", "podCIDRs")
	var oldCIDRs []string
	if old != nil {
		oldCIDRs = old.Spec.PodCIDRs
	}
	for i, c := range n.Spec.PodCIDRs {
		allErrs = append(allErrs, validation.IsValidCIDRForLegacyField(p.Index(i), c, true, oldCIDRs)...)
	}
	if len(n.Spec.PodCIDRs) > 1 {
		families := map[bool]int{}
		for _, c := range n.Spec.PodCIDRs {
			if f, ok := cidrIs4(c); ok {
				families[f]++
			}
		}
		if len(n.Spec.PodCIDRs) > 2 || families[true] > 1 || families[false] > 1 {
			allErrs = append(allErrs, field.Invalid(p, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
		}
		seen := map[string]bool{}
		for i, c := range n.Spec.PodCIDRs {
			if seen[c] {
				allErrs = append(allErrs, field.Duplicate(p.Index(i), c))
			}
			seen[c] = true
		}
	}
	return allErrs
}

// validateNodeUpdate is upstream's ValidateNodeUpdate: podCIDRs and
// providerID may only go from unset to set, externalID never changes,
// addresses are unique.
func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	metaPath := field.NewPath("metadata")
	allErrs := validateNodeAnnotations(n.Annotations, metaPath.Child("annotations"))
	allErrs = append(allErrs, validateNodeResources(n)...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range n.Status.Addresses {
		if seen[a] {
			allErrs = append(allErrs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 {
		if !slices.Equal(old.Spec.PodCIDRs, n.Spec.PodCIDRs) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "podCIDRs"), podCIDRImmutableMsg))
		}
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != n.Spec.ProviderID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	if c := n.Spec.ConfigSource; c != nil && c.ConfigMap == nil {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "configSource"), c, "exactly one reference subfield must be non-nil"))
	}
	allErrs = append(allErrs, validateTaints(n.Spec.Taints, metaPath.Child("taints"))...)
	if n.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return allErrs
}

// cidrIs4 reports the family of a CIDR (false for IPv6); ok is false when
// it does not parse.
func cidrIs4(c string) (is4, ok bool) {
	ip, _, found := strings.Cut(c, "/")
	if !found {
		return false, false
	}
	f, ok := familyOf(ip)
	return f == corev1.IPv4Protocol, ok
}

// validateTaints checks node taints: label-name keys, label-value values,
// a known effect, unique (key, effect) pairs.
func validateTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	type keyEffect struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[keyEffect]bool{}
	for i, t := range taints {
		p := fldPath.Index(i)
		allErrs = append(allErrs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) != 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		switch {
		case t.Effect == "":
			allErrs = append(allErrs, field.Required(p.Child("effect"), ""))
		case !slices.Contains(taintEffects, t.Effect):
			allErrs = append(allErrs, field.NotSupported(p.Child("effect"), t.Effect, taintEffects))
		}
		k := keyEffect{t.Key, t.Effect}
		if seen[k] {
			e := field.Duplicate(p, t)
			e.Detail = "taints must be unique by key and effect pair"
			allErrs = append(allErrs, e)
			continue
		}
		seen[k] = true
	}
	return allErrs
}

// validateNodeAnnotations checks the JSON annotations the scheduler once
// read: taints and preferAvoidPods.
func validateNodeAnnotations(annotations map[string]string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if v := annotations[corev1.TaintsAnnotationKey]; v != "" {
		var taints []corev1.Taint
		if err := json.Unmarshal([]byte(v), &taints); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath, corev1.TaintsAnnotationKey, err.Error()))
		} else {
			allErrs = append(allErrs, validateTaints(taints, fldPath.Child(corev1.TaintsAnnotationKey))...)
		}
	}
	if v := annotations[corev1.PreferAvoidPodsAnnotationKey]; v != "" {
		var avoid corev1.AvoidPods
		if err := json.Unmarshal([]byte(v), &avoid); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("AvoidPods"), corev1.PreferAvoidPodsAnnotationKey, err.Error()))
		} else {
			for i, e := range avoid.PreferAvoidPods {
				p := fldPath.Child(corev1.PreferAvoidPodsAnnotationKey).Index(i).Child("PodSignature")
				switch c := e.PodSignature.PodController; {
				case c == nil:
					allErrs = append(allErrs, field.Required(p, ""))
				case c.Controller == nil || !*c.Controller:
					allErrs = append(allErrs, field.Invalid(p.Child("PodController", "Controller"), deref(c.Controller), "must point to a controller"))
				}
			}
		}
	}
	return allErrs
}

// validateNodeResources: capacity and allocatable are valid quantities.
func validateNodeResources(n *corev1.Node) field.ErrorList {
	var allErrs field.ErrorList
	for k, v := range n.Status.Capacity {
		allErrs = append(allErrs, validateResourceQuantityValue(k, v, field.NewPath("status", "capacity", string(k)))...)
	}
	for k, v := range n.Status.Allocatable {
		allErrs = append(allErrs, validateResourceQuantityValue(k, v, field.NewPath("status", "allocatable", string(k)))...)
	}
	return allErrs
}
