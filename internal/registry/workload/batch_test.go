package workload

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestJobValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*batchv1.Job)
		want   []fieldErr
	}{
		{"Valid", func(*batchv1.Job) {}, nil},
		{"RejectsRestartPolicyAlways", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }, []fieldErr{required("spec.template.spec.restartPolicy")}},
		{"DefaultRestartPolicyIsRejected", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" }, []fieldErr{required("spec.template.spec.restartPolicy")}},
		{"RejectsNegativeParallelism", func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo(int32(-1)) }, []fieldErr{invalid("spec.parallelism")}},
		{"RejectsNegativeCompletions", func(j *batchv1.Job) { j.Spec.Completions = ptrTo(int32(-1)) }, []fieldErr{invalid("spec.completions")}},
		{"RejectsNegativeBackoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptrTo(int32(-1)) }, []fieldErr{invalid("spec.backoffLimit")}},
		{"RejectsNegativeActiveDeadline", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptrTo(int64(-1)) }, []fieldErr{invalid("spec.activeDeadlineSeconds")}},
		{"RejectsUnknownCompletionMode", func(j *batchv1.Job) { j.Spec.CompletionMode = ptrTo(batchv1.CompletionMode("Ordered")) }, []fieldErr{notSupported("spec.completionMode")}},
		{"RejectsIndexedWithoutCompletions", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.Parallelism = ptrTo(int32(2))
		}, []fieldErr{required("spec.completions")}},
		{"RejectsBackoffPerIndexWhenNonIndexed", func(j *batchv1.Job) { j.Spec.BackoffLimitPerIndex = ptrTo(int32(1)) }, []fieldErr{invalid("spec.backoffLimitPerIndex")}},
		{"RejectsIndexedNameTooLongForHostname", func(j *batchv1.Job) {
			j.Name = strings.Repeat("a", 62)
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.Completions = ptrTo(int32(10))
		}, []fieldErr{invalid("metadata.name")}},
		{"RejectsUnknownReplacementPolicy", func(j *batchv1.Job) { j.Spec.PodReplacementPolicy = ptrTo(batchv1.PodReplacementPolicy("Never")) }, []fieldErr{notSupported("spec.podReplacementPolicy")}},
		{"RejectsPodFailurePolicyWithOnFailure", func(j *batchv1.Job) {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
			}}}
		}, []fieldErr{invalid("spec.template.spec.restartPolicy")}},
		{"RejectsUnorderedExitCodes", func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3, 1, 0}},
			}}}
		}, []fieldErr{invalid("spec.podFailurePolicy.rules[0].onExitCodes.values[2]"), invalid("spec.podFailurePolicy.rules[0].onExitCodes.values")}},
		{"RejectsRuleWithoutRequirement", func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore}}}
		}, []fieldErr{invalid("spec.podFailurePolicy.rules[0]")}},
		{"RejectsTooManyRules", func(j *batchv1.Job) {
			rule := batchv1.PodFailurePolicyRule{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}}
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
			for range 21 {
				j.Spec.PodFailurePolicy.Rules = append(j.Spec.PodFailurePolicy.Rules, rule)
			}
		}, []fieldErr{tooMany("spec.podFailurePolicy.rules")}},
		{"RejectsManualSelectorMismatch", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptrTo(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}
		}, []fieldErr{invalid("spec.template.metadata.labels")}},
		{"AcceptsManualSelector", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptrTo(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		}, nil},
		{"RejectsManualSelectorMissing", func(j *batchv1.Job) { j.Spec.ManualSelector = ptrTo(true) }, []fieldErr{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{"RejectsConflictingGeneratedLabel", func(j *batchv1.Job) {
			j.Spec.Template.Labels["job-name"] = "other"
		}, []fieldErr{invalid("spec.template.metadata.labels[job-name]")}},
		{"RejectsForeignSelector", func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		}, []fieldErr{invalid("spec.selector")}},
	}
	r := lookup(t, "jobs")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := basicJob()
			tc.mutate(j)
			wantErrs(t, create(t, r, j), tc.want...)
		})
	}
}

func TestJobCreate_GeneratesSelector(t *testing.T) {
	r := lookup(t, "jobs")
	j := basicJob()
	j.Spec.Template.Labels = nil
	if errs := create(t, r, j); len(errs) != 0 {
		t.Fatal(errs)
	}
	want := map[string]string{
		"controller-uid": "job-uid", "job-name": "pi",
		"batch.kubernetes.io/controller-uid": "job-uid", "batch.kubernetes.io/job-name": "pi",
	}
	for k, v := range want {
		if j.Spec.Template.Labels[k] != v {
			t.Errorf("template label %s = %q, want %q", k, j.Spec.Template.Labels[k], v)
		}
	}
	if got := j.Spec.Selector.MatchLabels; len(got) != 1 || got["batch.kubernetes.io/controller-uid"] != "job-uid" {
		t.Errorf("selector = %v", got)
	}

	t.Run("RequiresUID", func(t *testing.T) {
		j := basicJob()
		j.UID = ""
		errs := create(t, r, j)
		if len(errs) == 0 || errs[0].Field != "metadata.uid" {
			t.Errorf("errors = %v, want metadata.uid required first", errs)
		}
	})
}

func TestJobUpdate(t *testing.T) {
	r := lookup(t, "jobs")
	stored := func(mut func(*batchv1.Job)) *batchv1.Job {
		j := basicJob()
		if mut != nil {
			mut(j)
		}
		if errs := create(t, r, j); len(errs) != 0 {
			t.Fatal(errs)
		}
		return j
	}
	cases := []struct {
		name   string
		old    func(*batchv1.Job)
		mutate func(*batchv1.Job)
		want   []fieldErr
	}{
		{"AllowsParallelism", nil, func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo(int32(3)) }, nil},
		{"AllowsSuspend", nil, func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true) }, nil},
		{"RejectsCompletions", nil, func(j *batchv1.Job) { j.Spec.Completions = ptrTo(int32(3)) }, []fieldErr{invalid("spec.completions")}},
		{"RejectsSelector", nil, func(j *batchv1.Job) { j.Spec.Selector.MatchLabels["x"] = "y" }, []fieldErr{invalid("spec.selector"), invalid("spec.selector"), invalid("spec.template.metadata.labels")}},
		{"RejectsTemplate", nil, func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "nginx:2" }, []fieldErr{invalid("spec.template")}},
		{"RejectsCompletionMode", nil, func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
		}, []fieldErr{invalid("spec.completionMode")}},
		{"AllowsElasticIndexed", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(4)), ptrTo(int32(4))
		}, func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(6)), ptrTo(int32(6)) }, nil},
		{"RejectsElasticIndexedOutOfTandem", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(4)), ptrTo(int32(4))
		}, func(j *batchv1.Job) { j.Spec.Completions = ptrTo(int32(6)) }, []fieldErr{invalid("spec.completions")}},
		{"AllowsSchedulingChangesWhileSuspendedAndUnstarted", func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true) }, func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "b"}
			j.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}}
			j.Spec.Template.Annotations = map[string]string{"queue": "q1"}
		}, nil},
		{"RejectsSchedulingChangesWhenRunning", nil, func(j *batchv1.Job) {
			j.Spec.Template.Spec.NodeSelector = map[string]string{"zone": "b"}
		}, []fieldErr{invalid("spec.template")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := stored(tc.old)
			j := old.DeepCopy()
			tc.mutate(j)
			wantErrs(t, runUpdate(t, r, j, old), tc.want...)
		})
	}
}

func TestJobStatus(t *testing.T) {
	sub := lookup(t, "jobs").Status
	start := metav1.NewTime(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	before := metav1.NewTime(start.Add(-time.Minute))
	cases := []struct {
		name   string
		status batchv1.JobStatus
		want   []fieldErr
	}{
		{"Valid", batchv1.JobStatus{Active: 1, Succeeded: 2, Ready: ptrTo(int32(1)), StartTime: &start}, nil},
		{"RejectsNegativeActive", batchv1.JobStatus{Active: -1}, []fieldErr{invalid("status.active")}},
		{"RejectsNegativeReady", batchv1.JobStatus{Ready: ptrTo(int32(-1))}, []fieldErr{invalid("status.ready")}},
		{"RejectsDuplicateUncounted", batchv1.JobStatus{UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"a"}, Failed: []types.UID{"a", ""}}},
			[]fieldErr{duplicate("status.uncountedTerminatedPods.failed[0]"), invalid("status.uncountedTerminatedPods.failed[1]")}},
		{"RejectsCompletionBeforeStart", batchv1.JobStatus{StartTime: &start, CompletionTime: &before}, []fieldErr{invalid("status.completionTime")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := basicJob()
			j := old.DeepCopy()
			j.Status = tc.status
			wantErrs(t, sub.ValidateUpdate(context.Background(), j, old), tc.want...)
		})
	}
}

func TestJob_SelectableFieldsAndPropagation(t *testing.T) {
	r := lookup(t, "jobs")
	j := basicJob()
	j.Status.Succeeded = 4
	if got := r.SelectableFields(j)["status.successful"]; got != "4" {
		t.Errorf("status.successful = %q, want 4", got)
	}
	if got := r.DefaultPropagation(); got != metav1.DeletePropagationOrphan {
		t.Errorf("default propagation = %s, want Orphan (batch/v1)", got)
	}
}

func TestCronJobValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []fieldErr
	}{
		{"Valid", func(*batchv1.CronJob) {}, nil},
		{"RejectsMissingSchedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "" }, []fieldErr{required("spec.schedule")}},
		{"RejectsBadSchedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "61 * * * *" }, []fieldErr{invalid("spec.schedule")}},
		{"RejectsTZInSchedule", func(c *batchv1.CronJob) { c.Spec.Schedule = "CRON_TZ=UTC 0 3 * * *" }, []fieldErr{invalid("spec.schedule")}},
		{"RejectsMalformedTZWithoutPanic", func(c *batchv1.CronJob) { c.Spec.Schedule = "TZ=UTC" }, []fieldErr{invalid("spec.schedule"), invalid("spec.schedule")}},
		{"AcceptsTimeZone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Europe/Paris") }, nil},
		{"RejectsUnknownTimeZone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Mars/Olympus") }, []fieldErr{invalid("spec.timeZone")}},
		{"RejectsEmptyTimeZone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("") }, []fieldErr{invalid("spec.timeZone")}},
		{"RejectsLocalTimeZone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("Local") }, []fieldErr{invalid("spec.timeZone")}},
		{"RejectsTraversalTimeZone", func(c *batchv1.CronJob) { c.Spec.TimeZone = ptrTo("../../etc/passwd") }, []fieldErr{invalid("spec.timeZone")}},
		{"RejectsUnknownConcurrencyPolicy", func(c *batchv1.CronJob) { c.Spec.ConcurrencyPolicy = "Sometimes" }, []fieldErr{notSupported("spec.concurrencyPolicy")}},
		{"RejectsNegativeStartingDeadline", func(c *batchv1.CronJob) { c.Spec.StartingDeadlineSeconds = ptrTo(int64(-1)) }, []fieldErr{invalid("spec.startingDeadlineSeconds")}},
		{"RejectsNegativeHistory", func(c *batchv1.CronJob) { c.Spec.SuccessfulJobsHistoryLimit = ptrTo(int32(-1)) }, []fieldErr{invalid("spec.successfulJobsHistoryLimit")}},
		{"RejectsSelectorInTemplate", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		}, []fieldErr{invalid("spec.jobTemplate.spec.selector")}},
		{"RejectsManualSelectorInTemplate", func(c *batchv1.CronJob) { c.Spec.JobTemplate.Spec.ManualSelector = ptrTo(true) }, []fieldErr{notSupported("spec.jobTemplate.spec.manualSelector")}},
		{"RejectsRestartAlwaysInTemplate", func(c *batchv1.CronJob) {
			c.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, []fieldErr{required("spec.jobTemplate.spec.template.spec.restartPolicy")}},
		{"RejectsLongName", func(c *batchv1.CronJob) { c.Name = strings.Repeat("n", 53) }, []fieldErr{invalid("metadata.name")}},
		{"AcceptsNameOf52", func(c *batchv1.CronJob) { c.Name = strings.Repeat("n", 52) }, nil},
	}
	r := lookup(t, "cronjobs")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := basicCronJob()
			tc.mutate(c)
			wantErrs(t, create(t, r, c), tc.want...)
		})
	}
}

func TestCronJobUpdate(t *testing.T) {
	r := lookup(t, "cronjobs")
	old := basicCronJob()
	old.Name = strings.Repeat("n", 60) // created by an older release
	old.Spec.Schedule = "TZ=UTC 0 3 * * *"
	DefaultCronJob(old)
	t.Run("KeepsLegacyNameAndTZ", func(t *testing.T) {
		c := old.DeepCopy()
		c.Spec.Suspend = ptrTo(true)
		wantErrs(t, runUpdate(t, r, c, old))
	})
	t.Run("RejectsTZWithTimeZone", func(t *testing.T) {
		c := old.DeepCopy()
		c.Spec.TimeZone = ptrTo("UTC")
		wantErrs(t, runUpdate(t, r, c, old), invalid("spec.schedule"))
	})
}

func TestParseSchedule(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 17, 0, 0, time.UTC)
	cases := []struct {
		schedule string
		next     time.Time // zero: rejected
	}{
		{"*/15 * * * *", time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)},
		{"0 3 * * *", time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)},
		{"0 0 1 * *", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"30 9 * * MON-FRI", time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)},
		{"0 12 * JAN,MAR ?", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)},
		{"@daily", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"@every 90m", time.Date(2026, 3, 1, 11, 47, 0, 0, time.UTC)},
		{"", time.Time{}},
		{"* * * *", time.Time{}},
		{"* * * * * *", time.Time{}},
		{"60 * * * *", time.Time{}},
		{"* 24 * * *", time.Time{}},
		{"* * 0 * *", time.Time{}},
		{"* * * 13 *", time.Time{}},
		{"* * * * 8", time.Time{}},
		{"@fortnightly", time.Time{}},
		{"TZ=UTC 0 3 * * *", time.Time{}},
		{"CRON_TZ=Europe/Paris 0 3 * * *", time.Time{}},
		{"TZ=UTC", time.Time{}},
		{"5-1 * * * *", time.Time{}},
		{"*/0 * * * *", time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.schedule, func(t *testing.T) {
			s, err := ParseSchedule(tc.schedule)
			if tc.next.IsZero() {
				if err == nil {
					t.Fatalf("ParseSchedule(%q) accepted, want an error", tc.schedule)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.schedule, err)
			}
			if got := s.Next(from); !got.Equal(tc.next) {
				t.Errorf("next after %s = %s, want %s", from, got, tc.next)
			}
		})
	}
}
