package kubelet

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podWorker drives one pod, one sync at a time. A pod's life on this
// node, as its worker sees it:
//
//	     ┌─────────────── sync ◄── API update, runtime event,
//	     │   admit, sandbox, pull,   probe result, timer
//	     │   start, restart, status
//	     │
//	     │ deletionTimestamp, eviction, activeDeadlineSeconds,
//	     │ rejection, or every container done for good
//	     ▼
//	terminating: preStop, SIGTERM, grace period, SIGKILL
//	     ▼
//	terminated: sandbox stopped; network, volumes, cgroup released;
//	     │      final status written (and, when being deleted,
//	     │      the pod deleted with grace 0)
//	     │ the pod is gone from the API
//	     ▼
//	removed: sandboxes, containers and logs removed; worker exits
//
// Every transition is made in sync (sync.go), from what the API and the
// runtime say at that moment, so a kubelet that restarts picks each pod
// up where it was.
type podWorker struct {
	uid types.UID
	// wake has room for one pending sync; done is closed when the worker
	// goroutine exits.
	wake chan struct{}
	done chan struct{}

	// The fields below belong to the worker goroutine.

	// admitted: the pod passed admission (or was already running).
	admitted bool
	// terminal, once set, is why the kubelet ended the pod.
	terminal *terminalStatus
	// finished: the pod's containers are all done for good (its phase is
	// Succeeded or Failed), whatever the API says yet.
	finished bool
	// waiting says why containers are not running, from the last sync.
	waiting map[string]waitState
	// ips are the pod IPs of each sandbox the network set up.
	ips map[string][]string
	// startTime is when the kubelet first saw the pod.
	startTime *metav1.Time
	// released: sandbox stopped and network, volumes and cgroup released.
	released bool
	// lastPod is the pod as of the last sync, for a pod gone from the API.
	lastPod *corev1.Pod
	// volumeFailures counts volume setup failures in a row.
	volumeFailures int
	// sandboxFailed is when sandbox creation last failed.
	sandboxFailed time.Time
	// pullFailed is, per image, when its pull last failed and why.
	pullFailed map[string]pullFailure
	// reportPending, during a sync, writes the pod's status before a slow
	// step (an image pull).
	reportPending func()

	// timerMu guards timerAt, the earliest pending wake-up, and
	// interrupt, which cancels the sync in progress when it works towards
	// running the pod (pulling, starting) and the pod must stop instead.
	timerMu   sync.Mutex
	timerAt   time.Time
	interrupt context.CancelFunc
}

// interruptible returns a context for work towards running the pod,
// which interruptSync cancels.
func (w *podWorker) interruptible(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	w.timerMu.Lock()
	w.interrupt = cancel
	w.timerMu.Unlock()
	return ctx, func() {
		w.timerMu.Lock()
		w.interrupt = nil
		w.timerMu.Unlock()
		cancel()
	}
}

// interruptSync cancels the worker's work towards running its pod, if
// any is in progress.
func (k *Kubelet) interruptSync(uid types.UID) {
	k.mu.Lock()
	w := k.workers[uid]
	k.mu.Unlock()
	if w == nil {
		return
	}
	w.timerMu.Lock()
	defer w.timerMu.Unlock()
	if w.interrupt != nil {
		w.interrupt()
	}
}

// waitState is why a container is not running.
type waitState struct {
	reason, message string
}

// terminalStatus is why the kubelet ended a pod itself.
type terminalStatus struct {
	reason, message string
	// disruption adds the DisruptionTarget condition (evictions).
	disruption bool
	// grace, when set, overrides the termination grace period.
	grace *int64
	// rejected: admission refused the pod; it never ran here.
	rejected bool
}

func newPodWorker(uid types.UID) *podWorker {
	return &podWorker{
		uid:        uid,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		waiting:    map[string]waitState{},
		ips:        map[string][]string{},
		pullFailed: map[string]pullFailure{},
	}
}

// pullFailure is a failed image pull.
type pullFailure struct {
	at  time.Time
	err string
}

func (w *podWorker) sandboxFailedAt() time.Time    { return w.sandboxFailed }
func (w *podWorker) setSandboxFailure(t time.Time) { w.sandboxFailed = t }

// enqueue asks for a sync of the pod with this UID, starting its worker
// when it has none.
func (k *Kubelet) enqueue(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ctx == nil || k.ctx.Err() != nil {
		return
	}
	w := k.workers[uid]
	if w == nil {
		w = newPodWorker(uid)
		k.workers[uid] = w
		go k.runWorker(k.ctx, w)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (k *Kubelet) runWorker(ctx context.Context, w *podWorker) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		start := k.clock.Now()
		finished := k.sync(ctx, w)
		k.metrics.syncDuration.Observe(k.clock.Since(start).Seconds())
		if !finished {
			continue
		}
		k.mu.Lock()
		if len(w.wake) == 0 {
			delete(k.workers, w.uid)
			k.mu.Unlock()
			return
		}
		k.mu.Unlock()
	}
}

// wakeAt schedules a sync of w's pod at t (or soon after).
func (k *Kubelet) wakeAt(w *podWorker, t time.Time) {
	w.timerMu.Lock()
	if !w.timerAt.IsZero() && !t.Before(w.timerAt) {
		w.timerMu.Unlock()
		return
	}
	w.timerAt = t
	w.timerMu.Unlock()
	k.mu.Lock()
	ctx := k.ctx
	k.mu.Unlock()
	timer := k.clock.NewTimer(max(t.Sub(k.clock.Now()), 0))
	go func() {
		select {
		case <-timer.C():
		case <-ctx.Done():
			timer.Stop()
			return
		}
		w.timerMu.Lock()
		if w.timerAt.Equal(t) {
			w.timerAt = time.Time{}
		}
		w.timerMu.Unlock()
		k.enqueue(w.uid)
	}()
}

// wakeAfter schedules a sync of w's pod after d.
func (k *Kubelet) wakeAfter(w *podWorker, d time.Duration) { k.wakeAt(w, k.clock.Now().Add(d)) }
