// Package queue is the scheduler's queue of pods waiting for a node. It
// holds each pending pod in exactly one of three places:
//
//	          Add ─────────────► activeQ ──── Pop ───► scheduling cycle
//	                                ▲  ▲                 │      │
//	backoff over (FlushBackoff) ────┘  │                 │      │ fits nowhere
//	                                   │  event / 5 min  │      ▼
//	backoffQ ◄── error, or an event ───┼──────────── unschedulable pods
//	         during the pod's cycle    │
//	                                   └── gates removed (gated pods
//	                                       wait in unschedulable)
//
// activeQ is ordered by priority, then by the time the pod entered the
// queue. backoffQ holds pods until their backoff (1 s doubling to 10 s
// per attempt) is over. Unschedulable pods wait for a cluster event that
// one of the plugins that rejected them registered for (a node added, a
// pod deleted, ...); after 5 minutes they are retried regardless.
//
// The queue also remembers the pods preemption nominated to nodes (the
// Nominator), which the filters count as already there.
package queue

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// ErrClosed is returned by Pop once the queue is closed.
var ErrClosed = errors.New("scheduling queue closed")

// QueuedPodInfo is a pod in the queue with its scheduling history.
type QueuedPodInfo struct {
	*framework.PodInfo
	// Timestamp is when the pod last entered the queue.
	Timestamp time.Time
	// InitialAttemptTimestamp is when the pod was first popped.
	InitialAttemptTimestamp time.Time
	// Attempts counts scheduling cycles.
	Attempts int
	// UnschedulablePlugins rejected the pod in its last cycle; events
	// they registered for retry it. Empty means any event does.
	UnschedulablePlugins sets.Set[string]
	// Gated: the pod has scheduling gates and is not scheduled.
	Gated bool
}

// Config configures a Queue. The zero value works: a real clock,
// upstream's backoffs, no plugin events (any event retries any pod).
type Config struct {
	Clock clock.WithTicker
	// InitialBackoff is the backoff after the first failure; 0 means 1 s.
	InitialBackoff time.Duration
	// MaxBackoff caps the doubling; 0 means 10 s.
	MaxBackoff time.Duration
	// MaxInUnschedulable is how long a pod waits for an event before it
	// is retried anyway; 0 means 5 minutes.
	MaxInUnschedulable time.Duration
	// PluginEvents are the events each plugin registered for
	// (Framework.EventsToRegister).
	PluginEvents map[string][]framework.ClusterEvent
	Logger       *slog.Logger
}

func (c *Config) validate() error {
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.MaxInUnschedulable == 0 {
		c.MaxInUnschedulable = 5 * time.Minute
	}
	if c.InitialBackoff < 0 || c.MaxBackoff < c.InitialBackoff || c.MaxInUnschedulable < 0 {
		return errors.New("queue: backoffs must be positive and the maximum at least the initial one")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Queue is the scheduling queue. It is safe for concurrent use.
type Queue struct {
	cfg Config

	mu   sync.Mutex
	cond *sync.Cond // signals activeQ additions and Close; uses mu
	// The fields below are guarded by mu.
	active        *podHeap
	backoff       *podHeap
	unschedulable map[types.UID]*QueuedPodInfo
	// inFlight are the pods popped and not yet Done; updated records
	// those that changed meanwhile.
	inFlight map[types.UID]bool
	// schedulingCycle counts Pops; moveRequestCycle is the cycle of the
	// last event that moved pods. A pod that fails in a cycle at or
	// before moveRequestCycle may have missed the event, so it goes to
	// backoffQ instead of waiting for another.
	schedulingCycle  int64
	moveRequestCycle int64
	closed           bool

	nominator *nominator
}

// New returns an empty queue.
func New(cfg Config) (*Queue, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := &Queue{
		cfg:           cfg,
		unschedulable: map[types.UID]*QueuedPodInfo{},
		inFlight:      map[types.UID]bool{},
		nominator:     newNominator(),
	}
	q.cond = sync.NewCond(&q.mu)
	q.active = newPodHeap(func(a, b *QueuedPodInfo) bool {
		pa, pb := framework.PodPriority(a.Pod), framework.PodPriority(b.Pod)
		return pa > pb || (pa == pb && a.Timestamp.Before(b.Timestamp))
	})
	q.backoff = newPodHeap(func(a, b *QueuedPodInfo) bool {
		return q.backoffExpiry(a).Before(q.backoffExpiry(b))
	})
	return q, nil
}

// backoffExpiry is when a pod's backoff ends: InitialBackoff doubled per
// attempt after the first, capped at MaxBackoff, from its Timestamp.
func (q *Queue) backoffExpiry(p *QueuedPodInfo) time.Time {
	d := q.cfg.InitialBackoff
	for i := 1; i < p.Attempts && d < q.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return p.Timestamp.Add(min(d, q.cfg.MaxBackoff))
}

func (q *Queue) backingOffLocked(p *QueuedPodInfo) bool {
	return p.Attempts > 0 && q.backoffExpiry(p).After(q.cfg.Clock.Now())
}

func (q *Queue) newQueued(pod *v1.Pod) (*QueuedPodInfo, error) {
	pi, err := framework.NewPodInfo(pod)
	if err != nil {
		return nil, err
	}
	return &QueuedPodInfo{PodInfo: pi, Timestamp: q.cfg.Clock.Now(), Gated: len(pod.Spec.SchedulingGates) > 0}, nil
}

// Add queues a new pending pod: in activeQ, or with the unschedulable
// pods while it has scheduling gates. It fails only on a pod whose
// affinity does not parse.
func (q *Queue) Add(pod *v1.Pod) error {
	qp, err := q.newQueued(pod)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nominator.update(nil, qp.PodInfo)
	if q.presentLocked(pod.UID) {
		q.updateLocked(pod, qp)
		return nil
	}
	if qp.Gated {
		q.unschedulable[pod.UID] = qp
		return nil
	}
	q.active.push(qp)
	q.cond.Broadcast()
	return nil
}

func (q *Queue) presentLocked(uid types.UID) bool {
	if _, ok := q.active.get(uid); ok {
		return true
	}
	if _, ok := q.backoff.get(uid); ok {
		return true
	}
	_, ok := q.unschedulable[uid]
	return ok
}

// Update records a pending pod's new object. A pod waiting as
// unschedulable is retried if its spec or labels changed (not for a
// status change alone, such as the scheduler's own condition); a pod in a
// scheduling cycle is retried after it, if that fails; a pod the queue
// does not have is added.
func (q *Queue) Update(old, pod *v1.Pod) error {
	qp, err := q.newQueued(pod)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nominator.update(old, qp.PodInfo)
	if _, ok := q.inFlight[pod.UID]; ok {
		if old == nil || specChanged(old, pod) {
			q.inFlight[pod.UID] = true
		}
		return nil
	}
	if !q.presentLocked(pod.UID) {
		if qp.Gated {
			q.unschedulable[pod.UID] = qp
			return nil
		}
		q.active.push(qp)
		q.cond.Broadcast()
		return nil
	}
	q.updateLocked(pod, qp)
	return nil
}

// updateLocked replaces the object of a queued pod, keeping its history,
// and retries it if it was waiting and has changed.
func (q *Queue) updateLocked(pod *v1.Pod, fresh *QueuedPodInfo) {
	uid := pod.UID
	if p, ok := q.active.get(uid); ok {
		q.active.push(withPod(p, fresh))
		return
	}
	if p, ok := q.backoff.get(uid); ok {
		q.backoff.push(withPod(p, fresh))
		return
	}
	p := q.unschedulable[uid]
	changed := specChanged(p.Pod, pod)
	np := withPod(p, fresh)
	if p.Gated && !np.Gated || !p.Gated && changed {
		delete(q.unschedulable, uid)
		if q.backingOffLocked(np) {
			q.backoff.push(np)
		} else {
			q.active.push(np)
			q.cond.Broadcast()
		}
		return
	}
	q.unschedulable[uid] = np
}

func withPod(p, fresh *QueuedPodInfo) *QueuedPodInfo {
	c := *p
	c.PodInfo = fresh.PodInfo
	c.Gated = fresh.Gated
	return &c
}

// specChanged reports whether anything but status and bookkeeping
// metadata changed.
func specChanged(old, pod *v1.Pod) bool {
	if !reflect.DeepEqual(old.Labels, pod.Labels) || !reflect.DeepEqual(old.Annotations, pod.Annotations) {
		return true
	}
	return !reflect.DeepEqual(old.Spec, pod.Spec)
}

// Delete removes a pod that was deleted or bound.
func (q *Queue) Delete(pod *v1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nominator.delete(pod.UID)
	q.active.remove(pod.UID)
	q.backoff.remove(pod.UID)
	delete(q.unschedulable, pod.UID)
}

// Pop waits for a pod in activeQ and returns it, counting an attempt and
// a scheduling cycle. The caller must call Done with the pod's UID when
// its cycle ends. It returns ErrClosed once the queue is closed, or
// ctx's error.
func (q *Queue) Pop(ctx context.Context) (*QueuedPodInfo, error) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.active.Len() == 0 {
		if q.closed {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q.cond.Wait()
	}
	p := q.active.pop()
	p.Attempts++
	if p.InitialAttemptTimestamp.IsZero() {
		p.InitialAttemptTimestamp = q.cfg.Clock.Now()
	}
	q.schedulingCycle++
	q.inFlight[p.Pod.UID] = false
	return p, nil
}

// SchedulingCycle returns the number of Pops so far: the cycle of the
// pod last popped.
func (q *Queue) SchedulingCycle() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.schedulingCycle
}

// Done ends a popped pod's cycle when it was scheduled (assumed).
func (q *Queue) Done(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.inFlight, uid)
}

// AddUnschedulable puts back a pod that fit no node in the cycle
// podCycle: with the unschedulable pods, or in backoffQ if the pod
// changed or an event moved pods since that cycle began. It ends the
// pod's cycle; a pod already queued again (by an Update) is left there.
func (q *Queue) AddUnschedulable(p *QueuedPodInfo, podCycle int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	updated, inFlight := q.inFlight[p.Pod.UID]
	delete(q.inFlight, p.Pod.UID)
	if !inFlight || q.presentLocked(p.Pod.UID) {
		return
	}
	p.Timestamp = q.cfg.Clock.Now()
	if updated || q.moveRequestCycle >= podCycle {
		q.backoff.push(p)
		return
	}
	q.unschedulable[p.Pod.UID] = p
}

// AddBackoff puts back a pod whose cycle failed with an error or whose
// binding failed: it is retried once its backoff is over. It ends the
// pod's cycle.
func (q *Queue) AddBackoff(p *QueuedPodInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, inFlight := q.inFlight[p.Pod.UID]
	delete(q.inFlight, p.Pod.UID)
	if !inFlight && p.Attempts > 0 && q.presentLocked(p.Pod.UID) {
		return
	}
	p.Timestamp = q.cfg.Clock.Now()
	q.backoff.push(p)
}

// MoveOnEvent retries the unschedulable pods that event may help: those
// rejected by a plugin registered for it (or by none). Pods still in
// backoff go to backoffQ. Gated pods stay.
func (q *Queue) MoveOnEvent(event framework.ClusterEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveLocked(event, func(*QueuedPodInfo) bool { return true })
}

func (q *Queue) moveLocked(event framework.ClusterEvent, also func(*QueuedPodInfo) bool) {
	moved := false
	for uid, p := range q.unschedulable {
		if p.Gated || !q.helps(p, event) || !also(p) {
			continue
		}
		delete(q.unschedulable, uid)
		if q.backingOffLocked(p) {
			q.backoff.push(p)
		} else {
			q.active.push(p)
			moved = true
		}
	}
	q.moveRequestCycle = q.schedulingCycle
	if moved {
		q.cond.Broadcast()
	}
}

func (q *Queue) helps(p *QueuedPodInfo, event framework.ClusterEvent) bool {
	if event == framework.EventUnschedulableTimeout || p.UnschedulablePlugins.Len() == 0 {
		return true
	}
	for name := range p.UnschedulablePlugins {
		for _, registered := range q.cfg.PluginEvents[name] {
			if registered.Match(event) {
				return true
			}
		}
	}
	return false
}

// FlushBackoff moves the pods whose backoff is over to activeQ.
func (q *Queue) FlushBackoff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Clock.Now()
	moved := false
	for {
		p := q.backoff.peek()
		if p == nil || q.backoffExpiry(p).After(now) {
			break
		}
		q.backoff.pop()
		q.active.push(p)
		moved = true
	}
	if moved {
		q.cond.Broadcast()
	}
}

// FlushUnschedulable retries the pods that have waited longer than
// MaxInUnschedulable.
func (q *Queue) FlushUnschedulable() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Clock.Now()
	q.moveLocked(framework.EventUnschedulableTimeout, func(p *QueuedPodInfo) bool {
		return now.Sub(p.Timestamp) > q.cfg.MaxInUnschedulable
	})
}

// Run flushes backoffQ every second and the unschedulable pods every 30
// seconds, on the configured clock, until ctx is done; then it closes the
// queue.
func (q *Queue) Run(ctx context.Context) {
	b := q.cfg.Clock.NewTicker(time.Second)
	defer b.Stop()
	u := q.cfg.Clock.NewTicker(30 * time.Second)
	defer u.Stop()
	defer q.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.C():
			q.FlushBackoff()
		case <-u.C():
			q.FlushUnschedulable()
		}
	}
}

// Close wakes Pop, which returns ErrClosed from then on.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Counts returns how many pods are in activeQ, backoffQ and waiting as
// unschedulable.
func (q *Queue) Counts() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// Where tells which sub-queue holds a pod: "active", "backoff",
// "unschedulable", "inflight" or "".
func (q *Queue) Where(uid types.UID) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.inFlightHas(uid):
		return "inflight"
	case q.hasActive(uid):
		return "active"
	case q.hasBackoff(uid):
		return "backoff"
	}
	if _, ok := q.unschedulable[uid]; ok {
		return "unschedulable"
	}
	return ""
}

func (q *Queue) inFlightHas(uid types.UID) bool { _, ok := q.inFlight[uid]; return ok }
func (q *Queue) hasActive(uid types.UID) bool   { _, ok := q.active.get(uid); return ok }
func (q *Queue) hasBackoff(uid types.UID) bool  { _, ok := q.backoff.get(uid); return ok }

// AddNominatedPod records that pi waits for node (set by preemption
// before the API reflects it).
func (q *Queue) AddNominatedPod(pi *framework.PodInfo, node string) {
	q.nominator.add(pi, node)
}

// DeleteNominatedPod forgets a pod's nomination.
func (q *Queue) DeleteNominatedPod(uid types.UID) { q.nominator.delete(uid) }

// NominatedPodsForNode implements framework.Nominator.
func (q *Queue) NominatedPodsForNode(node string) []*framework.PodInfo {
	return q.nominator.forNode(node)
}

var _ framework.Nominator = (*Queue)(nil)

// nominator indexes nominated pods by node. It has its own lock: filters
// read it from many goroutines while the queue lock is busy with events.
type nominator struct {
	// count is the number of nominated pods, read without the lock so
	// that filters skip it entirely in the common case of none.
	count  atomic.Int64
	mu     sync.RWMutex
	byNode map[string][]*framework.PodInfo // guarded by mu
	nodeOf map[types.UID]string            // guarded by mu
}

func newNominator() *nominator {
	return &nominator{byNode: map[string][]*framework.PodInfo{}, nodeOf: map[types.UID]string{}}
}

// update follows a pod's status.nominatedNodeName: a name in the API
// object nominates the pod; a name the API object lost (old had one,
// pod has none) clears the nomination. A nomination made locally by
// preemption and not yet visible in the API is kept.
func (n *nominator) update(old *v1.Pod, pi *framework.PodInfo) {
	if nnn := pi.Pod.Status.NominatedNodeName; nnn != "" {
		n.add(pi, nnn)
		return
	}
	if old != nil && old.Status.NominatedNodeName != "" {
		n.delete(pi.Pod.UID)
	}
}

func (n *nominator) add(pi *framework.PodInfo, node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deleteLocked(pi.Pod.UID)
	n.byNode[node] = append(n.byNode[node], pi)
	n.nodeOf[pi.Pod.UID] = node
	n.count.Add(1)
}

func (n *nominator) delete(uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deleteLocked(uid)
}

func (n *nominator) deleteLocked(uid types.UID) {
	node, ok := n.nodeOf[uid]
	if !ok {
		return
	}
	delete(n.nodeOf, uid)
	n.count.Add(-1)
	pods := n.byNode[node]
	for i, p := range pods {
		if p.Pod.UID == uid {
			pods = append(pods[:i:i], pods[i+1:]...)
			break
		}
	}
	if len(pods) == 0 {
		delete(n.byNode, node)
	} else {
		n.byNode[node] = pods
	}
}

func (n *nominator) forNode(node string) []*framework.PodInfo {
	if n.count.Load() == 0 {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	pods := n.byNode[node]
	if len(pods) == 0 {
		return nil
	}
	return append([]*framework.PodInfo(nil), pods...)
}
