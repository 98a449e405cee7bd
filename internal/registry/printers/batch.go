package printers

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	batchv1beta1 "k8s.io/api/batch/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

func jobTable(c clock) *Table {
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", "string", "Status of the job."),
			column("Completions", "string", batchv1.JobStatus{}.SwaggerDoc()["succeeded"]),
			column("Duration", "string", "Time required to complete the job."),
			ageColumn(),
		}, append(containerColumns(),
			wideColumn("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"]))...),
		Row: cellsOf(func(job *batchv1.Job) []interface{} {
			var completions string
			switch parallelism := deref(job.Spec.Parallelism); {
			case job.Spec.Completions != nil:
				completions = fmt.Sprintf("%d/%d", job.Status.Succeeded, *job.Spec.Completions)
			case parallelism > 1:
				completions = fmt.Sprintf("%d/1 of %d", job.Status.Succeeded, parallelism)
			default:
				completions = fmt.Sprintf("%d/1", job.Status.Succeeded)
			}

			var took string
			switch {
			case job.Status.StartTime == nil:
			case job.Status.CompletionTime == nil:
				took = duration.HumanDuration(c.now().Sub(job.Status.StartTime.Time))
			default:
				took = duration.HumanDuration(job.Status.CompletionTime.Sub(job.Status.StartTime.Time))
			}

			names, images := containerCells(job.Spec.Template.Spec.Containers)
			return []interface{}{
				job.Name,
				jobStatus(job),
				completions,
				took,
				c.since(job.CreationTimestamp),
				names,
				images,
				metav1.FormatLabelSelector(job.Spec.Selector),
			}
		}),
	}
}

// jobStatus is the job's STATUS: its terminal condition, else Terminating
// once deleted, else Suspended, FailureTarget or Running.
func jobStatus(job *batchv1.Job) string {
	switch {
	case jobCondition(job, batchv1.JobComplete):
		return "Complete"
	case jobCondition(job, batchv1.JobFailed):
		return "Failed"
	case job.DeletionTimestamp != nil:
		return "Terminating"
	case jobCondition(job, batchv1.JobSuspended):
		return "Suspended"
	case jobCondition(job, batchv1.JobFailureTarget):
		return "FailureTarget"
	}
	return "Running"
}

// jobCondition reports whether the first condition of type t is True.
func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, cond := range job.Status.Conditions {
		if cond.Type == t {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func cronJobTable(c clock) *Table {
	spec := batchv1beta1.CronJobSpec{}.SwaggerDoc()
	status := batchv1beta1.CronJobStatus{}.SwaggerDoc()
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Schedule", "string", spec["schedule"]),
			column("Timezone", "string", spec["timeZone"]),
			column("Suspend", "boolean", spec["suspend"]),
			column("Active", "integer", status["active"]),
			column("Last Schedule", "string", status["lastScheduleTime"]),
			ageColumn(),
		}, append(containerColumns(),
			wideColumn("Selector", "string", batchv1.JobSpec{}.SwaggerDoc()["selector"]))...),
		Row: cellsOf(func(cj *batchv1.CronJob) []interface{} {
			last := none
			if cj.Status.LastScheduleTime != nil {
				last = c.since(*cj.Status.LastScheduleTime)
			}
			tz := none
			if cj.Spec.TimeZone != nil {
				tz = *cj.Spec.TimeZone
			}
			tmpl := &cj.Spec.JobTemplate.Spec
			names, images := containerCells(tmpl.Template.Spec.Containers)
			return []interface{}{
				cj.Name,
				cj.Spec.Schedule,
				tz,
				formatBoolPtr(cj.Spec.Suspend),
				int64(len(cj.Status.Active)),
				last,
				c.since(cj.CreationTimestamp),
				names,
				images,
				metav1.FormatLabelSelector(tmpl.Selector),
			}
		}),
	}
}
