package statefulset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
)

// sync brings one StatefulSet toward its spec. It returns how long to
// wait before syncing it again (0: only on the next event) or an error to
// retry with backoff.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || ns == "" || name == "" {
		c.log.Error("dropping malformed key", "key", key)
		return 0, nil
	}
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, err)
	}
	if set.Spec.Selector == nil || (len(set.Spec.Selector.MatchLabels) == 0 && len(set.Spec.Selector.MatchExpressions) == 0) {
		c.recorder.Event(set, corev1.EventTypeWarning, "SelectingAll", "This statefulset is selecting all pods. A non-empty selector is required.")
		return 0, nil
	}
	revs, err := c.claimRevisions(ctx, set)
	if err != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, err)
	}
	pods, err := c.claimPods(ctx, set)
	if err != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, err)
	}
	sortRevisions(revs)
	current, update, collisions, err := c.resolveRevisions(ctx, set, revs)
	if err != nil {
		return 0, fmt.Errorf("statefulset %s: revisions: %w", key, err)
	}
	status, updateErr := c.update(ctx, set, current, update, collisions, pods)
	var errs []error
	if updateErr != nil {
		errs = append(errs, updateErr)
	}
	if status != nil {
		if err := c.updateStatus(ctx, set, status); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.truncateHistory(ctx, set, pods, revs, current, update); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("statefulset %s: %w", key, err)
	}
	if set.Spec.MinReadySeconds > 0 && status != nil && int(status.AvailableReplicas) != replicas(set) {
		// Pods becoming available are not events: look again.
		return time.Duration(set.Spec.MinReadySeconds) * time.Second, nil
	}
	return 0, nil
}

// updateState is what one update pass knows.
type updateState struct {
	set                *appsv1.StatefulSet
	currentSet, newSet *appsv1.StatefulSet
	current, update    *appsv1.ControllerRevision
	now                time.Time
	// replicas[i] is the pod of ordinal start+i (to be created if its
	// phase is empty); condemned are the pods out of range, highest
	// ordinal first.
	replicas, condemned []*corev1.Pod
	firstUnhealthy      *corev1.Pod
	monotonic           bool
}

// update creates, deletes and updates the set's pods one step and returns
// the status to report (nil if it cannot tell).
func (c *Controller) update(ctx context.Context, set *appsv1.StatefulSet, current, update *appsv1.ControllerRevision, collisions int32, pods []*corev1.Pod) (*appsv1.StatefulSetStatus, error) {
	currentSet, err := applyRevision(set, current)
	if err != nil {
		return nil, err
	}
	newSet, err := applyRevision(set, update)
	if err != nil {
		return nil, err
	}
	u := &updateState{
		set: set, currentSet: currentSet, newSet: newSet, current: current, update: update,
		now:       c.clock.Now(),
		replicas:  make([]*corev1.Pod, replicas(set)),
		monotonic: set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement,
	}
	status := &appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    current.Name,
		UpdateRevision:     update.Name,
		CollisionCount:     &collisions,
	}
	start := startOrdinal(set)
	for _, p := range pods {
		switch ord := ordinal(p); {
		case inRange(set, p):
			u.replicas[ord-start] = p
		case ord >= 0:
			u.condemned = append(u.condemned, p)
		}
	}
	for i := range u.replicas {
		if u.replicas[i] == nil {
			u.replicas[i] = u.newVersionedPod(start + i)
		}
	}
	sort.SliceStable(u.condemned, func(i, j int) bool { return ordinal(u.condemned[i]) > ordinal(u.condemned[j]) })
	for _, p := range u.replicas {
		if !isHealthy(p) && u.firstUnhealthy == nil {
			u.firstUnhealthy = p
		}
	}
	for i := len(u.condemned) - 1; i >= 0; i-- {
		if !isHealthy(u.condemned[i]) && u.firstUnhealthy == nil {
			u.firstUnhealthy = u.condemned[i]
		}
	}
	done := func() (*appsv1.StatefulSetStatus, error) {
		c.computeStatus(status, u)
		return status, nil
	}
	if set.DeletionTimestamp != nil {
		return done()
	}
	if exit, err := u.runForAll(u.replicas, func(i int) (bool, error) { return c.processReplica(ctx, u, i) }); exit || err != nil {
		c.computeStatus(status, u)
		return status, err
	}
	if exit, err := u.runForAll(u.condemned, func(i int) (bool, error) { return c.processCondemned(ctx, u, i) }); exit || err != nil {
		c.computeStatus(status, u)
		return status, err
	}
	c.computeStatus(status, u)
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return status, nil
	}
	return status, c.rollingUpdate(ctx, u, status)
}

// newVersionedPod returns the pod to create for ordinal ord: at the
// current revision below the partition (or, without one, among the pods
// already at the current revision), else at the update revision.
func (u *updateState) newVersionedPod(ord int) *corev1.Pod {
	set := u.currentSet
	start := startOrdinal(set)
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType {
		ru := set.Spec.UpdateStrategy.RollingUpdate
		if (ru == nil && ord < start+int(set.Status.CurrentReplicas)) ||
			(ru != nil && ru.Partition != nil && ord < start+int(*ru.Partition)) {
			return newPod(u.currentSet, ord, u.current.Name)
		}
	}
	return newPod(u.newSet, ord, u.update.Name)
}

// runForAll runs fn on each index: in order, stopping at the first that
// says to (OrderedReady), or all at once in batches of doubling size
// (Parallel).
func (u *updateState) runForAll(pods []*corev1.Pod, fn func(i int) (bool, error)) (bool, error) {
	if u.monotonic {
		for i := range pods {
			if exit, err := fn(i); exit || err != nil {
				return true, err
			}
		}
		return false, nil
	}
	pos := 0
	for batch := min(len(pods), 1); pos < len(pods); batch = min(2*batch, len(pods)-pos) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		for i := pos; i < pos+batch; i++ {
			wg.Go(func() {
				if _, err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		pos += batch
		if err := errors.Join(errs...); err != nil {
			return true, err
		}
	}
	return false, nil
}

// processReplica brings the pod of replicas[i] one step along: recreate
// it if it ended, create it if missing, wait for it (OrderedReady), fix
// its identity. It says whether the pass must stop here.
func (c *Controller) processReplica(ctx context.Context, u *updateState, i int) (bool, error) {
	set := u.set
	p := u.replicas[i]
	if isFailed(p) || isSucceeded(p) {
		if isFailed(p) {
			c.recorder.Eventf(set, corev1.EventTypeWarning, "RecreatingFailedPod", "StatefulSet %s/%s is recreating failed Pod %s", set.Namespace, set.Name, p.Name)
		} else {
			c.recorder.Eventf(set, corev1.EventTypeNormal, "RecreatingTerminatedPod", "StatefulSet %s/%s is recreating terminated Pod %s", set.Namespace, set.Name, p.Name)
		}
		if err := c.deletePod(ctx, set, p); err != nil {
			return true, err
		}
		p = u.newVersionedPod(startOrdinal(set) + i)
		u.replicas[i] = p
	}
	if !isCreated(p) {
		if err := c.createPod(ctx, set, p); err != nil {
			return true, err
		}
		// The pass learns nothing more of a pod it just created.
		return u.monotonic, nil
	}
	if isPending(p) {
		// Claims deleted after the pod was created come back.
		if err := c.createClaims(ctx, set, p); err != nil {
			return true, err
		}
	}
	if u.monotonic {
		switch {
		case isTerminating(p):
			c.log.Debug("waiting for pod to terminate", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name)
			return true, nil
		case !isRunningAndReady(p):
			c.log.Debug("waiting for pod to be running and ready", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name)
			return true, nil
		case !isRunningAndAvailable(p, set.Spec.MinReadySeconds, u.now):
			c.log.Debug("waiting for pod to be available", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name)
			return true, nil
		}
	}
	if identityMatches(set, p) && storageMatches(set, p) {
		return false, nil
	}
	return false, c.updatePodIdentity(ctx, u.newSet, p)
}

// processCondemned deletes the pod condemned[i] (out of range). In
// OrderedReady mode it deletes one pod per pass, only once every other
// pod is healthy, and waits for deletions to finish.
func (c *Controller) processCondemned(ctx context.Context, u *updateState, i int) (bool, error) {
	p := u.condemned[i]
	if isTerminating(p) {
		return u.monotonic, nil
	}
	if u.monotonic && p != u.firstUnhealthy &&
		(!isRunningAndReady(p) || !isRunningAndAvailable(p, u.set.Spec.MinReadySeconds, u.now)) {
		return true, nil
	}
	if err := c.deletePod(ctx, u.set, p); err != nil {
		return true, err
	}
	return u.monotonic, nil
}

// rollingUpdate deletes pods of other revisions, from the highest ordinal
// down to the partition, so that at most maxUnavailable pods are
// unavailable; the next passes recreate them at the update revision.
func (c *Controller) rollingUpdate(ctx context.Context, u *updateState, status *appsv1.StatefulSetStatus) error {
	set := u.set
	partition, maxUnavailable := 0, 1
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		if ru.Partition != nil {
			partition = int(*ru.Partition)
		}
		if ru.MaxUnavailable != nil {
			n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, replicas(set), true)
			if err != nil {
				return fmt.Errorf("maxUnavailable: %w", err)
			}
			maxUnavailable = max(n, 1)
		}
	}
	unavailable := 0
	for _, p := range u.replicas {
		if !isHealthy(p) || !isRunningAndAvailable(p, set.Spec.MinReadySeconds, u.now) {
			unavailable++
		}
	}
	budget := maxUnavailable - unavailable
	for target := len(u.replicas) - 1; target >= partition && budget > 0; target-- {
		p := u.replicas[target]
		if revision(p) == u.update.Name || isTerminating(p) {
			continue
		}
		c.log.Info("deleting pod for update", "statefulset", set.Namespace+"/"+set.Name, "pod", p.Name, "revision", u.update.Name)
		if err := c.deletePod(ctx, set, p); err != nil {
			return err
		}
		budget--
		status.CurrentReplicas--
	}
	return nil
}

// computeStatus fills status's counts from the pods of the pass.
func (c *Controller) computeStatus(status *appsv1.StatefulSetStatus, u *updateState) {
	status.Replicas, status.ReadyReplicas, status.AvailableReplicas = 0, 0, 0
	status.CurrentReplicas, status.UpdatedReplicas = 0, 0
	for _, list := range [][]*corev1.Pod{u.replicas, u.condemned} {
		for _, p := range list {
			if isCreated(p) {
				status.Replicas++
			}
			if isRunningAndReady(p) {
				status.ReadyReplicas++
				if isRunningAndAvailable(p, u.set.Spec.MinReadySeconds, u.now) {
					status.AvailableReplicas++
				}
			}
			if isCreated(p) && !isTerminating(p) {
				if revision(p) == u.current.Name {
					status.CurrentReplicas++
				}
				if revision(p) == u.update.Name {
					status.UpdatedReplicas++
				}
			}
		}
	}
}

// updateStatus completes a finished rolling update (every pod updated and
// ready: the update revision becomes current) and writes the status if
// it changed, retrying once on a conflict with a fresh copy.
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, st *appsv1.StatefulSetStatus) error {
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentReplicas = st.UpdatedReplicas
		st.CurrentRevision = st.UpdateRevision
	}
	old := set.Status
	if old.ObservedGeneration >= st.ObservedGeneration && old.Replicas == st.Replicas &&
		old.ReadyReplicas == st.ReadyReplicas && old.AvailableReplicas == st.AvailableReplicas &&
		old.CurrentReplicas == st.CurrentReplicas && old.UpdatedReplicas == st.UpdatedReplicas &&
		old.CurrentRevision == st.CurrentRevision && old.UpdateRevision == st.UpdateRevision &&
		equalInt32Ptr(old.CollisionCount, st.CollisionCount) {
		return nil
	}
	fill := func(s *appsv1.StatefulSet) {
		conditions := s.Status.Conditions
		s.Status = *st
		s.Status.Conditions = conditions
	}
	u := set.DeepCopy()
	fill(u)
	_, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		if err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		return nil
	}
	fresh, getErr := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	if getErr != nil {
		return fmt.Errorf("update status: %w", errors.Join(err, getErr))
	}
	fill(fresh)
	if _, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func equalInt32Ptr(a, b *int32) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// recordPodEvent records the outcome of a pod call as upstream words it.
func (c *Controller) recordPodEvent(verb, reason string, set *appsv1.StatefulSet, p *corev1.Pod, err error) {
	if err == nil {
		c.recorder.Eventf(set, corev1.EventTypeNormal, "Successful"+reason, "%s Pod %s in StatefulSet %s successful", verb, p.Name, set.Name)
		return
	}
	c.recorder.Eventf(set, corev1.EventTypeWarning, "Failed"+reason, "%s Pod %s in StatefulSet %s failed error: %s", verb, p.Name, set.Name, err)
}

// createPod creates a pod's claims, then the pod.
func (c *Controller) createPod(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	if err := c.createClaims(ctx, set, p); err != nil {
		c.recordPodEvent("create", "Create", set, p, err)
		return err
	}
	_, err := c.client.CoreV1().Pods(set.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// The cache lags behind our own creation.
		return fmt.Errorf("create pod %s: %w", p.Name, err)
	}
	c.recordPodEvent("create", "Create", set, p, err)
	if err != nil {
		return fmt.Errorf("create pod %s: %w", p.Name, err)
	}
	return nil
}

// createClaims creates the claims of a pod's volumeClaimTemplates that do
// not exist yet. It asks the API, not a cache: claims are created rarely.
func (c *Controller) createClaims(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	ord := ordinal(p)
	var errs []error
	for i := range set.Spec.VolumeClaimTemplates {
		tmpl := &set.Spec.VolumeClaimTemplates[i]
		name := claimName(set, tmpl, ord)
		_, err := c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("get claim %s: %w", name, err))
			continue
		}
		claim := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Namespace:   set.Namespace,
				Labels:      copyMap(tmpl.Labels),
				Annotations: tmpl.Annotations,
			},
			Spec: *tmpl.Spec.DeepCopy(),
		}
		for k, v := range set.Spec.Selector.MatchLabels {
			claim.Labels[k] = v
		}
		_, err = c.client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, claim, metav1.CreateOptions{})
		switch {
		case err == nil:
			c.recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", name, p.Name, set.Name)
		case apierrors.IsAlreadyExists(err):
		default:
			c.recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %s", name, p.Name, set.Name, err)
			errs = append(errs, fmt.Errorf("create claim %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// deletePod deletes a pod of the set; a pod already gone is not an error.
func (c *Controller) deletePod(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	c.recordPodEvent("delete", "Delete", set, p, err)
	if err != nil {
		return fmt.Errorf("delete pod %s: %w", p.Name, err)
	}
	return nil
}

// updatePodIdentity gives a pod back its identity labels and claims,
// retrying once on a conflict with a fresh copy.
func (c *Controller) updatePodIdentity(ctx context.Context, set *appsv1.StatefulSet, p *corev1.Pod) error {
	fix := func(p *corev1.Pod) *corev1.Pod {
		p = p.DeepCopy()
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[appsv1.StatefulSetPodNameLabel] = p.Name
		p.Labels[appsv1.PodIndexLabel] = fmt.Sprint(ordinal(p))
		setStorage(set, p)
		return p
	}
	_, err := c.client.CoreV1().Pods(p.Namespace).Update(ctx, fix(p), metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		fresh, getErr := c.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("update pod %s: %w", p.Name, errors.Join(err, getErr))
		}
		_, err = c.client.CoreV1().Pods(p.Namespace).Update(ctx, fix(fresh), metav1.UpdateOptions{})
	}
	c.recordPodEvent("update", "Update", set, p, err)
	if err != nil {
		return fmt.Errorf("update pod %s: %w", p.Name, err)
	}
	return nil
}
