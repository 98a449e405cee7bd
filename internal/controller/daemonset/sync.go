package daemonset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
)

type fit struct{ run, stay bool }

// syncState is what one sync knows about a DaemonSet. ds is the cache's
// and must not be modified.
type syncState struct {
	key   string
	ds    *appsv1.DaemonSet
	nodes []*corev1.Node
	// fit holds shouldRun's answers for the nodes, by name.
	fit map[string]fit
	// pods are the claimed pods; byNode maps node names to them, without
	// pods that are both being deleted and terminal.
	pods   []*corev1.Pod
	byNode map[string][]*corev1.Pod
	hash   string
	// requeue is the soonest time the DaemonSet must be synced again.
	requeue time.Duration
}

func (s *syncState) requeueAfter(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

// sync brings one DaemonSet toward its spec. It returns how long to wait
// before syncing it again (0: only on the next event) or an error to
// retry with backoff.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || ns == "" || name == "" {
		c.log.Error("dropping malformed key", "key", key)
		return 0, nil
	}
	ds, err := c.daemonSets.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, err)
	}
	if ds.Spec.Selector == nil || (len(ds.Spec.Selector.MatchLabels) == 0 && len(ds.Spec.Selector.MatchExpressions) == 0) {
		c.recorder.Event(ds, corev1.EventTypeWarning, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.")
		return 0, nil
	}
	if ds.DeletionTimestamp != nil {
		// The garbage collector deletes its pods and revisions.
		return 0, nil
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: list nodes: %w", key, err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	cur, old, err := c.constructHistory(ctx, ds)
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: revisions: %w", key, err)
	}
	s := &syncState{key: key, ds: ds, nodes: nodes, hash: cur.Labels[appsv1.DefaultDaemonSetUniqueLabelKey], fit: make(map[string]fit, len(nodes))}
	pl := newPlacer(ds)
	for _, n := range nodes {
		run, stay := pl.fits(n)
		s.fit[n.Name] = fit{run, stay}
	}
	if err := c.loadPods(ctx, s); err != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, err)
	}
	if !c.expectations.satisfied(key, c.clock.Now()) {
		// Our last creations or deletions are not in the cache yet: only
		// report, and keep observedGeneration where it is.
		if err := c.updateStatus(ctx, s, false); err != nil {
			return 0, fmt.Errorf("daemonset %s: %w", key, err)
		}
		return s.requeue, nil
	}
	manageErr := c.manage(ctx, s)
	if manageErr == nil && c.expectations.satisfied(key, c.clock.Now()) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		manageErr = c.rollingUpdate(ctx, s)
	}
	var errs []error
	if manageErr != nil {
		errs = append(errs, manageErr)
	}
	if err := c.cleanupHistory(ctx, ds, s.pods, old); err != nil {
		errs = append(errs, err)
	}
	if err := c.updateStatus(ctx, s, true); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, err)
	}
	return s.requeue, nil
}

// loadPods claims the DaemonSet's pods and maps them to nodes.
func (c *Controller) loadPods(ctx context.Context, s *syncState) error {
	pods, err := c.claimPods(ctx, s.ds)
	if err != nil {
		return err
	}
	s.pods = pods
	s.byNode = map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil && isTerminal(p) {
			continue
		}
		node, err := targetNode(p)
		if err != nil {
			c.log.Debug("daemon pod without a node", "daemonset", s.key, "pod", p.Name, "err", err)
			continue
		}
		s.byNode[node] = append(s.byNode[node], p)
	}
	return nil
}

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// manage creates the missing daemon pods and deletes those that must go:
// failed or succeeded ones (failed ones with backoff), extra ones on a
// node, and those on nodes they no longer fit or that are gone.
func (c *Controller) manage(ctx context.Context, s *syncState) error {
	ds := s.ds
	var create []string
	var remove []*corev1.Pod
	failed := 0
	known := map[string]bool{}
	surge := allowsSurge(ds)
	for _, node := range s.nodes {
		known[node.Name] = true
		run, stay := s.fit[node.Name].run, s.fit[node.Name].stay
		pods, exists := s.byNode[node.Name]
		switch {
		case run && !exists:
			create = append(create, node.Name)
		case stay:
			var running []*corev1.Pod
			for _, p := range pods {
				switch {
				case p.DeletionTimestamp != nil:
				case p.Status.Phase == corev1.PodFailed:
					failed++
					bk := string(ds.UID) + "/" + node.Name
					now := c.clock.Now()
					if c.failedPods.IsInBackOffSinceUpdate(bk, now) {
						s.requeueAfter(c.failedPods.Get(bk))
						continue
					}
					c.failedPods.Next(bk, now)
					c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node.Name)
					remove = append(remove, p)
				case p.Status.Phase == corev1.PodSucceeded:
					// A daemon is not meant to end: replace it.
					remove = append(remove, p)
				default:
					running = append(running, p)
				}
			}
			remove = append(remove, excessPods(running, surge, s.hash, ds.Spec.MinReadySeconds, c.clock.Now())...)
		case exists:
			for _, p := range pods {
				if p.DeletionTimestamp == nil {
					remove = append(remove, p)
				}
			}
		}
	}
	// Pods meant for nodes that are gone can never be scheduled.
	for node, pods := range s.byNode {
		if known[node] {
			continue
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				remove = append(remove, p)
			}
		}
	}
	err := c.syncNodes(ctx, s, remove, create)
	if err == nil && failed > 0 {
		// Rate-limit the retry: a node agent keeps failing these pods.
		err = fmt.Errorf("%d failed pods", failed)
	}
	return err
}

// excessPods returns the running pods of a node beyond the one (or,
// while surging, two) that may stay. Without surge the oldest stays;
// with surge, the oldest current one, and the oldest old one while it is
// ready and the current one is not yet available.
func excessPods(running []*corev1.Pod, surge bool, hash string, minReady int32, now time.Time) []*corev1.Pod {
	if len(running) <= 1 {
		return nil
	}
	sortByAge(running)
	if !surge {
		return running[1:]
	}
	var out []*corev1.Pod
	var newest, oldest *corev1.Pod
	for _, p := range running {
		switch {
		case p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash && newest == nil:
			newest = p
		case p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] != hash && oldest == nil:
			oldest = p
		default:
			out = append(out, p)
		}
	}
	if newest != nil && oldest != nil && (!isReady(oldest) || isAvailable(newest, minReady, metav1.NewTime(now))) {
		out = append(out, oldest)
	}
	return out
}

// sortByAge orders pods scheduled first, then oldest first, then by name.
func sortByAge(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName != "") != (b.Spec.NodeName != "") {
			return a.Spec.NodeName != ""
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

// allowsSurge reports whether a rolling update may start new pods beside
// old ones.
func allowsSurge(ds *appsv1.DaemonSet) bool {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return false
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 100, true)
	return err == nil && n > 0
}

// syncNodes deletes pods and creates pods on nodes, at most BurstReplicas
// of each, creations in batches of doubling size.
func (c *Controller) syncNodes(ctx context.Context, s *syncState, remove []*corev1.Pod, create []string) error {
	ds := s.ds
	burst := c.cfg.BurstReplicas
	if len(create) > burst {
		create = create[:burst]
		s.requeueAfter(time.Millisecond)
	}
	if len(remove) > burst {
		remove = remove[:burst]
		s.requeueAfter(time.Millisecond)
	}
	c.expectations.expect(s.key, len(create), len(remove), c.clock.Now())
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}

	tmpl := podTemplate(ds, s.hash)
	pos := 0
	for batch := min(len(create), slowStartInitialBatch); pos < len(create); batch = min(2*batch, len(create)-pos) {
		var wg sync.WaitGroup
		before := len(errs)
		for _, node := range create[pos : pos+batch] {
			wg.Go(func() {
				if err := c.createPod(ctx, ds, tmpl, node); err != nil {
					c.expectations.created(s.key)
					if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
						fail(err)
					}
				}
			})
		}
		wg.Wait()
		pos += batch
		mu.Lock()
		failed := len(errs) > before
		mu.Unlock()
		if failed {
			for range len(create) - pos {
				c.expectations.created(s.key)
			}
			break
		}
	}

	var wg sync.WaitGroup
	for _, p := range remove {
		wg.Go(func() {
			err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
			switch {
			case apierrors.IsNotFound(err):
				c.expectations.deleted(s.key)
			case err != nil:
				c.expectations.deleted(s.key)
				c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				fail(fmt.Errorf("delete pod %s: %w", p.Name, err))
			default:
				c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", p.Name)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// podTemplate is the DaemonSet's pod template as its pods get it: daemon
// tolerations, the template generation and revision hash labels.
func podTemplate(ds *appsv1.DaemonSet, hash string) *corev1.PodTemplateSpec {
	t := ds.Spec.Template.DeepCopy()
	addDaemonTolerations(&t.Spec)
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	if g := templateGeneration(ds); g != nil {
		t.Labels[templateGenerationLabel] = strconv.FormatInt(*g, 10)
	}
	if hash != "" {
		t.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	}
	return t
}

func (c *Controller) createPod(ctx context.Context, ds *appsv1.DaemonSet, tmpl *corev1.PodTemplateSpec, node string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          copyMap(tmpl.Labels),
			Annotations:     copyMap(tmpl.Annotations),
			Finalizers:      append([]string(nil), tmpl.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, dsKind)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	pod.Spec.Affinity = nodeAffinityFor(pod.Spec.Affinity, node)
	got, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		return fmt.Errorf("create pod for node %s: %w", node, err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", got.Name)
	return nil
}

// rollingUpdate replaces pods of old revisions within maxUnavailable (by
// deleting them; manage recreates them) or maxSurge (by creating new pods
// beside them; manage deletes the old ones once the new are available).
func (c *Controller) rollingUpdate(ctx context.Context, s *syncState) error {
	ds := s.ds
	now := metav1.NewTime(c.clock.Now())
	gen := templateGeneration(ds)
	desired := 0
	byNode := map[string][]*corev1.Pod{}
	for _, node := range s.nodes {
		if s.fit[node.Name].run {
			desired++
			byNode[node.Name] = s.byNode[node.Name]
		}
	}
	for node, pods := range s.byNode {
		if _, ok := byNode[node]; !ok {
			byNode[node] = pods
		}
	}
	maxSurge, maxUnavailable := 0, 0
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		var err error
		if ru.MaxUnavailable != nil {
			if maxUnavailable, err = intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true); err != nil {
				return fmt.Errorf("maxUnavailable: %w", err)
			}
		}
		if ru.MaxSurge != nil {
			if maxSurge, err = intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true); err != nil {
				return fmt.Errorf("maxSurge: %w", err)
			}
		}
	}
	if desired > 0 && maxUnavailable == 0 && maxSurge == 0 {
		// Neither may be zero in a valid spec; behave as upstream.
		maxUnavailable = 1
	}
	nodeNames := make([]string, 0, len(byNode))
	for n := range byNode {
		nodeNames = append(nodeNames, n)
	}
	sort.Strings(nodeNames)

	if maxSurge == 0 {
		unavailable := 0
		var replace, candidates []*corev1.Pod
		for _, node := range nodeNames {
			newPod, oldPod, ok := updatedPodsOnNode(byNode[node], s.hash, gen)
			switch {
			case !ok:
				// Excess pods: manage cleans up; count as unavailable.
				unavailable++
			case oldPod == nil && newPod == nil, oldPod != nil && newPod != nil:
				unavailable++
			case newPod != nil:
				if !isAvailable(newPod, ds.Spec.MinReadySeconds, now) {
					unavailable++
				}
			case !isAvailable(oldPod, ds.Spec.MinReadySeconds, now):
				// Unavailable anyway: replace it at once.
				replace = append(replace, oldPod)
				unavailable++
			default:
				candidates = append(candidates, oldPod)
			}
		}
		n := min(max(maxUnavailable-unavailable, 0), len(candidates))
		return c.syncNodes(ctx, s, append(replace, candidates[:n]...), nil)
	}

	var remove, stale []*corev1.Pod
	var allowed, candidates []string
	surging, available := 0, 0
	for _, node := range nodeNames {
		newPod, oldPod, ok := updatedPodsOnNode(byNode[node], s.hash, gen)
		if !ok {
			surging++
			continue
		}
		switch {
		case oldPod != nil && isAvailable(oldPod, ds.Spec.MinReadySeconds, now):
			available++
		case oldPod == nil && newPod != nil && isAvailable(newPod, ds.Spec.MinReadySeconds, now):
			available++
		}
		switch {
		case oldPod == nil:
		case newPod == nil:
			run := s.fit[node].run // false for a node that is gone
			switch {
			case !run && !isAvailable(oldPod, ds.Spec.MinReadySeconds, now):
				remove = append(remove, oldPod)
			case !run:
				stale = append(stale, oldPod)
			case !isAvailable(oldPod, ds.Spec.MinReadySeconds, now):
				allowed = append(allowed, node)
			default:
				candidates = append(candidates, node)
			}
		default:
			if !isAvailable(newPod, ds.Spec.MinReadySeconds, now) {
				surging++
				continue
			}
			remove = append(remove, oldPod)
		}
	}
	// With surge the owner wants full availability: delete pods of nodes
	// the set left only as other nodes' pods become available.
	if extra := min(available-desired, len(stale)); extra > 0 {
		remove = append(remove, stale[:extra]...)
	}
	n := min(max(maxSurge-surging, 0), len(candidates))
	return c.syncNodes(ctx, s, remove, append(allowed, candidates[:n]...))
}

// updatedPodsOnNode splits a node's live pods into the one of the current
// revision and the one of an old revision; ok is false when there are
// more than one of either (manage removes the extra first).
func updatedPodsOnNode(pods []*corev1.Pod, hash string, gen *int64) (newPod, oldPod *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if isUpdated(p, hash, gen) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = p
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = p
		}
	}
	return newPod, oldPod, true
}

// updateStatus writes the DaemonSet's status if it changed, retrying once
// on a conflict with a fresh copy. observed says whether this sync acted
// on the current generation.
func (c *Controller) updateStatus(ctx context.Context, s *syncState, observed bool) error {
	ds := s.ds
	now := metav1.NewTime(c.clock.Now())
	gen := templateGeneration(ds)
	var st appsv1.DaemonSetStatus
	for _, node := range s.nodes {
		pods := s.byNode[node.Name]
		switch {
		case s.fit[node.Name].run:
			st.DesiredNumberScheduled++
			if len(pods) == 0 {
				continue
			}
			st.CurrentNumberScheduled++
			pods = append([]*corev1.Pod(nil), pods...)
			sortByAge(pods)
			p := pods[0]
			if isReady(p) {
				st.NumberReady++
				if isAvailable(p, ds.Spec.MinReadySeconds, now) {
					st.NumberAvailable++
				}
			}
			if isUpdated(p, s.hash, gen) {
				st.UpdatedNumberScheduled++
			}
		case len(pods) > 0:
			st.NumberMisscheduled++
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	if ds.Spec.MinReadySeconds > 0 && st.NumberReady != st.NumberAvailable {
		s.requeueAfter(time.Duration(ds.Spec.MinReadySeconds) * time.Second)
	}
	fill := func(ds *appsv1.DaemonSet) {
		if observed {
			ds.Status.ObservedGeneration = ds.Generation
		}
		ds.Status.DesiredNumberScheduled = st.DesiredNumberScheduled
		ds.Status.CurrentNumberScheduled = st.CurrentNumberScheduled
		ds.Status.NumberMisscheduled = st.NumberMisscheduled
		ds.Status.NumberReady = st.NumberReady
		ds.Status.UpdatedNumberScheduled = st.UpdatedNumberScheduled
		ds.Status.NumberAvailable = st.NumberAvailable
		ds.Status.NumberUnavailable = st.NumberUnavailable
	}
	u := ds.DeepCopy()
	fill(u)
	if equalStatus(u.Status, ds.Status) {
		return nil
	}
	_, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		if err != nil {
			return fmt.Errorf("update status: %w", err)
		}
		return nil
	}
	fresh, getErr := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if getErr != nil {
		return fmt.Errorf("update status: %w", errors.Join(err, getErr))
	}
	fill(fresh)
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func equalStatus(a, b appsv1.DaemonSetStatus) bool {
	return a.ObservedGeneration == b.ObservedGeneration &&
		a.DesiredNumberScheduled == b.DesiredNumberScheduled &&
		a.CurrentNumberScheduled == b.CurrentNumberScheduled &&
		a.NumberMisscheduled == b.NumberMisscheduled &&
		a.NumberReady == b.NumberReady &&
		a.UpdatedNumberScheduled == b.UpdatedNumberScheduled &&
		a.NumberAvailable == b.NumberAvailable &&
		a.NumberUnavailable == b.NumberUnavailable
}
