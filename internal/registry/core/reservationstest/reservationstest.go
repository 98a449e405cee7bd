// Package reservationstest provides an in-memory core.Reservations and the
// conformance suite every implementation must pass, so that tests using
// the fake and the server's etcd implementation agree on the contract.
//
//	func TestEtcdReservations(t *testing.T) {
//		reservationstest.Run(t, func(t *testing.T) core.Reservations { return newEtcdReservations(t) })
//	}
package reservationstest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

// Memory is an in-memory core.Reservations, safe for concurrent use. The
// zero value is not ready: use NewMemory.
type Memory struct {
	mu     sync.Mutex        // guards claims
	claims map[string]string // key → owner
}

var _ core.Reservations = (*Memory)(nil)

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{claims: map[string]string{}} }

// Reserve implements core.Reservations.
func (m *Memory) Reserve(ctx context.Context, key, owner string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("reserve %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.claims[key]; ok {
		return o == owner, nil
	}
	m.claims[key] = owner
	return true, nil
}

// Release implements core.Reservations.
func (m *Memory) Release(ctx context.Context, key, owner string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claims[key] == owner {
		delete(m.claims, key)
	}
	return nil
}

// List implements core.Reservations.
func (m *Memory) List(ctx context.Context, prefix string) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, o := range m.claims {
		if strings.HasPrefix(k, prefix) {
			out[k] = o
		}
	}
	return out, nil
}

// Claims returns a copy of every claim, key to owner.
func (m *Memory) Claims() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.claims)
}

// Run checks that the Reservations newR returns follow the contract of
// core.Reservations. newR must return an empty store each time.
func Run(t *testing.T, newR func(t *testing.T) core.Reservations) {
	ctx := context.Background()
	const ip, ip2, port = core.ServiceIPPrefix + "10.43.0.10", core.ServiceIPPrefix + "10.43.0.11", core.ServiceNodePortPrefix + "30080"
	list := func(t *testing.T, r core.Reservations, prefix string) map[string]string {
		t.Helper()
		m, err := r.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		return m
	}
	reserve := func(t *testing.T, r core.Reservations, key, owner string) bool {
		t.Helper()
		ok, err := r.Reserve(ctx, key, owner)
		if err != nil {
			t.Fatalf("Reserve(%q, %q): %v", key, owner, err)
		}
		return ok
	}
	release := func(t *testing.T, r core.Reservations, key, owner string) {
		t.Helper()
		if err := r.Release(ctx, key, owner); err != nil {
			t.Fatalf("Release(%q, %q): %v", key, owner, err)
		}
	}

	t.Run("ReserveClaimsFreeKey", func(t *testing.T) {
		r := newR(t)
		if !reserve(t, r, ip, "a") {
			t.Fatal("a free key was refused")
		}
		if diff := cmp.Diff(map[string]string{ip: "a"}, list(t, r, core.ServiceIPPrefix)); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	})
	t.Run("ReserveIsIdempotentForOwner", func(t *testing.T) {
		r := newR(t)
		reserve(t, r, ip, "a")
		if !reserve(t, r, ip, "a") {
			t.Error("the owner's second Reserve was refused")
		}
	})
	t.Run("ReserveRefusesOtherOwner", func(t *testing.T) {
		r := newR(t)
		reserve(t, r, ip, "a")
		if reserve(t, r, ip, "b") {
			t.Error("a held key was given to another owner")
		}
		if got := list(t, r, core.ServiceIPPrefix)[ip]; got != "a" {
			t.Errorf("owner = %q, want a", got)
		}
	})
	t.Run("ReleaseFreesKey", func(t *testing.T) {
		r := newR(t)
		reserve(t, r, ip, "a")
		release(t, r, ip, "a")
		if m := list(t, r, core.ServiceIPPrefix); len(m) != 0 {
			t.Errorf("claims after release: %v", m)
		}
		if !reserve(t, r, ip, "b") {
			t.Error("a released key was refused")
		}
	})
	t.Run("ReleaseByOtherOwnerKeepsClaim", func(t *testing.T) {
		r := newR(t)
		reserve(t, r, ip, "a")
		release(t, r, ip, "b")
		if got := list(t, r, core.ServiceIPPrefix)[ip]; got != "a" {
			t.Errorf("owner = %q, want a", got)
		}
	})
	t.Run("ReleaseIsIdempotent", func(t *testing.T) {
		r := newR(t)
		release(t, r, ip, "a")
		reserve(t, r, ip, "a")
		release(t, r, ip, "a")
		release(t, r, ip, "a")
	})
	t.Run("ListFiltersByPrefix", func(t *testing.T) {
		r := newR(t)
		reserve(t, r, ip, "a")
		reserve(t, r, ip2, "b")
		reserve(t, r, port, "a")
		if diff := cmp.Diff(map[string]string{ip: "a", ip2: "b"}, list(t, r, core.ServiceIPPrefix)); diff != "" {
			t.Errorf("ips (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{port: "a"}, list(t, r, core.ServiceNodePortPrefix)); diff != "" {
			t.Errorf("ports (-want +got):\n%s", diff)
		}
	})
	t.Run("ListReturnsCallersMap", func(t *testing.T) {
		r := newR(t)
		reserve(t, r, ip, "a")
		list(t, r, core.ServiceIPPrefix)[ip2] = "x"
		if _, ok := list(t, r, core.ServiceIPPrefix)[ip2]; ok {
			t.Error("changing the returned map changed the store")
		}
	})
	t.Run("ConcurrentReserveHasOneWinner", func(t *testing.T) {
		r := newR(t)
		const n = 16
		var wg sync.WaitGroup
		won := make(chan string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("owner-%d", i)
				ok, err := r.Reserve(ctx, port, owner)
				if err != nil {
					t.Errorf("Reserve: %v", err)
				}
				if ok {
					won <- owner
				}
			}()
		}
		wg.Wait()
		close(won)
		var winners []string
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("winners = %v, want exactly one", winners)
		}
		if got := list(t, r, core.ServiceNodePortPrefix)[port]; got != winners[0] {
			t.Errorf("owner = %q, want the winner %q", got, winners[0])
		}
	})
}
