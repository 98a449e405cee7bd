package workload

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

const (
	// maxParallelismForIndexedJob caps the length of status.completedIndexes.
	maxParallelismForIndexedJob = 100000
	maxFailedIndexes            = 100000
	maxPodFailurePolicyRules    = 20
	maxOnExitCodesValues        = 255
	maxOnPodConditionsPatterns  = 20
	// cronJobNameMax leaves room for the "-<minutes since epoch>" suffix of
	// the jobs a CronJob creates (63 - 11).
	cronJobNameMax = 52

	// The unprefixed labels jobs have always put on their pods, kept
	// beside the batch.kubernetes.io/ ones.
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

func (b builder) jobs() *registry.Resource {
	return &registry.Resource{
		GroupVersion:  batchv1.SchemeGroupVersion,
		Resource:      "jobs",
		Kind:          "Job",
		ListKind:      "JobList",
		SingularName:  "job",
		Categories:    []string{"all"},
		Namespaced:    true,
		New:           func() runtime.Object { return &batchv1.Job{} },
		NewList:       func() runtime.Object { return &batchv1.JobList{} },
		HasGeneration: true,
		Default:       func(obj runtime.Object) { DefaultJob(obj.(*batchv1.Job)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			prepareJobForCreate(obj.(*batchv1.Job))
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateJob(obj.(*batchv1.Job), jobOptions{pod: b.podOptions(), requirePrefixedLabels: true})
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			j, o := obj.(*batchv1.Job), old.(*batchv1.Job)
			opts := jobUpdateOptions(o, b.podOptions())
			allErrs := validateJob(j, opts)
			return append(allErrs, validateJobSpecUpdate(&j.Spec, &o.Spec, field.NewPath("spec"), opts)...)
		},
		Status: &registry.Subresource{
			ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
				return validateJobStatus(&obj.(*batchv1.Job).Status, field.NewPath("status"))
			},
		},
		// batch/v1 jobs orphan their pods by default, for compatibility.
		DefaultPropagation: func() metav1.DeletionPropagation { return metav1.DeletePropagationOrphan },
		SelectableFields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.successful": strconv.Itoa(int(obj.(*batchv1.Job).Status.Succeeded))}
		},
		FieldLabels: []string{"status.successful"},
	}
}

// DefaultJob sets upstream's batch/v1 Job defaults: completions and
// parallelism 1 when both are unset (parallelism 1 when only it is),
// backoffLimit 6 (MaxInt32 with backoffLimitPerIndex), the object's labels
// from the template's when it has none, completionMode NonIndexed, suspend
// false, manualSelector false, podReplacementPolicy TerminatingOrFailed
// (Failed with a podFailurePolicy), condition patterns' status True, and
// the template's defaults. It is idempotent.
func DefaultJob(j *batchv1.Job) {
	defaultJobSpec(&j.Spec)
	if l := j.Spec.Template.Labels; l != nil && len(j.Labels) == 0 {
		j.Labels = copyLabels(l)
	}
	if j.Spec.ManualSelector == nil {
		j.Spec.ManualSelector = ptrTo(false)
	}
}

func defaultJobSpec(spec *batchv1.JobSpec) {
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = ptrTo(int32(1))
		spec.Parallelism = ptrTo(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = ptrTo(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			spec.BackoffLimit = ptrTo(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = ptrTo(int32(6))
		}
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = ptrTo(false)
	}
	if spec.PodFailurePolicy != nil {
		for _, rule := range spec.PodFailurePolicy.Rules {
			for i := range rule.OnPodConditions {
				if rule.OnPodConditions[i].Status == "" {
					rule.OnPodConditions[i].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if spec.PodReplacementPolicy == nil {
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = ptrTo(batchv1.TerminatingOrFailed)
		}
	}
	DefaultPodTemplateSpec(&spec.Template)
}

// prepareJobForCreate clears status and, unless spec.manualSelector is
// true, generates the selector and template labels that tie the job's
// pods to it (controller-uid, job-name and their batch.kubernetes.io/
// forms). It relies on the REST layer having set metadata.uid (and the
// final name) before this hook runs.
func prepareJobForCreate(j *batchv1.Job) {
	// Upstream defaults before this hook; the object's labels must come
	// from the user's template labels, not the generated ones.
	DefaultJob(j)
	j.Status = batchv1.JobStatus{}
	if *j.Spec.ManualSelector {
		return
	}
	t := &j.Spec.Template
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	for _, k := range []string{legacyJobNameLabel, batchv1.JobNameLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = j.Name
		}
	}
	for _, k := range []string{legacyControllerUIDLabel, batchv1.ControllerUidLabel} {
		if _, ok := t.Labels[k]; !ok {
			t.Labels[k] = string(j.UID)
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(j.UID)
	}
}

type jobOptions struct {
	pod podOptions
	// requirePrefixedLabels: the generated batch.kubernetes.io/ labels must
	// be present (always on create; on update only if the job had them).
	requirePrefixedLabels bool
	// allowMutableSchedulingDirectives: the job is suspended and never
	// started, so its template's scheduling directives may change.
	allowMutableSchedulingDirectives bool
}

func jobUpdateOptions(old *batchv1.Job, pod podOptions) jobOptions {
	pod.allowInvalidLabelValueInSelector = metav1validation.LabelSelectorHasInvalidLabelValue(old.Spec.Selector)
	_, hadName := old.Spec.Template.Labels[batchv1.JobNameLabel]
	_, hadUID := old.Spec.Template.Labels[batchv1.ControllerUidLabel]
	return jobOptions{
		pod:                              pod,
		requirePrefixedLabels:            hadName && hadUID,
		allowMutableSchedulingDirectives: deref(old.Spec.Suspend) && old.Status.StartTime == nil,
	}
}

func validateJob(j *batchv1.Job, opts jobOptions) field.ErrorList {
	allErrs := validateGeneratedSelector(j, opts.requirePrefixedLabels)
	allErrs = append(allErrs, validateJobSpec(&j.Spec, field.NewPath("spec"), opts.pod)...)
	if deref(j.Spec.CompletionMode) == batchv1.IndexedCompletion && deref(j.Spec.Completions) > 0 {
		// Indexed pods are named <job>-<index> and use it as hostname.
		host := fmt.Sprintf("%s-%d", j.Name, *j.Spec.Completions-1)
		if len(validation.IsDNS1123Label(host)) > 0 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("metadata", "name"), j.Name, fmt.Sprintf("will not able to create pod with invalid DNS label: %s", host)))
		}
	}
	return allErrs
}

// validateGeneratedSelector: without manualSelector, the template carries
// the generated labels and the selector matches them.
func validateGeneratedSelector(j *batchv1.Job, prefixed bool) field.ErrorList {
	if deref(j.Spec.ManualSelector) || j.Spec.Selector == nil {
		return nil
	}
	var allErrs field.ErrorList
	if j.UID == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("metadata", "uid"), ""))
	}
	metaPath := field.NewPath("spec", "template", "metadata")
	want := map[string]string{
		legacyControllerUIDLabel: string(j.UID),
		legacyJobNameLabel:       j.Name,
	}
	keys := []string{legacyControllerUIDLabel, legacyJobNameLabel}
	if prefixed {
		want[batchv1.ControllerUidLabel] = string(j.UID)
		want[batchv1.JobNameLabel] = j.Name
		keys = append(keys, batchv1.ControllerUidLabel, batchv1.JobNameLabel)
	}
	for _, k := range keys {
		allErrs = append(allErrs, validateHasLabel(j.Spec.Template.Labels, metaPath, k, want[k])...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !sel.Matches(labels.Set(want)) {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	return allErrs
}

func validateHasLabel(l map[string]string, metaPath *field.Path, key, want string) field.ErrorList {
	v, ok := l[key]
	if !ok {
		return field.ErrorList{field.Required(metaPath.Child("labels").Key(key), fmt.Sprintf("must be '%s'", want))}
	}
	if v != want {
		return field.ErrorList{field.Invalid(metaPath.Child("labels").Key(key), l, fmt.Sprintf("must be '%s'", want))}
	}
	return nil
}

func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	allErrs := validateJobSpecCommon(spec, fldPath, opts)
	if spec.Selector == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
	} else {
		selOpts := metav1validation.LabelSelectorValidationOptions{AllowInvalidLabelValueInSelector: opts.allowInvalidLabelValueInSelector}
		allErrs = append(allErrs, metav1validation.ValidateLabelSelector(spec.Selector, selOpts, fldPath.Child("selector"))...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(spec.Selector); err == nil && !sel.Matches(labels.Set(spec.Template.Labels)) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template", "metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return allErrs
}

// validateJobSpecCommon is what a Job and a CronJob's job template share.
func validateJobSpecCommon(spec *batchv1.JobSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	var allErrs field.ErrorList
	for _, f := range []struct {
		v    *int32
		name string
	}{
		{spec.Parallelism, "parallelism"}, {spec.Completions, "completions"}, {spec.BackoffLimit, "backoffLimit"},
		{spec.TTLSecondsAfterFinished, "ttlSecondsAfterFinished"}, {spec.BackoffLimitPerIndex, "backoffLimitPerIndex"},
		{spec.MaxFailedIndexes, "maxFailedIndexes"},
	} {
		if f.v != nil {
			allErrs = append(allErrs, validateNonnegative(int64(*f.v), fldPath.Child(f.name))...)
		}
	}
	if spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(*spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	}
	if spec.MaxFailedIndexes != nil && spec.BackoffLimitPerIndex == nil {
		allErrs = append(allErrs, field.Required(fldPath.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
	}
	if spec.CompletionMode != nil {
		mode := *spec.CompletionMode
		if mode != batchv1.NonIndexedCompletion && mode != batchv1.IndexedCompletion {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("completionMode"), mode, []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
		if mode == batchv1.IndexedCompletion {
			if spec.Completions == nil {
				allErrs = append(allErrs, field.Required(fldPath.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
			if p := deref(spec.Parallelism); p > maxParallelismForIndexedJob {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("parallelism"), p, fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
			}
			if spec.Completions != nil && spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > *spec.Completions {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "must be less than or equal to completions"))
			}
			if spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > maxFailedIndexes {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, fmt.Sprintf("must be less than or equal to %d", maxFailedIndexes)))
			}
		}
	}
	if deref(spec.CompletionMode) != batchv1.IndexedCompletion {
		if spec.BackoffLimitPerIndex != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("backoffLimitPerIndex"), *spec.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
		if spec.MaxFailedIndexes != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "requires indexed completion mode"))
		}
	}
	if spec.PodFailurePolicy != nil {
		allErrs = append(allErrs, validatePodFailurePolicy(spec, fldPath.Child("podFailurePolicy"))...)
	}
	if spec.SuccessPolicy != nil {
		allErrs = append(allErrs, validateSuccessPolicy(spec, fldPath.Child("successPolicy"))...)
	}
	if r := spec.PodReplacementPolicy; r != nil {
		valid := []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}
		if spec.PodFailurePolicy != nil {
			valid = valid[:1]
		}
		if !contains(valid, *r) {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *r, valid))
		}
	}
	if m := spec.ManagedBy; m != nil {
		p := fldPath.Child("managedBy")
		if len(*m) > 63 {
			allErrs = append(allErrs, field.TooLong(p, "", 63))
		}
		allErrs = append(allErrs, validation.IsDomainPrefixedPath(p, *m)...)
	}
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, fldPath.Child("template"), opts)...)
	rp := spec.Template.Spec.RestartPolicy
	rpPath := fldPath.Child("template", "spec", "restartPolicy")
	switch {
	case rp == corev1.RestartPolicyAlways || rp == "":
		allErrs = append(allErrs, field.Required(rpPath, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever:
		allErrs = append(allErrs, field.NotSupported(rpPath, rp, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case spec.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever:
		allErrs = append(allErrs, field.Invalid(rpPath, rp, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return allErrs
}

func validatePodFailurePolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	rulesPath := fldPath.Child("rules")
	rules := spec.PodFailurePolicy.Rules
	if len(rules) > maxPodFailurePolicyRules {
		allErrs = append(allErrs, field.TooMany(rulesPath, len(rules), maxPodFailurePolicyRules))
	}
	names := containerNames(spec.Template.Spec.Containers)
	for n := range containerNames(spec.Template.Spec.InitContainers) {
		names[n] = true
	}
	actions := []batchv1.PodFailurePolicyAction{batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore}
	for i, rule := range rules {
		rp := rulesPath.Index(i)
		ap := rp.Child("action")
		switch {
		case rule.Action == "":
			allErrs = append(allErrs, field.Required(ap, fmt.Sprintf("valid values: %q", actions)))
		case rule.Action == batchv1.PodFailurePolicyActionFailIndex && spec.BackoffLimitPerIndex == nil:
			allErrs = append(allErrs, field.Invalid(ap, rule.Action, "requires the backoffLimitPerIndex to be set"))
		case !contains(actions, rule.Action):
			allErrs = append(allErrs, field.NotSupported(ap, rule.Action, actions))
		}
		if ec := rule.OnExitCodes; ec != nil {
			allErrs = append(allErrs, validateOnExitCodes(ec, names, rp.Child("onExitCodes"))...)
		}
		if len(rule.OnPodConditions) > maxOnPodConditionsPatterns {
			allErrs = append(allErrs, field.TooMany(rp.Child("onPodConditions"), len(rule.OnPodConditions), maxOnPodConditionsPatterns))
		}
		statuses := []corev1.ConditionStatus{corev1.ConditionFalse, corev1.ConditionTrue, corev1.ConditionUnknown}
		for j, pat := range rule.OnPodConditions {
			pp := rp.Child("onPodConditions").Index(j)
			allErrs = append(allErrs, validateQualifiedName(string(pat.Type), pp.Child("type"))...)
			if pat.Status == "" {
				allErrs = append(allErrs, field.Required(pp.Child("status"), fmt.Sprintf("valid values: %q", statuses)))
			} else if !contains(statuses, pat.Status) {
				allErrs = append(allErrs, field.NotSupported(pp.Child("status"), pat.Status, statuses))
			}
		}
		switch {
		case rule.OnExitCodes != nil && len(rule.OnPodConditions) > 0:
			allErrs = append(allErrs, field.Invalid(rp, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		case rule.OnExitCodes == nil && len(rule.OnPodConditions) == 0:
			allErrs = append(allErrs, field.Invalid(rp, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
	}
	return allErrs
}

func validateOnExitCodes(ec *batchv1.PodFailurePolicyOnExitCodesRequirement, names map[string]bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	ops := []batchv1.PodFailurePolicyOnExitCodesOperator{batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn}
	if ec.Operator == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("operator"), fmt.Sprintf("valid values: %q", ops)))
	} else if !contains(ops, ec.Operator) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("operator"), ec.Operator, ops))
	}
	if ec.ContainerName != nil && !names[*ec.ContainerName] {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("containerName"), *ec.ContainerName, "must be one of the container or initContainer names in the pod template"))
	}
	vp := fldPath.Child("values")
	if len(ec.Values) == 0 {
		allErrs = append(allErrs, field.Invalid(vp, ec.Values, "at least one value is required"))
	} else if len(ec.Values) > maxOnExitCodesValues {
		allErrs = append(allErrs, field.TooMany(vp, len(ec.Values), maxOnExitCodesValues))
	}
	seen := map[int32]bool{}
	ordered := true
	for j, v := range ec.Values {
		if ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && v == 0 {
			allErrs = append(allErrs, field.Invalid(vp.Index(j), v, "must not be 0 for the In operator"))
		}
		if seen[v] {
			allErrs = append(allErrs, field.Duplicate(vp.Index(j), v))
		}
		seen[v] = true
		if j > 0 && ec.Values[j-1] > v {
			ordered = false
		}
	}
	if !ordered {
		allErrs = append(allErrs, field.Invalid(vp, ec.Values, "must be ordered"))
	}
	return allErrs
}

func validateSuccessPolicy(spec *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	rulesPath := fldPath.Child("rules")
	if deref(spec.CompletionMode) != batchv1.IndexedCompletion {
		allErrs = append(allErrs, field.Invalid(fldPath, spec.SuccessPolicy, fmt.Sprintf("requires indexed completion mode")))
	}
	if len(spec.SuccessPolicy.Rules) == 0 {
		allErrs = append(allErrs, field.Required(rulesPath, "at least one rule must be specified when the successPolicy is specified"))
	}
	for i, rule := range spec.SuccessPolicy.Rules {
		rp := rulesPath.Index(i)
		if rule.SucceededIndexes == nil && rule.SucceededCount == nil {
			allErrs = append(allErrs, field.Required(rp, "at least one of succeededCount or succeededIndexes must be specified"))
		}
		if c := rule.SucceededCount; c != nil {
			if *c < 0 {
				allErrs = append(allErrs, field.Invalid(rp.Child("succeededCount"), *c, "must be greater than or equal to 0"))
			} else if spec.Completions != nil && *c > *spec.Completions {
				allErrs = append(allErrs, field.Invalid(rp.Child("succeededCount"), *c, fmt.Sprintf("must be less than or equal to %d (the number of specified completions)", *spec.Completions)))
			}
		}
	}
	return allErrs
}

func validateJobSpecUpdate(spec, old *batchv1.JobSpec, fldPath *field.Path, opts jobOptions) field.ErrorList {
	allErrs := validateCompletionsUpdate(spec, old, fldPath.Child("completions"))
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.Selector, old.Selector, fldPath.Child("selector"))...)
	oldTemplate := &old.Template
	if opts.allowMutableSchedulingDirectives {
		oldTemplate = old.Template.DeepCopy()
		t := &spec.Template
		switch {
		case t.Spec.Affinity == nil && oldTemplate.Spec.Affinity != nil:
			oldTemplate.Spec.Affinity.NodeAffinity = nil
			if *oldTemplate.Spec.Affinity == (corev1.Affinity{}) {
				oldTemplate.Spec.Affinity = nil
			}
		case t.Spec.Affinity != nil && oldTemplate.Spec.Affinity == nil:
			oldTemplate.Spec.Affinity = &corev1.Affinity{NodeAffinity: t.Spec.Affinity.NodeAffinity}
		case t.Spec.Affinity != nil:
			oldTemplate.Spec.Affinity.NodeAffinity = t.Spec.Affinity.NodeAffinity
		}
		oldTemplate.Spec.NodeSelector = t.Spec.NodeSelector
		oldTemplate.Spec.Tolerations = t.Spec.Tolerations
		oldTemplate.Annotations = t.Annotations
		oldTemplate.Labels = t.Labels
		oldTemplate.Spec.SchedulingGates = t.Spec.SchedulingGates
	}
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.Template, *oldTemplate, fldPath.Child("template"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.CompletionMode, old.CompletionMode, fldPath.Child("completionMode"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.PodFailurePolicy, old.PodFailurePolicy, fldPath.Child("podFailurePolicy"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.BackoffLimitPerIndex, old.BackoffLimitPerIndex, fldPath.Child("backoffLimitPerIndex"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.SuccessPolicy, old.SuccessPolicy, fldPath.Child("successPolicy"))...)
	if old.ManagedBy != nil || spec.ManagedBy != nil {
		allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(spec.ManagedBy, old.ManagedBy, fldPath.Child("managedBy"))...)
	}
	return allErrs
}

// validateCompletionsUpdate: completions are immutable, except that an
// Indexed job may change them together with parallelism (elastic
// indexed jobs).
func validateCompletionsUpdate(spec, old *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	if deref(spec.CompletionMode) != batchv1.IndexedCompletion {
		return apimachineryvalidation.ValidateImmutableField(spec.Completions, old.Completions, fldPath)
	}
	if apiequality.Semantic.DeepEqual(spec.Completions, old.Completions) || spec.Completions == nil {
		return nil
	}
	if *spec.Completions != deref(spec.Parallelism) {
		return field.ErrorList{field.Invalid(fldPath, spec.Completions, fmt.Sprintf("can only be modified in tandem with %s", fldPath.Root().Child("parallelism").String()))}
	}
	return nil
}

func validateJobStatus(s *batchv1.JobStatus, fldPath *field.Path) field.ErrorList {
	allErrs := validateNonnegative(int64(s.Active), fldPath.Child("active"))
	allErrs = append(allErrs, validateNonnegative(int64(s.Succeeded), fldPath.Child("succeeded"))...)
	allErrs = append(allErrs, validateNonnegative(int64(s.Failed), fldPath.Child("failed"))...)
	if s.Ready != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*s.Ready), fldPath.Child("ready"))...)
	}
	if s.Terminating != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*s.Terminating), fldPath.Child("terminating"))...)
	}
	if u := s.UncountedTerminatedPods; u != nil {
		p := fldPath.Child("uncountedTerminatedPods")
		seen := map[string]bool{}
		for _, list := range []struct {
			uids []types.UID
			name string
		}{{u.Succeeded, "succeeded"}, {u.Failed, "failed"}} {
			for i, uid := range list.uids {
				ip := p.Child(list.name).Index(i)
				switch {
				case uid == "":
					allErrs = append(allErrs, field.Invalid(ip, uid, "must not be empty"))
				case seen[string(uid)]:
					allErrs = append(allErrs, field.Duplicate(ip, uid))
				}
				seen[string(uid)] = true
			}
		}
	}
	if s.CompletionTime != nil && s.StartTime != nil && s.CompletionTime.Before(s.StartTime) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("completionTime"), s.CompletionTime, "completionTime cannot be set before startTime"))
	}
	return allErrs
}

func (b builder) cronJobs() *registry.Resource {
	return &registry.Resource{
		GroupVersion:  batchv1.SchemeGroupVersion,
		Resource:      "cronjobs",
		Kind:          "CronJob",
		ListKind:      "CronJobList",
		SingularName:  "cronjob",
		ShortNames:    []string{"cj"},
		Categories:    []string{"all"},
		Namespaced:    true,
		New:           func() runtime.Object { return &batchv1.CronJob{} },
		NewList:       func() runtime.Object { return &batchv1.CronJobList{} },
		HasGeneration: true,
		Default:       func(obj runtime.Object) { DefaultCronJob(obj.(*batchv1.CronJob)) },
		PrepareForCreate: func(_ context.Context, obj runtime.Object) {
			obj.(*batchv1.CronJob).Status = batchv1.CronJobStatus{}
		},
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			cj := obj.(*batchv1.CronJob)
			allErrs := validateCronJobSpec(&cj.Spec, nil, field.NewPath("spec"), b.podOptions())
			if len(cj.Name) > cronJobNameMax {
				allErrs = append(allErrs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", cronJobNameMax)))
			}
			return allErrs
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			// The length limit is for creates only, so that older, longer
			// names can still be updated and deleted.
			return validateCronJobSpec(&obj.(*batchv1.CronJob).Spec, &old.(*batchv1.CronJob).Spec, field.NewPath("spec"), b.podOptions())
		},
		Status: &registry.Subresource{},
	}
}

// DefaultCronJob sets upstream's batch/v1 CronJob defaults:
// concurrencyPolicy Allow, suspend false, 3 successful and 1 failed jobs
// kept, and the job template's spec defaults (without manualSelector,
// which the Job gets when it is created).
func DefaultCronJob(cj *batchv1.CronJob) {
	if cj.Spec.ConcurrencyPolicy == "" {
		cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if cj.Spec.Suspend == nil {
		cj.Spec.Suspend = ptrTo(false)
	}
	if cj.Spec.SuccessfulJobsHistoryLimit == nil {
		cj.Spec.SuccessfulJobsHistoryLimit = ptrTo(int32(3))
	}
	if cj.Spec.FailedJobsHistoryLimit == nil {
		cj.Spec.FailedJobsHistoryLimit = ptrTo(int32(1))
	}
	defaultJobSpec(&cj.Spec.JobTemplate.Spec)
}

func validateCronJobSpec(spec, old *batchv1.CronJobSpec, fldPath *field.Path, opts podOptions) field.ErrorList {
	var allErrs field.ErrorList
	if spec.Schedule == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("schedule"), ""))
	} else {
		allowTZ := old != nil && strings.Contains(old.Schedule, "TZ")
		allErrs = append(allErrs, validateSchedule(spec.Schedule, allowTZ, spec.TimeZone, fldPath.Child("schedule"))...)
	}
	if spec.StartingDeadlineSeconds != nil {
		allErrs = append(allErrs, validateNonnegative(*spec.StartingDeadlineSeconds, fldPath.Child("startingDeadlineSeconds"))...)
	}
	if old == nil || !apiequality.Semantic.DeepEqual(old.TimeZone, spec.TimeZone) {
		allErrs = append(allErrs, validateTimeZone(spec.TimeZone, fldPath.Child("timeZone"))...)
	}
	switch spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("concurrencyPolicy"), ""))
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("concurrencyPolicy"), spec.ConcurrencyPolicy, []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}
	jt := fldPath.Child("jobTemplate")
	allErrs = append(allErrs, validateJobSpecCommon(&spec.JobTemplate.Spec, jt.Child("spec"), opts)...)
	if spec.JobTemplate.Spec.Selector != nil {
		allErrs = append(allErrs, field.Invalid(jt.Child("spec", "selector"), spec.JobTemplate.Spec.Selector, "`selector` will be auto-generated"))
	}
	if deref(spec.JobTemplate.Spec.ManualSelector) {
		allErrs = append(allErrs, field.NotSupported(jt.Child("spec", "manualSelector"), spec.JobTemplate.Spec.ManualSelector, []string{"nil", "false"}))
	}
	allErrs = append(allErrs, metav1validation.ValidateLabels(spec.JobTemplate.Labels, jt.Child("metadata", "labels"))...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateAnnotations(spec.JobTemplate.Annotations, jt.Child("metadata", "annotations"))...)
	if spec.SuccessfulJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.SuccessfulJobsHistoryLimit), fldPath.Child("successfulJobsHistoryLimit"))...)
	}
	if spec.FailedJobsHistoryLimit != nil {
		allErrs = append(allErrs, validateNonnegative(int64(*spec.FailedJobsHistoryLimit), fldPath.Child("failedJobsHistoryLimit"))...)
	}
	return allErrs
}

// ParseSchedule parses a CronJob schedule as upstream accepts it: five
// standard cron fields or a descriptor (@hourly, @every 1h30m, ...). A
// TZ= or CRON_TZ= prefix is rejected here; spec.timeZone says where the
// schedule runs. Controllers use it to compute the next run.
func ParseSchedule(schedule string) (cron.Schedule, error) {
	if strings.Contains(schedule, "TZ") {
		return nil, fmt.Errorf("schedule %q: cannot use TZ or CRON_TZ in schedule, use timeZone field instead", schedule)
	}
	return parseStandardCron(schedule)
}

// parseStandardCron is the cron library's ParseStandard made safe: it
// panics on some malformed inputs (a TZ= prefix without a following
// space), which must come back as an error.
func parseStandardCron(schedule string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("malformed schedule %q", schedule)
		}
	}()
	return cron.ParseStandard(schedule)
}

func validateSchedule(schedule string, allowTZ bool, timeZone *string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if _, err := parseStandardCron(schedule); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, schedule, err.Error()))
	}
	switch {
	case allowTZ && strings.Contains(schedule, "TZ") && timeZone != nil:
		allErrs = append(allErrs, field.Invalid(fldPath, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
	case !allowTZ && strings.Contains(schedule, "TZ"):
		allErrs = append(allErrs, field.Invalid(fldPath, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	}
	return allErrs
}

// validTimeZonePart is one component of an IANA name ("America",
// "Argentina", "Buenos_Aires"); digits and '+' are tolerated for legacy
// names such as "Etc/GMT+5".
var validTimeZonePart = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateTimeZone(tz *string, fldPath *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(fldPath, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZonePart.MatchString(part) {
			return field.ErrorList{field.Invalid(fldPath, tz, fmt.Sprintf("unknown time zone %s", *tz))}
		}
	}
	var allErrs field.ErrorList
	if strings.EqualFold(*tz, "Local") {
		allErrs = append(allErrs, field.Invalid(fldPath, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		allErrs = append(allErrs, field.Invalid(fldPath, tz, err.Error()))
	}
	return allErrs
}
