package daemonset

import (
	"sync"
	"time"
)

// expectationsTimeout bounds how long a sync waits for the informer to
// report creations and deletions it issued: after that, the cache is
// trusted again (a watch event may have been lost).
const expectationsTimeout = 5 * time.Minute

// expectations counts, per DaemonSet key, the pod creations and deletions
// the controller issued and the informer has not yet reported. A sync
// that finds them outstanding must not create or delete pods, because its
// view of the pods is stale. It is safe for concurrent use.
type expectations struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	add, del int
	at       time.Time
}

func newExpectations() *expectations {
	return &expectations{m: map[string]*expectation{}}
}

// satisfied reports whether nothing is outstanding for key, or what is has
// been outstanding longer than expectationsTimeout.
func (e *expectations) satisfied(key string, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	return (x.add <= 0 && x.del <= 0) || now.Sub(x.at) > expectationsTimeout
}

// expect records add creations and del deletions about to be issued.
func (e *expectations) expect(key string, add, del int, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || (x.add <= 0 && x.del <= 0) {
		x = &expectation{}
		e.m[key] = x
	}
	x.add += add
	x.del += del
	x.at = now
}

// created records that a creation was observed, or will never be.
func (e *expectations) created(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add--
	}
}

// deleted records that a deletion was observed, or will never be.
func (e *expectations) deleted(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.del--
	}
}

// forget drops everything recorded for key.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
