package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/registry/core"
)

// resourceKey names a resource "group/resource" ("/services",
// "events.k8s.io/events").
func resourceKey(r *registry.Resource) string { return r.GroupVersion.Group + "/" + r.Resource }

// lookupIn returns the named resource ("/services") of cfg.
func lookupIn(t testing.TB, cfg core.Config, name string) *registry.Resource {
	t.Helper()
	for _, r := range core.Resources(cfg) {
		if resourceKey(r) == name {
			return r
		}
	}
	t.Fatalf("no resource %q", name)
	return nil
}

// lookup returns the named resource of a zero Config.
func lookup(t testing.TB, name string) *registry.Resource { return lookupIn(t, core.Config{}, name) }

// create runs the hooks the REST layer runs before the write, up to
// validation: PrepareForCreate, Default, Validate. The status is cleared
// first, as the REST layer does for resources with a status subresource.
func create(t testing.TB, r *registry.Resource, obj runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	if r.Status != nil && !r.StatusOnCreate {
		clearStatus(obj)
	}
	if r.PrepareForCreate != nil {
		r.PrepareForCreate(ctx, obj)
	}
	if r.Default != nil {
		r.Default(obj)
	}
	return r.Validate(ctx, obj)
}

// update runs PrepareForUpdate, Default and ValidateUpdate (status kept
// from old for resources with a status subresource).
func update(t testing.TB, r *registry.Resource, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	if r.Status != nil {
		copyStatus(obj, old)
	}
	if r.PrepareForUpdate != nil {
		r.PrepareForUpdate(ctx, obj, old)
	}
	if r.Default != nil {
		r.Default(obj)
	}
	return r.ValidateUpdate(ctx, obj, old)
}

// updateStatus runs the status subresource's hooks on obj, whose spec is
// taken from old.
func updateStatus(t testing.TB, r *registry.Resource, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	merged := old.DeepCopyObject()
	copyStatus(merged, obj)
	if r.Status.PrepareForUpdate != nil {
		r.Status.PrepareForUpdate(ctx, merged, old)
	}
	if r.Default != nil {
		r.Default(merged)
	}
	return r.Status.ValidateUpdate(ctx, merged, old)
}

func clearStatus(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Service:
		o.Status = corev1.ServiceStatus{}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{}
	case *corev1.ResourceQuota:
		o.Status = corev1.ResourceQuotaStatus{}
	}
}

// copyStatus sets dst's status to src's.
func copyStatus(dst, src runtime.Object) {
	switch d := dst.(type) {
	case *corev1.Service:
		d.Status = *src.(*corev1.Service).Status.DeepCopy()
	case *corev1.Namespace:
		d.Status = *src.(*corev1.Namespace).Status.DeepCopy()
	case *corev1.ResourceQuota:
		d.Status = *src.(*corev1.ResourceQuota).Status.DeepCopy()
	case *corev1.Node:
		d.Status = *src.(*corev1.Node).Status.DeepCopy()
	}
}

// fieldErr is the part of a field.Error the tests compare.
type fieldErr struct {
	Type  field.ErrorType
	Field string
}

// wantErrs fails t unless errs are exactly want, in any order.
func wantErrs(t *testing.T, errs field.ErrorList, want ...fieldErr) {
	t.Helper()
	var got []fieldErr
	for _, e := range errs {
		got = append(got, fieldErr{e.Type, e.Field})
	}
	less := func(a, b fieldErr) bool { return a.Field+string(a.Type) < b.Field+string(b.Type) }
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(less), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nall: %v", diff, errs)
	}
}

func invalid(f string) fieldErr      { return fieldErr{field.ErrorTypeInvalid, f} }
func required(f string) fieldErr     { return fieldErr{field.ErrorTypeRequired, f} }
func notSupported(f string) fieldErr { return fieldErr{field.ErrorTypeNotSupported, f} }
func duplicate(f string) fieldErr    { return fieldErr{field.ErrorTypeDuplicate, f} }
func forbidden(f string) fieldErr    { return fieldErr{field.ErrorTypeForbidden, f} }
func tooLong(f string) fieldErr      { return fieldErr{field.ErrorTypeTooLong, f} }
func tooMany(f string) fieldErr      { return fieldErr{field.ErrorTypeTooMany, f} }

// statusCauses returns the field causes of an API status error.
func statusCauses(t *testing.T, err error) []metav1.StatusCause {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not an API status error", err, err)
	}
	if se.ErrStatus.Details == nil {
		return nil
	}
	return se.ErrStatus.Details.Causes
}

// wantStatus fails t unless err is an API status error with this code
// whose message contains msg.
func wantStatus(t *testing.T, err error, code int32, msg string) {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not an API status error", err, err)
	}
	if se.ErrStatus.Code != code {
		t.Errorf("code = %d, want %d (%v)", se.ErrStatus.Code, code, err)
	}
	if !strings.Contains(se.ErrStatus.Message, msg) {
		t.Errorf("message %q does not contain %q", se.ErrStatus.Message, msg)
	}
}

// cmpSortStrings compares string slices as sets.
var cmpSortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func intstrName(s string) intstr.IntOrString { return intstr.FromString(s) }

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

func ptrTo[T any](v T) *T { return &v }

// newUID returns a fresh UID, as the REST layer sets on create.
func newUID() types.UID { return uuid.NewUUID() }
