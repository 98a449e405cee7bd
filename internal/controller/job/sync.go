package job

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
)

// syncState is what one sync knows about a Job. The Job is the sync's own
// copy; the pods are the informer's and must not be modified.
type syncState struct {
	key string
	job *batchv1.Job
	// pods are the claimed pods; active are those neither terminal nor
	// being deleted.
	pods, active []*corev1.Pod
	ready        int32
	terminating  int32
	// succeeded and failed count the Job's finished pods, including those
	// not yet in its status.
	succeeded, failed int32
	uncounted         struct{ succeeded, failed sets.Set[string] }
	// finalizersPending are pods whose finalizer removal is not yet seen.
	finalizersPending sets.Set[string]
	// finished is the condition the Job is heading to, if any.
	finished *batchv1.JobCondition
	// prevIndexes are the succeeded indexes in status.completedIndexes;
	// indexes adds those of pods that succeeded since (Indexed Jobs only).
	prevIndexes, indexes intervals
	backoff              backoffRecord
	// requeue is the soonest time the Job must be synced again (0: none).
	requeue time.Duration
}

func (s *syncState) requeueAfter(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

// sync brings one Job toward its spec. It returns how long to wait before
// syncing the Job again (0: only on the next event) or an error to retry
// with backoff.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || ns == "" || name == "" {
		c.log.Error("dropping malformed key", "key", key)
		return 0, nil
	}
	shared, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		c.finalizers.forget(key)
		c.backoff.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("job %s: %w", key, err)
	}
	if m := shared.Spec.ManagedBy; m != nil && *m != controllerName {
		return 0, nil
	}
	job := shared.DeepCopy()
	if isFinished(job) {
		c.backoff.forget(key)
		return c.syncFinished(ctx, job)
	}
	if m := job.Spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		c.recorder.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return 0, nil
	}
	if job.Spec.Selector == nil || job.Spec.Parallelism == nil || job.Spec.BackoffLimit == nil || (isIndexed(job) && job.Spec.Completions == nil) {
		// The API server defaults these; a Job without them was not
		// written through it.
		c.recorder.Event(job, corev1.EventTypeWarning, "InvalidJob", "Skipped Job sync because spec.selector, spec.parallelism, spec.backoffLimit or (Indexed) spec.completions is unset")
		return 0, nil
	}
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	now := c.clock.Now()
	// Check expectations before reading pods: a pod that lands in the
	// cache after this check only delays the sync to the next event.
	satisfied := c.expectations.satisfied(key, now)

	pods, err := c.claimPods(ctx, job)
	if err != nil {
		return 0, err
	}
	s := &syncState{key: key, job: job, pods: pods, finalizersPending: c.finalizers.pending(key)}
	s.uncounted.succeeded = uidSet(job.Status.UncountedTerminatedPods.Succeeded)
	s.uncounted.failed = uidSet(job.Status.UncountedTerminatedPods.Failed)
	for _, p := range pods {
		switch {
		case isActive(p):
			s.active = append(s.active, p)
			if isReady(p) {
				s.ready++
			}
		case isTerminating(p):
			s.terminating++
		}
	}
	active := int32(len(s.active))
	newSucceeded, newFailed := c.newFinishedPods(s)
	s.succeeded = job.Status.Succeeded + int32(len(newSucceeded)) + int32(s.uncounted.succeeded.Len())
	s.failed = job.Status.Failed + countedFailures(job, newFailed) + int32(s.uncounted.failed.Len())

	if job.Status.StartTime == nil && !isSuspended(job) {
		// Written with the next status change (the pods it creates).
		t := metav1.NewTime(now)
		job.Status.StartTime = &t
	}
	s.backoff = c.backoff.next(key, newSucceeded, newFailed, now)

	// The Job's fate, from the strongest reason down.
	s.finished = findCondition(job.Status.Conditions, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue)
	if s.finished == nil {
		if ft := findCondition(job.Status.Conditions, batchv1.JobFailureTarget, corev1.ConditionTrue); ft != nil {
			s.finished = newCondition(batchv1.JobFailed, ft.Reason, ft.Message, now)
		} else if msg, ok := failJobMessage(job, pods); ok {
			s.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy, msg, now)
		}
	}
	if s.finished == nil {
		switch {
		case s.failed > *job.Spec.BackoffLimit || pastBackoffLimitOnFailure(job, pods):
			s.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", now)
		case job.Spec.ActiveDeadlineSeconds != nil && job.Status.StartTime != nil && !isSuspended(job):
			left := time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - now.Sub(job.Status.StartTime.Time)
			if left <= 0 {
				s.finished = newCondition(batchv1.JobFailureTarget, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", now)
			} else {
				s.requeueAfter(left)
			}
		}
	}
	if isIndexed(job) {
		s.prevIndexes, s.indexes = succeededIndexes(job, pods)
		s.succeeded = int32(s.indexes.total())
		if s.finished == nil {
			if msg, ok := matchSuccessPolicy(job.Spec.SuccessPolicy, *job.Spec.Completions, s.indexes); ok {
				s.finished = newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonSuccessPolicy, msg, now)
			}
		}
	}

	var manageErr error
	suspendChanged := false
	if s.finished != nil {
		deletedReady, deleted, err := c.deleteActivePods(ctx, job, s.active)
		if deleted != active || !satisfied {
			// Pods may remain (or be missing from the cache): the Job
			// cannot be declared finished yet.
			s.finished = nil
		}
		active -= deleted
		s.terminating += deleted
		s.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			active, manageErr = c.manage(ctx, s)
			managed = true
		}
		complete := false
		if job.Spec.Completions == nil {
			// Work-queue Jobs are done when any pod succeeded and none
			// runs.
			complete = s.succeeded > 0 && active == 0
		} else {
			complete = s.succeeded >= *job.Spec.Completions && active == 0
		}
		switch {
		case complete:
			s.finished = newCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods", now)
		case managed && isSuspended(job):
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			}
		case managed:
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			if changed {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
				// activeDeadlineSeconds counts from the resume.
				t := metav1.NewTime(now)
				job.Status.StartTime = &t
			}
		}
	}

	needsUpdate := suspendChanged || active != job.Status.Active ||
		job.Status.Ready == nil || *job.Status.Ready != s.ready ||
		job.Status.Terminating == nil || *job.Status.Terminating != s.terminating
	job.Status.Active = active
	job.Status.Ready = ptrTo(s.ready)
	job.Status.Terminating = ptrTo(s.terminating)
	if err := c.track(ctx, s, needsUpdate); err != nil {
		return 0, fmt.Errorf("job %s: tracking status: %w", key, err)
	}
	if manageErr != nil {
		return 0, fmt.Errorf("job %s: %w", key, manageErr)
	}
	return s.requeue, nil
}

// newFinishedPods returns the pods that finished and are counted neither
// in the Job's status nor in its uncounted lists.
func (c *Controller) newFinishedPods(s *syncState) (succeeded, failed []*corev1.Pod) {
	for _, p := range s.pods {
		uid := string(p.UID)
		if !hasTrackingFinalizer(p) || s.finalizersPending.Has(uid) {
			continue
		}
		if isIndexed(s.job) && validIndex(p, *s.job.Spec.Completions) == noIndex {
			continue
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !s.uncounted.succeeded.Has(uid):
			succeeded = append(succeeded, p)
		case isFailed(p, s.job) && !s.uncounted.failed.Has(uid):
			failed = append(failed, p)
		}
	}
	return succeeded, failed
}

// countedFailures is how many of the failed pods count toward the
// backoffLimit under the Job's podFailurePolicy.
func countedFailures(j *batchv1.Job, failed []*corev1.Pod) int32 {
	n := int32(0)
	for _, p := range failed {
		if matchPodFailurePolicy(j.Spec.PodFailurePolicy, p).count {
			n++
		}
	}
	return n
}

// failJobMessage returns the message of the first FailJob rule matching a
// failed pod.
func failJobMessage(j *batchv1.Job, pods []*corev1.Pod) (string, bool) {
	if j.Spec.PodFailurePolicy == nil {
		return "", false
	}
	for _, p := range pods {
		if !isFailed(p, j) {
			continue
		}
		if m := matchPodFailurePolicy(j.Spec.PodFailurePolicy, p); m.failJob != "" {
			return m.failJob, true
		}
	}
	return "", false
}

// pastBackoffLimitOnFailure reports whether the containers of a
// restartPolicy OnFailure Job restarted more than its backoffLimit allows.
func pastBackoffLimitOnFailure(j *batchv1.Job, pods []*corev1.Pod) bool {
	if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	if *j.Spec.BackoffLimit == 0 {
		return restarts > 0
	}
	return restarts >= *j.Spec.BackoffLimit
}

// succeededIndexes returns the indexes in the Job's status and those plus
// the indexes of succeeded pods not yet counted.
func succeededIndexes(j *batchv1.Job, pods []*corev1.Pod) (prev, all intervals) {
	completions := *j.Spec.Completions
	prev = parseIntervals(j.Status.CompletedIndexes, int(completions))
	var fresh []int
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded || !hasTrackingFinalizer(p) {
			continue
		}
		if ix := validIndex(p, completions); ix != noIndex && !prev.has(ix) {
			fresh = append(fresh, ix)
		}
	}
	all = append(intervals(nil), prev...).withIndexes(fresh)
	return prev, all
}

// manage creates or deletes pods so that the active ones match what the
// Job wants now, and returns the number of active pods after that. A sync
// either creates or deletes, never both.
func (c *Controller) manage(ctx context.Context, s *syncState) (int32, error) {
	job := s.job
	active := int32(len(s.active))
	if isSuspended(job) {
		rm := s.active
		readyRemoved, removed, err := c.deleteJobPods(ctx, s, rm)
		s.terminating += removed
		s.ready -= readyRemoved
		return active - removed, err
	}
	parallelism := *job.Spec.Parallelism
	var want int32
	if job.Spec.Completions == nil {
		// A work-queue Job keeps what runs once any pod succeeded.
		if s.succeeded > 0 {
			want = active
		} else {
			want = parallelism
		}
	} else {
		want = max(min(*job.Spec.Completions-s.succeeded, parallelism), 0)
	}

	rm := podsToRemove(job, s.active, int(max(active-want, 0)))
	if len(rm) > maxPodCreateDeletePerSync {
		rm = rm[:maxPodCreateDeletePerSync]
	}
	if len(rm) > 0 {
		readyRemoved, removed, err := c.deleteJobPods(ctx, s, rm)
		s.terminating += removed
		s.ready -= readyRemoved
		return active - removed, err
	}

	var terminating int32
	if onlyReplaceFailed(job) {
		terminating = s.terminating
	}
	diff := want - terminating - active
	if diff <= 0 {
		return active, nil
	}
	if left := s.backoff.remaining(c.clock.Now(), c.cfg.PodFailureBackoff, c.cfg.MaxPodFailureBackoff); left > 0 {
		s.requeueAfter(max(left, c.cfg.BatchPeriod))
		return active, nil
	}
	diff = min(diff, maxPodCreateDeletePerSync)
	var indexes []int
	if isIndexed(job) {
		busy := s.active
		if onlyReplaceFailed(job) {
			for _, p := range s.pods {
				if isTerminating(p) {
					busy = append(busy, p)
				}
			}
		}
		indexes = firstPendingIndexes(s.indexes, busy, int(diff), *job.Spec.Completions)
		diff = int32(len(indexes))
	}
	if diff == 0 {
		return active, nil
	}
	created, err := c.createPods(ctx, s, int(diff), indexes)
	return active + int32(created), err
}

// podsToRemove picks at least n active pods to delete: for Indexed Jobs
// first those with a missing, out-of-range or repeated index, then by
// sortForRemoval.
func podsToRemove(j *batchv1.Job, active []*corev1.Pod, n int) []*corev1.Pod {
	var rm, left []*corev1.Pod
	if isIndexed(j) {
		rm, left = duplicateIndexPods(active, *j.Spec.Completions)
	} else {
		left = append(left, active...)
	}
	if len(rm) < n {
		sortForRemoval(left)
		rm = append(rm, left[:min(n-len(rm), len(left))]...)
	}
	return rm
}

// createPods creates n pods (with the given completion indexes for an
// Indexed Job) in batches of doubling size, stopping after a batch with a
// failure. It returns how many were created.
func (c *Controller) createPods(ctx context.Context, s *syncState, n int, indexes []int) (int, error) {
	job := s.job
	tmpl := job.Spec.Template.DeepCopy()
	if isIndexed(job) {
		addCompletionIndexEnv(tmpl)
	}
	if !containsString(tmpl.Finalizers, batchv1.JobTrackingFinalizer) {
		tmpl.Finalizers = append(tmpl.Finalizers, batchv1.JobTrackingFinalizer)
	}
	c.expectations.expect(s.key, n, 0, c.clock.Now())
	var created atomic.Int32
	var errs []error
	var mu sync.Mutex
	pos := 0
	for batch := min(n, slowStartInitialBatch); pos < n; batch = min(2*batch, n-pos) {
		var wg sync.WaitGroup
		failed := false
		for i := pos; i < pos+batch; i++ {
			ix := noIndex
			if indexes != nil {
				ix = indexes[i]
			}
			wg.Go(func() {
				err := c.createPod(ctx, job, tmpl, ix)
				if err == nil {
					created.Add(1)
					return
				}
				c.expectations.created(s.key)
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return
				}
				mu.Lock()
				errs = append(errs, err)
				failed = true
				mu.Unlock()
			})
		}
		wg.Wait()
		pos += batch
		if failed {
			// Do not expect what was never attempted.
			for range n - pos {
				c.expectations.created(s.key)
			}
			break
		}
	}
	return int(created.Load()), errors.Join(errs...)
}

func (c *Controller) createPod(ctx context.Context, job *batchv1.Job, tmpl *corev1.PodTemplateSpec, ix int) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    job.Name + "-",
			Namespace:       job.Namespace,
			Labels:          copyMap(tmpl.Labels),
			Annotations:     copyMap(tmpl.Annotations),
			Finalizers:      append([]string(nil), tmpl.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, jobKind)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if ix != noIndex {
		v := strconv.Itoa(ix)
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[batchv1.JobCompletionIndexAnnotation] = v
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[batchv1.JobCompletionIndexAnnotation] = v
		pod.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, ix)
		pod.GenerateName = indexedGenerateName(job.Name, ix)
	}
	got, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create pod: %w", err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", got.Name)
	return nil
}

// maxGenerateName is the longest generateName the API server keeps whole
// (it appends five random characters to at most 58).
const maxGenerateName = 58

// indexedGenerateName is "<job>-<index>-", with the Job name shortened to
// keep the index when it would be too long.
func indexedGenerateName(job string, ix int) string {
	suffix := fmt.Sprintf("-%d-", ix)
	if len(job)+len(suffix) > maxGenerateName {
		job = job[:maxGenerateName-len(suffix)]
	}
	return job + suffix
}

// addCompletionIndexEnv gives every container of an Indexed Job's pod the
// JOB_COMPLETION_INDEX variable, read from the pod's index annotation.
func addCompletionIndexEnv(t *corev1.PodTemplateSpec) {
	add := func(cs []corev1.Container) {
		for i := range cs {
			found := false
			for _, e := range cs[i].Env {
				if e.Name == "JOB_COMPLETION_INDEX" {
					found = true
					break
				}
			}
			if found {
				continue
			}
			cs[i].Env = append(cs[i].Env, corev1.EnvVar{
				Name: "JOB_COMPLETION_INDEX",
				ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
					FieldPath: fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation),
				}},
			})
		}
	}
	add(t.Spec.InitContainers)
	add(t.Spec.Containers)
}

// deleteActivePods deletes a finishing Job's active pods, leaving their
// finalizers for track to remove once they are counted. It returns how
// many ready pods and how many pods were deleted (a pod already gone
// counts as deleted).
func (c *Controller) deleteActivePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) (readyDeleted, deleted int32, err error) {
	var rd, d atomic.Int32
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			if err := c.deletePodCall(ctx, job, p); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			d.Add(1)
			if isReady(p) {
				rd.Add(1)
			}
		})
	}
	wg.Wait()
	return rd.Load(), d.Load(), errors.Join(errs...)
}

// deleteJobPods deletes pods the Job no longer wants (too many, or the Job
// is suspended). Their finalizers go first: such pods are not counted.
func (c *Controller) deleteJobPods(ctx context.Context, s *syncState, pods []*corev1.Pod) (readyDeleted, deleted int32, err error) {
	c.expectations.expect(s.key, 0, len(pods), c.clock.Now())
	var rd, d atomic.Int32
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			err := c.removeFinalizer(ctx, p)
			if err == nil {
				err = c.deletePodCall(ctx, s.job, p)
			}
			if err != nil {
				c.expectations.deleted(s.key)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			d.Add(1)
			if isReady(p) {
				rd.Add(1)
			}
		})
	}
	wg.Wait()
	return rd.Load(), d.Load(), errors.Join(errs...)
}

// deletePodCall deletes one pod of a Job; a pod already gone is not an
// error.
func (c *Controller) deletePodCall(ctx context.Context, job *batchv1.Job, p *corev1.Pod) error {
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
	return nil
}

// track records finished pods in the Job's status and removes their
// finalizers, in the order that counts each pod exactly once:
//
//  1. add newly finished pods to status.uncountedTerminatedPods (and the
//     interim FailureTarget or SuccessCriteriaMet condition); write status;
//  2. remove the finalizers of those pods;
//  3. move the pods whose finalizer is gone from the uncounted lists to
//     the counters, add Complete or Failed if the Job is done; write.
//
// It handles at most maxUncountedPods pods per sync.
func (c *Controller) track(ctx context.Context, s *syncState, needsFlush bool) error {
	job := s.job
	indexed := isIndexed(job)
	now := c.clock.Now()
	if indexed {
		sortByIndex(s.pods)
	}
	withFinalizer := sets.New[string]()
	for _, p := range s.pods {
		if hasTrackingFinalizer(p) && !s.finalizersPending.Has(string(p.UID)) {
			withFinalizer.Insert(string(p.UID))
		}
	}
	oldSucceeded, oldFailed := job.Status.Succeeded, job.Status.Failed
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	uncounted := job.Status.UncountedTerminatedPods
	var rmFinalizer []*corev1.Pod
	var newIndexes []int
	capped := false
	for _, p := range s.pods {
		uid := string(p.UID)
		if !hasTrackingFinalizer(p) || s.finalizersPending.Has(uid) {
			continue
		}
		failed := isFailed(p, job)
		if !canRemoveFinalizer(s, p, failed) {
			continue
		}
		rmFinalizer = append(rmFinalizer, p)
		if p.Status.Phase == corev1.PodSucceeded && !s.uncounted.failed.Has(uid) {
			if indexed {
				ix := validIndex(p, *job.Spec.Completions)
				if ix != noIndex && !s.prevIndexes.has(ix) {
					newIndexes = append(newIndexes, ix)
					needsFlush = true
				}
			} else if !s.uncounted.succeeded.Has(uid) {
				uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
				needsFlush = true
			}
		} else if failed || (s.finished != nil && s.finished.Type != batchv1.JobSuccessCriteriaMet) {
			// When the Job fails, every pod not succeeded is failed.
			validIx := !indexed || validIndex(p, *job.Spec.Completions) != noIndex
			if !s.uncounted.failed.Has(uid) && validIx && matchPodFailurePolicy(job.Spec.PodFailurePolicy, p).count {
				uncounted.Failed = append(uncounted.Failed, p.UID)
				needsFlush = true
			}
		}
		if len(newIndexes)+len(uncounted.Succeeded)+len(uncounted.Failed) >= maxUncountedPods {
			// The Job's status and pod updates bring it back for the rest.
			capped = true
			break
		}
	}
	if indexed {
		s.indexes = s.indexes.withIndexes(newIndexes)
		str := s.indexes.String()
		if str != job.Status.CompletedIndexes {
			needsFlush = true
		}
		job.Status.Succeeded = int32(s.indexes.total())
		job.Status.CompletedIndexes = str
	}
	if s.finished != nil && s.finished.Type == batchv1.JobFailureTarget {
		job.Status.Conditions = append(job.Status.Conditions, *s.finished)
		needsFlush = true
		s.finished = newCondition(batchv1.JobFailed, s.finished.Reason, s.finished.Message, now)
	}
	if s.finished != nil && s.finished.Type == batchv1.JobSuccessCriteriaMet {
		if findCondition(job.Status.Conditions, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue) == nil {
			job.Status.Conditions = append(job.Status.Conditions, *s.finished)
			needsFlush = true
		}
		s.finished = newCondition(batchv1.JobComplete, s.finished.Reason, s.finished.Message, now)
	}

	// Step 1: write the uncounted pods before touching their finalizers.
	if needsFlush {
		if err := c.updateStatus(ctx, s); err != nil {
			return fmt.Errorf("adding uncounted pods to status: %w", err)
		}
		c.backoff.store(s.key, s.backoff)
		needsFlush = false
	}
	// Step 2.
	var rmErr error
	if len(rmFinalizer) > 0 {
		var ok []bool
		ok, rmErr = c.removeFinalizers(ctx, s.key, rmFinalizer)
		for i, p := range rmFinalizer {
			if ok[i] {
				withFinalizer.Delete(string(p.UID))
			}
		}
	}
	// Step 3.
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	if rmErr != nil {
		if needsFlush {
			if err := c.updateStatus(ctx, s); err != nil {
				return fmt.Errorf("removing uncounted pods from status: %w", err)
			}
		}
		return rmErr
	}
	finished := !capped && c.enactFinished(s)
	if finished {
		needsFlush = true
	}
	if needsFlush {
		if err := c.updateStatus(ctx, s); err != nil {
			return fmt.Errorf("removing uncounted pods from status: %w", err)
		}
		if finished {
			c.recordFinished(s)
		}
	}
	if s.job.Status.Succeeded != oldSucceeded || s.job.Status.Failed != oldFailed {
		c.log.Debug("counted pods", "job", s.key, "succeeded", s.job.Status.Succeeded, "failed", s.job.Status.Failed)
	}
	return nil
}

// canRemoveFinalizer says whether a pod's outcome is final for the Job:
// the Job is going away or finishing, or the pod succeeded or failed.
func canRemoveFinalizer(s *syncState, p *corev1.Pod, failed bool) bool {
	return s.job.DeletionTimestamp != nil || s.finished != nil || p.Status.Phase == corev1.PodSucceeded || failed
}

// countUncounted moves the uncounted pods whose finalizer is gone (not in
// withFinalizer) to the counters. It reports whether the status changed.
func countUncounted(st *batchv1.JobStatus, withFinalizer sets.Set[string]) bool {
	u := st.UncountedTerminatedPods
	changed := false
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.Has(string(uid)) {
				out = append(out, uid)
			}
		}
		return out
	}
	if k := keep(u.Succeeded); len(k) != len(u.Succeeded) {
		st.Succeeded += int32(len(u.Succeeded) - len(k))
		u.Succeeded = k
		changed = true
	}
	if k := keep(u.Failed); len(k) != len(u.Failed) {
		st.Failed += int32(len(u.Failed) - len(k))
		u.Failed = k
		changed = true
	}
	return changed
}

// enactFinished adds the Complete or Failed condition once nothing is left
// to count and no pod is terminating. It reports whether it did.
func (c *Controller) enactFinished(s *syncState) bool {
	if s.finished == nil {
		return false
	}
	job := s.job
	if u := job.Status.UncountedTerminatedPods; len(u.Succeeded)+len(u.Failed) > 0 {
		return false
	}
	if s.terminating > 0 {
		return false
	}
	f := s.finished
	job.Status.Conditions, _ = ensureCondition(job.Status.Conditions, f.Type, f.Status, f.Reason, f.Message, c.clock.Now())
	if f.Type == batchv1.JobComplete {
		t := f.LastTransitionTime
		job.Status.CompletionTime = &t
	}
	return true
}

func (c *Controller) recordFinished(s *syncState) {
	job, f := s.job, s.finished
	if f.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			c.recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		c.log.Info("job completed", "job", s.key, "succeeded", job.Status.Succeeded)
		return
	}
	c.recorder.Event(job, corev1.EventTypeWarning, f.Reason, f.Message)
	c.log.Info("job failed", "job", s.key, "reason", f.Reason, "failed", job.Status.Failed)
}

// updateStatus writes the Job's status and keeps the new resourceVersion
// for the sync's next write.
func (c *Controller) updateStatus(ctx context.Context, s *syncState) error {
	got, err := c.client.BatchV1().Jobs(s.job.Namespace).UpdateStatus(ctx, s.job, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	if got != nil && got.ResourceVersion != "" {
		s.job.ResourceVersion = got.ResourceVersion
	}
	return nil
}

// removeFinalizers removes the tracking finalizer from pods; the i-th
// result says whether it is gone from the i-th pod (a pod already gone
// counts).
func (c *Controller) removeFinalizers(ctx context.Context, key string, pods []*corev1.Pod) ([]bool, error) {
	ok := make([]bool, len(pods))
	uids := make([]string, len(pods))
	for i, p := range pods {
		uids[i] = string(p.UID)
	}
	c.finalizers.expectRemoved(key, uids)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Go(func() {
			if err := c.removeFinalizer(ctx, p); err != nil {
				c.finalizers.removed(key, string(p.UID))
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			ok[i] = true
		})
	}
	wg.Wait()
	return ok, errors.Join(errs...)
}

// removeFinalizer patches the tracking finalizer out of a pod; a pod
// already gone is not an error.
func (c *Controller) removeFinalizer(ctx context.Context, p *corev1.Pod) error {
	if !hasTrackingFinalizer(p) {
		return nil
	}
	patch := []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["` + batchv1.JobTrackingFinalizer + `"]}}`)
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove tracking finalizer from pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// syncOrphanPod removes the tracking finalizer from a pod whose Job is
// gone or finished.
func (c *Controller) syncOrphanPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	p, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s: %w", key, err)
	}
	if ref := metav1.GetControllerOf(p); ref != nil {
		if ref.Kind != jobKind.Kind || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
			// Not ours to touch.
			return nil
		}
		if j := c.resolveControllerRef(ns, ref); j != nil {
			if m := j.Spec.ManagedBy; m != nil && *m != controllerName {
				return nil
			}
			if !isFinished(j) {
				return nil
			}
		}
	}
	return c.removeFinalizer(ctx, p)
}

// syncFinished deletes a finished Job once its ttlSecondsAfterFinished
// has passed, and otherwise returns when that will be.
func (c *Controller) syncFinished(ctx context.Context, job *batchv1.Job) (time.Duration, error) {
	if job.Spec.TTLSecondsAfterFinished == nil || job.DeletionTimestamp != nil {
		return 0, nil
	}
	left, ok := ttlLeft(job, c.clock.Now())
	if !ok {
		return 0, nil
	}
	if left > 0 {
		return left, nil
	}
	// The cache may be stale (the TTL may have changed): decide on the
	// Job as stored.
	fresh, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("job %s/%s: %w", job.Namespace, job.Name, err)
	}
	if fresh.UID != job.UID || fresh.DeletionTimestamp != nil || !isFinished(fresh) || fresh.Spec.TTLSecondsAfterFinished == nil {
		return 0, nil
	}
	if left, ok := ttlLeft(fresh, c.clock.Now()); !ok || left > 0 {
		return left, nil
	}
	policy := metav1.DeletePropagationForeground
	err = c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID, ResourceVersion: &fresh.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("delete job %s/%s after its TTL: %w", job.Namespace, job.Name, err)
	}
	c.log.Info("deleted finished job after its TTL", "job", job.Namespace+"/"+job.Name)
	return 0, nil
}

// ttlLeft returns how long a finished Job has until its TTL expires; ok is
// false when it has no finish time.
func ttlLeft(j *batchv1.Job, now time.Time) (time.Duration, bool) {
	var finished time.Time
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			finished = c.LastTransitionTime.Time
		}
	}
	if finished.IsZero() {
		return 0, false
	}
	expire := finished.Add(time.Duration(*j.Spec.TTLSecondsAfterFinished) * time.Second)
	return expire.Sub(now), true
}
