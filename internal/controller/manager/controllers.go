package manager

import (
	"github.com/skiff-sh/skiff/internal/controller/deployment"
	"github.com/skiff-sh/skiff/internal/controller/replicaset"
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
	}
}
