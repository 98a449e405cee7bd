package scheduler

import (
	"context"
	"errors"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-sh/skiff/internal/scheduler/cache"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/queue"
)

// ErrNoNodesAvailable is returned for a pod when the cluster has no
// nodes at all.
var ErrNoNodesAvailable = errors.New(framework.NoNodesAvailableMsg)

// maxMessageLen bounds the condition and event messages, as upstream.
const maxMessageLen = 32 * 1024

// Decision is where a pod goes and what the cycle saw.
type Decision struct {
	Node string
	// Evaluated is how many nodes were filtered, Feasible how many
	// passed.
	Evaluated, Feasible int
	// Scores are the feasible nodes' scores (nil when only one node
	// fit, or no plugin scores).
	Scores []framework.NodePluginScores
}

// scheduleOne runs one scheduling cycle for a popped pod: choose a node,
// assume the pod there, reserve, and bind on another goroutine; or
// record why it fits nowhere (preempting if that helps) and requeue it.
func (in *instance) scheduleOne(ctx context.Context, qp *queue.QueuedPodInfo) {
	pod := qp.Pod
	if in.skip(pod) {
		in.queue.Done(pod.UID)
		return
	}
	podCycle := in.queue.SchedulingCycle()
	start := in.cfg.Clock.Now()
	state := framework.NewCycleState()
	if err := in.cache.UpdateSnapshot(in.snapshot); err != nil {
		in.fail(ctx, qp, podCycle, err, nil)
		return
	}
	d, err := in.schedulePod(ctx, state, qp.PodInfo)
	if err != nil {
		var nominated *framework.PostFilterResult
		var fitErr *framework.FitError
		if errors.As(err, &fitErr) {
			r, s := in.fw.RunPostFilterPlugins(ctx, state, qp.PodInfo, fitErr.Diagnosis.NodeToStatus)
			if s.Code() == framework.Error {
				in.log.Error("preemption failed", "pod", key(pod), "err", s.AsError())
			} else {
				fitErr.Diagnosis.PostFilterMsg = s.Message()
				nominated = r
			}
		} else if errors.Is(err, ErrNoNodesAvailable) {
			nominated = &framework.PostFilterResult{}
		}
		in.fail(ctx, qp, podCycle, err, nominated)
		return
	}

	// Assume: the next cycles see the pod on its node while it binds.
	assumed := *qp.PodInfo
	assumed.Pod = pod.DeepCopy()
	assumed.Pod.Spec.NodeName = d.Node
	if err := in.cache.AssumePod(&assumed); err != nil {
		if errors.Is(err, cache.ErrPodAssumed) {
			// Already placed: a binding that timed out had succeeded.
			in.queue.Done(pod.UID)
			return
		}
		in.fail(ctx, qp, podCycle, err, nil)
		return
	}
	if s := in.fw.RunReservePluginsReserve(ctx, state, &assumed, d.Node); !s.IsSuccess() {
		in.fw.RunReservePluginsUnreserve(ctx, state, &assumed, d.Node)
		if err := in.cache.ForgetPod(assumed.Pod); err != nil {
			in.log.Error("forget pod", "pod", key(pod), "err", err)
		}
		in.fail(ctx, qp, podCycle, reserveError(s, in.snapshot.NumNodes(), pod), nil)
		return
	}
	in.queue.Done(pod.UID)
	in.queue.DeleteNominatedPod(pod.UID)
	in.log.Debug("assumed", "pod", key(pod), "node", d.Node, "evaluated", d.Evaluated, "feasible", d.Feasible, "took", in.cfg.Clock.Since(start))

	// Wait for room among the bindings in flight: back-pressure from the
	// API server reaches the scheduling loop here.
	select {
	case in.bindings <- struct{}{}:
	case <-ctx.Done():
		in.fw.RunReservePluginsUnreserve(ctx, state, &assumed, d.Node)
		_ = in.cache.ForgetPod(assumed.Pod)
		return
	}
	in.async.Add(1)
	go func() {
		defer in.async.Done()
		defer func() { <-in.bindings }()
		in.bind(ctx, state, qp, &assumed, d.Node)
	}()
}

// skip reports whether a popped pod must not be scheduled: it is being
// deleted, already assumed, or the informer knows it is gone, bound or
// replaced (a pod requeued after a binding that timed out but took).
func (in *instance) skip(pod *v1.Pod) bool {
	if pod.DeletionTimestamp != nil || in.cache.IsAssumedPod(pod) {
		return true
	}
	if in.podStore == nil {
		return false
	}
	obj, ok, err := in.podStore.GetByKey(key(pod))
	if err != nil || !ok {
		return err == nil
	}
	cur, isPod := obj.(*v1.Pod)
	return !isPod || cur.UID != pod.UID || cur.Spec.NodeName != "" || cur.DeletionTimestamp != nil
}

// reserveError turns a Reserve rejection into a FitError naming it.
func reserveError(s *framework.Status, numNodes int, pod *v1.Pod) error {
	if !s.IsRejected() {
		return s.AsError()
	}
	return &framework.FitError{Pod: pod, NumAllNodes: numNodes, Diagnosis: framework.Diagnosis{
		NodeToStatus: framework.NewNodeToStatus(), PreFilterMsg: s.Message(), UnschedulablePlugins: sets.New(s.Plugin()),
	}}
}

// bind is the binding cycle, on its own goroutine.
func (in *instance) bind(ctx context.Context, state *framework.CycleState, qp *queue.QueuedPodInfo, assumed *framework.PodInfo, node string) {
	s := in.fw.RunBindPlugins(ctx, state, assumed, node)
	if s.IsSuccess() {
		in.scheduledEvent(ctx, assumed.Pod, node)
		return
	}
	in.fw.RunReservePluginsUnreserve(ctx, state, assumed, node)
	if err := in.cache.ForgetPod(assumed.Pod); err != nil {
		in.log.Debug("forget pod after failed binding", "pod", key(assumed.Pod), "err", err)
	}
	// The room it held is free again.
	in.queue.MoveOnEvent(framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Delete})
	err := s.AsError()
	switch {
	case apierrors.IsNotFound(err), ctx.Err() != nil:
		// Deleted meanwhile, or shutting down.
		return
	case apierrors.IsConflict(err):
		// Bound by someone else, or being deleted: the informer will say.
		in.log.Info("binding conflict", "pod", key(assumed.Pod), "node", node, "err", err)
		return
	}
	in.log.Error("binding failed", "pod", key(assumed.Pod), "node", node, "err", err)
	in.recordFailure(ctx, qp.Pod, v1.PodReasonSchedulerError, "Binding rejected: "+err.Error(), nil)
	in.queue.AddBackoff(qp)
}

// fail requeues a pod whose cycle did not place it and records why.
func (in *instance) fail(ctx context.Context, qp *queue.QueuedPodInfo, podCycle int64, err error, nominated *framework.PostFilterResult) {
	pod := qp.Pod
	reason := v1.PodReasonUnschedulable
	var fitErr *framework.FitError
	switch {
	case errors.As(err, &fitErr):
		qp.UnschedulablePlugins = fitErr.Diagnosis.UnschedulablePlugins
		in.queue.AddUnschedulable(qp, podCycle)
		in.log.Debug("unschedulable", "pod", key(pod), "reason", err)
	case errors.Is(err, ErrNoNodesAvailable):
		qp.UnschedulablePlugins = nil
		in.queue.AddUnschedulable(qp, podCycle)
	default:
		reason = v1.PodReasonSchedulerError
		in.queue.AddBackoff(qp)
		in.log.Error("scheduling failed", "pod", key(pod), "err", err)
	}
	if nominated != nil {
		if nominated.NominatedNodeName != "" {
			in.queue.AddNominatedPod(qp.PodInfo, nominated.NominatedNodeName)
		} else {
			in.queue.DeleteNominatedPod(pod.UID)
		}
	}
	in.recordFailure(ctx, pod, reason, err.Error(), nominated)
}

// recordFailure emits the FailedScheduling event and, on another
// goroutine, sets PodScheduled=False with the same message (and the
// nominated node, when preemption chose or cleared one).
func (in *instance) recordFailure(ctx context.Context, pod *v1.Pod, reason, msg string, nominated *framework.PostFilterResult) {
	if len(msg) > maxMessageLen {
		msg = msg[:maxMessageLen-3] + "..."
	}
	in.recorder.Event(pod, v1.EventTypeWarning, "FailedScheduling", msg)
	st := pod.Status.DeepCopy()
	changed := framework.SetPodCondition(st, v1.PodCondition{
		Type: v1.PodScheduled, Status: v1.ConditionFalse, Reason: reason, Message: msg,
		LastProbeTime: metav1.Time{}, LastTransitionTime: metav1.NewTime(in.cfg.Clock.Now()),
	})
	if nominated != nil && st.NominatedNodeName != nominated.NominatedNodeName {
		st.NominatedNodeName = nominated.NominatedNodeName
		changed = true
	}
	if !changed {
		return
	}
	in.async.Add(1)
	go func() {
		defer in.async.Done()
		if err := framework.PatchPodStatus(ctx, in.client, pod, st); err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			in.log.Warn("update pod status", "pod", key(pod), "err", err)
		}
	}()
}

// schedulePod chooses a node for pod, or returns a *framework.FitError,
// ErrNoNodesAvailable, or another error.
func (in *instance) schedulePod(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo) (Decision, error) {
	all := in.snapshot.List()
	if len(all) == 0 {
		return Decision{}, ErrNoNodesAvailable
	}
	feasible, diag, evaluated, err := in.findNodesThatFit(ctx, state, pod, all)
	if err != nil {
		return Decision{}, err
	}
	if len(feasible) == 0 {
		return Decision{}, &framework.FitError{Pod: pod.Pod, NumAllNodes: len(all), Diagnosis: diag}
	}
	d := Decision{Evaluated: evaluated, Feasible: len(feasible)}
	if len(feasible) == 1 {
		d.Node = feasible[0].Node().Name
		return d, nil
	}
	if s := in.fw.RunPreScorePlugins(ctx, state, pod, feasible); !s.IsSuccess() {
		return Decision{}, s.AsError()
	}
	scores, s := in.fw.RunScorePlugins(ctx, state, pod, feasible)
	if !s.IsSuccess() {
		return Decision{}, s.AsError()
	}
	d.Scores = scores
	d.Node = in.selectHost(scores)
	return d, nil
}

// findNodesThatFit runs PreFilter, then the filters over the nodes in
// parallel until enough feasible nodes are found, starting where the
// previous cycle stopped so that every node gets its turn. A pod
// nominated to a node tries that node first.
func (in *instance) findNodesThatFit(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, all []*framework.NodeInfo) ([]*framework.NodeInfo, framework.Diagnosis, int, error) {
	diag := framework.Diagnosis{NodeToStatus: framework.NewNodeToStatus(), UnschedulablePlugins: sets.New[string]()}
	pre, s := in.fw.RunPreFilterPlugins(ctx, state, pod, all)
	if !s.IsSuccess() {
		if !s.IsRejected() {
			return nil, diag, 0, s.AsError()
		}
		diag.NodeToStatus.SetAbsent(s)
		diag.PreFilterMsg = s.Message()
		if s.Plugin() != "" {
			diag.UnschedulablePlugins.Insert(s.Plugin())
		}
		return nil, diag, 0, nil
	}
	if nnn := pod.Pod.Status.NominatedNodeName; nnn != "" {
		if n := in.snapshot.Get(nnn); n != nil && (pre.AllNodes() || pre.NodeNames.Has(nnn)) {
			s := in.fw.RunFilterPluginsWithNominatedPods(ctx, state, pod, n)
			if s.Code() == framework.Error {
				return nil, diag, 1, s.AsError()
			}
			if s.IsSuccess() {
				return []*framework.NodeInfo{n}, diag, 1, nil
			}
		}
	}
	nodes := all
	if !pre.AllNodes() {
		nodes = make([]*framework.NodeInfo, 0, pre.NodeNames.Len())
		for _, n := range all {
			if pre.NodeNames.Has(n.Node().Name) {
				nodes = append(nodes, n)
			}
		}
		diag.NodeToStatus.SetAbsent(framework.NewStatus(framework.UnschedulableAndUnresolvable))
	}
	feasible, evaluated, err := in.findNodesThatPassFilters(ctx, state, pod, &diag, nodes)
	return feasible, diag, evaluated, err
}

func (in *instance) findNodesThatPassFilters(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, diag *framework.Diagnosis, nodes []*framework.NodeInfo) ([]*framework.NodeInfo, int, error) {
	n := len(nodes)
	if n == 0 {
		return nil, 0, nil
	}
	want := in.numFeasibleNodesToFind(n)
	feasible := make([]*framework.NodeInfo, want)
	statuses := make([]*framework.Status, n)
	var (
		found    atomic.Int32
		firstErr atomic.Pointer[error]
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := in.nextStartNodeIndex % n
	in.fw.Handle().Parallelizer.Until(ctx, n, func(i int) {
		node := nodes[(start+i)%n]
		s := in.fw.RunFilterPluginsWithNominatedPods(ctx, state, pod, node)
		switch {
		case s.IsSuccess():
			k := found.Add(1)
			if int(k) > want {
				found.Add(-1)
				cancel()
				return
			}
			feasible[k-1] = node
		case s.IsRejected():
			statuses[i] = s
		default:
			err := s.AsError()
			firstErr.CompareAndSwap(nil, &err)
			cancel()
		}
	})
	if p := firstErr.Load(); p != nil {
		return nil, 0, *p
	}
	rejected := 0
	for i, s := range statuses {
		if s == nil {
			continue
		}
		rejected++
		diag.NodeToStatus.Set(nodes[(start+i)%n].Node().Name, s)
		if s.Plugin() != "" {
			diag.UnschedulablePlugins.Insert(s.Plugin())
		}
	}
	k := int(found.Load())
	processed := k + rejected
	in.nextStartNodeIndex = (start + processed) % n
	return feasible[:k], processed, nil
}

// numFeasibleNodesToFind is upstream's adaptive bound: every node below
// 100; otherwise a percentage (50% less 1% per 125 nodes, at least 5%,
// unless configured) of at least 100 nodes.
func (in *instance) numFeasibleNodesToFind(all int) int {
	if all < 100 || in.cfg.PercentageOfNodesToScore >= 100 {
		return all
	}
	p := int(in.cfg.PercentageOfNodesToScore)
	if p == 0 {
		p = max(50-all/125, 5)
	}
	return max(all*p/100, 100)
}

// selectHost picks the highest total score, breaking ties uniformly at
// random (reservoir sampling).
func (in *instance) selectHost(scores []framework.NodePluginScores) string {
	best, ties := 0, 1
	for i := 1; i < len(scores); i++ {
		switch {
		case scores[i].Total > scores[best].Total:
			best, ties = i, 1
		case scores[i].Total == scores[best].Total:
			ties++
			if in.rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return scores[best].Name
}
