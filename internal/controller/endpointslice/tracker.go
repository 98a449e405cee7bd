package endpointslice

import (
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// deleted is the generation recorded for a slice we deleted.
const deleted = -1

// tracker remembers, per Service key, the generation each slice we wrote
// must reach in the cache (or that we deleted it). It is safe for
// concurrent use.
type tracker struct {
	// mu guards gens.
	mu   sync.Mutex
	gens map[string]map[types.UID]int64
}

func newTracker() *tracker { return &tracker{gens: map[string]map[types.UID]int64{}} }

// wrote records a slice as the API server returned it from a create or
// update.
func (t *tracker) wrote(svcKey string, s *discoveryv1.EndpointSlice) {
	t.set(svcKey, s.UID, s.Generation)
}

// deletedSlice records that we deleted the slice with uid.
func (t *tracker) deletedSlice(svcKey string, uid types.UID) {
	t.set(svcKey, uid, deleted)
}

func (t *tracker) set(svcKey string, uid types.UID, gen int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.gens[svcKey]
	if m == nil {
		m = map[types.UID]int64{}
		t.gens[svcKey] = m
	}
	m[uid] = gen
}

// stale reports whether cached, the Service's slices in the cache, lag
// behind our writes. Deletions the cache has caught up with are forgotten.
func (t *tracker) stale(svcKey string, cached []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.gens[svcKey]
	if len(m) == 0 {
		return false
	}
	byUID := make(map[types.UID]*discoveryv1.EndpointSlice, len(cached))
	for _, s := range cached {
		byUID[s.UID] = s
	}
	stale := false
	for uid, gen := range m {
		s, ok := byUID[uid]
		switch {
		case gen == deleted && ok:
			stale = true
		case gen == deleted:
			delete(m, uid)
		case !ok || s.Generation < gen:
			stale = true
		}
	}
	return stale
}

// echo reports whether s, seen in an informer event, is just our own
// write coming back.
func (t *tracker) echo(svcKey string, s *discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	gen, ok := t.gens[svcKey][s.UID]
	return ok && gen != deleted && s.Generation <= gen
}

// gone handles a slice's deletion event: it reports whether we deleted it
// ourselves, and stops tracking it either way.
func (t *tracker) gone(svcKey string, uid types.UID) (ours bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.gens[svcKey]
	gen, ok := m[uid]
	delete(m, uid)
	return ok && gen == deleted
}
