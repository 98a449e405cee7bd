// Package manager runs skiff's controllers: the loops that drive
// Deployments, ReplicaSets, garbage collection, namespaces and the rest
// toward their desired state. It is skiff's kube-controller-manager.
//
// The simplest use, as `skiff server` does:
//
//	m, err := manager.New(manager.Config{REST: adminConfig, Logger: logger})
//	if err != nil { ... }
//	err = m.Run(ctx) // blocks until ctx is done
//
// # The main loop
//
// Several servers may run a manager against one cluster; only the one that
// holds the coordination.k8s.io Lease kube-system/skiff-controller-manager
// runs controllers at a time:
//
//	Run ──► campaign for the Lease ◄───────────────────────────┐
//	            │ acquired                                      │ lost (renewal failed):
//	            ▼                                               │ stop every controller,
//	        lead: new clients + shared informer factories       │ drop every cache,
//	            │ for each entry of builtins(): New(Deps)       │ then campaign again
//	            │ start the informer factories                  │
//	            │ go Runner.Run(ctx) for each controller ───────┘
//	            ▼
//	        ctx done: stop the controllers, wait for them, then release
//	        the Lease so another server takes over at once
//
// Controllers never share state but the informer caches, which the manager
// builds anew on every term of leadership, so a manager that lost the Lease
// and won it back starts from a fresh, consistent view of the cluster.
//
// # Adding a controller
//
// Controllers live in their own packages under internal/controller and
// import nothing from skiff: they are API clients only (client-go typed
// clients, informers and listers). Each exports a constructor that takes
// its own Config and returns a value with a method
//
//	Run(ctx context.Context) error
//
// that waits for its informer caches, works until ctx is done and then
// returns nil (an error means it could not run at all, which stops the
// manager). The constructor must only register informers (by calling
// Informer() or Lister() on the factories in Deps) and event handlers; the
// manager starts the factories after every constructor has returned.
//
// To register a controller, add one entry to the list in builtins
// (controllers.go) and its import, mapping Deps onto the controller's
// Config (gofmt lays the entry out on three lines):
//
//	{Name: "job", New: func(d Deps) (Runner, error) {
//		return job.New(job.Config{Client: d.Client, Informers: d.Informers, Logger: d.Logger, Clock: d.Clock})
//	}},
//
// Names are short, lower case, unique, and are what Config.Disabled
// refers to. Settings that a controller needs from the command line (a
// cluster CIDR, a threshold) become fields of Config with a comment naming
// the controller, and are read from d.Config in that line.
package manager
