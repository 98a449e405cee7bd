package framework

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/util/sets"
)

// ErrNotFound is returned by CycleState.Read for a key nobody wrote.
var ErrNotFound = errors.New("not found")

// StateKey names a plugin's data in a CycleState.
type StateKey string

// StateData is a plugin's per-cycle data.
type StateData interface {
	// Clone returns a copy that preemption may change without touching
	// the original; data that is never changed may return itself.
	Clone() StateData
}

// CycleState holds plugins' data for one scheduling cycle of one pod.
//
// It has no lock: writes happen only in the serial extension points
// (PreFilter, PreScore, Reserve, and PreFilterExtensions on a clone the
// caller owns), reads in the parallel ones (Filter, Score). The framework
// starts the parallel phases after the serial ones have returned, which
// orders the writes before the reads.
type CycleState struct {
	data map[StateKey]StateData
	// skipFilter and skipScore are the plugins that returned Skip from
	// PreFilter and PreScore.
	skipFilter sets.Set[string]
	skipScore  sets.Set[string]
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState {
	return &CycleState{data: map[StateKey]StateData{}}
}

// Write stores data under key.
func (c *CycleState) Write(key StateKey, data StateData) { c.data[key] = data }

// Read returns the data under key, or an error wrapping ErrNotFound.
func (c *CycleState) Read(key StateKey) (StateData, error) {
	if d, ok := c.data[key]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("cycle state %q: %w", key, ErrNotFound)
}

// Clone returns a deep copy (each StateData cloned).
func (c *CycleState) Clone() *CycleState {
	if c == nil {
		return nil
	}
	n := &CycleState{data: make(map[StateKey]StateData, len(c.data)), skipFilter: c.skipFilter, skipScore: c.skipScore}
	for k, v := range c.data {
		n.data[k] = v.Clone()
	}
	return n
}

// ReadState reads key as a T; a missing key or a different type is an
// error.
func ReadState[T StateData](c *CycleState, key StateKey) (T, error) {
	var zero T
	d, err := c.Read(key)
	if err != nil {
		return zero, err
	}
	t, ok := d.(T)
	if !ok {
		return zero, fmt.Errorf("cycle state %q holds %T, not %T", key, d, zero)
	}
	return t, nil
}
