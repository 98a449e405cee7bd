package statefulset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// revisionData returns the data of a StatefulSet's revision: the strategic
// merge patch that restores its pod template, byte for byte what kubectl
// computes to compare and roll back.
func revisionData(set *appsv1.StatefulSet) ([]byte, error) {
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	spec, _ := raw["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		return nil, fmt.Errorf("statefulset %s/%s has no template", set.Namespace, set.Name)
	}
	template["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": template}})
}

// hashRevision hashes a revision's data and the collision count into its
// name suffix and controller-revision-hash label, as upstream.
func hashRevision(data []byte, collisions int32) string {
	h := fnv.New32()
	h.Write(data)
	h.Write([]byte(strconv.FormatInt(int64(collisions), 10)))
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// newRevision returns the revision of set's template, numbered revision.
func newRevision(set *appsv1.StatefulSet, revision int64, collisions int32) (*appsv1.ControllerRevision, error) {
	data, err := revisionData(set)
	if err != nil {
		return nil, err
	}
	labels := copyMap(set.Spec.Template.Labels)
	hash := hashRevision(data, collisions)
	labels[appsv1.ControllerRevisionHashLabelKey] = hash
	prefix := set.Name
	if len(prefix) > 223 {
		prefix = prefix[:223]
	}
	var annotations map[string]string
	if len(set.Annotations) > 0 {
		annotations = copyMap(set.Annotations)
	}
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            prefix + "-" + hash,
			Namespace:       set.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, setKind)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}, nil
}

// applyRevision returns set with its template restored from a revision.
func applyRevision(set *appsv1.StatefulSet, r *appsv1.ControllerRevision) (*appsv1.StatefulSet, error) {
	cur, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	patched, err := strategicpatch.StrategicMergePatch(cur, r.Data.Raw, set)
	if err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", r.Name, err)
	}
	out := &appsv1.StatefulSet{}
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, fmt.Errorf("apply revision %s: %w", r.Name, err)
	}
	return out, nil
}

func sortRevisions(rs []*appsv1.ControllerRevision) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Revision != rs[j].Revision {
			return rs[i].Revision < rs[j].Revision
		}
		if !rs[i].CreationTimestamp.Equal(&rs[j].CreationTimestamp) {
			return rs[i].CreationTimestamp.Before(&rs[j].CreationTimestamp)
		}
		return rs[i].Name < rs[j].Name
	})
}

// resolveRevisions returns the set's current and update revisions,
// creating the update revision (or renumbering an equal old one, on a
// rollback) when needed, and the collision count to report. revs are the
// set's revisions, sorted.
func (c *Controller) resolveRevisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (current, update *appsv1.ControllerRevision, collisions int32, err error) {
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	next := int64(1)
	if n := len(revs); n > 0 {
		next = revs[n-1].Revision + 1
	}
	update, err = newRevision(set, next, collisions)
	if err != nil {
		return nil, nil, 0, err
	}
	var equal []*appsv1.ControllerRevision
	for _, r := range revs {
		if bytes.Equal(r.Data.Raw, update.Data.Raw) {
			equal = append(equal, r)
		}
	}
	switch {
	case len(equal) > 0 && equal[len(equal)-1] == revs[len(revs)-1]:
		// The newest revision is the template's: nothing changed.
		update = revs[len(revs)-1]
	case len(equal) > 0:
		// Back to an older template: it becomes the newest revision.
		u := equal[len(equal)-1].DeepCopy()
		u.Revision = next
		if update, err = c.client.AppsV1().ControllerRevisions(set.Namespace).Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			return nil, nil, 0, fmt.Errorf("renumber revision %s: %w", u.Name, err)
		}
	default:
		if update, err = c.createRevision(ctx, set, update, &collisions); err != nil {
			return nil, nil, 0, err
		}
	}
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision {
			current = r
			break
		}
	}
	if current == nil {
		current = update
	}
	return current, update, collisions, nil
}

// createRevision creates r; on a name taken by a different template it
// bumps the collision count and hashes anew.
func (c *Controller) createRevision(ctx context.Context, set *appsv1.StatefulSet, r *appsv1.ControllerRevision, collisions *int32) (*appsv1.ControllerRevision, error) {
	for {
		created, err := c.client.AppsV1().ControllerRevisions(set.Namespace).Create(ctx, r, metav1.CreateOptions{})
		if err == nil {
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create revision %s: %w", r.Name, err)
		}
		existing, getErr := c.client.AppsV1().ControllerRevisions(set.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if getErr != nil {
			return nil, fmt.Errorf("get revision %s: %w", r.Name, getErr)
		}
		if bytes.Equal(existing.Data.Raw, r.Data.Raw) {
			return existing, nil
		}
		*collisions++
		hash := hashRevision(r.Data.Raw, *collisions)
		r = r.DeepCopy()
		r.Name = set.Name + "-" + hash
		r.Labels[appsv1.ControllerRevisionHashLabelKey] = hash
	}
}

// truncateHistory deletes the oldest revisions beyond revisionHistoryLimit
// that are neither current, nor the update revision, nor used by a pod.
func (c *Controller) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revs []*appsv1.ControllerRevision, current, update *appsv1.ControllerRevision) error {
	live := map[string]bool{current.Name: true, update.Name: true}
	for _, p := range pods {
		live[revision(p)] = true
	}
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	if len(old) <= limit {
		return nil
	}
	for _, r := range old[:len(old)-limit] {
		if err := c.client.AppsV1().ControllerRevisions(set.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old revision %s: %w", r.Name, err)
		}
	}
	return nil
}
