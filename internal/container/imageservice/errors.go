package imageservice

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-sh/skiff/internal/container/image"
)

// Error classes of the client, besides the image store's own (image.ErrNotFound,
// image.ErrUnauthorized, image.ErrDigestMismatch, image.ErrUnsafeLayer,
// image.ErrInvalidReference, image.ErrUnsupported), which the client's
// errors wrap when the server's did.
var (
	// ErrUnavailable: nothing answers on the socket (the runtime is not
	// running, or the socket is wrong).
	ErrUnavailable = errors.New("image service unavailable")
	// ErrUnimplemented: something answers on the socket, but it does not
	// serve skiff's image service (another CRI runtime, say).
	ErrUnimplemented = errors.New("image service not served")
	// ErrInvalid: the request was malformed (an empty reference, say).
	ErrInvalid = errors.New("invalid request")
)

// errorDomain names the ErrorInfo details this service attaches to its
// status errors, so a client tells the store's error classes apart even
// where they share a gRPC code.
const errorDomain = "images.skiff.sh"

// classes maps the ErrorInfo reason of each class to its sentinel and code.
// It is a function, not a package variable, so nothing can change it.
func classes() []struct {
	reason string
	err    error
	code   codes.Code
} {
	return []struct {
		reason string
		err    error
		code   codes.Code
	}{
		{"NOT_FOUND", image.ErrNotFound, codes.NotFound},
		{"UNAUTHORIZED", image.ErrUnauthorized, codes.Unauthenticated},
		{"DIGEST_MISMATCH", image.ErrDigestMismatch, codes.DataLoss},
		{"UNSAFE_LAYER", image.ErrUnsafeLayer, codes.InvalidArgument},
		{"INVALID_REFERENCE", image.ErrInvalidReference, codes.InvalidArgument},
		{"UNSUPPORTED", image.ErrUnsupported, codes.InvalidArgument},
		{"INVALID", ErrInvalid, codes.InvalidArgument},
	}
}

// toStatus turns an error of the store into a gRPC status error carrying
// the whole message, a code, and the error class as an ErrorInfo reason.
// The runtime is never reported Unavailable: that code means, to the
// client, that the runtime itself could not be reached.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, c := range classes() {
		if errors.Is(err, c.err) {
			st, derr := status.New(c.code, err.Error()).WithDetails(&errdetails.ErrorInfo{Reason: c.reason, Domain: errorDomain})
			if derr != nil {
				return status.Error(c.code, err.Error())
			}
			return st.Err()
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// remoteError is an error the server returned: its message as the server
// wrote it, and the class it had there.
type remoteError struct {
	msg   string
	class error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.class }

// fromStatus turns an error of a call into one that wraps the class the
// server reported (or ErrUnavailable, ErrUnimplemented, context.Canceled,
// context.DeadlineExceeded), with the server's message. target names the
// socket in errors about reaching it.
func fromStatus(err error, target string) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("image service at %s: %w: %s", target, ErrUnavailable, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("image service at %s: %w (is it skiff's runtime, and recent enough?): %s", target, ErrUnimplemented, st.Message())
	case codes.Canceled:
		return &remoteError{msg: st.Message(), class: context.Canceled}
	case codes.DeadlineExceeded:
		return &remoteError{msg: st.Message(), class: context.DeadlineExceeded}
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errorDomain {
			continue
		}
		for _, c := range classes() {
			if c.reason == info.GetReason() {
				return &remoteError{msg: st.Message(), class: c.err}
			}
		}
	}
	return &remoteError{msg: st.Message()}
}
