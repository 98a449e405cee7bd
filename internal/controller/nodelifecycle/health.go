package nodelifecycle

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Reasons and messages of the conditions the controller writes, as
// upstream's.
const (
	reasonStatusUnknown       = "NodeStatusUnknown"
	messageStatusUnknown      = "Kubelet stopped posting node status."
	reasonStatusNeverUpdated  = "NodeStatusNeverUpdated"
	messageStatusNeverUpdated = "Kubelet never posted node status."
	// nodeStatusUpdateRetries bounds the conflict retries of one node's
	// status update within a pass.
	nodeStatusUpdateRetries = 5
)

// The conditions a silent node's Ready, MemoryPressure, DiskPressure and
// PIDPressure go to Unknown. NetworkUnavailable belongs to the network.
var conditionsToUnknown = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure,
}

// nodeHealth is what the controller last saw of a node. probe is when the
// node last showed life (a new Ready heartbeat or a renewed Lease), by the
// controller's clock: never the node's, which may be skewed.
type nodeHealth struct {
	probe            time.Time
	readyTransition  time.Time
	ready            *corev1.NodeCondition // as last seen; nil if none
	leaseRenew       time.Time             // the Lease's renewTime last seen
	haveLeaseRenewal bool
}

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// readyStatus is the status of n's Ready condition, "" if it has none.
func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	if c := readyCondition(n); c != nil {
		return c.Status
	}
	return ""
}

// monitorNodeHealth is one pass of the health monitor: it marks nodes
// that stopped reporting as Unknown, queues unhealthy nodes for NoExecute
// taints (or removes the taints of healthy ones), queues the pods of nodes
// whose readiness changed, and updates the zones' disruption states.
func (c *Controller) monitorNodeHealth(ctx context.Context) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		c.log.Error("list nodes", "err", err)
		return
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })

	c.mu.Lock()
	seen := map[string]bool{}
	for _, n := range nodes {
		seen[n.Name] = true
		if !c.known[n.Name] {
			c.known[n.Name] = true
			c.recorder.Eventf(n, corev1.EventTypeNormal, "RegisteredNode", "Node %s event: Registered Node %s in Controller", n.Name, n.Name)
		}
		c.ensureZoneLocked(zoneKey(n))
	}
	for _, name := range slices.Sorted(maps.Keys(c.known)) {
		if !seen[name] {
			delete(c.known, name)
			delete(c.health, name)
			ref := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
			c.recorder.Eventf(ref, corev1.EventTypeNormal, "RemovingNode", "Node %s event: Removing Node %s from Controller", name, name)
		}
	}
	c.mu.Unlock()

	zoneReady := map[string][]*corev1.NodeCondition{}
	for _, n := range nodes {
		observed, current, err := c.updateNodeHealth(ctx, n)
		if err != nil {
			c.log.Warn("update node health; no pods will be evicted this pass", "node", n.Name, "err", err)
			continue
		}
		if !excludedFromDisruption(n) {
			zoneReady[zoneKey(n)] = append(zoneReady[zoneKey(n)], current)
		}
		if current == nil {
			continue
		}
		c.processTaintBasedEviction(ctx, n, observed)
		if current.Status != corev1.ConditionTrue && observed.Status == corev1.ConditionTrue {
			c.recorder.Eventf(n, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", n.Name)
		}
		if current.Status != observed.Status {
			c.queuePodsOf(n.Name)
		}
	}
	c.handleDisruption(ctx, zoneReady, nodes)
}

// updateNodeHealth records what the node shows of its health and, when it
// has been silent beyond its grace period, sets its conditions to Unknown.
// It returns the Ready condition as observed (a made-up Unknown one for a
// node that never posted any) and as it is now (nil when there is none),
// retrying on conflicts with fresh copies.
func (c *Controller) updateNodeHealth(ctx context.Context, node *corev1.Node) (observed corev1.NodeCondition, current *corev1.NodeCondition, err error) {
	for range nodeStatusUpdateRetries {
		observed, current, err = c.tryUpdateNodeHealth(ctx, node)
		if err == nil || !apierrors.IsConflict(err) {
			return observed, current, err
		}
		fresh, getErr := c.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if getErr != nil {
			return observed, current, fmt.Errorf("node %s: %w", node.Name, getErr)
		}
		node = fresh
	}
	return observed, current, err
}

func (c *Controller) tryUpdateNodeHealth(ctx context.Context, node *corev1.Node) (corev1.NodeCondition, *corev1.NodeCondition, error) {
	// node is the cache's: read only, copied below if it must change.
	now := c.cfg.Clock.Now()
	current := readyCondition(node)

	c.mu.Lock()
	h := c.health[node.Name]
	var observed corev1.NodeCondition
	grace := c.cfg.GracePeriod
	if current == nil {
		// Never posted: judge from its creation, with the startup grace.
		observed = corev1.NodeCondition{
			Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: node.CreationTimestamp,
		}
		grace = c.cfg.StartupGracePeriod
		if h == nil {
			h = &nodeHealth{probe: node.CreationTimestamp.Time, readyTransition: node.CreationTimestamp.Time}
		}
		h.ready = nil
	} else {
		observed = *current
		switch {
		case h == nil || h.ready == nil:
			// New to us (a restart, or its first status): assume it was
			// alive when first seen.
			fresh := &nodeHealth{probe: now, readyTransition: now, ready: current.DeepCopy()}
			if h != nil {
				fresh.leaseRenew, fresh.haveLeaseRenewal = h.leaseRenew, h.haveLeaseRenewal
			}
			h = fresh
		case !h.ready.LastHeartbeatTime.Equal(&current.LastHeartbeatTime):
			if !h.ready.LastTransitionTime.Equal(&current.LastTransitionTime) {
				h.readyTransition = now
			}
			h.probe = now
			h.ready = current.DeepCopy()
		}
	}
	// A renewed Lease is a sign of life too.
	if l := c.lease(node.Name); l != nil && l.Spec.RenewTime != nil {
		renew := l.Spec.RenewTime.Time
		if !h.haveLeaseRenewal || h.leaseRenew.Before(renew) {
			h.leaseRenew, h.haveLeaseRenewal = renew, true
			h.probe = now
		}
	}
	c.health[node.Name] = h
	probe := h.probe
	c.mu.Unlock()

	if !now.After(probe.Add(grace)) {
		return observed, current, nil
	}
	// Silent for longer than the grace period.
	in := node
	node = node.DeepCopy()
	ts := metav1.NewTime(now)
	for _, t := range conditionsToUnknown {
		cond := condition(node, t)
		switch {
		case cond == nil:
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown,
				Reason: reasonStatusNeverUpdated, Message: messageStatusNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: ts,
			})
		case cond.Status != corev1.ConditionUnknown:
			cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime = corev1.ConditionUnknown, reasonStatusUnknown, messageStatusUnknown, ts
		}
	}
	current = readyCondition(node)
	if apiequality.Semantic.DeepEqual(current, &observed) {
		return observed, current, nil
	}
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return observed, readyCondition(in), fmt.Errorf("node %s: set conditions unknown: %w", node.Name, err)
	}
	c.log.Info("node stopped reporting; conditions set to Unknown", "node", node.Name, "silentFor", now.Sub(probe).Round(time.Second))
	c.mu.Lock()
	h.readyTransition = now
	h.ready = current.DeepCopy()
	c.mu.Unlock()
	return observed, current, nil
}

func condition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}
