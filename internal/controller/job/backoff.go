package job

import (
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// backoffRecord is what the controller remembers of a Job's recent pod
// failures: how many pods failed since the last success and when the last
// of them did. Replacement pods wait base·2^(failures−1), capped, after
// the last failure.
type backoffRecord struct {
	failuresAfterLastSuccess int32
	lastFailure              time.Time
}

// remaining returns how long pod creation must still wait at now.
func (r backoffRecord) remaining(now time.Time, base, max time.Duration) time.Duration {
	if r.failuresAfterLastSuccess == 0 {
		return 0
	}
	d := base
	for i := int32(1); i < r.failuresAfterLastSuccess && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if elapsed := now.Sub(r.lastFailure); elapsed < d {
		return d - elapsed
	}
	return 0
}

// backoffStore holds a backoffRecord per Job key. It is safe for
// concurrent use. Records live in memory only: after a restart, a Job's
// next replacement pod starts at once, as upstream's.
type backoffStore struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string]backoffRecord
}

func newBackoffStore() *backoffStore { return &backoffStore{m: map[string]backoffRecord{}} }

// next returns key's record updated with pods that finished since it was
// stored (newly seen: not yet counted in the Job's status). It does not
// store the result; store does, once the status that counts them is
// written.
func (s *backoffStore) next(key string, succeeded, failed []*corev1.Pod, now time.Time) backoffRecord {
	s.mu.Lock()
	r := s.m[key]
	s.mu.Unlock()
	if len(succeeded) == 0 && len(failed) == 0 {
		return r
	}
	byFinish := func(pods []*corev1.Pod) []time.Time {
		out := make([]time.Time, len(pods))
		for i, p := range pods {
			out[i] = finishTime(p, now)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
		return out
	}
	fails := byFinish(failed)
	if len(succeeded) == 0 {
		r.failuresAfterLastSuccess += int32(len(fails))
		r.lastFailure = fails[len(fails)-1]
		return r
	}
	succ := byFinish(succeeded)
	lastSuccess := succ[len(succ)-1]
	r = backoffRecord{}
	for i := len(fails) - 1; i >= 0 && fails[i].After(lastSuccess); i-- {
		if r.failuresAfterLastSuccess == 0 {
			r.lastFailure = fails[i]
		}
		r.failuresAfterLastSuccess++
	}
	return r
}

// store saves r as key's record.
func (s *backoffStore) store(key string, r backoffRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.failuresAfterLastSuccess == 0 {
		delete(s.m, key)
		return
	}
	s.m[key] = r
}

// forget drops key's record.
func (s *backoffStore) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// finishTime is when a finished pod finished: the latest termination of
// its containers, else the time it was marked for deletion or its Ready
// condition last changed, else now.
func finishTime(p *corev1.Pod, now time.Time) time.Time {
	var t time.Time
	for _, lists := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range lists {
			if term := cs.State.Terminated; term != nil && term.FinishedAt.After(t) {
				t = term.FinishedAt.Time
			}
		}
	}
	if !t.IsZero() {
		return t
	}
	if p.DeletionTimestamp != nil {
		return p.DeletionTimestamp.Time
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return now
}
