package replicaset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationsTTL is how long the controller waits for the cache to show
// its own writes before it stops trusting its expectations.
const expectationsTTL = 5 * time.Minute

// expectations records, per ReplicaSet key, the pod creations and
// deletions the controller has asked for and not yet seen in its cache.
// Its methods are safe for concurrent use.
type expectations struct {
	clock clock.PassiveClock

	// mu guards byKey.
	mu    sync.Mutex
	byKey map[string]*expectation
}

type expectation struct {
	adds int
	dels map[types.UID]bool
	at   time.Time
}

func newExpectations(c clock.PassiveClock) *expectations {
	return &expectations{clock: c, byKey: map[string]*expectation{}}
}

// satisfied reports whether the controller may create or delete pods for
// key: nothing is pending, or the pending record has expired.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.byKey[key]
	if !ok {
		return true
	}
	if x.adds <= 0 && len(x.dels) == 0 {
		return true
	}
	return e.clock.Since(x.at) > expectationsTTL
}

// expect replaces key's record with adds creations and the deletion of
// the pods with the given UIDs.
func (e *expectations) expect(key string, adds int, dels []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{adds: adds, dels: make(map[types.UID]bool, len(dels)), at: e.clock.Now()}
	for _, uid := range dels {
		x.dels[uid] = true
	}
	e.byKey[key] = x
}

// created notes that one expected creation happened (or will not happen).
func (e *expectations) created(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok && x.adds > 0 {
		x.adds--
	}
}

// deleted notes that the pod with uid is gone or terminating (or will not
// be deleted); a UID not expected is ignored, so a pod counts once.
func (e *expectations) deleted(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.byKey[key]; ok {
		delete(x.dels, uid)
	}
}

// forget drops key's record.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}
