package workload

import (
	"context"
	"errors"

	schedulingv1 "k8s.io/api/scheduling/v1"

	"github.com/skiff-sh/skiff/internal/registry"
)

// ErrPriorityClassNotFound is what a PriorityClasses lookup returns
// (possibly wrapped) when the named class does not exist. The pods
// resource then rejects the create with 403, as upstream's Priority
// admission plugin does.
var ErrPriorityClassNotFound = errors.New("priority class not found")

// PriorityClasses resolves pods' priorityClassName. Implementations read
// the API's schedulingv1 PriorityClasses (usually from an informer cache);
// they must be safe for concurrent use.
type PriorityClasses interface {
	// Get returns the named class, or an error wrapping
	// ErrPriorityClassNotFound.
	Get(ctx context.Context, name string) (*schedulingv1.PriorityClass, error)
	// GlobalDefault returns the class marked globalDefault (the one with
	// the highest value if several are), or nil when there is none.
	GlobalDefault(ctx context.Context) (*schedulingv1.PriorityClass, error)
}

// Config tunes the workload resources. The zero value is ready to use.
type Config struct {
	// PriorityClasses resolves priorityClassName on pod create. Nil knows
	// only the two built-in classes (system-cluster-critical and
	// system-node-critical): pods without a class get priority 0, and any
	// other class name is rejected as not found.
	PriorityClasses PriorityClasses

	// ForbidPrivileged rejects privileged containers in pods and
	// templates (upstream's --allow-privileged=false). The zero value
	// allows them, as every common distribution configures upstream.
	ForbidPrivileged bool
}

// Resources returns the workload resources, each a new value the caller
// owns: core/v1 pods, podtemplates and replicationcontrollers; apps/v1
// deployments, replicasets, statefulsets, daemonsets and
// controllerrevisions; batch/v1 jobs and cronjobs. Table is left nil for
// the caller to fill from internal/registry/printers.
func Resources(cfg Config) []*registry.Resource {
	b := builder{cfg: cfg}
	return []*registry.Resource{
		b.pods(),
		b.podTemplates(),
		b.replicationControllers(),
		b.deployments(),
		b.replicaSets(),
		b.statefulSets(),
		b.daemonSets(),
		b.controllerRevisions(),
		b.jobs(),
		b.cronJobs(),
	}
}

// builder builds the resources of one Config.
type builder struct {
	cfg Config
}

func (b builder) podOptions() podOptions {
	return podOptions{forbidPrivileged: b.cfg.ForbidPrivileged}
}
