package nodelifecycle

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// zoneState is a zone's health, from the Ready conditions of its nodes.
//
//	initial ──► normal ◄──────────► partialDisruption
//	               ▲  ╲                 ╱
//	               │   ╲               ╱
//	               ▼    ▼             ▼
//	             fullDisruption (no node Ready)
//
// The state sets the rate at which the zone's unhealthy nodes get
// NoExecute taints: the normal rate, or in a partial disruption the
// secondary rate (large zones) or none (small ones), and in a full
// disruption the normal rate again (the zone is gone; its pods should
// move) — unless every zone is fully disrupted, which looks like the
// control plane lost the network rather than the nodes: then no node is
// tainted and existing NoExecute taints are removed.
type zoneState string

const (
	stateInitial           zoneState = "Initial"
	stateNormal            zoneState = "Normal"
	statePartialDisruption zoneState = "PartialDisruption"
	stateFullDisruption    zoneState = "FullDisruption"
)

// zoneKey identifies a node's failure domain by its region and zone
// labels; nodes without either share the zone "".
func zoneKey(n *corev1.Node) string {
	region, zone := n.Labels[corev1.LabelTopologyRegion], n.Labels[corev1.LabelTopologyZone]
	if region == "" && zone == "" {
		return ""
	}
	return region + "/" + zone
}

// excludedFromDisruption reports whether a node is left out of zone
// health (upstream's node.kubernetes.io/exclude-disruption label).
func excludedFromDisruption(n *corev1.Node) bool {
	_, ok := n.Labels["node.kubernetes.io/exclude-disruption"]
	return ok
}

// computeZoneState classifies a zone from its nodes' Ready statuses (nil:
// no Ready condition).
func computeZoneState(ready []*corev1.NodeCondition, threshold float64) (notReady int, s zoneState) {
	readyN := 0
	for _, c := range ready {
		if c != nil && c.Status == corev1.ConditionTrue {
			readyN++
		} else {
			notReady++
		}
	}
	switch {
	case readyN == 0 && notReady > 0:
		return notReady, stateFullDisruption
	case notReady > 2 && float64(notReady)/float64(notReady+readyN) >= threshold:
		return notReady, statePartialDisruption
	default:
		return notReady, stateNormal
	}
}

// bucket is a token bucket of capacity one, filled at rate tokens per
// second, read against an injected clock. A rate of zero never admits.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	return &bucket{rate: rate, tokens: 1, last: now}
}

func (b *bucket) tryAccept(now time.Time) bool {
	if b.rate <= 0 {
		return false
	}
	if now.After(b.last) {
		b.tokens = min(1, b.tokens+b.rate*now.Sub(b.last).Seconds())
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// taintQueue holds, for one zone, the nodes waiting for a NoExecute taint,
// oldest first, and the bucket that paces them.
type taintQueue struct {
	bucket *bucket
	items  []queuedNode
}

type queuedNode struct {
	name string
	// at is when the node may be tried (again).
	at time.Time
}

// add queues a node unless it is queued; it reports whether it was added.
func (q *taintQueue) add(name string, now time.Time) bool {
	if slices.ContainsFunc(q.items, func(n queuedNode) bool { return n.name == name }) {
		return false
	}
	q.items = append(q.items, queuedNode{name: name, at: now})
	return true
}

// remove drops a node; it reports whether it was queued.
func (q *taintQueue) remove(name string) bool {
	n := len(q.items)
	q.items = slices.DeleteFunc(q.items, func(n queuedNode) bool { return n.name == name })
	return len(q.items) != n
}

// setRate swaps the bucket for one of a new rate (a full one, as
// upstream's SwapLimiter does).
func (q *taintQueue) setRate(rate float64, now time.Time) {
	if q.bucket != nil && q.bucket.rate == rate {
		return
	}
	q.bucket = newBucket(rate, now)
}

// try works the queue in order while the bucket admits: fn taints a node
// and reports whether it is done or should be retried after a while.
func (q *taintQueue) try(now time.Time, fn func(n queuedNode) (done bool, retryAfter time.Duration)) {
	var keep []queuedNode
	for i, n := range q.items {
		if n.at.After(now) {
			keep = append(keep, n)
			continue
		}
		if !q.bucket.tryAccept(now) {
			keep = append(keep, q.items[i:]...)
			break
		}
		if done, retry := fn(n); !done {
			n.at = now.Add(retry)
			keep = append(keep, n)
		}
	}
	q.items = keep
}
