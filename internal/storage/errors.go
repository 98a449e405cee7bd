package storage

import (
	"errors"
	"fmt"
)

// The classes of storage failure. Every error the package returns for one of
// these conditions matches it with errors.Is; the API server maps them to
// HTTP statuses (404, 409, 409, 410, 504).
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create found the key already present.
	ErrExists = errors.New("already exists")
	// ErrConflict: a write's expected resourceVersion (or precondition)
	// no longer holds.
	ErrConflict = errors.New("conflict")
	// ErrExpired: the requested resourceVersion is older than the history
	// kept (compacted, or outside the watch cache's window).
	ErrExpired = errors.New("resource version expired")
	// ErrTooLargeResourceVersion: a request asked for a resourceVersion
	// the store has not reached within the wait allowed.
	ErrTooLargeResourceVersion = errors.New("too large resource version")
)

// Error carries the key (and, for expiry, the versions) of a failed
// operation; Unwrap returns its class.
type Error struct {
	Class error
	Key   string
	// Requested and Current are resource versions, set for ErrExpired and
	// ErrTooLargeResourceVersion.
	Requested, Current int64
	// Cause, when set, is the underlying error (for example from etcd).
	Cause error
}

func (e *Error) Error() string {
	switch e.Class {
	case ErrExpired:
		return fmt.Sprintf("too old resource version: %d (%d)", e.Requested, e.Current)
	case ErrTooLargeResourceVersion:
		return fmt.Sprintf("too large resource version: %d, current: %d", e.Requested, e.Current)
	}
	if e.Cause != nil {
		return fmt.Sprintf("%s: %v: %v", e.Key, e.Class, e.Cause)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Class)
}

func (e *Error) Unwrap() error { return e.Class }
