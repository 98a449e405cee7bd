package server

import (
	"context"
	"fmt"
	"net/netip"

	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/registry/core"
	"github.com/skiff-sh/skiff/internal/registry/workload"
	"github.com/skiff-sh/skiff/internal/storage"
)

// resources lists everything the API server serves, in discovery order.
func (s *Server) resources(store *storage.Store, late *lateBinding) ([]*registry.Resource, error) {
	cidr, err := netip.ParsePrefix(s.cfg.ServiceCIDR)
	if err != nil {
		return nil, fmt.Errorf("service CIDR: %w", err)
	}
	ports, err := core.ParsePortRange(s.cfg.NodePortRange)
	if err != nil {
		return nil, fmt.Errorf("node port range: %w", err)
	}
	var out []*registry.Resource
	out = append(out, core.Resources(core.Config{
		ServiceCIDR:     cidr.Masked(),
		NodePortRange:   ports,
		Reservations:    storage.NewReservations(store),
		PriorityClasses: late,
		Logger:          s.log.WithGroup("registry"),
	})...)
	out = append(out, workload.Resources(workload.Config{PriorityClasses: late})...)
	return out, nil
}

// lateBinding lets registry hooks read the API server's caches, which exist
// only after the registry is built.
type lateBinding struct {
	api *apiserver.Server
}

var priorityClassesGVR = schema.GroupVersionResource{Group: "scheduling.k8s.io", Version: "v1", Resource: "priorityclasses"}

func (l *lateBinding) Get(ctx context.Context, name string) (*schedulingv1.PriorityClass, error) {
	if obj, ok := l.api.Lookup(priorityClassesGVR, "", name); ok {
		return obj.(*schedulingv1.PriorityClass), nil
	}
	for _, pc := range core.SystemPriorityClasses() {
		if pc.Name == name {
			return pc, nil
		}
	}
	return nil, fmt.Errorf("priority class %q: %w", name, workload.ErrPriorityClassNotFound)
}

func (l *lateBinding) GlobalDefault(ctx context.Context) (*schedulingv1.PriorityClass, error) {
	var best *schedulingv1.PriorityClass
	for _, obj := range l.api.LookupAll(priorityClassesGVR) {
		pc := obj.(*schedulingv1.PriorityClass)
		if pc.GlobalDefault && (best == nil || pc.Value > best.Value) {
			best = pc
		}
	}
	return best, nil
}
