package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// controllerKind is what the controller writes into its pods'
// ownerReferences.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// sync brings the ReplicaSet at key (namespace/name) toward its spec. It
// returns an error when the work must be retried.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key we made; nothing to retry
	}
	rs, err := c.rsLister.ReplicaSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("replicaset %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// Validation makes this unreachable for stored objects; retrying
		// would not help.
		c.log.Error("invalid selector", "replicaset", key, "err", err)
		return nil
	}
	needsSync := c.exp.satisfied(key)

	all, err := c.podLister.Pods(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("replicaset %s: list pods: %w", key, err)
	}
	// The cache lists in no particular order; sort for repeatable work.
	slices.SortFunc(all, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var active []*corev1.Pod
	var terminating int32
	for _, p := range all {
		if isTerminal(p) {
			continue
		}
		if p.DeletionTimestamp != nil {
			if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == rs.UID {
				terminating++
			}
			continue
		}
		active = append(active, p)
	}
	pods, err := c.claim(ctx, rs, selector, active)
	if err != nil {
		return fmt.Errorf("replicaset %s: %w", key, err)
	}

	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manage(ctx, rs, pods, all)
	}
	now := c.clock.Now()
	status, nextAvailable := computeStatus(rs, pods, terminating, manageErr, now)
	if err := c.updateStatus(ctx, rs, status); err != nil {
		return fmt.Errorf("replicaset %s: %w", key, errors.Join(manageErr, err))
	}
	if manageErr != nil {
		return fmt.Errorf("replicaset %s: %w", key, manageErr)
	}
	if nextAvailable > 0 {
		// A ready pod becomes available after minReadySeconds; come back
		// then to count it.
		c.enqueueAfter(rs, nextAvailable)
	}
	return nil
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// claim returns the pods rs owns after adopting orphans that match its
// selector and releasing owned pods that no longer match. pods are the
// active pods of rs's namespace.
func (c *Controller) claim(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var (
		owned     []*corev1.Pod
		errs      []error
		canAdopt  *bool // checked against the API once, on the first orphan
		adoptable = func() bool {
			if canAdopt == nil {
				ok := c.freshAndAlive(ctx, rs)
				canAdopt = &ok
			}
			return *canAdopt
		}
	)
	for _, pod := range pods {
		ref := metav1.GetControllerOfNoCopy(pod)
		matches := selector.Matches(labels.Set(pod.Labels))
		switch {
		case ref != nil && ref.UID != rs.UID:
			// Another controller's pod.
		case ref != nil && matches:
			owned = append(owned, pod)
		case ref != nil:
			if rs.DeletionTimestamp != nil {
				continue
			}
			if err := c.release(ctx, rs, pod); err != nil {
				errs = append(errs, err)
			}
		case matches && rs.DeletionTimestamp == nil && adoptable():
			if err := c.adopt(ctx, rs, pod); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				errs = append(errs, err)
				continue
			}
			owned = append(owned, pod)
		}
	}
	return owned, errors.Join(errs...)
}

// freshAndAlive checks with the API (not the cache) that rs still exists
// with the same UID and is not being deleted, so the controller never
// adopts pods for a ReplicaSet that is going away.
func (c *Controller) freshAndAlive(ctx context.Context, rs *appsv1.ReplicaSet) bool {
	fresh, err := c.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	return fresh.UID == rs.UID && fresh.DeletionTimestamp == nil
}

func (c *Controller) adopt(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind)},
			"uid":             pod.UID,
		},
	})
	if err != nil {
		return err
	}
	if _, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("adopt pod %s: %w", pod.Name, err)
	}
	c.log.Debug("adopted pod", "replicaset", rs.Namespace+"/"+rs.Name, "pod", pod.Name)
	return nil
}

func (c *Controller) release(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"ownerReferences": []map[string]any{{"$patch": "delete", "uid": rs.UID}},
			"uid":             pod.UID,
		},
	})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or its uid changed (a new pod of that name): nothing of
		// ours to release.
		return nil
	}
	if err != nil {
		return fmt.Errorf("release pod %s: %w", pod.Name, err)
	}
	c.log.Debug("released pod", "replicaset", rs.Namespace+"/"+rs.Name, "pod", pod.Name)
	return nil
}

// failure is why the last round of creations or deletions failed.
type failure struct {
	// reason is the ReplicaFailure condition's reason: FailedCreate or
	// FailedDelete.
	reason string
	err    error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// manage creates or deletes pods so that rs has spec.replicas active pods.
// all are every pod of the namespace, to find rs's siblings' pods. A
// failure is returned as a *failure.
func (c *Controller) manage(ctx context.Context, rs *appsv1.ReplicaSet, pods, all []*corev1.Pod) error {
	key := rs.Namespace + "/" + rs.Name
	want := 1
	if rs.Spec.Replicas != nil {
		want = int(*rs.Spec.Replicas)
	}
	diff := len(pods) - want
	switch {
	case diff < 0:
		n := min(-diff, c.cfg.BurstReplicas)
		c.exp.expect(key, n, nil)
		created, err := slowStart(n, func() error { return c.createPod(ctx, rs) })
		for range n - created {
			// Pods never attempted, or failed: not coming.
			c.exp.created(key)
		}
		if err != nil {
			return &failure{reason: "FailedCreate", err: err}
		}
	case diff > 0:
		n := min(diff, c.cfg.BurstReplicas)
		victims := podsToDelete(pods, c.relatedPods(rs, pods, all), n, c.clock.Now())
		uids := make([]types.UID, len(victims))
		for i, p := range victims {
			uids[i] = p.UID
		}
		c.exp.expect(key, 0, uids)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex // guards errs
			errs []error
		)
		for _, p := range victims {
			wg.Go(func() {
				gone, err := c.deletePodOf(ctx, rs, p)
				if gone || err != nil {
					// No delete event is coming for this pod from us.
					c.exp.deleted(key, p.UID)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			return &failure{reason: "FailedDelete", err: errors.Join(errs...)}
		}
	}
	return nil
}

// relatedPods returns the active pods of rs and of every ReplicaSet with
// the same controller (the other revisions of its Deployment).
func (c *Controller) relatedPods(rs *appsv1.ReplicaSet, pods, all []*corev1.Pod) []*corev1.Pod {
	owner := metav1.GetControllerOfNoCopy(rs)
	if owner == nil {
		return pods
	}
	siblings, err := c.rsLister.ReplicaSets(rs.Namespace).List(labels.Everything())
	if err != nil {
		return pods
	}
	ids := map[types.UID]bool{}
	for _, s := range siblings {
		if ref := metav1.GetControllerOfNoCopy(s); ref != nil && ref.UID == owner.UID {
			ids[s.UID] = true
		}
	}
	var out []*corev1.Pod
	for _, p := range all {
		if isTerminal(p) || p.DeletionTimestamp != nil {
			continue
		}
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ids[ref.UID] {
			out = append(out, p)
		}
	}
	return out
}

// slowStart calls fn n times in batches of 1, 2, 4, … concurrent calls,
// stopping after the first batch with a failure, so that a template that
// cannot work fails once rather than n times. It returns how many calls
// succeeded and the errors of the failing batch.
func slowStart(n int, fn func() error) (int, error) {
	done := 0
	for batch := 1; done < n; batch *= 2 {
		size := min(batch, n-done)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex // guards errs
			errs []error
		)
		for range size {
			wg.Go(func() {
				if err := fn(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		done += size - len(errs)
		if len(errs) > 0 {
			return done, errors.Join(errs...)
		}
	}
	return done, nil
}

func (c *Controller) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	pod := podFromTemplate(rs)
	created, err := c.client.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			// The namespace is going away with everything in it.
			return nil
		}
		c.events.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create pod: %w", err)
	}
	c.events.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

// podFromTemplate returns a new pod for rs, owned by it.
func podFromTemplate(rs *appsv1.ReplicaSet) *corev1.Pod {
	t := rs.Spec.Template.DeepCopy()
	prefix := rs.Name + "-"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    prefix,
			Namespace:       rs.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind)},
		},
		Spec: t.Spec,
	}
}

// deletePodOf deletes pod, one of rs's. gone reports that the pod was
// already gone (or replaced by another of that name), which is no error.
func (c *Controller) deletePodOf(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) (gone bool, err error) {
	uid := pod.UID
	err = c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return true, nil
	}
	if err != nil {
		c.events.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return false, fmt.Errorf("delete pod %s: %w", pod.Name, err)
	}
	c.events.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", pod.Name)
	return false, nil
}

// computeStatus returns rs's status for its active pods, and, when some
// ready pods are not yet available, how long until the first becomes so
// (zero otherwise).
func computeStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, terminating int32, manageErr error, now time.Time) (appsv1.ReplicaSetStatus, time.Duration) {
	st := appsv1.ReplicaSetStatus{
		Replicas:            int32(len(pods)),
		ObservedGeneration:  rs.Generation,
		TerminatingReplicas: &terminating,
		Conditions:          rs.Status.Conditions,
	}
	templateLabels := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	var next time.Duration
	for _, p := range pods {
		if templateLabels.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		since := readySince(p)
		if since == nil {
			continue
		}
		st.ReadyReplicas++
		if minReady == 0 {
			st.AvailableReplicas++
			continue
		}
		if wait := since.Add(minReady).Sub(now); wait < 0 && !since.IsZero() {
			st.AvailableReplicas++
		} else if wait >= 0 && (next == 0 || wait+time.Second < next) {
			next = wait + time.Second
		}
	}
	st.Conditions = withFailureCondition(st.Conditions, manageErr, now)
	return st, next
}

// withFailureCondition sets or clears the ReplicaFailure condition for
// the outcome of the last create/delete round.
func withFailureCondition(conds []appsv1.ReplicaSetCondition, manageErr error, now time.Time) []appsv1.ReplicaSetCondition {
	var out []appsv1.ReplicaSetCondition
	var had bool
	for _, c := range conds {
		if c.Type == appsv1.ReplicaSetReplicaFailure {
			had = true
			if manageErr == nil {
				continue
			}
		}
		out = append(out, c)
	}
	var f *failure
	if errors.As(manageErr, &f) && !had {
		out = append(out, appsv1.ReplicaSetCondition{
			Type:               appsv1.ReplicaSetReplicaFailure,
			Status:             corev1.ConditionTrue,
			Reason:             f.reason,
			Message:            f.err.Error(),
			LastTransitionTime: metav1.NewTime(now),
		})
	}
	return out
}

// updateStatus writes status unless rs already shows it. A conflict is
// returned like any error: the sync is retried with the newer copy.
func (c *Controller) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, status appsv1.ReplicaSetStatus) error {
	if statusEqual(rs.Status, status) {
		return nil
	}
	cp := rs.DeepCopy()
	cp.Status = status
	_, err := c.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func statusEqual(a, b appsv1.ReplicaSetStatus) bool {
	ta, tb := int32(0), int32(0)
	if a.TerminatingReplicas != nil {
		ta = *a.TerminatingReplicas
	}
	if b.TerminatingReplicas != nil {
		tb = *b.TerminatingReplicas
	}
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.AvailableReplicas != b.AvailableReplicas || a.ObservedGeneration != b.ObservedGeneration || ta != tb ||
		(a.TerminatingReplicas == nil) != (b.TerminatingReplicas == nil) || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status ||
			a.Conditions[i].Reason != b.Conditions[i].Reason || a.Conditions[i].Message != b.Conditions[i].Message {
			return false
		}
	}
	return true
}
