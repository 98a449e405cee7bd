// Package cronjob is the CronJob controller: it creates a batch/v1 Job
// from a CronJob's template at each time of its schedule, as upstream's
// CronJob controller (v2, kube-controller-manager v1.37) does. It is an
// API client only: informers for CronJobs and Jobs, a typed client for
// writes; the Job controller runs the Jobs it creates.
//
//	c, err := cronjob.New(cronjob.Config{Client: client, Informers: factory, Logger: logger})
//	factory.Start(ctx.Done())
//	err = c.Run(ctx) // until ctx is done
//
// # Schedules
//
// spec.schedule is standard cron syntax (five fields, or @hourly, @daily,
// @every 1h30m, ...), parsed with upstream's rules. It runs in
// spec.timeZone, an IANA name; without one, in Config.Location (the
// process's local zone by default, as upstream uses the controller
// manager's). The Job for the start at time t is named
// <cronjob>-<t in minutes since the epoch>, which makes creation
// idempotent: a second attempt finds the Job already there. The Job
// carries the template's labels and annotations plus
// batch.kubernetes.io/cronjob-scheduled-timestamp (t in RFC 3339, in the
// schedule's zone).
//
// # The main loop
//
//	informer events (CronJobs; Jobs, to their controlling CronJob) ─► queue
//	     │
//	     ▼
//	sync(key): CronJob and its Jobs from the cache
//	     ├─ status.active: drop finished Jobs (SawCompletedJob) and Jobs
//	     │  gone from the API (MissingJob); lastSuccessfulTime
//	     ├─ being deleted, suspended, bad time zone or schedule: stop
//	     ├─ most recent start time t not yet run (≤ now, after
//	     │  lastScheduleTime or creation; TooManyMissedTimes past 100)
//	     │    ├─ none, or t + startingDeadlineSeconds passed
//	     │    │  (MissSchedule): wait for the next start
//	     │    ├─ Forbid with a Job active: skip t (JobAlreadyActive)
//	     │    ├─ Replace: delete the active Jobs
//	     │    └─ create the Job for t; status.active, lastScheduleTime = t
//	     ├─ delete the oldest finished Jobs beyond successfulJobsHistoryLimit
//	     │  and failedJobsHistoryLimit
//	     └─ write status; sync again just after the next start time
package cronjob
