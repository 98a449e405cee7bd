package core

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Namespace phases (status.phase):
//
//	Active ──(DELETE: deletionTimestamp set)──► Terminating ──► gone
//
// The API server sets Active on create; the REST layer moves a deleted
// namespace to Terminating; the namespace controller empties it and
// removes the "kubernetes" finalizer through /finalize.

func (b *builder) namespaces() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "namespaces",
		Kind:         "Namespace",
		ListKind:     "NamespaceList",
		SingularName: "namespace",
		ShortNames:   []string{"ns"},
		New:          func() runtime.Object { return &corev1.Namespace{} },
		NewList:      func() runtime.Object { return &corev1.NamespaceList{} },
		// Upstream's namespace storage has no deletecollection.
		Verbs:               []string{"create", "delete", "get", "list", "patch", "update", "watch"},
		NameValidation:      nameIsDNSLabel,
		ReturnDeletedObject: true,
		Default:             func(obj runtime.Object) { defaultNamespace(obj.(*corev1.Namespace)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			prepareNamespaceForCreate(obj.(*corev1.Namespace))
		},
		PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
			// spec.finalizers changes only through /finalize.
			obj.(*corev1.Namespace).Spec.Finalizers = old.(*corev1.Namespace).Spec.Finalizers
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateNamespaceFinalizers(obj.(*corev1.Namespace).Spec.Finalizers)
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validateNamespaceFinalizers(obj.(*corev1.Namespace).Spec.Finalizers)
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
				return validateNamespaceStatus(obj.(*corev1.Namespace))
			},
		},
		SelectableFields: func(obj runtime.Object) fields.Set {
			ns := obj.(*corev1.Namespace)
			// "name" is an upstream leftover that clients still use.
			return fields.Set{"status.phase": string(ns.Status.Phase), "name": ns.Name}
		},
		FieldLabels: []string{"status.phase", "name"},
	}
}

// defaultNamespace labels the namespace with its own name
// (kubernetes.io/metadata.name) and defaults the phase to Active.
func defaultNamespace(ns *corev1.Namespace) {
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// prepareNamespaceForCreate makes a new namespace Active and adds the
// "kubernetes" finalizer the namespace controller removes once the
// namespace is empty.
func prepareNamespaceForCreate(ns *corev1.Namespace) {
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

// validateNamespaceFinalizers checks spec.finalizers: qualified names,
// and unprefixed ones must be standard. Upstream reports the list's path
// without an index.
func validateNamespaceFinalizers(finalizers []corev1.FinalizerName) field.ErrorList {
	var allErrs field.ErrorList
	for _, f := range finalizers {
		allErrs = append(allErrs, validateFinalizerName(string(f), field.NewPath("spec", "finalizers"))...)
	}
	return allErrs
}

func validateFinalizerName(name string, fldPath *field.Path) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateFinalizerName(name, fldPath)
	if !strings.Contains(name, "/") {
		switch name {
		case string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents:
		default:
			allErrs = append(allErrs, field.Invalid(fldPath, name, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return allErrs
}

// validateNamespaceStatus: the phase follows the deletion timestamp.
func validateNamespaceStatus(ns *corev1.Namespace) field.ErrorList {
	p := field.NewPath("status", "Phase") // sic: upstream's path
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty")}
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")}
	}
	return nil
}
