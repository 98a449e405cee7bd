// Package job is the Job controller: it runs a batch/v1 Job's pods to
// completion, counts their outcomes, and marks the Job Complete or Failed,
// as upstream's Job controller (kube-controller-manager, v1.37) does. It is
// an API client only: informers for Jobs and pods, a typed client for
// writes.
//
//	c, err := job.New(job.Config{Client: client, Informers: factory, Logger: logger})
//	factory.Start(ctx.Done())
//	err = c.Run(ctx) // until ctx is done
//
// # What it implements
//
//   - completions and parallelism, NonIndexed and Indexed completion modes
//     (the batch.kubernetes.io/job-completion-index annotation and label,
//     the JOB_COMPLETION_INDEX variable, hostnames <job>-<index>,
//     status.completedIndexes);
//   - backoffLimit, with upstream's delay before a failed pod is replaced
//     (10s doubling to 10m, after the last failure), and the restart count
//     of restartPolicy OnFailure pods;
//   - activeDeadlineSeconds; suspend and resume (conditions Suspended,
//     events Suspended and Resumed, startTime reset on resume);
//   - podFailurePolicy rules on exit codes and pod conditions with the
//     actions FailJob, Ignore and Count (FailIndex counts as a failure:
//     backoffLimitPerIndex is not implemented) and podReplacementPolicy;
//   - successPolicy on Indexed jobs;
//   - ttlSecondsAfterFinished (upstream's separate TTL-after-finished
//     controller, folded in here): a finished Job is deleted in the
//     foreground once its TTL has passed.
//
// # Counting pods exactly once
//
// Every pod the controller creates carries the finalizer
// batch.kubernetes.io/job-tracking, so a finished pod cannot vanish
// before it is counted. A sync moves pods through three states:
//
//	pod finished, finalizer on ──► UID in status.uncountedTerminatedPods
//	        (status written)              │ finalizer removed (pod patch)
//	                                      ▼
//	            status.succeeded/failed += 1, UID dropped (status written)
//
// A crash between any two steps is repaired by the next sync, which sees
// the same pods and status again. Indexed jobs count succeeded indexes in
// status.completedIndexes instead of UIDs.
//
// # Terminal conditions
//
// As in v1.37, the terminal conditions come in two steps so that nothing
// claims a Job is over while its pods still run:
//
//	FailureTarget (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy)
//	SuccessCriteriaMet (CompletionsReached, SuccessPolicy)
//	   │ remaining pods deleted, every finalizer removed, no pod terminating
//	   ▼
//	Failed / Complete (same reason and message; completionTime for Complete)
//
// # The main loop
//
//	informer events ─► queue (Job key; pod events batched for BatchPeriod)
//	     │
//	     ▼
//	sync(key): Job from the cache ─► claim pods (adopt orphans matching the
//	     │     selector, release pods that stopped matching)
//	     ├─ finished: delete it after ttlSecondsAfterFinished; stop
//	     ├─ failure or success criteria met: delete active pods
//	     ├─ otherwise (expectations met): create or delete pods toward
//	     │  min(parallelism, completions − succeeded), respecting backoff
//	     └─ track: uncounted UIDs, finalizers, counters, conditions
//
// Creations and deletions not yet seen in the pod informer are remembered
// (expectations), so a sync never acts twice on a stale cache. Pods left
// with the tracking finalizer after their Job is gone or finished go to a
// second queue that removes it.
package job
