package container

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAcquireStart_QueuesBeyondTheSlotsAndHonoursCancel(t *testing.T) {
	r := &Runtime{starts: make(chan struct{}, 1)}
	release, err := r.acquireStart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The only slot is taken: a second start waits, and gives up with
	// its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.acquireStart(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second start while the slot is taken: %v, want deadline exceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		rel, err := r.acquireStart(context.Background())
		if err == nil {
			rel()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("start after the slot was given back: %v", err)
	}
}
