package kubelet

import (
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Upstream's restart and image pull backoff: 10 s, doubling to 5 min; an
// entry that has not failed for twice the maximum (10 min) starts over.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
)

// backoff tracks exponential delays per key (a container of a pod, or an
// image of a pod), the way the kubelet restarts crashing containers: the
// first failure is retried at once, and each later failure waits the
// current delay, counted from the failure, before the next try. It is safe
// for concurrent use.
//
// A key's life:
//
//	(none) ──Next──► 10s ──Next──► 20s ──► … ──► 5m ──Next──► 5m
//	   ▲                                             │
//	   └── Next for a failure 2×max (10 min) after ◄─┘
//	       the last one, or Forget
type backoff struct {
	clock          clock.PassiveClock
	initial, limit time.Duration
	// mu guards entries.
	mu      sync.Mutex
	entries map[string]*backoffEntry
}

type backoffEntry struct {
	delay time.Duration
	// last is when Next was last called for the key.
	last time.Time
}

func newBackoff(c clock.PassiveClock, initial, limit time.Duration) *backoff {
	return &backoff{clock: c, initial: initial, limit: limit, entries: map[string]*backoffEntry{}}
}

// Next records that key is being retried after a failure at failedAt, and
// grows its delay for the next failure.
func (b *backoff) Next(key string, failedAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	if e == nil || b.expiredLocked(e, failedAt) {
		e = &backoffEntry{delay: b.initial}
		b.entries[key] = e
	} else {
		e.delay = min(2*e.delay, b.limit)
	}
	e.last = b.clock.Now()
}

func (b *backoff) expiredLocked(e *backoffEntry, failedAt time.Time) bool {
	return failedAt.Sub(e.last) > 2*b.limit
}

// InBackoffSince reports whether a retry of key after a failure at
// failedAt must still wait, with the delay and when the wait ends.
func (b *backoff) InBackoffSince(key string, failedAt time.Time) (bool, time.Duration, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	if e == nil || b.expiredLocked(e, failedAt) {
		return false, 0, time.Time{}
	}
	end := failedAt.Add(e.delay)
	return b.clock.Now().Before(end), e.delay, end
}

// Forget drops key.
func (b *backoff) Forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// ForgetPrefix drops every key that starts with prefix (a pod's keys).
func (b *backoff) ForgetPrefix(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if strings.HasPrefix(k, prefix) {
			delete(b.entries, k)
		}
	}
}
