package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/storage"
)

func statusError(code int32, reason metav1.StatusReason, msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    code,
		Reason:  reason,
		Message: msg,
	}}
}

func errUnsupportedMediaType(mt string) error {
	return statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s", strings.Join(acceptedMediaTypes, ", ")))
}

func errNotAcceptable() error {
	return statusError(http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
		fmt.Sprintf("only the following media types are accepted: %s", strings.Join(acceptedMediaTypes, ", ")))
}

func errMethodNotSupported(gr schema.GroupResource, verb string) error {
	return apierrors.NewMethodNotSupported(gr, verb)
}

func errRequestEntityTooLarge(limit int64) error {
	return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit))
}

// errNotFoundResource is the 404 for a path that names no served resource.
func errNotFoundResource() error {
	return statusError(http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
}

// toAPIError classifies any error as a Kubernetes status error. Storage
// classes map to their statuses; a status error passes through; anything
// else is a 500 that names the failure.
func toAPIError(err error, gr schema.GroupResource, name string) *apierrors.StatusError {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return &apierrors.StatusError{ErrStatus: st.Status()}
	}
	var serr *storage.Error
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return apierrors.NewNotFound(gr, name)
	case errors.Is(err, storage.ErrExists):
		return apierrors.NewAlreadyExists(gr, name)
	case errors.Is(err, storage.ErrConflict):
		return apierrors.NewConflict(gr, name, errors.New(optimisticLockMessage))
	case errors.Is(err, storage.ErrExpired) && errors.As(err, &serr):
		return apierrors.NewResourceExpired(serr.Error())
	case errors.Is(err, storage.ErrExpired):
		return apierrors.NewResourceExpired(err.Error())
	case errors.Is(err, storage.ErrTooLargeResourceVersion):
		return apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %v", err), 1)
	case errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError("request did not complete within the allowed duration", 0)
	}
	return apierrors.NewInternalError(err)
}

// optimisticLockMessage is upstream's text for a stale resourceVersion.
const optimisticLockMessage = "the object has been modified; please apply your changes to the latest version and try again"
