package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// claimPods returns the pods a Job manages: those it controls whose labels
// still match its selector, and orphans matching it, which it adopts
// (owner reference and tracking finalizer). It releases controlled pods
// that stopped matching. The returned slice is the caller's; the pods in
// it are the informer's (or, for adopted pods, copies).
func (c *Controller) claimPods(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: selector: %w", job.Namespace, job.Name, err)
	}
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("job %s/%s: list pods: %w", job.Namespace, job.Name, err)
	}
	// A stable order makes the status (the order of uncounted UIDs) and
	// the calls the same for the same pods.
	all = slices.Clone(all)
	slices.SortFunc(all, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var (
		out       []*corev1.Pod
		errs      []error
		adoptable error
		checked   bool
	)
	for _, p := range all {
		matches := !sel.Empty() && sel.Matches(labels.Set(p.Labels))
		if ref := metav1.GetControllerOf(p); ref != nil {
			if ref.UID != job.UID {
				continue
			}
			if matches || job.DeletionTimestamp != nil || p.DeletionTimestamp != nil {
				out = append(out, p)
				continue
			}
			if err := c.releasePod(ctx, job, p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !matches || job.DeletionTimestamp != nil || p.DeletionTimestamp != nil {
			continue
		}
		if !checked {
			adoptable, checked = c.canAdopt(ctx, job), true
		}
		if adoptable != nil {
			errs = append(errs, adoptable)
			break
		}
		adopted, err := c.adoptPod(ctx, job, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if adopted != nil {
			out = append(out, adopted)
		}
	}
	return out, errors.Join(errs...)
}

// canAdopt checks, against the API rather than the cache, that the Job
// still exists and is not being deleted before it takes pods.
func (c *Controller) canAdopt(ctx context.Context, job *batchv1.Job) error {
	fresh, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("job %s/%s: recheck before adopting pods: %w", job.Namespace, job.Name, err)
	}
	if fresh.UID != job.UID {
		return fmt.Errorf("job %s/%s: recheck before adopting pods: uid %s is gone", job.Namespace, job.Name, job.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("job %s/%s: being deleted, not adopting pods", job.Namespace, job.Name)
	}
	return nil
}

// adoptPod makes the Job a pod's controller and adds the tracking
// finalizer. It returns the pod as the Job will count it, or nil if the
// pod is gone.
func (c *Controller) adoptPod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) (*corev1.Pod, error) {
	ref := metav1.NewControllerRef(job, jobKind)
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{
			"ownerReferences": []metav1.OwnerReference{*ref},
			"uid":             p.UID,
			"finalizers":      []string{batchv1.JobTrackingFinalizer},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adopt pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	if _, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("adopt pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	out := p.DeepCopy()
	out.OwnerReferences = append(out.OwnerReferences, *ref)
	if !hasTrackingFinalizer(out) {
		out.Finalizers = append(out.Finalizers, batchv1.JobTrackingFinalizer)
	}
	return out, nil
}

// releasePod removes the Job's owner reference from a pod that no longer
// matches its selector.
func (c *Controller) releasePod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) error {
	patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, job.UID, p.UID)
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsInvalid(err) {
		return fmt.Errorf("release pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}
