//go:build !linux

package cni

import (
	"errors"
	"fmt"
)

// execIn cannot enter a network namespace off Linux.
func execIn(netns string, _ func() ([]byte, error)) ([]byte, error) {
	return nil, fmt.Errorf("run plugins in network namespace %s: %w", netns, errors.ErrUnsupported)
}
