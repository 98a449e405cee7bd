package workload

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// daemonSetTemplateGenerationKey is the annotation apps/v1 carries the
// internal spec.templateGeneration in: 1 on create, +1 on every template
// change. The daemon set controller labels pods with it.
const daemonSetTemplateGenerationKey = "deprecated.daemonset.template.generation"

func (b builder) deployments() *registry.Resource {
	return &registry.Resource{
		GroupVersion:  appsv1.SchemeGroupVersion,
		Resource:      "deployments",
		Kind:          "Deployment",
		ListKind:      "DeploymentList",
		SingularName:  "deployment",
		ShortNames:    []string{"deploy"},
		Categories:    []string{"all"},
		Namespaced:    true,
		New:           func() runtime.Object { return &appsv1.Deployment{} },
		NewList:       func() runtime.Object { return &appsv1.DeploymentList{} },
		HasGeneration: true,
		Default:       func(obj runtime.Object) { DefaultDeployment(obj.(*appsv1.Deployment)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			obj.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{}
		},
		PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
			d, o := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
			// Annotations are copied to the replica sets, so upstream bumps
			// the generation for them too.
			if !apiequality.Semantic.DeepEqual(d.Spec, o.Spec) || !apiequality.Semantic.DeepEqual(d.Annotations, o.Annotations) {
				d.Generation = o.Generation + 1
			}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			d := obj.(*appsv1.Deployment)
			return validateDeploymentSpec(&d.Spec, field.NewPath("spec"), b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			d, o := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
			opts := b.podOptions()
			opts.allowInvalidLabelValueInSelector = metav1validation.LabelSelectorHasInvalidLabelValue(o.Spec.Selector)
			allErrs := validateDeploymentSpec(&d.Spec, field.NewPath("spec"), opts)
			return append(allErrs, apimachineryvalidation.ValidateImmutableField(d.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))...)
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
				d, o := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
				return validateDeploymentStatus(&d.Status, o.Status.CollisionCount, field.NewPath("status"))
			},
		},
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) *autoscalingv1.Scale {
				d := obj.(*appsv1.Deployment)
				return newScale(&d.ObjectMeta, d.Spec.Replicas, d.Status.Replicas, d.Spec.Selector)
			},
			Set: func(obj runtime.Object, s *autoscalingv1.Scale) {
				obj.(*appsv1.Deployment).Spec.Replicas = ptrTo(s.Spec.Replicas)
			},
			ReplicasPath: ".spec.replicas",
		},
	}
}

// DefaultDeployment sets upstream's apps/v1 Deployment defaults: 1
// replica, a RollingUpdate strategy with 25% maxUnavailable and maxSurge,
// revisionHistoryLimit 10, progressDeadlineSeconds 600, and the pod
// template's defaults. It is idempotent.
func DefaultDeployment(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = ptrTo(int32(1))
	}
	s := &d.Spec.Strategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		defaultIntOrString(&s.RollingUpdate.MaxUnavailable, intstr.FromString("25%"))
		defaultIntOrString(&s.RollingUpdate.MaxSurge, intstr.FromString("25%"))
	}
	if d.Spec.RevisionHistoryLimit == nil {
		d.Spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		d.Spec.ProgressDeadlineSeconds = ptrTo(int32(600))
	}
	DefaultPodTemplateSpec(&d.Spec.Template)
}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	allErrs := validateNonnegative(int64(deref(spec.Replicas)), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateControllerSelector(spec.Selector, "deployment", fldPath.Child("selector"), opts)...)
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validateReplicatedTemplate(&spec.Template, sel, "ReplicaSet", fldPath.Child("template"), opts)...)
	}
	allErrs = append(allErrs, validateDeploymentStrategy(&spec.Strategy, fldPath.Child("strategy"))...)
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	if spec.ProgressDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.ProgressDeadlineSeconds), fldPath.Child("progressDeadlineSeconds"))...)
		if *spec.ProgressDeadlineSeconds <= spec.MinReadySeconds {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("progressDeadlineSeconds"), *spec.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return allErrs
}

// validateControllerSelector: required, valid and not empty.
func validateControllerSelector(sel *metav1.LabelSelector, kind string, fldPath *field.Path, opts podOptions) field.ErrorList {
	if sel == nil {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	allErrs := metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: opts.allowInvalidLabelValueInSelector}, fldPath)
	if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		allErrs = append(allErrs, field.Invalid(fldPath, sel, "empty selector is invalid for "+kind))
	}
	return allErrs
}

// validateReplicatedTemplate checks the template of a controller that
// keeps pods running: the selector matches its labels, it is a valid
// template, restartPolicy is Always and activeDeadlineSeconds unset.
func validateReplicatedTemplate(t *corev1.PodTemplateSpec, sel labels.Selector, kind string, fldPath *field.Path, opts podOptions) field.ErrorList {
	var allErrs field.ErrorList
	if !sel.Empty() && !sel.Matches(labels.Set(t.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(t, fldPath, opts)...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("spec", "activeDeadlineSeconds"), fmt.Sprintf("activeDeadlineSeconds in %s is not Supported", kind)))
	}
	return allErrs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, fldPath *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(fldPath.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			return field.ErrorList{field.Required(fldPath.Child("rollingUpdate"), "this should be defaulted and never be nil")}
		}
		p := fldPath.Child("rollingUpdate")
		mu, ms := derefIntOrString(s.RollingUpdate.MaxUnavailable), derefIntOrString(s.RollingUpdate.MaxSurge)
		allErrs := validatePositiveIntOrPercent(mu, p.Child("maxUnavailable"))
		allErrs = append(allErrs, validatePositiveIntOrPercent(ms, p.Child("maxSurge"))...)
		if intOrPercentValue(mu) == 0 && intOrPercentValue(ms) == 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("maxUnavailable"), mu, "may not be 0 when `maxSurge` is 0"))
		}
		return append(allErrs, notMoreThan100Percent(mu, p.Child("maxUnavailable"))...)
	default:
		return field.ErrorList{field.NotSupported(fldPath, *s, []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)})}
	}
	return nil
}

func validatePositiveIntOrPercent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	switch v.Type {
	case intstr.String:
		var allErrs field.ErrorList
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			allErrs = append(allErrs, field.Invalid(fldPath, v, msg))
		}
		return allErrs
	case intstr.Int:
		return validateNonnegative(int64(v.IntValue()), fldPath)
	}
	return field.ErrorList{field.Invalid(fldPath, v, "must be an integer or percentage (e.g '5%')")}
}

// percentValue parses "25%"; ok is false for an integer or a malformed
// percentage.
func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	n, err := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
	return n, err == nil
}

func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

func notMoreThan100Percent(v intstr.IntOrString, fldPath *field.Path) field.ErrorList {
	if n, ok := percentValue(v); ok && n > 100 {
		return field.ErrorList{field.Invalid(fldPath, v, "must not be greater than 100%")}
	}
	return nil
}

func derefIntOrString(p *intstr.IntOrString) intstr.IntOrString {
	if p == nil {
		return intstr.FromInt32(0)
	}
	return *p
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func validateDeploymentStatus(s *appsv1.DeploymentStatus, oldCollisions *int32, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegative(s.ObservedGeneration, fldPath.Child("observedGeneration"))
	allErrs = append(allErrs, validateReplicaCounts(fldPath, s.Replicas, []replicaCount{
		{"updatedReplicas", s.UpdatedReplicas}, {"readyReplicas", s.ReadyReplicas},
		{"availableReplicas", s.AvailableReplicas}, {"unavailableReplicas", s.UnavailableReplicas},
	}, s.ReadyReplicas, s.AvailableReplicas, "cannot be greater than readyReplicas")...)
	if s.TerminatingReplicas != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*s.TerminatingReplicas), fldPath.Child("terminatingReplicas"))...)
	}
	return append(allErrs, validateCollisionCount(s.CollisionCount, oldCollisions, fldPath.Child("collisionCount"))...)
}

type replicaCount struct {
	name string
	n    int32
}

// validateReplicaCounts: replicas and every count non-negative, no count
// (but unavailableReplicas) above replicas, available not above ready.
func validateReplicaCounts(fldPath *field.Path, replicas int32, counts []replicaCount, ready, available int32, availableMsg string) field.ErrorList {
	allErrs := validateNonnegative(int64(replicas), fldPath.Child("replicas"))
	for _, c := range counts {
		allErrs = append(allErrs, validateNonnegative(int64(c.n), fldPath.Child(c.name))...)
	}
	for _, c := range counts {
		if c.name != "unavailableReplicas" && c.n > replicas {
			allErrs = append(allErrs, field.Invalid(fldPath.Child(c.name), c.n, "cannot be greater than status.replicas"))
		}
	}
	if available > ready {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("availableReplicas"), available, availableMsg))
	}
	return allErrs
}

func validateCollisionCount(n, old *int32, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if n != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*n), fldPath)...)
	}
	if old != nil && (n == nil || *n < *old) {
		allErrs = append(allErrs, field.Invalid(fldPath, deref(n), "cannot be decremented"))
	}
	return allErrs
}

// newScale builds the autoscaling/v1 Scale of a replicated workload.
func newScale(meta *metav1.ObjectMeta, specReplicas *int32, statusReplicas int32, sel *metav1.LabelSelector) *autoscalingv1.Scale {
	s := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              meta.Name,
			Namespace:         meta.Namespace,
			UID:               meta.UID,
			ResourceVersion:   meta.ResourceVersion,
			CreationTimestamp: meta.CreationTimestamp,
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: deref(specReplicas)},
		Status: autoscalingv1.ScaleStatus{Replicas: statusReplicas},
	}
	if sel != nil {
		if s2, err := metav1.LabelSelectorAsSelector(sel); err == nil {
			s.Status.Selector = s2.String()
		}
	}
	return s
}

func (b builder) replicaSets() *registry.Resource {
	return &registry.Resource{
		GroupVersion:  appsv1.SchemeGroupVersion,
		Resource:      "replicasets",
		Kind:          "ReplicaSet",
		ListKind:      "ReplicaSetList",
		SingularName:  "replicaset",
		ShortNames:    []string{"rs"},
		Categories:    []string{"all"},
		Namespaced:    true,
		New:           func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList:       func() runtime.Object { return &appsv1.ReplicaSetList{} },
		HasGeneration: true,
		Default:       func(obj runtime.Object) { DefaultReplicaSet(obj.(*appsv1.ReplicaSet)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			obj.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateReplicaSetSpec(&obj.(*appsv1.ReplicaSet).Spec, field.NewPath("spec"), b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			rs, o := obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet)
			opts := b.podOptions()
			opts.allowInvalidLabelValueInSelector = metav1validation.LabelSelectorHasInvalidLabelValue(o.Spec.Selector)
			allErrs := validateReplicaSetSpec(&rs.Spec, field.NewPath("spec"), opts)
			return append(allErrs, apimachineryvalidation.ValidateImmutableField(rs.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))...)
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
				s := &obj.(*appsv1.ReplicaSet).Status
				return validateReplicaSetStatus(s.Replicas, s.FullyLabeledReplicas, s.ReadyReplicas, s.AvailableReplicas, s.ObservedGeneration, s.TerminatingReplicas)
			},
		},
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) *autoscalingv1.Scale {
				rs := obj.(*appsv1.ReplicaSet)
				return newScale(&rs.ObjectMeta, rs.Spec.Replicas, rs.Status.Replicas, rs.Spec.Selector)
			},
			Set: func(obj runtime.Object, s *autoscalingv1.Scale) {
				obj.(*appsv1.ReplicaSet).Spec.Replicas = ptrTo(s.Spec.Replicas)
			},
			ReplicasPath: ".spec.replicas",
		},
		SelectableFields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*appsv1.ReplicaSet).Status.Replicas))}
		},
		FieldLabels: []string{"status.replicas"},
	}
}

// DefaultReplicaSet sets 1 replica and the pod template's defaults.
func DefaultReplicaSet(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptrTo(int32(1))
	}
	DefaultPodTemplateSpec(&rs.Spec.Template)
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	allErrs := validateNonnegative(int64(deref(spec.Replicas)), fldPath.Child("replicas"))
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	// Upstream's message says "deployment" here too.
	allErrs = append(allErrs, validateControllerSelector(spec.Selector, "deployment", fldPath.Child("selector"), opts)...)
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "invalid label selector"))
	} else {
		allErrs = append(allErrs, validateReplicatedTemplate(&spec.Template, sel, "ReplicaSet", fldPath.Child("template"), opts)...)
	}
	return allErrs
}

func validateReplicaSetStatus(replicas, fullyLabeled, ready, available int32, observedGeneration int64, terminating *int32) field.ErrorList {
	fldPath := field.NewPath("status")
	allErrs := validateReplicaCounts(fldPath, replicas, []replicaCount{
		{"fullyLabeledReplicas", fullyLabeled}, {"readyReplicas", ready}, {"availableReplicas", available},
	}, ready, available, "cannot be greater than readyReplicas")
	allErrs = append(allErrs, validateNonnegative(observedGeneration, fldPath.Child("observedGeneration"))...)
	if terminating != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*terminating), fldPath.Child("terminatingReplicas"))...)
	}
	return allErrs
}

func (b builder) statefulSets() *registry.Resource {
	return &registry.Resource{
		GroupVersion: appsv1.SchemeGroupVersion,
		Resource:     "statefulsets",
		Kind:         "StatefulSet",
		ListKind:     "StatefulSetList",
		SingularName: "statefulset",
		ShortNames:   []string{"sts"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.StatefulSet{} },
		NewList:      func() runtime.Object { return &appsv1.StatefulSetList{} },
		// Pods are named <statefulset>-<ordinal> and use it as hostname.
		NameValidation: apimachineryvalidation.NameIsDNSLabel,
		HasGeneration:  true,
		Default:        func(obj runtime.Object) { DefaultStatefulSet(obj.(*appsv1.StatefulSet)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			obj.(*appsv1.StatefulSet).Status = appsv1.StatefulSetStatus{}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateStatefulSetSpec(&obj.(*appsv1.StatefulSet).Spec, field.NewPath("spec"), b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			return validateStatefulSetUpdate(obj.(*appsv1.StatefulSet), old.(*appsv1.StatefulSet), b.podOptions())
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
				s, o := obj.(*appsv1.StatefulSet), old.(*appsv1.StatefulSet)
				return validateStatefulSetStatus(&s.Status, o.Status.CollisionCount)
			},
		},
		Scale: &registry.Scale{
			Get: func(obj runtime.Object) *autoscalingv1.Scale {
				s := obj.(*appsv1.StatefulSet)
				return newScale(&s.ObjectMeta, s.Spec.Replicas, s.Status.Replicas, s.Spec.Selector)
			},
			Set: func(obj runtime.Object, s *autoscalingv1.Scale) {
				obj.(*appsv1.StatefulSet).Spec.Replicas = ptrTo(s.Spec.Replicas)
			},
			ReplicasPath: ".spec.replicas",
		},
	}
}

// DefaultStatefulSet sets upstream's apps/v1 StatefulSet defaults:
// OrderedReady pod management, a RollingUpdate strategy with partition 0,
// Retain/Retain claim retention, 1 replica, revisionHistoryLimit 10, and
// the pod template's and claim templates' defaults. It is idempotent.
func DefaultStatefulSet(s *appsv1.StatefulSet) {
	spec := &s.Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && spec.UpdateStrategy.RollingUpdate != nil {
		if spec.UpdateStrategy.RollingUpdate.Partition == nil {
			spec.UpdateStrategy.RollingUpdate.Partition = ptrTo(int32(0))
		}
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted == "" {
		p.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled == "" {
		p.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = ptrTo(int32(1))
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	for i := range spec.VolumeClaimTemplates {
		pvc := &spec.VolumeClaimTemplates[i]
		if pvc.Spec.VolumeMode == nil {
			pvc.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
		}
		if pvc.Status.Phase == "" {
			pvc.Status.Phase = corev1.ClaimPending
		}
		roundUpResourceList(pvc.Spec.Resources.Requests)
		roundUpResourceList(pvc.Spec.Resources.Limits)
	}
	DefaultPodTemplateSpec(&spec.Template)
}

// validateStatefulSetSpec follows upstream, which checks the template's
// labels and annotations but not its pod spec (the volumes would not
// include the claim templates); a bad pod spec shows when the controller
// creates the pods.
func validateStatefulSetSpec(spec *appsv1.StatefulSetSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	var allErrs field.ErrorList
	switch spec.PodManagementPolicy {
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("podManagementPolicy"), spec.PodManagementPolicy, fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	us := spec.UpdateStrategy
	switch us.Type {
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("updateStrategy"), ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if us.RollingUpdate != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("updateStrategy", "rollingUpdate"), us.RollingUpdate, fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := us.RollingUpdate; ru != nil {
			p := fldPath.Child("updateStrategy", "rollingUpdate")
			allErrs = append(allErrs, validateNonnegative(int64(deref(ru.Partition)), p.Child("partition"))...)
			if ru.MaxUnavailable != nil {
				allErrs = append(allErrs, validatePositiveIntOrPercent(*ru.MaxUnavailable, p.Child("maxUnavailable"))...)
				if intOrPercentValue(*ru.MaxUnavailable) == 0 {
					allErrs = append(allErrs, field.Invalid(p.Child("maxUnavailable"), *ru.MaxUnavailable, "cannot be 0"))
				}
				allErrs = append(allErrs, notMoreThan100Percent(*ru.MaxUnavailable, p.Child("maxUnavailable"))...)
			}
		}
	default:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("updateStrategy"), us, fmt.Sprintf("must be '%s' or '%s'", appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		valid := []appsv1.PersistentVolumeClaimRetentionPolicyType{appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		pp := fldPath.Child("persistentVolumeClaimRetentionPolicy")
		if !contains(valid, p.WhenDeleted) {
			allErrs = append(allErrs, field.NotSupported(pp.Child("whenDeleted"), p.WhenDeleted, valid))
		}
		if !contains(valid, p.WhenScaled) {
			allErrs = append(allErrs, field.NotSupported(pp.Child("whenScaled"), p.WhenScaled, valid))
		}
	}
	allErrs = append(allErrs, validateNonnegative(int64(deref(spec.Replicas)), fldPath.Child("replicas"))...)
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	if spec.Ordinals != nil {
		allErrs = append(allErrs, validateNonnegative(int64(spec.Ordinals.Start), fldPath.Child("ordinals.start"))...)
	}
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	allErrs = append(allErrs, validateControllerSelector(spec.Selector, "statefulset", fldPath.Child("selector"), podOptions{})...)
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, ""))
	} else {
		t := &spec.Template
		tp := fldPath.Child("template")
		if !sel.Empty() && !sel.Matches(labels.Set(t.Labels)) {
			allErrs = append(allErrs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
		}
		allErrs = append(allErrs, metav1validation.ValidateLabels(t.Labels, tp.Child("labels"))...)
		allErrs = append(allErrs, apimachineryvalidation.ValidateAnnotations(t.Annotations, tp.Child("annotations"))...)
		allErrs = append(allErrs, validatePodSpecificAnnotations(t.Annotations, &t.Spec, tp.Child("annotations"))...)
	}
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("template", "spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("template", "spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in StatefulSet is not Supported"))
	}
	for i, pvc := range spec.VolumeClaimTemplates {
		allErrs = append(allErrs, validateVolumeClaimTemplateName(pvc.Name, fldPath.Child("volumeClaimTemplates").Index(i).Child("metadata", "name"))...)
	}
	return allErrs
}

const statefulSetUpdateForbidden = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"

func validateStatefulSetUpdate(s, old *appsv1.StatefulSet, opts podOptions) field.ErrorList {
	allErrs := validateStatefulSetSpec(&s.Spec, field.NewPath("spec"), opts)
	clone := s.Spec.DeepCopy()
	clone.Replicas = old.Spec.Replicas
	clone.Template = old.Spec.Template
	clone.UpdateStrategy = old.Spec.UpdateStrategy
	clone.MinReadySeconds = old.Spec.MinReadySeconds
	clone.Ordinals = old.Spec.Ordinals
	clone.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	clone.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	if !apiequality.Semantic.DeepEqual(*clone, old.Spec) {
		allErrs = append(allErrs, field.Forbidden(field.NewPath("spec"), statefulSetUpdateForbidden))
	}
	return allErrs
}

func validateStatefulSetStatus(s *appsv1.StatefulSetStatus, oldCollisions *int32) field.ErrorList {
	fldPath := field.NewPath("status")
	allErrs := validateReplicaCounts(fldPath, s.Replicas, []replicaCount{
		{"readyReplicas", s.ReadyReplicas}, {"currentReplicas", s.CurrentReplicas},
		{"updatedReplicas", s.UpdatedReplicas}, {"availableReplicas", s.AvailableReplicas},
	}, s.ReadyReplicas, s.AvailableReplicas, "cannot be greater than status.readyReplicas")
	allErrs = append(allErrs, validateNonnegative(s.ObservedGeneration, fldPath.Child("observedGeneration"))...)
	return append(allErrs, validateCollisionCount(s.CollisionCount, oldCollisions, fldPath.Child("collisionCount"))...)
}

func (b builder) daemonSets() *registry.Resource {
	return &registry.Resource{
		GroupVersion:  appsv1.SchemeGroupVersion,
		Resource:      "daemonsets",
		Kind:          "DaemonSet",
		ListKind:      "DaemonSetList",
		SingularName:  "daemonset",
		ShortNames:    []string{"ds"},
		Categories:    []string{"all"},
		Namespaced:    true,
		New:           func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList:       func() runtime.Object { return &appsv1.DaemonSetList{} },
		HasGeneration: true,
		Default:       func(obj runtime.Object) { DefaultDaemonSet(obj.(*appsv1.DaemonSet)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			ds := obj.(*appsv1.DaemonSet)
			ds.Status = appsv1.DaemonSetStatus{}
			setAnnotation(&ds.ObjectMeta, daemonSetTemplateGenerationKey, "1")
		},
		PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
			ds, o := obj.(*appsv1.DaemonSet), old.(*appsv1.DaemonSet)
			gen, _ := strconv.ParseInt(o.Annotations[daemonSetTemplateGenerationKey], 10, 64)
			if !apiequality.Semantic.DeepEqual(ds.Spec.Template, o.Spec.Template) {
				gen++
			}
			if gen > 0 {
				setAnnotation(&ds.ObjectMeta, daemonSetTemplateGenerationKey, strconv.FormatInt(gen, 10))
			}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateDaemonSetSpec(&obj.(*appsv1.DaemonSet).Spec, field.NewPath("spec"), b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			ds, o := obj.(*appsv1.DaemonSet), old.(*appsv1.DaemonSet)
			opts := b.podOptions()
			opts.allowInvalidLabelValueInSelector = metav1validation.LabelSelectorHasInvalidLabelValue(o.Spec.Selector)
			allErrs := validateDaemonSetSpec(&ds.Spec, field.NewPath("spec"), opts)
			return append(allErrs, apimachineryvalidation.ValidateImmutableField(ds.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))...)
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
				ds, o := obj.(*appsv1.DaemonSet), old.(*appsv1.DaemonSet)
				return validateDaemonSetStatus(&ds.Status, o.Status.CollisionCount)
			},
		},
	}
}

// DefaultDaemonSet sets upstream's apps/v1 DaemonSet defaults: a
// RollingUpdate strategy with maxUnavailable 1 and maxSurge 0,
// revisionHistoryLimit 10, and the pod template's defaults.
func DefaultDaemonSet(ds *appsv1.DaemonSet) {
	us := &ds.Spec.UpdateStrategy
	if us.Type == "" {
		us.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if us.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if us.RollingUpdate == nil {
			us.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		defaultIntOrString(&us.RollingUpdate.MaxUnavailable, intstr.FromInt32(1))
		defaultIntOrString(&us.RollingUpdate.MaxSurge, intstr.FromInt32(0))
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = ptrTo(int32(10))
	}
	DefaultPodTemplateSpec(&ds.Spec.Template)
}

func validateDaemonSetSpec(spec *appsv1.DaemonSetSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	var allErrs field.ErrorList
	selOpts := metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: opts.allowInvalidLabelValueInSelector}
	if spec.Selector == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(spec.Selector, selOpts, fldPath.Child("selector"))...)
		if len(spec.Selector.MatchLabels)+len(spec.Selector.MatchExpressions) == 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "empty selector is invalid for daemonset"))
		}
		if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
		}
	}
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, fldPath.Child("template"), opts)...)
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("template", "spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("template", "spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in DaemonSet is not Supported"))
	}
	allErrs = append(allErrs, validateNonnegative(int64(spec.MinReadySeconds), fldPath.Child("minReadySeconds"))...)
	us := &spec.UpdateStrategy
	usPath := fldPath.Child("updateStrategy")
	switch us.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if us.RollingUpdate == nil {
			allErrs = append(allErrs, field.Required(usPath.Child("rollingUpdate"), ""))
			break
		}
		p := usPath.Child("rollingUpdate")
		mu, ms := derefIntOrString(us.RollingUpdate.MaxUnavailable), derefIntOrString(us.RollingUpdate.MaxSurge)
		allErrs = append(allErrs, validatePositiveIntOrPercent(mu, p.Child("maxUnavailable"))...)
		allErrs = append(allErrs, validatePositiveIntOrPercent(ms, p.Child("maxSurge"))...)
		allErrs = append(allErrs, notMoreThan100Percent(mu, p.Child("maxUnavailable"))...)
		allErrs = append(allErrs, notMoreThan100Percent(ms, p.Child("maxSurge"))...)
		hasUnavailable, hasSurge := intOrPercentValue(mu) != 0, intOrPercentValue(ms) != 0
		switch {
		case hasUnavailable && hasSurge:
			allErrs = append(allErrs, field.Invalid(p.Child("maxSurge"), ms, "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			allErrs = append(allErrs, field.Required(p.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(usPath, *us, []string{string(appsv1.RollingUpdateDaemonSetStrategyType), string(appsv1.OnDeleteDaemonSetStrategyType)}))
	}
	if spec.RevisionHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.RevisionHistoryLimit), fldPath.Child("revisionHistoryLimit"))...)
	}
	return allErrs
}

func validateDaemonSetStatus(s *appsv1.DaemonSetStatus, oldCollisions *int32) field.ErrorList {
	fldPath := field.NewPath("status")
	var allErrs field.ErrorList
	for _, c := range []replicaCount{
		{"currentNumberScheduled", s.CurrentNumberScheduled}, {"numberMisscheduled", s.NumberMisscheduled},
		{"desiredNumberScheduled", s.DesiredNumberScheduled}, {"numberReady", s.NumberReady},
		{"updatedNumberScheduled", s.UpdatedNumberScheduled}, {"numberAvailable", s.NumberAvailable},
		{"numberUnavailable", s.NumberUnavailable},
	} {
		allErrs = append(allErrs, validateNonnegative(int64(c.n), fldPath.Child(c.name))...)
	}
	allErrs = append(allErrs, validateNonnegative(s.ObservedGeneration, fldPath.Child("observedGeneration"))...)
	return append(allErrs, validateCollisionCount(s.CollisionCount, oldCollisions, fldPath.Child("collisionCount"))...)
}

func (b builder) controllerRevisions() *registry.Resource {
	return &registry.Resource{
		GroupVersion: appsv1.SchemeGroupVersion,
		Resource:     "controllerrevisions",
		Kind:         "ControllerRevision",
		ListKind:     "ControllerRevisionList",
		SingularName: "controllerrevision",
		Namespaced:   true,
		New:          func() runtime.Object { return &appsv1.ControllerRevision{} },
		NewList:      func() runtime.Object { return &appsv1.ControllerRevisionList{} },
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateControllerRevision(obj.(*appsv1.ControllerRevision))
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			r, o := obj.(*appsv1.ControllerRevision), old.(*appsv1.ControllerRevision)
			allErrs := validateControllerRevision(r)
			return append(allErrs, apimachineryvalidation.ValidateImmutableField(r.Data, o.Data, field.NewPath("data"))...)
		},
	}
}

func validateControllerRevision(r *appsv1.ControllerRevision) field.ErrorList {
	var allErrs field.ErrorList
	if r.Data.Raw == nil && r.Data.Object == nil {
		allErrs = append(allErrs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	return append(allErrs, validateNonnegative(r.Revision, field.NewPath("revision"))...)
}

func setAnnotation(meta *metav1.ObjectMeta, key, value string) {
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[key] = value
}
