package apiserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/storage"
)

// writeOptions carry what a write request asked for.
type writeOptions struct {
	dryRun  bool
	manager string
	// applied: server-side apply already computed managed fields.
	applied bool
	// createOnUpdate lets an update of a missing object create it.
	createOnUpdate bool
}

// dryRunResult stops a guaranteed update before the write and carries the
// object that would have been written.
type dryRunResult struct{ obj runtime.Object }

func (d *dryRunResult) Error() string { return "dry run" }

func (q *request) writeOptions() (writeOptions, error) {
	dry, err := q.dryRun()
	if err != nil {
		return writeOptions{}, err
	}
	mgr := q.query().Get("fieldManager")
	if len(mgr) > 128 {
		return writeOptions{}, apierrors.NewBadRequest("fieldManager: Invalid value: must be at most 128 characters")
	}
	return writeOptions{dryRun: dry, manager: managerName(mgr, q.r.UserAgent())}, nil
}

func (q *request) create() {
	opts, err := q.writeOptions()
	if err != nil {
		q.fail(err)
		return
	}
	data, err := q.readBody()
	if err != nil {
		q.fail(err)
		return
	}
	obj, err := q.decodeObject(data, q.r.Header.Get("Content-Type"))
	if err != nil {
		q.fail(err)
		return
	}
	out, err := q.s.createObject(q.ctx, q.ep, q.info.Namespace, obj, opts)
	if err != nil {
		q.s.writeError(q.w, q.r, err, q.ep.gr, accessor(obj).GetName())
		return
	}
	q.respond(http.StatusCreated, out)
}

// generateName returns base plus five random characters, as upstream's
// SimpleNameGenerator (the base is cut to leave room).
func generateName(base string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	const maxBase = 63 - 5
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return base + string(b)
}

// createObject runs the create path: metadata, admission, defaults,
// validation, managed fields, allocation, and the write.
func (s *Server) createObject(ctx context.Context, ep *endpoint, namespace string, obj runtime.Object, opts writeOptions) (runtime.Object, error) {
	m := accessor(obj)
	if ep.res.Namespaced {
		switch {
		case m.GetNamespace() == "":
			m.SetNamespace(namespace)
		case namespace != "" && m.GetNamespace() != namespace:
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
		if err := s.admitNamespace(ctx, m.GetNamespace()); err != nil {
			return nil, err
		}
	} else {
		m.SetNamespace("")
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(generateName(m.GetGenerateName()))
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.NewTime(s.cfg.Now().Truncate(time.Second)))
	m.SetResourceVersion("")
	m.SetDeletionTimestamp(nil)
	m.SetDeletionGracePeriodSeconds(nil)
	m.SetSelfLink("")
	m.SetGeneration(0)
	if ep.res.HasGeneration {
		m.SetGeneration(1)
	}
	if ep.res.Status != nil && !ep.res.StatusOnCreate {
		clearStatus(obj)
	}
	// Upstream defaults while decoding, before the strategy's
	// PrepareForCreate; keep that order.
	if ep.res.Default != nil {
		ep.res.Default(obj)
	}
	if ep.res.PrepareForCreate != nil {
		ep.res.PrepareForCreate(ctx, obj)
	}
	errs := apivalidation.ValidateObjectMetaAccessor(m, ep.res.Namespaced, ep.nameFn, field.NewPath("metadata"))
	if ep.res.Validate != nil {
		errs = append(errs, ep.res.Validate(ctx, obj)...)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(ep.gvk.GroupKind(), m.GetName(), errs)
	}
	if !opts.applied {
		if fm, err := s.fieldManager(ep, ""); err == nil {
			obj = fm.UpdateNoErrors(ep.res.New(), obj, opts.manager)
		} else {
			s.log.Warn("managed fields unavailable", "resource", ep.gr.String(), "err", err)
		}
	}
	if ep.res.BeforeCreate != nil {
		if err := ep.res.BeforeCreate(ctx, obj); err != nil {
			return nil, err
		}
	}
	if opts.dryRun {
		if ep.res.Rollback != nil {
			ep.res.Rollback(ctx, obj)
		}
		return obj, nil
	}
	out, err := s.store.Create(ctx, ep.key(m.GetNamespace(), m.GetName()), obj)
	if err != nil {
		if ep.res.Rollback != nil {
			ep.res.Rollback(ctx, obj)
		}
		if errors.Is(err, storage.ErrExists) {
			return nil, apierrors.NewAlreadyExists(ep.gr, m.GetName())
		}
		return nil, err
	}
	return out, nil
}

// namespaceDeleteTTL is how long after a namespace is marked for
// deletion creates in it are checked against storage rather than the
// watch cache, as upstream's NamespaceLifecycle admission does.
const namespaceDeleteTTL = 30 * time.Second

// recentlyDeleted reports whether this server marked namespace name for
// deletion in the last namespaceDeleteTTL.
func (s *Server) recentlyDeleted(name string) bool {
	v, ok := s.deletedNamespaces.Load(name)
	if !ok {
		return false
	}
	if s.cfg.Now().After(v.(time.Time)) {
		s.deletedNamespaces.Delete(name)
		return false
	}
	return true
}

// admitNamespace refuses creates in a namespace that does not exist or is
// being deleted, as upstream's NamespaceLifecycle admission.
func (s *Server) admitNamespace(ctx context.Context, name string) error {
	if s.namespaces == nil || name == "" {
		return nil
	}
	key := s.namespaces.key("", name)
	var ns runtime.Object
	if it, ok := s.namespaces.cache.Get(key); ok && !s.recentlyDeleted(name) {
		ns = it.Object
	} else {
		// The cache may lag a namespace created a moment ago.
		o, err := s.store.Get(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return apierrors.NewNotFound(corev1.Resource("namespaces"), name)
		}
		if err != nil {
			return err
		}
		ns = o
	}
	if n, ok := ns.(*corev1.Namespace); ok && (n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating) {
		err := apierrors.NewForbidden(schema.GroupResource{}, "", fmt.Errorf("unable to create new content in namespace %s because it is being terminated", name))
		err.ErrStatus.Message = fmt.Sprintf("unable to create new content in namespace %s because it is being terminated", name)
		err.ErrStatus.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{
			Type:    "NamespaceTerminating",
			Message: fmt.Sprintf("namespace %s is being terminated", name),
			Field:   "metadata.namespace",
		}}}
		return err
	}
	return nil
}

// mutateFunc computes the next object from the current one (the caller's
// copy). cur is nil when the object does not exist and the update may
// create it.
type mutateFunc func(cur runtime.Object) (runtime.Object, error)

// updateObject runs the update path for the main resource or a
// subresource (sub "status", "scale", ...): read, mutate, server-owned
// metadata, defaults, validation, generation, managed fields, and a
// compare-and-swap write retried on conflict. It reports whether the update
// created the object.
func (s *Server) updateObject(ctx context.Context, ep *endpoint, namespace, name, sub string, mutate mutateFunc, opts writeOptions) (runtime.Object, bool, error) {
	key := ep.key(namespace, name)
	var hint runtime.Object
	if it, ok := ep.cache.Get(key); ok {
		hint = it.Object
	}
	// prepared is the last object BeforeUpdate allocated for; a write that
	// fails after it must give the allocations back.
	var prepared runtime.Object
	out, err := s.store.GuaranteedUpdate(ctx, key, hint, func(cur runtime.Object) (runtime.Object, error) {
		// mutate gets its own copy: prepareUpdate compares against cur.
		next, err := mutate(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		next, err = s.prepareUpdate(ctx, ep, sub, cur, next, opts)
		if err == nil && sub == "" && ep.res.BeforeUpdate != nil {
			prepared = next
		}
		return next, err
	})
	if err != nil && prepared != nil && ep.res.Rollback != nil {
		ep.res.Rollback(ctx, prepared)
	}
	var dry *dryRunResult
	switch {
	case errors.As(err, &dry):
		return dry.obj, false, nil
	case errors.Is(err, storage.ErrNotFound) && opts.createOnUpdate:
		obj, err := mutate(nil)
		if err != nil {
			return nil, false, err
		}
		created, err := s.createObject(ctx, ep, namespace, obj, opts)
		return created, err == nil, err
	case errors.Is(err, storage.ErrNotFound):
		return nil, false, apierrors.NewNotFound(ep.gr, name)
	case err != nil:
		return nil, false, err
	}
	// An update that removed the last finalizer of an object being
	// deleted completes the deletion.
	if s.readyToDelete(out) {
		deleted, err := s.store.Delete(ctx, key, sameVersion(out))
		if err == nil {
			s.afterDelete(ctx, ep, deleted)
			return deleted, false, nil
		}
		if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
			return nil, false, err
		}
	}
	return out, false, nil
}

// readyToDelete reports whether obj is marked for deletion with nothing
// left to wait for.
func (s *Server) readyToDelete(obj runtime.Object) bool {
	m := accessor(obj)
	if m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return false
	}
	g := m.GetDeletionGracePeriodSeconds()
	return g == nil || *g == 0
}

// sameVersion is a delete precondition: the object is still at obj's
// resourceVersion.
func sameVersion(obj runtime.Object) storage.Precondition {
	rv := accessor(obj).GetResourceVersion()
	return func(cur runtime.Object) error {
		if accessor(cur).GetResourceVersion() != rv {
			return &storage.Error{Class: storage.ErrConflict}
		}
		return nil
	}
}

func (s *Server) prepareUpdate(ctx context.Context, ep *endpoint, sub string, cur, next runtime.Object, opts writeOptions) (runtime.Object, error) {
	cm, nm := accessor(cur), accessor(next)
	name := cm.GetName()
	if rv := nm.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return nil, apierrors.NewConflict(ep.gr, name, errors.New(optimisticLockMessage))
	}
	if sub == "status" {
		// A status write changes the status and annotations (the
		// Deployment controller records revisions that way); spec,
		// labels, owners and finalizers stay as stored, as upstream's
		// status strategies keep them.
		copyAllButMetaAndStatus(next, cur)
		nm.SetLabels(cm.GetLabels())
		nm.SetOwnerReferences(cm.GetOwnerReferences())
		nm.SetFinalizers(cm.GetFinalizers())
	}
	nm.SetResourceVersion(cm.GetResourceVersion())
	if nm.GetUID() == "" {
		nm.SetUID(cm.GetUID())
	}
	nm.SetCreationTimestamp(cm.GetCreationTimestamp())
	nm.SetDeletionTimestamp(cm.GetDeletionTimestamp())
	if cm.GetDeletionGracePeriodSeconds() != nil {
		nm.SetDeletionGracePeriodSeconds(cm.GetDeletionGracePeriodSeconds())
	}
	nm.SetGeneration(cm.GetGeneration())
	nm.SetSelfLink("")
	if ep.res.Namespaced && nm.GetNamespace() == "" {
		nm.SetNamespace(cm.GetNamespace())
	}

	// What each kind of write may change and which rules check it:
	//   ""        the main resource: spec and metadata; status kept
	//   "status"  status only (merged above)
	//   "scale"   spec.replicas, set by the REST layer
	//   "binding", "finalize": internal changes made by the REST layer
	var errs field.ErrorList
	if ep.res.Default != nil {
		ep.res.Default(next)
	}
	switch sub {
	case "":
		if ep.res.Status != nil {
			copyStatus(next, cur)
		}
		if ep.res.PrepareForUpdate != nil {
			ep.res.PrepareForUpdate(ctx, next, cur)
		}
	case "status":
		if ep.res.Status != nil && ep.res.Status.PrepareForUpdate != nil {
			ep.res.Status.PrepareForUpdate(ctx, next, cur)
		}
	}
	errs = append(errs, apivalidation.ValidateObjectMetaAccessor(nm, ep.res.Namespaced, ep.nameFn, field.NewPath("metadata"))...)
	errs = append(errs, apivalidation.ValidateObjectMetaAccessorUpdate(nm, cm, field.NewPath("metadata"))...)
	switch sub {
	case "", "scale":
		if ep.res.ValidateUpdate != nil {
			errs = append(errs, ep.res.ValidateUpdate(ctx, next, cur)...)
		}
	case "status":
		if ep.res.Status != nil && ep.res.Status.ValidateUpdate != nil {
			errs = append(errs, ep.res.Status.ValidateUpdate(ctx, next, cur)...)
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(ep.gvk.GroupKind(), name, errs)
	}
	if (sub == "" || sub == "scale") && ep.res.HasGeneration && specChanged(next, cur) {
		nm.SetGeneration(cm.GetGeneration() + 1)
	}
	if !opts.applied {
		fmSub := sub
		if fmSub != "status" && fmSub != "scale" {
			fmSub = ""
		}
		if fm, err := s.fieldManager(ep, fmSub); err == nil {
			next = fm.UpdateNoErrors(cur, next, opts.manager)
		}
	}
	// Allocation follows spec changes, which only the main resource makes.
	if sub == "" && ep.res.BeforeUpdate != nil {
		if err := ep.res.BeforeUpdate(ctx, next, cur); err != nil {
			return nil, err
		}
	}
	if opts.dryRun {
		if ep.res.Rollback != nil {
			ep.res.Rollback(ctx, next)
		}
		return nil, &dryRunResult{obj: next}
	}
	return next, nil
}

// update serves PUT on the resource or its status.
func (q *request) update(sub string) {
	opts, err := q.writeOptions()
	if err != nil {
		q.fail(err)
		return
	}
	data, err := q.readBody()
	if err != nil {
		q.fail(err)
		return
	}
	obj, err := q.decodeObject(data, q.r.Header.Get("Content-Type"))
	if err != nil {
		q.fail(err)
		return
	}
	m := accessor(obj)
	if m.GetName() != q.info.Name {
		q.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), q.info.Name)))
		return
	}
	if q.ep.res.Namespaced {
		if m.GetNamespace() == "" {
			m.SetNamespace(q.info.Namespace)
		} else if m.GetNamespace() != q.info.Namespace {
			q.fail(apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
			return
		}
	}
	opts.createOnUpdate = q.ep.res.AllowCreateOnUpdate && sub == ""
	out, created, err := q.s.updateObject(q.ctx, q.ep, q.info.Namespace, q.info.Name, sub, func(cur runtime.Object) (runtime.Object, error) {
		return obj.DeepCopyObject(), nil
	}, opts)
	if err != nil {
		q.fail(err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	q.respond(code, out)
}

// deleteOptions reads DeleteOptions from the body, else from the query.
func (q *request) deleteOptions() (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	data, err := q.readBody()
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		dec, _, err := q.s.codecs.bodyDecoder(q.r.Header.Get("Content-Type"), false)
		if err != nil {
			return nil, err
		}
		if _, _, err := dec.Decode(data, nil, opts); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("decode DeleteOptions: %v", err))
		}
	}
	v := q.query()
	if s := v.Get("gracePeriodSeconds"); s != "" {
		n, err := parseInt64(s)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid gracePeriodSeconds %q", s))
		}
		opts.GracePeriodSeconds = n
	}
	if s := v.Get("propagationPolicy"); s != "" {
		p := metav1.DeletionPropagation(s)
		opts.PropagationPolicy = &p
	}
	if s := v.Get("orphanDependents"); s != "" {
		b := s == "true"
		opts.OrphanDependents = &b
	}
	if dry, err := q.dryRun(); err != nil {
		return nil, err
	} else if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, d := range opts.DryRun {
		if d != metav1.DryRunAll {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Invalid dryRun value: %v", opts.DryRun))
		}
	}
	var errs field.ErrorList
	if opts.OrphanDependents != nil && opts.PropagationPolicy != nil {
		errs = append(errs, field.Invalid(field.NewPath("propagationPolicy"), *opts.PropagationPolicy, "orphanDependents and deletionPropagation cannot be both set"))
	}
	if p := opts.PropagationPolicy; p != nil && *p != metav1.DeletePropagationOrphan && *p != metav1.DeletePropagationBackground && *p != metav1.DeletePropagationForeground {
		errs = append(errs, field.NotSupported(field.NewPath("propagationPolicy"), *p, []string{string(metav1.DeletePropagationForeground), string(metav1.DeletePropagationBackground), string(metav1.DeletePropagationOrphan), "nil"}))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("DeleteOptions").GroupKind(), "", errs)
	}
	return opts, nil
}

func (q *request) delete() {
	opts, err := q.deleteOptions()
	if err != nil {
		q.fail(err)
		return
	}
	obj, deleted, err := q.s.deleteObject(q.ctx, q.ep, q.info.Namespace, q.info.Name, opts)
	if err != nil {
		q.fail(err)
		return
	}
	q.respond(http.StatusOK, q.deleteResult(obj, deleted))
}

// deleteResult is what a DELETE answers: the object, or a Status of
// Success for resources that do not return deleted objects.
func (q *request) deleteResult(obj runtime.Object, deleted bool) runtime.Object {
	if !deleted || q.ep.res.ReturnDeletedObject {
		return obj
	}
	m := accessor(obj)
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusSuccess,
		Details: &metav1.StatusDetails{
			Name:  m.GetName(),
			Group: q.ep.gr.Group,
			Kind:  q.ep.gr.Resource,
			UID:   m.GetUID(),
		},
	}
}

// propagation resolves the delete's propagation policy.
func propagation(ep *endpoint, opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	switch {
	case opts.PropagationPolicy != nil:
		return *opts.PropagationPolicy
	case opts.OrphanDependents != nil && *opts.OrphanDependents:
		return metav1.DeletePropagationOrphan
	case opts.OrphanDependents != nil:
		return metav1.DeletePropagationBackground
	case ep.res.DefaultPropagation != nil:
		return ep.res.DefaultPropagation()
	}
	return metav1.DeletePropagationBackground
}

// deleteObject deletes an object: at once, or by marking it (deletion
// timestamp, grace period, propagation finalizers) when it has finalizers
// to wait for or a grace period to honour. It reports whether the object
// is gone.
func (s *Server) deleteObject(ctx context.Context, ep *endpoint, namespace, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	key := ep.key(namespace, name)
	dryRun := len(opts.DryRun) > 0
	for {
		cur, err := s.store.Get(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, false, apierrors.NewNotFound(ep.gr, name)
		}
		if err != nil {
			return nil, false, err
		}
		m := accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, false, apierrors.NewConflict(ep.gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(ep.gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		grace, graceful := int64(0), false
		if ep.res.GracefulDelete != nil {
			grace, graceful = ep.res.GracefulDelete(cur, opts)
			if !graceful {
				grace = 0
			}
		}
		addFinalizer := ""
		switch propagation(ep, opts) {
		case metav1.DeletePropagationOrphan:
			addFinalizer = metav1.FinalizerOrphanDependents
		case metav1.DeletePropagationForeground:
			addFinalizer = metav1.FinalizerDeleteDependents
		}
		if addFinalizer != "" && hasString(m.GetFinalizers(), addFinalizer) {
			addFinalizer = ""
		}
		ns, isNamespace := cur.(*corev1.Namespace)
		pending := len(m.GetFinalizers()) > 0 || addFinalizer != "" || (isNamespace && len(ns.Spec.Finalizers) > 0)

		if ts := m.GetDeletionTimestamp(); ts != nil {
			if isNamespace {
				return nil, false, apierrors.NewConflict(ep.gr, name, errors.New("The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."))
			}
			// Already being deleted: only a shorter grace period (or a
			// new propagation finalizer) changes anything.
			old := m.GetDeletionGracePeriodSeconds()
			shorter := old != nil && grace < *old
			if !shorter && addFinalizer == "" {
				if !pending && grace == 0 && old != nil && *old > 0 {
					// Force deletion of a gracefully deleting object.
				} else {
					return cur, false, nil
				}
			}
		}
		if dryRun {
			return cur, true, nil
		}
		if pending || grace > 0 {
			now := s.cfg.Now()
			out, err := s.store.GuaranteedUpdate(ctx, key, cur, func(c runtime.Object) (runtime.Object, error) {
				cm := accessor(c)
				if cm.GetUID() != m.GetUID() {
					return nil, apierrors.NewConflict(ep.gr, name, errors.New("the object was replaced"))
				}
				g := grace
				if old := cm.GetDeletionGracePeriodSeconds(); old != nil && *old < g {
					g = *old
				}
				ts := metav1.NewTime(now.Add(time.Duration(g) * time.Second).Truncate(time.Second))
				if old := cm.GetDeletionTimestamp(); old == nil || ts.Before(old) {
					cm.SetDeletionTimestamp(&ts)
				}
				cm.SetDeletionGracePeriodSeconds(&g)
				if addFinalizer != "" && !hasString(cm.GetFinalizers(), addFinalizer) {
					cm.SetFinalizers(append(cm.GetFinalizers(), addFinalizer))
				}
				if cm.GetGeneration() > 0 && m.GetDeletionTimestamp() == nil {
					cm.SetGeneration(cm.GetGeneration() + 1)
				}
				if n, ok := c.(*corev1.Namespace); ok {
					n.Status.Phase = corev1.NamespaceTerminating
				}
				return c, nil
			})
			if _, ok := out.(*corev1.Namespace); ok && err == nil {
				s.deletedNamespaces.Store(name, now.Add(namespaceDeleteTTL))
			}
			if err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return nil, false, apierrors.NewNotFound(ep.gr, name)
				}
				return nil, false, err
			}
			if !s.readyToDelete(out) {
				return out, false, nil
			}
			cur = out
		}
		deleted, err := s.store.Delete(ctx, key, sameVersion(cur))
		if errors.Is(err, storage.ErrConflict) {
			continue // changed under us: decide again
		}
		if errors.Is(err, storage.ErrNotFound) {
			return nil, false, apierrors.NewNotFound(ep.gr, name)
		}
		if err != nil {
			return nil, false, err
		}
		s.afterDelete(ctx, ep, deleted)
		return deleted, true, nil
	}
}

func (s *Server) afterDelete(ctx context.Context, ep *endpoint, obj runtime.Object) {
	if ep.res.AfterDelete == nil {
		return
	}
	if err := ep.res.AfterDelete(ctx, obj); err != nil {
		s.log.Warn("after delete", "resource", ep.gr.String(), "name", accessor(obj).GetName(), "err", err)
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (q *request) deleteCollection() {
	opts, err := q.deleteOptions()
	if err != nil {
		q.fail(err)
		return
	}
	lo, err := q.parseListOptions(false)
	if err != nil {
		q.fail(err)
		return
	}
	if err := q.ep.cache.WaitFresh(q.ctx, freshTimeout); err != nil {
		q.fail(err)
		return
	}
	items, _ := q.ep.cache.List(q.ep.listPrefix(q.info.Namespace), lo.pred)
	var out []runtime.Object
	for _, it := range items {
		m := accessor(it.Object)
		obj, _, err := q.s.deleteObject(q.ctx, q.ep, m.GetNamespace(), m.GetName(), opts)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			q.fail(err)
			return
		}
		out = append(out, obj)
	}
	q.respondList(out, metav1.ListMeta{})
}

// uidOf is a small helper for bindings and evictions.
func uidOf(obj runtime.Object) types.UID { return accessor(obj).GetUID() }
