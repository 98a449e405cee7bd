package namespace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// kind is a namespaced resource to empty.
type kind struct {
	gvr              schema.GroupVersionResource
	deleteCollection bool
	list             bool
}

// leftovers is what remains of a namespace's content after a pass.
type leftovers struct {
	// byResource counts remaining objects per resource.
	byResource map[schema.GroupVersionResource]int
	// byFinalizer counts remaining objects per finalizer they carry.
	byFinalizer map[string]int
}

// deleteContent deletes everything in ns, records the outcome in its
// status conditions, and returns how long to wait before looking again
// when something remains.
func (c *Controller) deleteContent(ctx context.Context, ns *corev1.Namespace) (time.Duration, error) {
	var conds conditions
	lists, err := c.cfg.Discovery.ServerPreferredNamespacedResources()
	if err != nil {
		conds.discoveryFailed(err)
		if !discovery.IsGroupDiscoveryFailedError(err) {
			// Nothing to go on: record it and retry.
			return 0, errors.Join(fmt.Errorf("namespace %s: discovery: %w", ns.Name, err), c.writeConditions(ctx, ns, conds))
		}
	}
	var kinds []kind
	var badGroupVersions []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			badGroupVersions = append(badGroupVersions, err.Error())
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			kinds = append(kinds, kind{gvr: gv.WithResource(r.Name), deleteCollection: slices.Contains(r.Verbs, "deletecollection"), list: slices.Contains(r.Verbs, "list")})
		}
	}
	if len(badGroupVersions) > 0 {
		conds.groupVersionsFailed(strings.Join(badGroupVersions, ", "))
	}
	slices.SortFunc(kinds, func(a, b kind) int { return strings.Compare(a.gvr.String(), b.gvr.String()) })

	left := leftovers{byResource: map[schema.GroupVersionResource]int{}, byFinalizer: map[string]int{}}
	var (
		failures []error
		wait     time.Duration
	)
	for _, k := range kinds {
		est, err := c.deleteKind(ctx, ns.Name, k, &left)
		if err != nil {
			failures = append(failures, err)
			continue
		}
		wait = max(wait, est)
	}
	conds.contentFailed(failures)
	conds.remaining(left)
	if err := c.writeConditions(ctx, ns, conds); err != nil {
		return 0, err
	}
	if len(failures) > 0 {
		return 0, fmt.Errorf("namespace %s: %w", ns.Name, errors.Join(failures...))
	}
	total := 0
	for _, n := range left.byResource {
		total += n
	}
	if total == 0 {
		return 0, nil
	}
	c.log.Debug("content remains", "namespace", ns.Name, "objects", total)
	return max(wait, c.cfg.RecheckAfter), nil
}

// deleteKind deletes the objects of kind k in namespace ns and adds what
// remains to left. It returns how long the remaining objects should take
// to go (pods: their longest grace period).
func (c *Controller) deleteKind(ctx context.Context, ns string, k kind, left *leftovers) (time.Duration, error) {
	var estimate time.Duration
	if k.gvr.Group == "" && k.gvr.Resource == "pods" {
		var err error
		if estimate, err = c.podGrace(ctx, ns); err != nil {
			return 0, err
		}
	}
	r := c.cfg.Metadata.Resource(k.gvr).Namespace(ns)
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	deleted := false
	if k.deleteCollection {
		err := r.DeleteCollection(ctx, opts, metav1.ListOptions{})
		switch {
		case err == nil:
			deleted = true
		case apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err):
			// Fall back to one by one.
		default:
			return 0, fmt.Errorf("delete collection %s: %w", k.gvr.GroupResource(), err)
		}
	}
	if !k.list {
		// Cannot see what is there: nothing more to do.
		return estimate, nil
	}
	items, err := r.List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
		return estimate, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", k.gvr.GroupResource(), err)
	}
	if !deleted {
		var errs []error
		for _, it := range items.Items {
			if it.DeletionTimestamp != nil {
				continue
			}
			err := r.Delete(ctx, it.Name, opts)
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s %s: %w", k.gvr.GroupResource(), it.Name, err))
			}
		}
		if len(errs) > 0 {
			return 0, errors.Join(errs...)
		}
		if items, err = r.List(ctx, metav1.ListOptions{}); err != nil {
			return 0, fmt.Errorf("list %s: %w", k.gvr.GroupResource(), err)
		}
	}
	if n := len(items.Items); n > 0 {
		left.byResource[k.gvr] += n
		for _, it := range items.Items {
			for _, f := range it.Finalizers {
				left.byFinalizer[f]++
			}
		}
	}
	return estimate, nil
}

// podGrace is the longest termination grace period of the pods of ns that
// have not finished.
func (c *Controller) podGrace(ctx context.Context, ns string) (time.Duration, error) {
	pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("list pods: %w", err)
	}
	var longest int64
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if p.Spec.TerminationGracePeriodSeconds != nil {
			grace = *p.Spec.TerminationGracePeriodSeconds
		}
		longest = max(longest, grace)
	}
	return time.Duration(longest) * time.Second, nil
}

// conditions collects the outcome of a pass as namespace conditions.
type conditions struct {
	failed []corev1.NamespaceCondition
}

// The condition types the controller keeps, and what each says when all
// is well, in upstream's words (clients may read them).
var (
	conditionTypes = []corev1.NamespaceConditionType{
		corev1.NamespaceDeletionDiscoveryFailure,
		corev1.NamespaceDeletionGVParsingFailure,
		corev1.NamespaceDeletionContentFailure,
		corev1.NamespaceContentRemaining,
		corev1.NamespaceFinalizersRemaining,
	}
	okReasons = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "ResourcesDiscovered",
		corev1.NamespaceDeletionGVParsingFailure: "ParsedGroupVersions",
		corev1.NamespaceDeletionContentFailure:   "ContentDeleted",
		corev1.NamespaceContentRemaining:         "ContentRemoved",
		corev1.NamespaceFinalizersRemaining:      "ContentRemoved",
	}
	okMessages = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "All resources successfully discovered",
		corev1.NamespaceDeletionGVParsingFailure: "All legacy kube types successfully parsed",
		corev1.NamespaceDeletionContentFailure:   "All content successfully deleted, may be waiting on finalization",
		corev1.NamespaceContentRemaining:         "All content successfully removed",
		corev1.NamespaceFinalizersRemaining:      "All content successfully removed",
	}
)

func (cs *conditions) add(t corev1.NamespaceConditionType, reason, msg string) {
	cs.failed = append(cs.failed, corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg})
}

func (cs *conditions) discoveryFailed(err error) {
	msg := err.Error()
	var gd *discovery.ErrGroupDiscoveryFailed
	if errors.As(err, &gd) {
		msg = fmt.Sprintf("Discovery failed for some groups, %d failing: %v", len(gd.Groups), err)
	}
	cs.add(corev1.NamespaceDeletionDiscoveryFailure, "DiscoveryFailed", msg)
}

func (cs *conditions) groupVersionsFailed(msg string) {
	cs.add(corev1.NamespaceDeletionGVParsingFailure, "GroupVersionParsingFailed", msg)
}

func (cs *conditions) contentFailed(errs []error) {
	if len(errs) == 0 {
		return
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	slices.Sort(msgs)
	cs.add(corev1.NamespaceDeletionContentFailure, "ContentDeletionFailed",
		fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(errs), strings.Join(msgs, ", ")))
}

func (cs *conditions) remaining(left leftovers) {
	var res []string
	for gvr, n := range left.byResource {
		res = append(res, fmt.Sprintf("%s.%s has %d resource instances", gvr.Resource, gvr.Group, n))
	}
	if len(res) > 0 {
		slices.Sort(res)
		cs.add(corev1.NamespaceContentRemaining, "SomeResourcesRemain", "Some resources are remaining: "+strings.Join(res, ", "))
	}
	var fins []string
	for _, f := range slices.Sorted(maps.Keys(left.byFinalizer)) {
		fins = append(fins, fmt.Sprintf("%s in %d resource instances", f, left.byFinalizer[f]))
	}
	if len(fins) > 0 {
		cs.add(corev1.NamespaceFinalizersRemaining, "SomeFinalizerRemain", "Some finalizers are remaining: "+strings.Join(fins, ", "))
	}
}

// apply sets every kept condition type on st: the failure recorded, or
// else the "ok" variant. A condition's transition time changes only with
// its status. It reports whether st changed.
func (cs *conditions) apply(st *corev1.NamespaceStatus, now metav1.Time) bool {
	changed := false
	for _, t := range conditionTypes {
		want := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReasons[t], Message: okMessages[t], LastTransitionTime: now}
		for _, f := range cs.failed {
			if f.Type == t {
				want = f
				want.LastTransitionTime = now
			}
		}
		i := slices.IndexFunc(st.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == t })
		if i < 0 {
			st.Conditions = append(st.Conditions, want)
			changed = true
			continue
		}
		cur := &st.Conditions[i]
		if cur.Status == want.Status && cur.Reason == want.Reason && cur.Message == want.Message {
			continue
		}
		if cur.Status == want.Status {
			want.LastTransitionTime = cur.LastTransitionTime
		}
		*cur = want
		changed = true
	}
	return changed
}

// writeConditions records conds on ns (and the Terminating phase, should
// it be missing) when they change anything.
func (c *Controller) writeConditions(ctx context.Context, ns *corev1.Namespace, conds conditions) error {
	cp := ns.DeepCopy()
	changed := conds.apply(&cp.Status, metav1.NewTime(c.clock.Now()))
	if cp.Status.Phase != corev1.NamespaceTerminating {
		cp.Status.Phase = corev1.NamespaceTerminating
		changed = true
	}
	if !changed {
		return nil
	}
	updated, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, cp, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: update status: %w", ns.Name, err)
	}
	*ns = *updated
	return nil
}
