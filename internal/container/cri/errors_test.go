package cri

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/container/image"
)

func TestToStatus_MapsErrorClassesToCodes(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"Nil", nil, codes.OK},
		{"UnknownContainer", fmt.Errorf("container x: %w", container.ErrNotFound), codes.NotFound},
		{"UnknownImage", fmt.Errorf("pull: %w", image.ErrNotFound), codes.NotFound},
		{"TakenName", fmt.Errorf("name: %w", container.ErrAlreadyExists), codes.AlreadyExists},
		{"BadRequest", fmt.Errorf("mount: %w", container.ErrInvalid), codes.InvalidArgument},
		{"BadReference", fmt.Errorf("ref: %w", image.ErrInvalidReference), codes.InvalidArgument},
		{"WrongState", fmt.Errorf("start: %w", container.ErrNotReady), codes.FailedPrecondition},
		{"RegistryAuth", fmt.Errorf("pull: %w", image.ErrUnauthorized), codes.Unauthenticated},
		{"Timeout", fmt.Errorf("exec: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"AlreadyAStatus", status.Error(codes.Unimplemented, "no"), codes.Unimplemented},
		{"Other", errors.New("disk on fire"), codes.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(toStatus(tt.err)); got != tt.want {
				t.Errorf("toStatus(%v) code = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
