package workload

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kubectl/pkg/util/qos"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Pod phases (status.phase), as upstream draws them:
//
//	Pending ──► Running ──► Succeeded
//	   │           │
//	   │           └──────► Failed
//	   └──────────────────► Failed / Succeeded
//	(Unknown: the node stopped reporting)
//
// The API server only sets Pending on create; the node agent moves the
// phase through status updates, which must keep it one of these.
var podPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

const (
	systemClusterCritical      = "system-cluster-critical"
	systemNodeCritical         = "system-node-critical"
	systemCriticalPriority     = int32(2000000000)
	defaultTolerationSeconds   = int64(300)
	schedulingGatedMessage     = "Scheduling is blocked due to non-empty scheduling gates"
	podUpdatableFieldsMessage  = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
	podFieldHostNetwork        = "spec.hostNetwork"
	podFieldNodeName           = "spec.nodeName"
	podFieldRestartPolicy      = "spec.restartPolicy"
	podFieldSchedulerName      = "spec.schedulerName"
	podFieldServiceAccountName = "spec.serviceAccountName"
	podFieldPhase              = "status.phase"
	podFieldPodIP              = "status.podIP"
	podFieldNominatedNodeName  = "status.nominatedNodeName"
)

func (b builder) pods() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "pods",
		Kind:         "Pod",
		ListKind:     "PodList",
		SingularName: "pod",
		ShortNames:   []string{"po"},
		Categories:   []string{"all"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.Pod{} },
		NewList:      func() runtime.Object { return &corev1.PodList{} },
		// Status is computed here (phase Pending, qosClass), not cleared by
		// the REST layer after the fact.
		StatusOnCreate: true,
		HasGeneration:  true,
		Default:        func(obj runtime.Object) { DefaultPod(obj.(*corev1.Pod)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			preparePodForCreate(obj.(*corev1.Pod))
		},
		PrepareForUpdate: func(_ context.Context, obj, _ runtime.Object) {
			addDefaultTolerations(obj.(*corev1.Pod))
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validatePodCreate(obj.(*corev1.Pod), b.podOptions())
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			return validatePodUpdate(obj.(*corev1.Pod), old.(*corev1.Pod), b.podOptions())
		},
		BeforeCreate: func(ctx context.Context, obj runtime.Object) error {
			return b.admitPriority(ctx, obj.(*corev1.Pod))
		},
		Status: &registry.Subresource{
			PrepareForUpdate: func(_ context.Context, obj, old runtime.Object) {
				preparePodStatusUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
			},
			ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
				return ValidatePodStatusUpdate(obj.(*corev1.Pod), old.(*corev1.Pod))
			},
		},
		GracefulDelete: func(obj runtime.Object, opts *metav1.DeleteOptions) (int64, bool) {
			return podGracePeriod(obj.(*corev1.Pod), opts)
		},
		SelectableFields: func(obj runtime.Object) fields.Set { return podFields(obj.(*corev1.Pod)) },
		FieldLabels: []string{
			podFieldNodeName, podFieldRestartPolicy, podFieldSchedulerName, podFieldServiceAccountName,
			podFieldHostNetwork, podFieldPhase, podFieldPodIP, podFieldNominatedNodeName,
		},
	}
}

// preparePodForCreate sets what the API server owns on a new pod: status
// phase Pending with the QoS class computed from the (defaulted) spec, the
// SchedulingGated condition for gated pods, the matchLabelKeys selectors,
// and the tolerations of upstream's DefaultTolerationSeconds admission.
func preparePodForCreate(pod *corev1.Pod) {
	// Defaulting runs after this hook in skiff but before it upstream; the
	// QoS class needs the requests defaulted from limits.
	DefaultPod(pod)
	pod.Status = corev1.PodStatus{
		Phase:    corev1.PodPending,
		QOSClass: PodQOSClass(pod),
	}
	if len(pod.Spec.SchedulingGates) > 0 {
		pod.Status.Conditions = []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonSchedulingGated,
			Message: schedulingGatedMessage,
		}}
	}
	applyMatchLabelKeys(pod)
	addDefaultTolerations(pod)
}

// PodQOSClass computes a pod's QoS class from its (defaulted) resources:
// Guaranteed when every container requests and limits equal cpu and
// memory, BestEffort when none sets any, Burstable otherwise. Pod-level
// resources, when set, decide alone.
func PodQOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	return qos.ComputePodQOS(pod)
}

// addDefaultTolerations adds the not-ready and unreachable NoExecute
// tolerations for 300s unless the pod already tolerates those taints.
func addDefaultTolerations(pod *corev1.Pod) {
	var notReady, unreachable bool
	for _, t := range pod.Spec.Tolerations {
		if t.Effect != corev1.TaintEffectNoExecute && t.Effect != "" {
			continue
		}
		notReady = notReady || t.Key == corev1.TaintNodeNotReady || t.Key == ""
		unreachable = unreachable || t.Key == corev1.TaintNodeUnreachable || t.Key == ""
	}
	for _, add := range []struct {
		have bool
		key  string
	}{{notReady, corev1.TaintNodeNotReady}, {unreachable, corev1.TaintNodeUnreachable}} {
		if !add.have {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
				Key:               add.key,
				Operator:          corev1.TolerationOpExists,
				Effect:            corev1.TaintEffectNoExecute,
				TolerationSeconds: ptrTo(defaultTolerationSeconds),
			})
		}
	}
}

// applyMatchLabelKeys turns matchLabelKeys and mismatchLabelKeys of pod
// affinity terms and topology spread constraints into selector
// requirements on the pod's own label values, as upstream does on create.
func applyMatchLabelKeys(pod *corev1.Pod) {
	apply := func(sel *metav1.LabelSelector, keys []string, op metav1.LabelSelectorOperator) {
		for _, k := range keys {
			if v, ok := pod.Labels[k]; ok {
				sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: op, Values: []string{v}})
			}
		}
	}
	term := func(t *corev1.PodAffinityTerm) {
		if t.LabelSelector == nil {
			return
		}
		apply(t.LabelSelector, t.MatchLabelKeys, metav1.LabelSelectorOpIn)
		apply(t.LabelSelector, t.MismatchLabelKeys, metav1.LabelSelectorOpNotIn)
	}
	if a := pod.Spec.Affinity; a != nil {
		for _, terms := range []struct {
			req  []corev1.PodAffinityTerm
			pref []corev1.WeightedPodAffinityTerm
		}{
			{podAffinityRequired(a.PodAffinity), podAffinityPreferred(a.PodAffinity)},
			{podAntiAffinityRequired(a.PodAntiAffinity), podAntiAffinityPreferred(a.PodAntiAffinity)},
		} {
			for i := range terms.req {
				term(&terms.req[i])
			}
			for i := range terms.pref {
				term(&terms.pref[i].PodAffinityTerm)
			}
		}
	}
	for i := range pod.Spec.TopologySpreadConstraints {
		c := &pod.Spec.TopologySpreadConstraints[i]
		if c.LabelSelector != nil {
			apply(c.LabelSelector, c.MatchLabelKeys, metav1.LabelSelectorOpIn)
		}
	}
}

func podAffinityRequired(a *corev1.PodAffinity) []corev1.PodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.RequiredDuringSchedulingIgnoredDuringExecution
}

func podAffinityPreferred(a *corev1.PodAffinity) []corev1.WeightedPodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.PreferredDuringSchedulingIgnoredDuringExecution
}

func podAntiAffinityRequired(a *corev1.PodAntiAffinity) []corev1.PodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.RequiredDuringSchedulingIgnoredDuringExecution
}

func podAntiAffinityPreferred(a *corev1.PodAntiAffinity) []corev1.WeightedPodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.PreferredDuringSchedulingIgnoredDuringExecution
}

// admitPriority resolves spec.priority and spec.preemptionPolicy from
// spec.priorityClassName as upstream's Priority admission plugin does,
// and rejects a pod that names a missing class or sets a different
// priority itself. It runs once, on create.
func (b builder) admitPriority(ctx context.Context, pod *corev1.Pod) error {
	gr := corev1.Resource("pods")
	var (
		className  = pod.Spec.PriorityClassName
		priority   int32
		preemption = ptrTo(corev1.PreemptLowerPriority)
	)
	if className == "" {
		if b.cfg.PriorityClasses != nil {
			pc, err := b.cfg.PriorityClasses.GlobalDefault(ctx)
			if err != nil {
				return apierrors.NewInternalError(fmt.Errorf("pod %s: get default priority class: %w", pod.Name, err))
			}
			if pc != nil {
				className, priority = pc.Name, pc.Value
				if pc.PreemptionPolicy != nil {
					preemption = pc.PreemptionPolicy
				}
			}
		}
	} else {
		pc, err := b.priorityClass(ctx, className)
		switch {
		case errors.Is(err, ErrPriorityClassNotFound):
			return apierrors.NewForbidden(gr, pod.Name, fmt.Errorf("no PriorityClass with name %v was found", className))
		case err != nil:
			return apierrors.NewInternalError(fmt.Errorf("pod %s: get priority class %s: %w", pod.Name, className, err))
		}
		priority = pc.Value
		if pc.PreemptionPolicy != nil {
			preemption = pc.PreemptionPolicy
		}
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != priority {
		return apierrors.NewForbidden(gr, pod.Name, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, priority))
	}
	if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != *preemption {
		return apierrors.NewForbidden(gr, pod.Name, fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, *preemption))
	}
	pod.Spec.PriorityClassName = className
	pod.Spec.Priority = ptrTo(priority)
	pod.Spec.PreemptionPolicy = ptrTo(*preemption)
	return nil
}

func (b builder) priorityClass(ctx context.Context, name string) (*priorityClass, error) {
	if b.cfg.PriorityClasses != nil {
		pc, err := b.cfg.PriorityClasses.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		return &priorityClass{Value: pc.Value, PreemptionPolicy: pc.PreemptionPolicy}, nil
	}
	switch name {
	case systemClusterCritical:
		return &priorityClass{Value: systemCriticalPriority}, nil
	case systemNodeCritical:
		return &priorityClass{Value: systemCriticalPriority + 1000}, nil
	}
	return nil, fmt.Errorf("priority class %s: %w", name, ErrPriorityClassNotFound)
}

// priorityClass is the part of a PriorityClass admission needs.
type priorityClass struct {
	Value            int32
	PreemptionPolicy *corev1.PreemptionPolicy
}

// validatePodCreate checks a new pod: ValidatePodSpec with the pod-only
// rules (images without surrounding whitespace, hostPort equal to
// containerPort with hostNetwork, no ephemeral containers, no nodeName
// while scheduling gates remain, no service account token projection
// without a service account).
func validatePodCreate(pod *corev1.Pod, opts podOptions) field.ErrorList {
	allErrs := validatePodMetadataAndSpec(pod, opts)
	specPath := field.NewPath("spec")
	if len(pod.Spec.EphemeralContainers) > 0 {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) != 0 {
		allErrs = append(allErrs, field.Forbidden(specPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return allErrs
}

// ValidatePod checks a pod's spec and pod-specific annotations as a create
// does (metadata is the REST layer's). It expects DefaultPod applied.
func ValidatePod(pod *corev1.Pod) field.ErrorList {
	return validatePodCreate(pod, podOptions{})
}

func validatePodMetadataAndSpec(pod *corev1.Pod, opts podOptions) field.ErrorList {
	opts.resourceIsPod = true
	specPath := field.NewPath("spec")
	allErrs := validatePodSpecificAnnotations(pod.Annotations, &pod.Spec, field.NewPath("metadata", "annotations"))
	allErrs = append(allErrs, validatePodSpec(&pod.Spec, specPath, opts)...)
	if pod.Spec.ServiceAccountName == "" {
		for vi, v := range pod.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for si, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					allErrs = append(allErrs, field.Forbidden(specPath.Child("volumes").Index(vi).Child("projected", "sources").Index(si).Child("serviceAccountToken"), "must not be specified when serviceAccountName is not set"))
				}
			}
		}
	}
	for i := range pod.Spec.Containers {
		allErrs = append(allErrs, imageWhitespace(pod.Spec.Containers[i].Image, specPath.Child("containers").Index(i).Child("image"))...)
	}
	for i := range pod.Spec.InitContainers {
		allErrs = append(allErrs, imageWhitespace(pod.Spec.InitContainers[i].Image, specPath.Child("initContainers").Index(i).Child("image"))...)
	}
	return allErrs
}

// ValidatePodUpdate checks an update of a pod's spec: it must stay valid,
// and only container images, activeDeadlineSeconds (set or lowered),
// tolerations (added to), terminationGracePeriodSeconds (to 1 from a
// negative value), scheduling gates (removed) and, while gated, node
// selector and node affinity additions may change.
func ValidatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	return validatePodUpdate(pod, old, podOptions{})
}

func validatePodUpdate(pod, old *corev1.Pod, opts podOptions) field.ErrorList {
	allErrs := validatePodMetadataAndSpec(pod, opts)
	allErrs = append(allErrs, validatePodAnnotationUpdates(pod, old)...)
	specPath := field.NewPath("spec")

	if errs, stop := validateContainerImageUpdates(pod.Spec.Containers, old.Spec.Containers, specPath.Child("containers")); stop {
		return append(allErrs, errs...)
	} else {
		allErrs = append(allErrs, errs...)
	}
	if errs, stop := validateContainerImageUpdates(pod.Spec.InitContainers, old.Spec.InitContainers, specPath.Child("initContainers")); stop {
		return append(allErrs, errs...)
	} else {
		allErrs = append(allErrs, errs...)
	}

	adsPath := specPath.Child("activeDeadlineSeconds")
	if pod.Spec.ActiveDeadlineSeconds != nil {
		v := *pod.Spec.ActiveDeadlineSeconds
		if v < 0 || v > math.MaxInt32 {
			return append(allErrs, field.Invalid(adsPath, v, validation.InclusiveRangeError(0, math.MaxInt32)))
		}
		if old.Spec.ActiveDeadlineSeconds != nil && *old.Spec.ActiveDeadlineSeconds < v {
			return append(allErrs, field.Invalid(adsPath, v, "must be less than or equal to previous value"))
		}
	} else if old.Spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, field.Invalid(adsPath, pod.Spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}

	allErrs = append(allErrs, validateOnlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	allErrs = append(allErrs, validateOnlyDeletedSchedulingGates(pod.Spec.SchedulingGates, old.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)

	if apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return allErrs
	}
	munged := pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.SchedulingGates = old.Spec.SchedulingGates
	munged.Tolerations = old.Spec.Tolerations
	if g := old.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 && munged.TerminationGracePeriodSeconds != nil && *munged.TerminationGracePeriodSeconds == 1 {
		munged.TerminationGracePeriodSeconds = old.Spec.TerminationGracePeriodSeconds
	}
	if len(old.Spec.SchedulingGates) > 0 {
		allErrs = append(allErrs, mungeGatedSchedulingUpdates(munged, &old.Spec, specPath)...)
	}
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		diff := cmp.Diff(old.Spec, *munged)
		allErrs = append(allErrs, field.Forbidden(specPath, podUpdatableFieldsMessage+"\n"+diff))
	}
	return allErrs
}

// mungeGatedSchedulingUpdates allows, on a pod with scheduling gates,
// additions to nodeSelector and node affinity (no deletions or changes),
// and copies the allowed parts of old into munged.
func mungeGatedSchedulingUpdates(munged, old *corev1.PodSpec, specPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if !apiequality.Semantic.DeepEqual(munged.NodeSelector, old.NodeSelector) {
		for k, v := range old.NodeSelector {
			if nv, ok := munged.NodeSelector[k]; !ok || nv != v {
				allErrs = append(allErrs, field.Invalid(specPath.Child("nodeSelector"), munged.NodeSelector, "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
				break
			}
		}
		munged.NodeSelector = old.NodeSelector
	}
	var oldNA, newNA *corev1.NodeAffinity
	if old.Affinity != nil {
		oldNA = old.Affinity.NodeAffinity
	}
	if munged.Affinity != nil {
		newNA = munged.Affinity.NodeAffinity
	}
	if apiequality.Semantic.DeepEqual(oldNA, newNA) {
		return allErrs
	}
	if oldNA != nil && oldNA.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		oldTerms := oldNA.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		var newTerms []corev1.NodeSelectorTerm
		if newNA != nil && newNA.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			newTerms = newNA.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		}
		if len(newTerms) != len(oldTerms) {
			allErrs = append(allErrs, field.Invalid(specPath.Child("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"), newTerms, "no additions/deletions to non-empty NodeSelectorTerms list are allowed"))
		} else {
			for i := range oldTerms {
				if !termExtends(newTerms[i], oldTerms[i]) {
					allErrs = append(allErrs, field.Invalid(specPath.Child("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms").Index(i), newTerms[i], "only additions are allowed (no mutations or deletions)"))
				}
			}
		}
	}
	switch {
	case munged.Affinity == nil && oldNA != nil:
		munged.Affinity = &corev1.Affinity{NodeAffinity: oldNA}
	case munged.Affinity != nil && old.Affinity == nil && munged.Affinity.PodAffinity == nil && munged.Affinity.PodAntiAffinity == nil:
		munged.Affinity = nil
	case munged.Affinity != nil:
		munged.Affinity.NodeAffinity = oldNA
	}
	return allErrs
}

// termExtends: every requirement of old is still in term, in order.
func termExtends(term, old corev1.NodeSelectorTerm) bool {
	if len(term.MatchExpressions) < len(old.MatchExpressions) || len(term.MatchFields) < len(old.MatchFields) {
		return false
	}
	return apiequality.Semantic.DeepEqual(term.MatchExpressions[:len(old.MatchExpressions)], old.MatchExpressions) &&
		apiequality.Semantic.DeepEqual(term.MatchFields[:len(old.MatchFields)], old.MatchFields)
}

func validateContainerImageUpdates(containers, old []corev1.Container, fldPath *field.Path) (field.ErrorList, bool) {
	if len(containers) != len(old) {
		return field.ErrorList{field.Forbidden(fldPath, "pod updates may not add or remove containers")}, true
	}
	var allErrs field.ErrorList
	for i, c := range containers {
		if c.Image == "" {
			allErrs = append(allErrs, field.Required(fldPath.Index(i).Child("image"), ""))
		}
	}
	return allErrs, false
}

func validateOnlyAddedTolerations(tolerations, old []corev1.Toleration, fldPath *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, t := range tolerations {
			o.TolerationSeconds = t.TolerationSeconds
			if apiequality.Semantic.DeepEqual(o, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(fldPath, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return ValidateTolerations(tolerations, fldPath)
}

func validateOnlyDeletedSchedulingGates(gates, old []corev1.PodSchedulingGate, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	had := make(map[string]bool, len(old))
	for _, g := range old {
		had[g.Name] = true
	}
	for i, g := range gates {
		if !had[g.Name] {
			allErrs = append(allErrs, field.Forbidden(fldPath.Index(i).Child("name"), fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return allErrs
}

func validatePodAnnotationUpdates(pod, old *corev1.Pod) field.ErrorList {
	var allErrs field.ErrorList
	fldPath := field.NewPath("metadata", "annotations")
	k := corev1.MirrorPodAnnotationKey
	oldV, had := old.Annotations[k]
	newV, has := pod.Annotations[k]
	switch {
	case had && (!has || newV != oldV):
		allErrs = append(allErrs, field.Forbidden(fldPath.Key(k), "may not remove or update mirror pod annotation"))
	case !had && has:
		allErrs = append(allErrs, field.Forbidden(fldPath.Key(k), "may not add mirror pod annotation"))
	}
	for key, v := range old.Annotations {
		if strings.HasPrefix(key, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) && pod.Annotations[key] != v {
			allErrs = append(allErrs, field.Forbidden(fldPath.Key(key), "may not remove or update AppArmor annotations"))
		}
	}
	for key := range pod.Annotations {
		if _, ok := old.Annotations[key]; !ok && strings.HasPrefix(key, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) {
			allErrs = append(allErrs, field.Forbidden(fldPath.Key(key), "may not add AppArmor annotations"))
		}
	}
	return allErrs
}

// preparePodStatusUpdate keeps what a status writer may not clear: the QoS
// class (old kubelets dropped it) and observedGeneration values.
func preparePodStatusUpdate(pod, old *corev1.Pod) {
	if pod.Status.QOSClass == "" {
		pod.Status.QOSClass = old.Status.QOSClass
	}
	if pod.Status.ObservedGeneration == 0 {
		pod.Status.ObservedGeneration = old.Status.ObservedGeneration
	}
	oldGens := map[corev1.PodConditionType][]int64{}
	for _, c := range old.Status.Conditions {
		oldGens[c.Type] = append(oldGens[c.Type], c.ObservedGeneration)
	}
	for i, c := range pod.Status.Conditions {
		var g int64
		if gens := oldGens[c.Type]; len(gens) > 0 {
			g, oldGens[c.Type] = gens[0], gens[1:]
		}
		if c.ObservedGeneration == 0 {
			pod.Status.Conditions[i].ObservedGeneration = g
		}
	}
}

// ValidatePodStatusUpdate checks a write of a pod's status: a known phase,
// an unchanged QoS class, valid pod and host IPs and condition types,
// container statuses naming the pod's containers, and no container leaving
// the terminated state when the restart policy forbids it.
func ValidatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	var allErrs field.ErrorList
	statusPath := field.NewPath("status")
	if pod.Spec.NodeName != old.Spec.NodeName {
		allErrs = append(allErrs, field.Forbidden(statusPath.Child("nodeName"), "may not be changed directly"))
	}
	if pod.Status.Phase != "" || old.Status.Phase != "" {
		allErrs = append(allErrs, validateEnum(statusPath.Child("phase"), pod.Status.Phase, podPhases)...)
	}
	if n := pod.Status.NominatedNodeName; n != "" && n != old.Status.NominatedNodeName {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(n, false) {
			allErrs = append(allErrs, field.Invalid(statusPath.Child("nominatedNodeName"), n, msg))
		}
	}
	if pod.Status.QOSClass != old.Status.QOSClass {
		allErrs = append(allErrs, field.Invalid(statusPath.Child("qosClass"), pod.Status.QOSClass, fieldImmutableErrorMsg))
	}
	for i, c := range pod.Status.Conditions {
		switch c.Type {
		case corev1.PodScheduled, corev1.PodReady, corev1.PodInitialized:
		default:
			allErrs = append(allErrs, validateQualifiedName(string(c.Type), statusPath.Child("conditions").Index(i).Child("type"))...)
		}
	}
	allErrs = append(allErrs, validateContainerStatusNames(pod.Status.ContainerStatuses, containerNames(pod.Spec.Containers), statusPath.Child("containerStatuses"))...)
	allErrs = append(allErrs, validateContainerStatusNames(pod.Status.InitContainerStatuses, containerNames(pod.Spec.InitContainers), statusPath.Child("initContainerStatuses"))...)
	ephemeral := map[string]bool{}
	for _, ec := range pod.Spec.EphemeralContainers {
		ephemeral[ec.Name] = true
	}
	allErrs = append(allErrs, validateContainerStatusNames(pod.Status.EphemeralContainerStatuses, ephemeral, statusPath.Child("ephemeralContainerStatuses"))...)
	allErrs = append(allErrs, validateTerminatedTransitions(pod.Status.ContainerStatuses, old.Status.ContainerStatuses, old.Spec.RestartPolicy, nil, statusPath.Child("containerStatuses"))...)
	allErrs = append(allErrs, validateTerminatedTransitions(pod.Status.InitContainerStatuses, old.Status.InitContainerStatuses, old.Spec.RestartPolicy, old.Spec.InitContainers, statusPath.Child("initContainerStatuses"))...)
	allErrs = append(allErrs, validateTerminatedTransitions(pod.Status.EphemeralContainerStatuses, old.Status.EphemeralContainerStatuses, corev1.RestartPolicyNever, nil, statusPath.Child("ephemeralContainerStatuses"))...)
	allErrs = append(allErrs, validateStatusIPs(pod.Status.PodIPs, statusPath.Child("podIPs"))...)
	if len(pod.Status.HostIPs) > 0 {
		if pod.Status.HostIP != pod.Status.HostIPs[0].IP {
			allErrs = append(allErrs, field.Invalid(statusPath.Child("hostIPs").Index(0).Child("ip"), pod.Status.HostIPs[0].IP, "must be equal to `hostIP`"))
		}
		hostIPs := make([]corev1.PodIP, len(pod.Status.HostIPs))
		for i, h := range pod.Status.HostIPs {
			hostIPs[i] = corev1.PodIP(h)
		}
		allErrs = append(allErrs, validateStatusIPs(hostIPs, statusPath.Child("hostIPs"))...)
	}
	return allErrs
}

func containerNames(cs []corev1.Container) map[string]bool {
	names := make(map[string]bool, len(cs))
	for i := range cs {
		names[cs[i].Name] = true
	}
	return names
}

// validateContainerStatusNames: each status names a container of the pod,
// at most once. (Upstream leaves this to the clients; the node agent never
// writes otherwise, and a stray name would confuse every reader.)
func validateContainerStatusNames(statuses []corev1.ContainerStatus, names map[string]bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := map[string]bool{}
	for i, s := range statuses {
		p := fldPath.Index(i).Child("name")
		switch {
		case !names[s.Name]:
			allErrs = append(allErrs, field.NotFound(p, s.Name))
		case seen[s.Name]:
			allErrs = append(allErrs, field.Duplicate(p, s.Name))
		}
		seen[s.Name] = true
		if s.RestartCount < 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Index(i).Child("restartCount"), s.RestartCount, isNegativeErrorMsg))
		}
	}
	return allErrs
}

// validateTerminatedTransitions: with restartPolicy Never (or OnFailure
// after a zero exit), a terminated container stays terminated; restartable
// init containers (sidecars) may restart.
func validateTerminatedTransitions(statuses, old []corev1.ContainerStatus, policy corev1.RestartPolicy, inits []corev1.Container, fldPath *field.Path) field.ErrorList {
	if policy == corev1.RestartPolicyAlways {
		return nil
	}
	var allErrs field.ErrorList
	for i, o := range old {
		t := o.State.Terminated
		if t == nil || (t.ExitCode != 0 && policy == corev1.RestartPolicyOnFailure) {
			continue
		}
		sidecar := false
		for _, c := range inits {
			if c.Name == o.Name {
				sidecar = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
				break
			}
		}
		if sidecar {
			continue
		}
		for _, s := range statuses {
			if s.Name == o.Name && s.State.Terminated == nil {
				allErrs = append(allErrs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return allErrs
}

// validateStatusIPs: valid addresses, at most one per family, no repeats.
func validateStatusIPs(ips []corev1.PodIP, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, ip := range ips {
		allErrs = append(allErrs, validation.IsValidIP(fldPath.Index(i), ip.IP)...)
	}
	if len(ips) < 2 {
		return allErrs
	}
	seen := map[string]bool{}
	v4, v6 := 0, 0
	for i, ip := range ips {
		if seen[ip.IP] {
			allErrs = append(allErrs, field.Duplicate(fldPath.Index(i), ip))
		}
		seen[ip.IP] = true
		if strings.Contains(ip.IP, ":") {
			v6++
		} else {
			v4++
		}
	}
	if len(ips) > 2 || v4 != 1 || v6 != 1 {
		allErrs = append(allErrs, field.Invalid(fldPath, ips, "may specify no more than one IP for each IP family"))
	}
	return allErrs
}

// podGracePeriod decides a pod delete as upstream's CheckGracefulDelete:
// the period from the options, else spec.terminationGracePeriodSeconds
// (0 when unset); 0 for a pod never scheduled or already Succeeded or
// Failed; a negative period becomes 1. It writes the period back into
// opts, so the REST layer and the pod agree. Without options the delete is
// not graceful.
func podGracePeriod(pod *corev1.Pod, opts *metav1.DeleteOptions) (int64, bool) {
	if opts == nil {
		return 0, false
	}
	var period int64
	switch {
	case opts.GracePeriodSeconds != nil:
		period = *opts.GracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		period = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		period = 0
	}
	if period < 0 {
		period = 1
	}
	opts.GracePeriodSeconds = ptrTo(period)
	return period, true
}

// podFields are the fields a pod can be selected by, as upstream's
// ToSelectableFields lists them.
func podFields(pod *corev1.Pod) fields.Set {
	podIP := ""
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	}
	return fields.Set{
		podFieldNodeName:           pod.Spec.NodeName,
		podFieldRestartPolicy:      string(pod.Spec.RestartPolicy),
		podFieldSchedulerName:      pod.Spec.SchedulerName,
		podFieldServiceAccountName: pod.Spec.ServiceAccountName,
		podFieldHostNetwork:        strconv.FormatBool(pod.Spec.HostNetwork),
		podFieldPhase:              string(pod.Status.Phase),
		podFieldPodIP:              podIP,
		podFieldNominatedNodeName:  pod.Status.NominatedNodeName,
	}
}
