package workload

import (
	"context"
	"strconv"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

func (b builder) podTemplates() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "podtemplates",
		Kind:         "PodTemplate",
		ListKind:     "PodTemplateList",
		SingularName: "podtemplate",
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.PodTemplate{} },
		NewList:      func() runtime.Object { return &corev1.PodTemplateList{} },
		Default:      func(obj runtime.Object) { DefaultPodTemplateSpec(&obj.(*corev1.PodTemplate).Template) },
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validatePodTemplateSpec(&obj.(*corev1.PodTemplate).Template, field.NewPath("template"), b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validatePodTemplateSpec(&obj.(*corev1.PodTemplate).Template, field.NewPath("template"), b.podOptions())
		},
	}
}

func (b builder) replicationControllers() *registry.Resource {
	return &registry.Resource{
		GroupVersion:  corev1.SchemeGroupVersion,
		Resource:      "replicationcontrollers",
		Kind:          "ReplicationController",
		ListKind:      "ReplicationControllerList",
		SingularName:  "replicationcontroller",
		ShortNames:    []string{"rc"},
		Categories:    []string{"all"},
		Namespaced:    true,
		New:           func() runtime.Object { return &corev1.ReplicationController{} },
		NewList:       func() runtime.Object { return &corev1.ReplicationControllerList{} },
		HasGeneration: true,
		Default:       func(obj runtime.Object) { DefaultReplicationController(obj.(*corev1.ReplicationController)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			obj.(*corev1.ReplicationController).Status = corev1.ReplicationControllerStatus{}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateReplicationControllerSpec(&obj.(*corev1.ReplicationController).Spec, b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validateReplicationControllerSpec(&obj.(*corev1.ReplicationController).Spec, b.podOptions())
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
				s := &obj.(*corev1.ReplicationController).Status
				return validateReplicaSetStatus(s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration, nil)
			},
		},
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) *autoscalingv1.Scale {
				rc := obj.(*corev1.ReplicationController)
				return newScale(&rc.ObjectMeta, rc.Spec.Replicas, rc.Status.Replicas, &metav1.LabelSelector{MatchLabels: rc.Spec.Selector})
			},
			Set: func(obj runtime.Object, s *autoscalingv1.Scale) {
				obj.(*corev1.ReplicationController).Spec.Replicas = ptrTo(s.Spec.Replicas)
			},
			ReplicasPath: ".spec.replicas",
		},
		// core/v1 replication controllers orphan their pods by default.
		DefaultPropagation: func() metav1.DeletionPropagation { return metav1.DeletePropagationOrphan },
		SelectableFields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*corev1.ReplicationController).Status.Replicas))}
		},
		FieldLabels: []string{"status.replicas"},
	}
}

// DefaultReplicationController sets upstream's defaults: the selector and
// the object's labels from the template's labels when unset, 1 replica,
// and the template's defaults.
func DefaultReplicationController(rc *corev1.ReplicationController) {
	if rc.Spec.Template != nil {
		if l := rc.Spec.Template.Labels; l != nil {
			if len(rc.Spec.Selector) == 0 {
				rc.Spec.Selector = copyLabels(l)
			}
			if len(rc.Labels) == 0 {
				rc.Labels = copyLabels(l)
			}
		}
		DefaultPodTemplateSpec(rc.Spec.Template)
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = ptrTo(int32(1))
	}
}

func copyLabels(l map[string]string) map[string]string {
	c := make(map[string]string, len(l))
	for k, v := range l {
		c[k] = v
	}
	return c
}

func validateReplicationControllerSpec(spec *corev1.ReplicationControllerSpec, opts podOptions) field.ErrorList {
	fldPath := field.NewPath("spec")
	allErrs := validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))
	sel := labels.Set(spec.Selector).AsSelector()
	if sel.Empty() {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	}
	allErrs = append(allErrs, validateNonnegative(int64(deref(spec.Replicas)), fldPath.Child("replicas"))...)
	if spec.Template == nil {
		return append(allErrs, field.Required(fldPath.Child("template"), ""))
	}
	return append(allErrs, validateReplicatedTemplate(spec.Template, sel, "ReplicationController", fldPath.Child("template"), opts)...)
}
