package nodelifecycle

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The NoExecute taints of unhealthy nodes. They are exclusive: a node has
// at most one, matching its Ready condition (False: not-ready; Unknown:
// unreachable).
var (
	notReadyTaint    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	unreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
)

// conditionTaints maps node conditions to the NoSchedule taints that keep
// new pods off the node (upstream's TaintNodesByCondition).
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
}

// conditionTaintKeys are the keys of the NoSchedule taints this controller
// owns.
var conditionTaintKeys = map[string]bool{
	corev1.TaintNodeNotReady: true, corev1.TaintNodeUnreachable: true, corev1.TaintNodeMemoryPressure: true,
	corev1.TaintNodeDiskPressure: true, corev1.TaintNodeNetworkUnavailable: true, corev1.TaintNodePIDPressure: true,
	corev1.TaintNodeUnschedulable: true,
}

func hasTaint(n *corev1.Node, t corev1.Taint) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(x corev1.Taint) bool { return x.MatchTaint(&t) })
}

func noExecuteTaints(n *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

// processTaintBasedEviction acts on a node's Ready condition as observed
// at the start of the pass: an unhealthy node is queued for its NoExecute
// taint (or has the opposite one swapped at once), a healthy node loses
// both.
func (c *Controller) processTaintBasedEviction(ctx context.Context, node *corev1.Node, observed corev1.NodeCondition) {
	switch observed.Status {
	case corev1.ConditionFalse, corev1.ConditionUnknown:
		want, opposite := notReadyTaint, unreachableTaint
		if observed.Status == corev1.ConditionUnknown {
			want, opposite = unreachableTaint, notReadyTaint
		}
		if hasTaint(node, opposite) {
			// Already tainted: swap at once, without waiting in line.
			if err := c.updateTaints(ctx, node.Name, []corev1.Taint{want}, []corev1.Taint{opposite}); err != nil {
				c.log.Warn("swap NoExecute taint; will retry", "node", node.Name, "err", err)
			}
			return
		}
		if hasTaint(node, want) {
			return // tainted already
		}
		c.mu.Lock()
		q := c.taintQueues[zoneKey(node)]
		if q.add(node.Name, c.cfg.Clock.Now()) {
			c.log.Info("node unhealthy; queued for a NoExecute taint", "node", node.Name, "ready", observed.Status)
		}
		c.mu.Unlock()
	case corev1.ConditionTrue:
		if err := c.markReachable(ctx, node); err != nil {
			c.log.Warn("remove NoExecute taints; will retry", "node", node.Name, "err", err)
		}
	}
}

// markReachable removes a node's not-ready and unreachable NoExecute
// taints and drops it from the taint queue.
func (c *Controller) markReachable(ctx context.Context, node *corev1.Node) error {
	c.mu.Lock()
	if q := c.taintQueues[zoneKey(node)]; q != nil {
		q.remove(node.Name)
	}
	c.mu.Unlock()
	if !hasTaint(node, notReadyTaint) && !hasTaint(node, unreachableTaint) {
		return nil
	}
	if err := c.updateTaints(ctx, node.Name, nil, []corev1.Taint{notReadyTaint, unreachableTaint}); err != nil {
		return err
	}
	c.log.Info("node healthy again; removed its NoExecute taints", "node", node.Name)
	return nil
}

// doNoExecuteTaintingPass taints the queued nodes, as fast as each zone's
// bucket allows.
func (c *Controller) doNoExecuteTaintingPass(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Clock.Now()
	for _, zone := range slices.Sorted(maps.Keys(c.taintQueues)) {
		c.taintQueues[zone].try(now, func(n queuedNode) (bool, time.Duration) {
			node, err := c.nodes.Get(n.name)
			if apierrors.IsNotFound(err) {
				return true, 0
			}
			if err != nil {
				return false, 50 * time.Millisecond
			}
			var want, opposite corev1.Taint
			switch readyStatus(node) {
			case corev1.ConditionFalse:
				want, opposite = notReadyTaint, unreachableTaint
			case corev1.ConditionUnknown:
				want, opposite = unreachableTaint, notReadyTaint
			case corev1.ConditionTrue:
				return true, 0 // healthy again
			default:
				return false, 50 * time.Millisecond
			}
			// The API call runs under mu: the pass is the only taint
			// writer, and it is paced to a few calls a second.
			if err := c.updateTaints(ctx, n.name, []corev1.Taint{want}, []corev1.Taint{opposite}); err != nil {
				c.log.Warn("add NoExecute taint; will retry", "node", n.name, "err", err)
				return false, 50 * time.Millisecond
			}
			c.log.Info("tainted unhealthy node", "node", n.name, "taint", want.Key)
			return true, 0
		})
	}
}

// ensureZoneLocked sets up a zone seen for the first time.
func (c *Controller) ensureZoneLocked(zone string) {
	if _, ok := c.zones[zone]; !ok {
		c.zones[zone] = stateInitial
	}
	if _, ok := c.taintQueues[zone]; !ok {
		// Queues outlive their zone's state, as upstream's: nodes queued
		// in a zone that lost all its nodes for a while keep their place.
		q := &taintQueue{}
		q.setRate(c.cfg.EvictionRate, c.cfg.Clock.Now())
		c.taintQueues[zone] = q
	}
}

// handleDisruption updates the zones' states from their nodes' Ready
// conditions and sets their tainting rates (see zoneState).
func (c *Controller) handleDisruption(ctx context.Context, zoneReady map[string][]*corev1.NodeCondition, nodes []*corev1.Node) {
	c.mu.Lock()
	now := c.cfg.Clock.Now()
	next := map[string]zoneState{}
	allFull := true
	for zone, conds := range zoneReady {
		_, s := computeZoneState(conds, c.cfg.UnhealthyZoneThreshold)
		next[zone] = s
		if s != stateFullDisruption {
			allFull = false
		}
		c.ensureZoneLocked(zone)
	}
	wasAllFull := true
	for zone, s := range c.zones {
		if _, ok := zoneReady[zone]; !ok {
			delete(c.zones, zone)
			continue
		}
		if s != stateFullDisruption {
			wasAllFull = false
		}
	}
	if allFull && wasAllFull {
		c.mu.Unlock()
		return
	}
	switch {
	case allFull:
		c.log.Warn("no node of any zone is Ready; suspecting the control plane's network, stopping all evictions")
		for zone := range c.zones {
			c.taintQueues[zone].setRate(0, now)
			c.zones[zone] = stateFullDisruption
		}
		c.mu.Unlock()
		for _, n := range nodes {
			if err := c.markReachable(ctx, n); err != nil {
				c.log.Warn("remove NoExecute taints", "node", n.Name, "err", err)
			}
		}
		return
	case wasAllFull:
		c.log.Info("some nodes are Ready again; resuming evictions")
		// Start every node's grace period afresh.
		for _, h := range c.health {
			h.probe, h.readyTransition = now, now
		}
		for zone := range c.zones {
			c.setRateLocked(zone, len(zoneReady[zone]), next[zone], now)
			c.zones[zone] = next[zone]
		}
	default:
		for zone, s := range c.zones {
			if s == next[zone] {
				continue
			}
			c.log.Info("zone changed state", "zone", zone, "from", s, "to", next[zone])
			c.setRateLocked(zone, len(zoneReady[zone]), next[zone], now)
			c.zones[zone] = next[zone]
		}
	}
	c.mu.Unlock()
}

func (c *Controller) setRateLocked(zone string, size int, s zoneState, now time.Time) {
	rate := c.cfg.EvictionRate
	if s == statePartialDisruption {
		rate = 0
		if size > c.cfg.LargeClusterThreshold {
			rate = c.cfg.SecondaryEvictionRate
		}
	}
	c.taintQueues[zone].setRate(rate, now)
}

// syncNoScheduleTaints brings a node's condition taints (NoSchedule) in
// line with its conditions and spec.unschedulable.
func (c *Controller) syncNoScheduleTaints(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.forgetTaintsSeen(name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	c.forgetStaleTaintsSeen(node)
	want := map[string]bool{}
	for _, cond := range node.Status.Conditions {
		if key, ok := conditionTaints[cond.Type][cond.Status]; ok {
			want[key] = true
		}
	}
	if node.Spec.Unschedulable {
		want[corev1.TaintNodeUnschedulable] = true
	}
	have := map[string]bool{}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule && conditionTaintKeys[t.Key] {
			have[t.Key] = true
		}
	}
	var add, remove []corev1.Taint
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !have[k] {
			add = append(add, corev1.Taint{Key: k, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if !want[k] {
			remove = append(remove, corev1.Taint{Key: k, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	return c.updateTaints(ctx, name, add, remove)
}

// updateTaints adds and removes taints (matched by key and effect) on a
// fresh copy of the node, retrying on conflicts. NoExecute taints get a
// timeAdded of now. A node that is gone is not an error.
func (c *Controller) updateTaints(ctx context.Context, name string, add, remove []corev1.Taint) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints := slices.DeleteFunc(slices.Clone(node.Spec.Taints), func(t corev1.Taint) bool {
			return slices.ContainsFunc(remove, func(r corev1.Taint) bool { return r.MatchTaint(&t) })
		})
		for _, a := range add {
			if slices.ContainsFunc(taints, func(t corev1.Taint) bool { return t.MatchTaint(&a) }) {
				continue
			}
			if a.Effect == corev1.TaintEffectNoExecute {
				a.TimeAdded = new(metav1.NewTime(c.cfg.Clock.Now()))
			}
			taints = append(taints, a)
		}
		if slices.EqualFunc(taints, node.Spec.Taints, func(a, b corev1.Taint) bool { return a.MatchTaint(&b) && a.Value == b.Value }) {
			return nil
		}
		node.Spec.Taints = taints
		_, err = c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node %s: update taints: %w", name, err)
	}
	return nil
}
