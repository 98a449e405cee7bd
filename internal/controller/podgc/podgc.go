// Package podgc deletes pods that nothing else will ever clean up, as
// upstream's pod garbage collector does. Every Config.Period it lists the
// pods and nodes from the informer caches and force-deletes (grace period
// 0, with the pod's UID as a precondition):
//
//   - terminated pods (phase Succeeded or Failed) beyond
//     Config.TerminatedThreshold, evicted ones first, then the oldest;
//   - orphans: pods bound to a node that no longer exists. A node missing
//     from the cache is quarantined for Config.Quarantine and then looked
//     up with a GET, so a slow informer never costs a running pod;
//   - pods being deleted that were never scheduled (no node will confirm
//     their termination);
//   - pods being deleted on a node that is not Ready and carries the
//     node.kubernetes.io/out-of-service taint (the administrator says the
//     node is gone for good).
//
// A pod that has not finished is first marked Failed (for orphans with a
// DisruptionTarget condition, reason DeletionByPodGC) so that its owners
// count it as failed, then deleted.
package podgc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Upstream's defaults.
const (
	DefaultTerminatedThreshold = 12500
	DefaultPeriod              = 20 * time.Second
	DefaultQuarantine          = 40 * time.Second
	defaultParallelism         = 8
)

// Reasons and messages of the DisruptionTarget condition set on orphans.
const (
	ReasonDeletionByPodGC = "DeletionByPodGC"
	messageOrphan         = "PodGC: node no longer exists"
)

// Config configures the collector. Client and Informers are required;
// every other zero value is a documented default.
type Config struct {
	// Client deletes pods and looks nodes up.
	Client kubernetes.Interface
	// Informers is the shared informer factory; the caller starts it after
	// New.
	Informers informers.SharedInformerFactory
	// Logger receives the collector's logs. Nil discards them.
	Logger *slog.Logger
	// Clock paces the passes and the quarantine. Nil is the real clock.
	Clock clock.WithTicker
	// TerminatedThreshold is how many terminated pods may exist before the
	// oldest are deleted (upstream's --terminated-pod-gc-threshold). Zero
	// means 12500; negative turns this collection off.
	TerminatedThreshold int
	// Period is the time between passes. Zero means 20s.
	Period time.Duration
	// Quarantine is how long a node may be missing from the cache before
	// a GET decides whether it is really gone. Zero means 40s.
	Quarantine time.Duration
	// Parallelism bounds concurrent deletions. Zero means 8.
	Parallelism int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.TerminatedThreshold == 0 {
		c.TerminatedThreshold = DefaultTerminatedThreshold
	}
	if c.Period == 0 {
		c.Period = DefaultPeriod
	}
	if c.Quarantine == 0 {
		c.Quarantine = DefaultQuarantine
	}
	if c.Parallelism == 0 {
		c.Parallelism = defaultParallelism
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("client is required")
	case c.Informers == nil:
		return errors.New("informer factory is required")
	case c.Period < 0:
		return fmt.Errorf("period %v is negative", c.Period)
	case c.Quarantine < 0:
		return fmt.Errorf("quarantine %v is negative", c.Quarantine)
	case c.Parallelism < 0:
		return fmt.Errorf("parallelism %d is negative", c.Parallelism)
	}
	return nil
}

// Controller is the pod garbage collector.
type Controller struct {
	cfg        Config
	log        *slog.Logger
	client     kubernetes.Interface
	podLister  corelisters.PodLister
	nodeLister corelisters.NodeLister
	synced     []cache.InformerSynced

	// missing maps the names of nodes that pods are bound to but the
	// cache lacks to when a pass first noticed. Only gc touches it, and
	// passes never overlap.
	missing map[string]time.Time
}

// New checks cfg and registers the informers. It does not call the API.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("podgc controller: %w", err)
	}
	pods := cfg.Informers.Core().V1().Pods()
	nodes := cfg.Informers.Core().V1().Nodes()
	return &Controller{
		cfg:        cfg,
		log:        cfg.Logger,
		client:     cfg.Client,
		podLister:  pods.Lister(),
		nodeLister: nodes.Lister(),
		synced:     []cache.InformerSynced{pods.Informer().HasSynced, nodes.Informer().HasSynced},
		missing:    map[string]time.Time{},
	}, nil
}

// Run waits for the caches, then runs a pass every Config.Period until
// ctx is done. It always returns nil; failed deletions are logged and
// retried by the next pass.
func (c *Controller) Run(ctx context.Context) error {
	c.log.Info("starting")
	defer c.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	ticker := c.cfg.Clock.NewTicker(c.cfg.Period)
	defer ticker.Stop()
	for {
		c.gc(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// gc runs one pass.
func (c *Controller) gc(ctx context.Context) {
	pods, err := c.podLister.List(labels.Everything())
	if err != nil {
		c.log.Error("list pods", "err", err)
		return
	}
	nodeList, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		c.log.Error("list nodes", "err", err)
		return
	}
	nodes := make(map[string]*corev1.Node, len(nodeList))
	for _, n := range nodeList {
		nodes[n.Name] = n
	}
	// Lister order is a map's; passes are easier to follow (and to test)
	// in a fixed order.
	slices.SortFunc(pods, func(a, b *corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if c.cfg.TerminatedThreshold > 0 {
		c.deleteAll(ctx, "terminated", c.terminated(pods), nil)
	}
	c.deleteAll(ctx, "terminating on out-of-service node", outOfService(pods, nodes), nil)
	c.deleteAll(ctx, "orphaned", c.orphaned(ctx, pods, nodes), &corev1.PodCondition{
		Type:    corev1.DisruptionTarget,
		Status:  corev1.ConditionTrue,
		Reason:  ReasonDeletionByPodGC,
		Message: messageOrphan,
	})
	c.deleteAll(ctx, "unscheduled and terminating", unscheduledTerminating(pods), nil)
}

func isTerminated(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// terminated returns the terminated pods beyond the threshold, in the
// order they go: evicted first, then oldest first, then by name.
func (c *Controller) terminated(pods []*corev1.Pod) []*corev1.Pod {
	var done []*corev1.Pod
	for _, p := range pods {
		if isTerminated(p) {
			done = append(done, p)
		}
	}
	n := len(done) - c.cfg.TerminatedThreshold
	if n <= 0 {
		return nil
	}
	slices.SortStableFunc(done, func(a, b *corev1.Pod) int {
		if ea, eb := evicted(a), evicted(b); ea != eb {
			if ea {
				return -1
			}
			return 1
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	c.log.Info("terminated pods above threshold", "count", len(done), "threshold", c.cfg.TerminatedThreshold, "deleting", n)
	return done[:n]
}

// evicted reports whether the node agent evicted pod (under resource
// pressure).
func evicted(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodFailed && pod.Status.Reason == "Evicted"
}

// outOfService returns the pods being deleted on nodes that are not Ready
// and carry the out-of-service taint.
func outOfService(pods []*corev1.Pod, nodes map[string]*corev1.Node) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil || p.Spec.NodeName == "" {
			continue
		}
		node := nodes[p.Spec.NodeName]
		if node == nil || nodeReady(node) {
			continue
		}
		if slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeOutOfService }) {
			out = append(out, p)
		}
	}
	return out
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// orphaned returns the pods bound to nodes that are gone: missing from the
// cache for at least the quarantine, and not found by a GET.
func (c *Controller) orphaned(ctx context.Context, pods []*corev1.Pod, nodes map[string]*corev1.Node) []*corev1.Pod {
	now := c.cfg.Clock.Now()
	referenced := map[string]bool{}
	for _, p := range pods {
		if name := p.Spec.NodeName; name != "" && nodes[name] == nil {
			referenced[name] = true
			if _, ok := c.missing[name]; !ok {
				c.missing[name] = now
			}
		}
	}
	gone := map[string]bool{}
	for name, since := range c.missing {
		if !referenced[name] {
			delete(c.missing, name)
			continue
		}
		if now.Sub(since) < c.cfg.Quarantine {
			continue
		}
		_, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			gone[name] = true
		case err != nil:
			c.log.Warn("look up missing node; will retry", "node", name, "err", err)
		default:
			// The cache lags; start over if it still lacks the node.
			delete(c.missing, name)
		}
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if gone[p.Spec.NodeName] {
			out = append(out, p)
		}
	}
	return out
}

func unscheduledTerminating(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil && p.Spec.NodeName == "" {
			out = append(out, p)
		}
	}
	return out
}

// deleteAll marks the pods Failed (with cond, when not nil) unless they
// already finished, and force-deletes them, Config.Parallelism at a time.
func (c *Controller) deleteAll(ctx context.Context, why string, pods []*corev1.Pod, cond *corev1.PodCondition) {
	if len(pods) == 0 {
		return
	}
	var mu sync.Mutex
	deleted := 0
	workqueue.ParallelizeUntil(ctx, c.cfg.Parallelism, len(pods), func(i int) {
		pod := pods[i]
		if err := c.markFailedAndDelete(ctx, pod, cond); err != nil {
			c.log.Warn("force-delete pod; will retry", "pod", pod.Namespace+"/"+pod.Name, "why", why, "err", err)
			return
		}
		mu.Lock()
		deleted++
		mu.Unlock()
		c.log.Info("force-deleted pod", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName, "why", why)
	})
	c.log.Debug("pass done", "why", why, "candidates", len(pods), "deleted", deleted)
}

// markFailedAndDelete moves an unfinished pod to phase Failed with a
// strategic merge patch of its status, then deletes it with grace period
// 0. Both carry the pod's UID as a precondition, so a new pod of the same
// name is never touched. A pod already gone is not an error.
func (c *Controller) markFailedAndDelete(ctx context.Context, pod *corev1.Pod, cond *corev1.PodCondition) error {
	pods := c.client.CoreV1().Pods(pod.Namespace)
	if !isTerminated(pod) {
		patch, err := failedStatusPatch(pod, cond, c.cfg.Clock.Now())
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		_, err = pods.Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pod %s/%s: mark failed: %w", pod.Namespace, pod.Name, err)
		}
	}
	err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pod %s/%s: delete: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// failedStatusPatch is the status patch that marks pod Failed. Pod
// conditions merge by type, so the patch carries only the new one.
func failedStatusPatch(pod *corev1.Pod, cond *corev1.PodCondition, now time.Time) ([]byte, error) {
	type status struct {
		Phase      corev1.PodPhase       `json:"phase"`
		Conditions []corev1.PodCondition `json:"conditions,omitempty"`
	}
	p := struct {
		Metadata struct {
			UID types.UID `json:"uid"`
		} `json:"metadata"`
		Status status `json:"status"`
	}{}
	p.Metadata.UID = pod.UID
	p.Status.Phase = corev1.PodFailed
	if cond != nil {
		c := *cond
		c.LastTransitionTime = metav1.NewTime(now)
		for _, old := range pod.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		p.Status.Conditions = []corev1.PodCondition{c}
	}
	return json.Marshal(p)
}
