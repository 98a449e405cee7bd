package endpointslice

import (
	"context"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Hooks for the external integration test (which cannot be an internal
// test: the test server imports the controller manager, which imports
// this package).

// SyncNow runs one sync of the Service with the given key.
func SyncNow(ctx context.Context, c *Controller, key string) error { return c.sync(ctx, key) }

// CachedSlices returns the slices of a Service in the controller's cache.
func CachedSlices(c *Controller, ns, service string) ([]*discoveryv1.EndpointSlice, error) {
	return c.slices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
}
