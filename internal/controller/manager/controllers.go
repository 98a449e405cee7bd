package manager

import (
	"github.com/skiff-sh/skiff/internal/controller/cronjob"
	"github.com/skiff-sh/skiff/internal/controller/daemonset"
	"github.com/skiff-sh/skiff/internal/controller/deployment"
	"github.com/skiff-sh/skiff/internal/controller/endpoints"
	"github.com/skiff-sh/skiff/internal/controller/endpointslice"
	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	"github.com/skiff-sh/skiff/internal/controller/job"
	"github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/controller/nodeipam"
	"github.com/skiff-sh/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-sh/skiff/internal/controller/podgc"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/controller/serviceaccount"
	"github.com/skiff-sh/skiff/internal/controller/statefulset"
)

// builtins is the registration list: every controller the manager runs,
// built in this order (the order does not matter for correctness; each
// controller waits for its own caches). Add a controller with one line;
// see the package documentation for the convention.
func builtins() []Controller {
	return []Controller{
		{Name: "replicaset", New: func(d Deps) (Runner, error) {
			return replicaset.New(replicaset.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "deployment", New: func(d Deps) (Runner, error) {
			return deployment.New(deployment.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "garbagecollector", New: func(d Deps) (Runner, error) {
			return garbagecollector.New(garbagecollector.Config{Metadata: d.Metadata, Discovery: d.Discovery, Client: d.Client, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "namespace", New: func(d Deps) (Runner, error) {
			return namespace.New(namespace.Config{Client: d.Client, Metadata: d.Metadata, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "job", New: func(d Deps) (Runner, error) {
			return job.New(job.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "cronjob", New: func(d Deps) (Runner, error) {
			return cronjob.New(cronjob.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "daemonset", New: func(d Deps) (Runner, error) {
			return daemonset.New(daemonset.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "statefulset", New: func(d Deps) (Runner, error) {
			return statefulset.New(statefulset.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "nodelifecycle", New: func(d Deps) (Runner, error) {
			return nodelifecycle.New(nodelifecycle.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock, GracePeriod: d.Config.NodeMonitorGracePeriod})
		}},
		{Name: "nodeipam", New: func(d Deps) (Runner, error) {
			return nodeipam.New(nodeipam.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock, ClusterCIDRs: d.Config.ClusterCIDRs})
		}},
		{Name: "endpoints", New: func(d Deps) (Runner, error) {
			return endpoints.New(endpoints.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "endpointslice", New: func(d Deps) (Runner, error) {
			return endpointslice.New(endpointslice.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "endpointslicemirroring", New: func(d Deps) (Runner, error) {
			return endpointslice.NewMirror(endpointslice.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "serviceaccount", New: func(d Deps) (Runner, error) {
			return serviceaccount.New(serviceaccount.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
		{Name: "podgc", New: func(d Deps) (Runner, error) {
			return podgc.New(podgc.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
		}},
	}
}
