package cgroups

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWatch_SyntheticV2Files(t *testing.T) {
	m, k := newFakeManager(t, synthHosts["v2"](), Config{})
	c, err := m.Create("ctr")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Kind != EventEmpty {
		t.Fatalf("first event %v, want the current state (empty)", e)
	}
	if err := c.AddProc(77); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Kind != EventPopulated {
		t.Fatalf("event %v, want populated", e)
	}
	events := filepath.Join(k.root, "unified/skiff/ctr/memory.events")
	if err := os.WriteFile(events, []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Event{{Kind: EventOOM, Count: 1}, {Kind: EventOOMKill, Count: 1}}, []Event{next(t, ch), next(t, ch)}); diff != "" {
		t.Errorf("OOM events (-want +got):\n%s", diff)
	}
	if err := c.Kill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Kind != EventEmpty {
		t.Fatalf("event %v, want empty", e)
	}
	if err := c.Remove(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Removal ends the watch.
	for e := range ch {
		t.Errorf("event after removal: %v", e)
	}
}

func TestWatch_StopsWhenContextEnds(t *testing.T) {
	m, _ := newFakeManager(t, synthHosts["v2"](), Config{})
	c, err := m.Create("ctr")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := c.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	n := 0
	for range ch {
		n++
	}
	if n > 1 {
		t.Errorf("%d events after cancel", n)
	}
	t.Run("missing_cgroup", func(t *testing.T) {
		gone, err := m.Create("gone")
		if err != nil {
			t.Fatal(err)
		}
		if err := gone.Remove(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := gone.Watch(t.Context()); !errors.Is(err, ErrNotExist) {
			t.Errorf("Watch of removed cgroup: %v, want ErrNotExist", err)
		}
	})
}
