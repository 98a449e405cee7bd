// Package defaultpreemption holds the DefaultPreemption plugin: when a
// pod fits no node, it looks for a node where evicting pods of lower
// priority makes the pod fit, with as little harm as possible, nominates
// the pod to that node (status.nominatedNodeName) and deletes the
// victims gracefully. The pod is retried when they are gone.
//
// For each node that failed with Unschedulable (not Unresolvable), the
// dry run removes every lower-priority pod, checks that the pod then
// fits, and adds the removed pods back one by one, most important first,
// keeping those that still leave room: the rest are the victims. Among
// the candidates it picks, in order: the lowest highest-priority victim,
// the lowest sum of victim priorities, the fewest victims, the latest
// start of the most important victims, the first found.
package defaultpreemption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "DefaultPreemption"

// Messages, as upstream words them.
const (
	msgNotHelpful       = "Preemption is not helpful for scheduling"
	msgNoVictims        = "No preemption victims found for incoming pod"
	msgPolicyNever      = "not eligible due to preemptionPolicy=Never."
	msgTerminatingOnNNN = "not eligible due to a terminating pod on the nominated node."
)

// Candidate sampling, as upstream: look at 10% of the possible nodes,
// at least 100.
const (
	minCandidateNodesPercentage = 10
	minCandidateNodesAbsolute   = 100
)

// DefaultPreemption is the plugin.
type DefaultPreemption struct {
	h   *framework.Handle
	log *slog.Logger
}

var _ framework.PostFilterPlugin = &DefaultPreemption{}

// New is the plugin's factory; it needs h.Snapshot, h.Framework and
// h.Client (h.Events and h.Nominator are optional).
func New(h *framework.Handle) (framework.Plugin, error) {
	if h == nil || h.Client == nil {
		return nil, errors.New("no API client")
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DefaultPreemption{h: h, log: log}, nil
}

// Name returns Name.
func (pl *DefaultPreemption) Name() string { return Name }

// Candidate is a node and the pods to evict there.
type Candidate struct {
	Node    string
	Victims []*framework.PodInfo
}

// PostFilter preempts, or explains why not. On success the result names
// the node; otherwise it clears any earlier nomination ("") and the
// status message starts with "preemption: ".
func (pl *DefaultPreemption) PostFilter(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, statuses *framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	c, s := pl.FindCandidate(ctx, state, pod, statuses)
	if !s.IsSuccess() {
		if s.IsRejected() {
			return &framework.PostFilterResult{}, framework.NewStatus(framework.Unschedulable, "preemption: "+s.Message())
		}
		return nil, s
	}
	if err := pl.prepare(ctx, pod, c); err != nil {
		return nil, framework.AsStatus(err)
	}
	return &framework.PostFilterResult{NominatedNodeName: c.Node}, nil
}

// FindCandidate is the dry run: it returns the chosen candidate, or a
// rejection whose message says why there is none. It changes nothing in
// the cluster.
func (pl *DefaultPreemption) FindCandidate(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, statuses *framework.NodeToStatus) (*Candidate, *framework.Status) {
	if ok, msg := pl.eligible(pod, statuses); !ok {
		return nil, framework.NewStatus(framework.Unschedulable, msg)
	}
	all := pl.h.Snapshot.List()
	if len(all) == 0 {
		return nil, framework.NewStatus(framework.Unschedulable, framework.NoNodesAvailableMsg)
	}
	result := framework.NewNodeToStatus()
	var potential []*framework.NodeInfo
	for _, n := range all {
		name := n.Node().Name
		if statuses.Get(name).Code() == framework.Unschedulable {
			potential = append(potential, n)
		} else {
			result.Set(name, framework.NewStatus(framework.UnschedulableAndUnresolvable, msgNotHelpful))
		}
	}
	fitErr := func() *framework.Status {
		fe := &framework.FitError{Pod: pod.Pod, NumAllNodes: len(all), Diagnosis: framework.Diagnosis{NodeToStatus: result}}
		return framework.NewStatus(framework.Unschedulable, fe.Error())
	}
	if len(potential) == 0 {
		return nil, fitErr()
	}
	candidates, err := pl.dryRun(ctx, state, pod, potential, result)
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	if len(candidates) == 0 {
		return nil, fitErr()
	}
	return pickOne(candidates), nil
}

// eligible reports whether pod may preempt, and why not.
func (pl *DefaultPreemption) eligible(pod *framework.PodInfo, statuses *framework.NodeToStatus) (bool, string) {
	p := pod.Pod
	if p.Spec.PreemptionPolicy != nil && *p.Spec.PreemptionPolicy == v1.PreemptNever {
		return false, msgPolicyNever
	}
	nnn := p.Status.NominatedNodeName
	if nnn == "" || statuses.Get(nnn).Code() == framework.UnschedulableAndUnresolvable {
		return true, ""
	}
	// Victims on the nominated node are still going away: wait for them
	// rather than evict more elsewhere.
	if n := pl.h.Snapshot.Get(nnn); n != nil {
		prio := framework.PodPriority(p)
		for _, q := range n.Pods {
			if q.Pod.DeletionTimestamp != nil && framework.PodPriority(q.Pod) < prio {
				return false, msgTerminatingOnNNN
			}
		}
	}
	return true, ""
}

// dryRun finds candidates among potential nodes, starting at a random
// offset and stopping after enough; nodes that cannot become candidates
// get their reason in result.
func (pl *DefaultPreemption) dryRun(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, potential []*framework.NodeInfo, result *framework.NodeToStatus) ([]Candidate, error) {
	want := max(len(potential)*minCandidateNodesPercentage/100, minCandidateNodesAbsolute)
	want = min(want, len(potential))
	offset := 0
	if len(potential) > want {
		offset = int(pl.now().UnixNano() % int64(len(potential)))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu         sync.Mutex
		candidates []Candidate
		firstErr   error
	)
	pl.h.Parallelizer.Until(ctx, len(potential), func(i int) {
		n := potential[(offset+i)%len(potential)]
		victims, s := pl.selectVictims(ctx, state.Clone(), pod, n.Clone())
		mu.Lock()
		defer mu.Unlock()
		switch {
		case s.IsSuccess():
			candidates = append(candidates, Candidate{Node: n.Node().Name, Victims: victims})
			if len(candidates) >= want {
				cancel()
			}
		case s.IsRejected():
			result.Set(n.Node().Name, s)
		default:
			if firstErr == nil {
				firstErr = s.AsError()
			}
		}
	})
	if len(candidates) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return candidates, nil
}

func (pl *DefaultPreemption) now() time.Time {
	if pl.h.Clock != nil {
		return pl.h.Clock.Now()
	}
	return time.Now()
}

// selectVictims works on node and state, which the caller cloned.
func (pl *DefaultPreemption) selectVictims(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) ([]*framework.PodInfo, *framework.Status) {
	fw := pl.h.Framework
	prio := framework.PodPriority(pod.Pod)
	var lower []*framework.PodInfo
	for _, p := range slices.Clone(node.Pods) {
		if framework.PodPriority(p.Pod) >= prio {
			continue
		}
		lower = append(lower, p)
		if err := node.RemovePod(p.Pod); err != nil {
			return nil, framework.AsStatus(err)
		}
		if s := fw.RunPreFilterExtensionRemovePod(ctx, state, pod, p, node); !s.IsSuccess() {
			return nil, s
		}
	}
	if len(lower) == 0 {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, msgNoVictims)
	}
	if s := fw.RunFilterPluginsWithNominatedPods(ctx, state, pod, node); !s.IsSuccess() {
		return nil, s
	}
	slices.SortStableFunc(lower, moreImportant)
	var victims []*framework.PodInfo
	for _, p := range lower {
		node.AddPod(p)
		if s := fw.RunPreFilterExtensionAddPod(ctx, state, pod, p, node); !s.IsSuccess() {
			return nil, s
		}
		s := fw.RunFilterPluginsWithNominatedPods(ctx, state, pod, node)
		if s.IsSuccess() {
			continue
		}
		if !s.IsRejected() {
			return nil, s
		}
		if err := node.RemovePod(p.Pod); err != nil {
			return nil, framework.AsStatus(err)
		}
		if s := fw.RunPreFilterExtensionRemovePod(ctx, state, pod, p, node); !s.IsSuccess() {
			return nil, s
		}
		victims = append(victims, p)
	}
	return victims, nil
}

// moreImportant orders pods by priority, higher first, then by start
// time, earlier first.
func moreImportant(a, b *framework.PodInfo) int {
	pa, pb := framework.PodPriority(a.Pod), framework.PodPriority(b.Pod)
	if pa != pb {
		if pa > pb {
			return -1
		}
		return 1
	}
	return startTime(a.Pod).Compare(startTime(b.Pod))
}

func startTime(p *v1.Pod) time.Time {
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time
	}
	return p.CreationTimestamp.Time
}

// pickOne applies the criteria in the package comment.
func pickOne(cs []Candidate) *Candidate {
	for i := range cs {
		if len(cs[i].Victims) == 0 {
			return &cs[i]
		}
	}
	// Stable input order (the dry run is parallel).
	slices.SortFunc(cs, func(a, b Candidate) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	best := cs
	filter := func(key func(c *Candidate) int64) {
		lo := int64(math.MaxInt64)
		for i := range best {
			lo = min(lo, key(&best[i]))
		}
		var keep []Candidate
		for i := range best {
			if key(&best[i]) == lo {
				keep = append(keep, best[i])
			}
		}
		best = keep
	}
	// Victims are sorted most important first.
	filter(func(c *Candidate) int64 { return int64(framework.PodPriority(c.Victims[0].Pod)) })
	filter(func(c *Candidate) int64 {
		var sum int64
		for _, v := range c.Victims {
			// Shift to positive so that more victims always cost more.
			sum += int64(framework.PodPriority(v.Pod)) + math.MaxInt32 + 1
		}
		return sum
	})
	filter(func(c *Candidate) int64 { return int64(len(c.Victims)) })
	// Latest start of the highest-priority victims: negate to minimize.
	filter(func(c *Candidate) int64 {
		top := framework.PodPriority(c.Victims[0].Pod)
		earliest := int64(math.MaxInt64)
		for _, v := range c.Victims {
			if framework.PodPriority(v.Pod) == top {
				earliest = min(earliest, startTime(v.Pod).UnixNano())
			}
		}
		return -earliest
	})
	return &best[0]
}

// prepare evicts the victims (a DisruptionTarget condition, then a
// graceful delete with a UID precondition, and a Preempted event) and
// clears the nominations of lower-priority pods to the node, whose room
// the pod now takes.
func (pl *DefaultPreemption) prepare(ctx context.Context, pod *framework.PodInfo, c *Candidate) error {
	var (
		mu       sync.Mutex
		firstErr error
	)
	schedulerName := pod.Pod.Spec.SchedulerName
	pl.h.Parallelizer.Until(ctx, len(c.Victims), func(i int) {
		v := c.Victims[i].Pod
		err := pl.evict(ctx, pod.Pod, v, c.Node, schedulerName)
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if firstErr != nil {
		return firstErr
	}
	if pl.h.Nominator == nil {
		return nil
	}
	prio := framework.PodPriority(pod.Pod)
	for _, np := range pl.h.Nominator.NominatedPodsForNode(c.Node) {
		if np.Pod.UID == pod.Pod.UID || framework.PodPriority(np.Pod) >= prio {
			continue
		}
		st := np.Pod.Status.DeepCopy()
		st.NominatedNodeName = ""
		if err := framework.PatchPodStatus(ctx, pl.h.Client, np.Pod, st); err != nil && !apierrors.IsNotFound(err) {
			pl.log.Warn("clear nominated node of a lower-priority pod", "pod", np.Pod.Namespace+"/"+np.Pod.Name, "err", err)
		}
	}
	return nil
}

func (pl *DefaultPreemption) evict(ctx context.Context, preemptor, victim *v1.Pod, node, schedulerName string) error {
	st := victim.Status.DeepCopy()
	now := metav1.NewTime(pl.now())
	if framework.SetPodCondition(st, v1.PodCondition{
		Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonPreemptionByScheduler,
		Message:            fmt.Sprintf("%s: preempting to accommodate a higher priority pod", schedulerName),
		LastTransitionTime: now,
	}) {
		if err := framework.PatchPodStatus(ctx, pl.h.Client, victim, st); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("preempt: %w", err)
		}
	}
	err := pl.h.Client.CoreV1().Pods(victim.Namespace).Delete(ctx, victim.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &victim.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("preempt: delete pod %s/%s: %w", victim.Namespace, victim.Name, err)
	}
	if pl.h.Events != nil {
		pl.h.Events.Eventf(victim, v1.EventTypeNormal, "Preempted", "Preempted by pod %v on node %v", preemptor.UID, node)
	}
	return nil
}
