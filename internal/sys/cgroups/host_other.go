//go:build !linux

package cgroups

import (
	"context"
	"fmt"
	"os"
)

func detectLayout() (Layout, error) {
	return Layout{}, fmt.Errorf("cgroups: %w", ErrNotSupported)
}

type hostFS struct{}

func (hostFS) mkdir(string) error                       { return ErrNotSupported }
func (hostFS) rmdir(string) error                       { return ErrNotSupported }
func (hostFS) writeFile(string, string) error           { return ErrNotSupported }
func (hostFS) attachDevices(string, []DeviceRule) error { return ErrNotSupported }

func killProcess(int) error { return ErrNotSupported }

// Watch is not supported off Linux.
func (c *Cgroup) Watch(context.Context) (<-chan Event, error) {
	return nil, fmt.Errorf("cgroup %s: watch: %w", c.name(), ErrNotSupported)
}

func readSmall(name string) ([]byte, error) { return os.ReadFile(name) }
