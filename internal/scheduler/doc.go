// Package scheduler is skiff's pod scheduler. It watches the API server
// through client-go informers, picks a node for every pending pod whose
// spec.schedulerName is its own ("default-scheduler"), and binds the pod
// through the pods/binding subresource. Like every skiff component it is
// a client of the API only.
//
// The simplest use:
//
//	s, err := scheduler.New(scheduler.Config{RESTConfig: cfg})
//	...
//	err = s.Run(ctx) // until ctx is done
//
// Several servers may run it: only the holder of the coordination.k8s.io
// Lease kube-system/kube-scheduler schedules (Config.LeaderElection).
//
// # The loop
//
//	informers ──► cache (nodes, bound and assumed pods)
//	    │                    │ UpdateSnapshot: changed nodes only
//	    ▼                    ▼
//	  queue ── Pop ──► scheduling cycle (one pod at a time)
//	    ▲               PreFilter ─► Filter ∥ nodes ─► PreScore ─► Score ∥ nodes
//	    │                  │ fits nowhere                       │ best node
//	    │                  ▼                                    ▼
//	    └─ unschedulable ◄─ PostFilter (preemption)       assume + Reserve
//	       / backoff        condition + event                   │
//	                                                            ▼
//	                                          binding cycle (goroutine): Bind
//	                                          ─► event "Scheduled" / on error:
//	                                             forget, requeue with backoff
//
// A scheduling cycle works on a snapshot of the cache that does not change
// while it runs; filtering and scoring run in parallel across nodes
// (Config.Parallelism). A cycle stops filtering once it has found enough
// feasible nodes (Config.PercentageOfNodesToScore, adaptive by default as
// upstream's) and the next cycle starts where it stopped. The chosen node
// is written into the cache at once (the pod is "assumed"), so the next
// cycle can start while the binding is still in flight; the informer's
// report of the bound pod confirms the assumption.
//
// When a pod fits nowhere, the scheduler sets its PodScheduled condition
// to False with reason Unschedulable and records a FailedScheduling event,
// both with upstream's message:
//
//	0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod..
//
// Then preemption looks for a node where evicting lower-priority pods
// makes room; if it finds one it sets status.nominatedNodeName, deletes
// the victims gracefully, and the pod is retried when they are gone.
// Unschedulable pods wait in the queue for a cluster event that may help
// them (see package queue).
//
// Plugins (package plugins and its subpackages) implement small
// interfaces from package framework; the registry is a plain map, and the
// default profile enables NodeUnschedulable, NodeName, TaintToleration,
// NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread,
// InterPodAffinity, NodeResourcesBalancedAllocation, ImageLocality,
// DefaultPreemption and DefaultBinder.
package scheduler
