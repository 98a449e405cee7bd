package nodelifecycle

import (
	"fmt"
	"testing"
	"time"
)

func TestTaintQueue_TriesInOrderAtItsRate(t *testing.T) {
	q := &taintQueue{}
	q.setRate(1, t0) // one node a second
	for _, n := range []string{"a", "b", "c"} {
		q.add(n, t0)
	}
	if q.add("a", t0) {
		t.Error("a queued twice")
	}
	var tried []string
	fail := map[string]bool{"b": true} // b fails once
	work := func(at time.Duration) {
		q.try(t0.Add(at), func(n queuedNode) (bool, time.Duration) {
			tried = append(tried, fmt.Sprintf("%s@%v", n.name, at))
			if fail[n.name] {
				fail[n.name] = false
				return false, 1500 * time.Millisecond
			}
			return true, 0
		})
	}
	work(0)                      // a (the bucket starts full)
	work(500 * time.Millisecond) // nothing: no token
	work(time.Second)            // b, which fails: back in 1.5s
	work(2 * time.Second)        // c (b not due)
	if !q.remove("b") || q.remove("b") {
		t.Error("remove should report b queued once")
	}
	work(5 * time.Second) // nothing left
	want := "[a@0s b@1s c@2s]"
	if got := fmt.Sprint(tried); got != want {
		t.Errorf("tried %s, want %s", got, want)
	}
	if len(q.items) != 0 {
		t.Errorf("left in queue: %v", q.items)
	}
}
