package cronjob

import (
	"testing"
	"time"
	_ "time/tzdata" // time zones on hosts without a zoneinfo database

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

const ns = "ns"

func ptrTo[T any](v T) *T { return &v }

// newCronJob returns a CronJob as the API server stores it (defaults),
// created an hour before t0.
func newCronJob(name, schedule string, change ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + name), ResourceVersion: "1", Generation: 1,
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)),
		},
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			ConcurrencyPolicy:          batchv1.AllowConcurrent,
			Suspend:                    ptrTo(false),
			SuccessfulJobsHistoryLimit: ptrTo(int32(3)),
			FailedJobsHistoryLimit:     ptrTo(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: map[string]string{"note": "from the template"}},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptrTo(int32(2)),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyOnFailure,
						Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
					}},
				},
			},
		},
	}
	for _, f := range change {
		f(cj)
	}
	return cj
}

// ownedJob returns a Job of cj for the start at t, as this controller
// makes them.
func ownedJob(cj *batchv1.CronJob, t time.Time, change ...func(*batchv1.Job)) *batchv1.Job {
	j := jobFromTemplate(cj, t, jobNameFor(cj, t), time.UTC)
	j.UID = types.UID("uid-" + j.Name)
	j.ResourceVersion = "1"
	j.CreationTimestamp = metav1.NewTime(t)
	for _, f := range change {
		f(j)
	}
	return j
}

func finished(cond batchv1.JobConditionType, start, end time.Time) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.StartTime = ptrTo(metav1.NewTime(start))
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(end)}}
		if cond == batchv1.JobComplete {
			j.Status.CompletionTime = ptrTo(metav1.NewTime(end))
		}
	}
}

func running(start time.Time) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Status.StartTime = ptrTo(metav1.NewTime(start)); j.Status.Active = 1 }
}

func withActive(jobs ...*batchv1.Job) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) {
		for _, j := range jobs {
			cj.Status.Active = append(cj.Status.Active, jobRef(j))
		}
	}
}

func utc(cfg *Config) { cfg.Location = time.UTC }

// TestSync drives the controller through CronJob schedules, one sync at a
// time, and compares the calls it makes with golden traces.
func TestSync(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"creates_job_at_scheduled_time", func(t *testing.T) {
			h := newHarness(t, utc, newCronJob("tick", "*/5 * * * *", func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0.Add(-5 * time.Minute)))
			}))
			h.sync("12:00 is due: create its job", "ns/tick")
			h.Refresh()
			h.clock.Step(time.Minute)
			h.sync("12:01: nothing due; next at 12:05", "ns/tick")
			h.Golden()
		}},
		{"waits_for_the_first_start", func(t *testing.T) {
			h := newHarness(t, utc, newCronJob("hourly", "@hourly", func(cj *batchv1.CronJob) {
				cj.CreationTimestamp = metav1.NewTime(t0.Add(30 * time.Second))
			}))
			h.clock.Step(time.Minute)
			h.sync("created after 12:00: first start at 13:00", "ns/hourly")
			h.Golden()
		}},
		{"forbid_skips_a_start_while_a_job_runs", func(t *testing.T) {
			cj := newCronJob("f", "*/5 * * * *", func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0.Add(-5 * time.Minute)))
			})
			prev := ownedJob(cj, t0.Add(-5*time.Minute), running(t0.Add(-5*time.Minute)))
			withActive(prev)(cj)
			h := newHarness(t, utc, cj, prev)
			h.sync("previous job still running: skip 12:00", "ns/f")
			h.Golden()
		}},
		{"replace_deletes_the_running_job", func(t *testing.T) {
			cj := newCronJob("r", "*/5 * * * *", func(cj *batchv1.CronJob) {
				cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0.Add(-5 * time.Minute)))
			})
			prev := ownedJob(cj, t0.Add(-5*time.Minute), running(t0.Add(-5*time.Minute)))
			withActive(prev)(cj)
			h := newHarness(t, utc, cj, prev)
			h.sync("12:00: delete the 11:55 job, create the new one", "ns/r")
			h.Golden()
		}},
		{"records_completed_jobs", func(t *testing.T) {
			cj := newCronJob("c", "*/5 * * * *", func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0))
			})
			done := ownedJob(cj, t0, running(t0))
			withActive(done)(cj)
			h := newHarness(t, utc, cj, done)
			h.clock.Step(2 * time.Minute)
			h.setJob(h.jobs(ns)[0], finished(batchv1.JobComplete, t0, t0.Add(time.Minute)))
			h.Refresh()
			h.sync("job complete: out of active, lastSuccessfulTime", "ns/c")
			h.Golden()
		}},
		{"history_limits_delete_the_oldest_finished_jobs", func(t *testing.T) {
			cj := newCronJob("h", "@hourly", func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0))
				cj.Status.LastSuccessfulTime = ptrTo(metav1.NewTime(t0.Add(-time.Hour + time.Minute)))
			})
			objs := []runtime.Object{cj}
			for i := 7; i >= 1; i-- {
				at := t0.Add(-time.Duration(i) * time.Hour)
				cond := batchv1.JobComplete
				if i == 2 || i == 6 {
					cond = batchv1.JobFailed
				}
				objs = append(objs, ownedJob(cj, at, finished(cond, at, at.Add(time.Minute))))
			}
			h := newHarness(t, utc, objs...)
			h.sync("five succeeded (keep 3), two failed (keep 1)", "ns/h")
			h.Golden()
		}},
		{"drops_active_jobs_that_went_missing", func(t *testing.T) {
			cj := newCronJob("m", "@hourly", func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0))
			})
			gone := ownedJob(cj, t0)
			withActive(gone)(cj)
			h := newHarness(t, utc, cj)
			h.sync("active job not in the cache nor the API: MissingJob", "ns/m")
			h.Golden()
		}},
		{"misses_a_start_past_its_deadline", func(t *testing.T) {
			h := newHarness(t, utc, newCronJob("late", "0 * * * *", func(cj *batchv1.CronJob) {
				cj.Spec.StartingDeadlineSeconds = ptrTo(int64(30))
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0.Add(-time.Hour)))
			}))
			h.clock.Step(10 * time.Second)
			h.sync("12:00 is 10s late, within the 30s deadline: run", "ns/late")
			h.Refresh()
			h.clock.Step(time.Hour + time.Minute)
			h.sync("13:00 is a minute late, past the 30s deadline: skipped, next at 14:00", "ns/late")
			h.Golden()
		}},
		{"warns_of_too_many_missed_starts", func(t *testing.T) {
			h := newHarness(t, utc, newCronJob("every", "* * * * *", func(cj *batchv1.CronJob) {
				cj.CreationTimestamp = metav1.NewTime(t0.Add(-200 * time.Minute))
			}))
			h.sync("200 starts missed: warn, run only the latest", "ns/every")
			h.Golden()
		}},
		{"runs_in_its_time_zone", func(t *testing.T) {
			h := newHarness(t, utc, newCronJob("tokyo", "0 9 * * *", func(cj *batchv1.CronJob) {
				cj.Spec.TimeZone = ptrTo("Asia/Tokyo")
				cj.CreationTimestamp = metav1.NewTime(t0.Add(-13 * time.Hour))
			}))
			h.sync("09:00 in Tokyo is 00:00 UTC: run it, next tomorrow", "ns/tokyo")
			h.Golden()
		}},
		{"adopts_its_job_after_a_lost_status_write", func(t *testing.T) {
			cj := newCronJob("lost", "*/5 * * * *", func(cj *batchv1.CronJob) {
				cj.Status.LastScheduleTime = ptrTo(metav1.NewTime(t0.Add(-5 * time.Minute)))
			})
			made := ownedJob(cj, t0, running(t0))
			h := newHarness(t, utc, cj)
			if err := h.client.Tracker().Add(made); err != nil {
				t.Fatal(err)
			}
			h.sync("the job exists in the API, not the cache: track it", "ns/lost")
			h.Golden()
		}},
		{"suspended_and_deleted_cronjobs_start_nothing", func(t *testing.T) {
			h := newHarness(t, utc,
				newCronJob("s", "* * * * *", func(cj *batchv1.CronJob) { cj.Spec.Suspend = ptrTo(true) }),
				newCronJob("d", "* * * * *", func(cj *batchv1.CronJob) {
					cj.DeletionTimestamp = ptrTo(metav1.NewTime(t0))
					cj.Finalizers = []string{"foregroundDeletion"}
				}),
			)
			h.sync("suspended", "ns/s")
			h.sync("being deleted", "ns/d")
			h.Golden()
		}},
		{"reports_bad_schedules_and_time_zones", func(t *testing.T) {
			h := newHarness(t, utc,
				newCronJob("tz", "* * * * *", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptrTo("Mars/Olympus_Mons") }),
				newCronJob("parse", "61 * * * *"),
				newCronJob("never", "0 0 31 2 *"),
			)
			h.sync("unknown time zone", "ns/tz")
			h.sync("unparseable schedule", "ns/parse")
			h.sync("schedule that never fires twice", "ns/never")
			h.sync("no such cronjob", "ns/missing")
			h.sync("malformed key", "a/b/c")
			h.Golden()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
