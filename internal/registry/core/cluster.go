package core

import (
	"context"
	"fmt"
	"slices"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

func (b *builder) leases() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        coordinationv1.SchemeGroupVersion,
		Resource:            "leases",
		Kind:                "Lease",
		ListKind:            "LeaseList",
		SingularName:        "lease",
		Namespaced:          true,
		New:                 func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:             func() runtime.Object { return &coordinationv1.LeaseList{} },
		AllowCreateOnUpdate: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateLeaseSpec(&obj.(*coordinationv1.Lease).Spec)
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validateLeaseSpec(&obj.(*coordinationv1.Lease).Spec)
		},
	}
}

var leaseStrategies = []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}

func validateLeaseSpec(spec *coordinationv1.LeaseSpec) field.ErrorList {
	var allErrs field.ErrorList
	p := field.NewPath("spec")
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		allErrs = append(allErrs, field.Invalid(p.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		allErrs = append(allErrs, field.Invalid(p.Child("leaseTransitions"), *t, "must be greater than or equal to 0"))
	}
	if s := spec.Strategy; s != nil {
		sp := p.Child("strategy")
		if !strings.Contains(string(*s), "/") {
			if !slices.Contains(leaseStrategies, *s) {
				allErrs = append(allErrs, field.NotSupported(sp, *s, leaseStrategies))
			}
		} else {
			allErrs = append(allErrs, invalidMsgs(sp, *s, validation.IsQualifiedName(string(*s)))...)
		}
	}
	if h := spec.PreferredHolder; h != nil && *h != "" && deref(spec.Strategy) == "" {
		allErrs = append(allErrs, field.Forbidden(p.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return allErrs
}

// Priorities of PriorityClasses.
const (
	// HighestUserDefinablePriority is the highest value a class not named
	// "system-..." may have.
	HighestUserDefinablePriority = int32(1000000000)
	// SystemCriticalPriority is the value of system-cluster-critical;
	// system-node-critical is 1000 more.
	SystemCriticalPriority = int32(2 * HighestUserDefinablePriority)

	systemPriorityClassPrefix = "system-"
)

// SystemPriorityClasses returns the two built-in PriorityClasses the
// server creates at start, as upstream's scheduling bootstrap does:
// system-node-critical (2000001000) and system-cluster-critical
// (2000000000). The caller owns the returned objects.
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	preempt := corev1.PreemptLowerPriority
	return []*schedulingv1.PriorityClass{
		{
			TypeMeta:         metav1.TypeMeta{APIVersion: schedulingv1.SchemeGroupVersion.String(), Kind: "PriorityClass"},
			ObjectMeta:       metav1.ObjectMeta{Name: "system-node-critical"},
			Value:            SystemCriticalPriority + 1000,
			Description:      "Used for system critical pods that must not be moved from their current node.",
			PreemptionPolicy: ptrTo(preempt),
		},
		{
			TypeMeta:         metav1.TypeMeta{APIVersion: schedulingv1.SchemeGroupVersion.String(), Kind: "PriorityClass"},
			ObjectMeta:       metav1.ObjectMeta{Name: "system-cluster-critical"},
			Value:            SystemCriticalPriority,
			Description:      "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
			PreemptionPolicy: ptrTo(preempt),
		},
	}
}

var preemptionPolicies = []corev1.PreemptionPolicy{corev1.PreemptLowerPriority, corev1.PreemptNever}

func (b *builder) priorityClasses() *registry.Resource {
	return &registry.Resource{
		GroupVersion: schedulingv1.SchemeGroupVersion,
		Resource:     "priorityclasses",
		Kind:         "PriorityClass",
		ListKind:     "PriorityClassList",
		SingularName: "priorityclass",
		ShortNames:   []string{"pc"},
		New:          func() runtime.Object { return &schedulingv1.PriorityClass{} },
		NewList:      func() runtime.Object { return &schedulingv1.PriorityClassList{} },
		Default: func(obj runtime.Object) {
			pc := obj.(*schedulingv1.PriorityClass)
			if pc.PreemptionPolicy == nil {
				pc.PreemptionPolicy = ptrTo(corev1.PreemptLowerPriority)
			}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validatePriorityClass(obj.(*schedulingv1.PriorityClass))
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			pc, o := obj.(*schedulingv1.PriorityClass), old.(*schedulingv1.PriorityClass)
			var allErrs field.ErrorList
			if pc.Value != o.Value {
				allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
			}
			return append(allErrs, validateImmutable(pc.PreemptionPolicy, o.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
		},
		BeforeCreate: func(ctx context.Context, obj runtime.Object) error {
			return b.admitGlobalDefault(ctx, obj.(*schedulingv1.PriorityClass), false)
		},
		BeforeUpdate: func(ctx context.Context, obj, _ runtime.Object) error {
			return b.admitGlobalDefault(ctx, obj.(*schedulingv1.PriorityClass), true)
		},
	}
}

// validatePriorityClass: "system-" names are reserved for the built-in
// classes with their exact value and globalDefault; other classes stay at
// or below HighestUserDefinablePriority.
func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	var allErrs field.ErrorList
	if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
		if err := knownSystemPriorityClass(pc); err != nil {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+systemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+err.Error()))
		}
	} else if pc.Value > HighestUserDefinablePriority {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", HighestUserDefinablePriority)))
	}
	if p := pc.PreemptionPolicy; p != nil {
		switch {
		case *p == "":
			allErrs = append(allErrs, field.Required(field.NewPath("preemptionPolicy"), ""))
		case !slices.Contains(preemptionPolicies, *p):
			allErrs = append(allErrs, field.NotSupported(field.NewPath("preemptionPolicy"), *p, preemptionPolicies))
		}
	}
	return allErrs
}

func knownSystemPriorityClass(pc *schedulingv1.PriorityClass) error {
	for _, s := range SystemPriorityClasses() {
		if s.Name != pc.Name {
			continue
		}
		if s.Value != pc.Value {
			return fmt.Errorf("value of %v PriorityClass must be %v", s.Name, s.Value)
		}
		if s.GlobalDefault != pc.GlobalDefault {
			return fmt.Errorf("globalDefault of %v PriorityClass must be %v", s.Name, s.GlobalDefault)
		}
		return nil
	}
	return fmt.Errorf("%v is not a known system priority class", pc.Name)
}

// admitGlobalDefault refuses a second globalDefault class with 403, as
// upstream's Priority admission plugin. Two concurrent writes may still
// both pass (upstream has the same race).
func (b *builder) admitGlobalDefault(ctx context.Context, pc *schedulingv1.PriorityClass, update bool) error {
	if !pc.GlobalDefault || b.cfg.PriorityClasses == nil {
		return nil
	}
	gr := schedulingv1.Resource("priorityclasses")
	dflt, err := b.cfg.PriorityClasses.GlobalDefault(ctx)
	if err != nil {
		return apierrors.NewForbidden(gr, pc.Name, fmt.Errorf("failed to get default priority class: %w", err))
	}
	if dflt != nil && (!update || dflt.Name != pc.Name) {
		return apierrors.NewForbidden(gr, pc.Name, fmt.Errorf("PriorityClass %v is already marked as default. Only one default can exist", dflt.Name))
	}
	return nil
}
