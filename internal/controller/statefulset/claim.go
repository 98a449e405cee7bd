package statefulset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// claimPods returns the pods the StatefulSet manages, by name: those it
// controls whose labels still match its selector, and orphans named as
// its pods and matching it, which it adopts. It releases controlled pods
// that stopped matching.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var members []*corev1.Pod
	for _, p := range all {
		if isMemberOf(set, p) {
			members = append(members, p)
		}
	}
	return claim(ctx, c, set, members, func(p *corev1.Pod, patch []byte) error {
		_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// claimRevisions is claimPods for ControllerRevisions.
func (c *Controller) claimRevisions(ctx context.Context, set *appsv1.StatefulSet) ([]*appsv1.ControllerRevision, error) {
	all, err := c.revisions.ControllerRevisions(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list revisions: %w", err)
	}
	return claim(ctx, c, set, all, func(r *appsv1.ControllerRevision, patch []byte) error {
		_, err := c.client.AppsV1().ControllerRevisions(r.Namespace).Patch(ctx, r.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// claim adopts and releases objects for a StatefulSet (see claimPods);
// patch applies a strategic merge patch to one object. The result is
// sorted by name; adopted objects in it are copies with the owner
// reference.
func claim[T interface {
	metav1.Object
	comparable
}](ctx context.Context, c *Controller, set *appsv1.StatefulSet, all []T, patch func(T, []byte) error) ([]T, error) {
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("selector: %w", err)
	}
	all = slices.Clone(all)
	slices.SortFunc(all, func(a, b T) int { return strings.Compare(a.GetName(), b.GetName()) })
	var (
		out       []T
		errs      []error
		adoptable error
		checked   bool
	)
	for _, o := range all {
		matches := !sel.Empty() && sel.Matches(labels.Set(o.GetLabels()))
		if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
			if ref.UID != set.UID {
				continue
			}
			if matches || set.DeletionTimestamp != nil || o.GetDeletionTimestamp() != nil {
				out = append(out, o)
				continue
			}
			body := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, set.UID, o.GetUID())
			if err := patch(o, []byte(body)); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
				errs = append(errs, fmt.Errorf("release %s: %w", o.GetName(), err))
			}
			continue
		}
		if !matches || set.DeletionTimestamp != nil || o.GetDeletionTimestamp() != nil {
			continue
		}
		if !checked {
			adoptable, checked = c.canAdopt(ctx, set), true
		}
		if adoptable != nil {
			errs = append(errs, adoptable)
			break
		}
		ref := metav1.NewControllerRef(set, setKind)
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"ownerReferences": []metav1.OwnerReference{*ref},
			"uid":             o.GetUID(),
		}})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := patch(o, body); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("adopt %s: %w", o.GetName(), err))
			}
			continue
		}
		adopted := deepCopy(o)
		adopted.SetOwnerReferences(append(adopted.GetOwnerReferences(), *ref))
		out = append(out, adopted)
	}
	return out, errors.Join(errs...)
}

// deepCopy copies a pod or a revision.
func deepCopy[T any](o T) T {
	switch v := any(o).(type) {
	case *corev1.Pod:
		return any(v.DeepCopy()).(T)
	case *appsv1.ControllerRevision:
		return any(v.DeepCopy()).(T)
	}
	return o
}

// canAdopt checks, against the API rather than the cache, that the
// StatefulSet still exists and is not being deleted before it takes
// objects.
func (c *Controller) canAdopt(ctx context.Context, set *appsv1.StatefulSet) error {
	fresh, err := c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("recheck before adopting: %w", err)
	}
	if fresh.UID != set.UID {
		return fmt.Errorf("recheck before adopting: uid %s is gone", set.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return errors.New("being deleted, not adopting")
	}
	return nil
}
