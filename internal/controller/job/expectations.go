package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
)

// expectationsTimeout bounds how long a sync waits for the informer to
// report creations and deletions it issued: after that, the cache is
// trusted again (a watch event may have been lost).
const expectationsTimeout = 5 * time.Minute

// expectations counts, per Job key, the pod creations and deletions the
// controller issued and the informer has not yet reported. A sync that
// finds them outstanding must not create or delete pods, because its view
// of the pods is stale. It is safe for concurrent use.
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

// finalizerExpectations remembers, per Job key, the pods whose tracking
// finalizer the controller removed and the informer still shows: a sync
// must not count them again. It is safe for concurrent use.
type finalizerExpectations struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string]sets.Set[string]
}

func newFinalizerExpectations() *finalizerExpectations {
	return &finalizerExpectations{m: map[string]sets.Set[string]{}}
}

// expectRemoved records that the finalizers of the pods with these UIDs
// are being removed.
func (f *finalizerExpectations) expectRemoved(key string, uids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[key]
	if !ok {
		s = sets.New[string]()
		f.m[key] = s
	}
	s.Insert(uids...)
}

// removed records that the informer showed the pod without its finalizer
// (or gone), or that the removal failed.
func (f *finalizerExpectations) removed(key, uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.m[key]; ok {
		s.Delete(uid)
		if s.Len() == 0 {
			delete(f.m, key)
		}
	}
}

// pending returns a copy of the UIDs still expected for key; the caller
// owns it.
func (f *finalizerExpectations) pending(key string) sets.Set[string] {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[key].Clone()
}

// forget drops everything recorded for key.
func (f *finalizerExpectations) forget(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, key)
}
