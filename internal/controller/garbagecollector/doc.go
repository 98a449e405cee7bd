// Package garbagecollector deletes objects whose owners are gone, as
// upstream's garbage collector does: it is what makes ownerReferences
// mean something, and what carries out the three propagation policies of
// a delete (`kubectl delete --cascade=background|foreground|orphan`).
//
// It is an API client only, and knows no kind in advance: discovery lists
// every resource that can be listed, watched and deleted, and a metadata
// informer (PartialObjectMetadata, so objects of any kind cost the same)
// watches each. Discovery is read again every ResyncPeriod, so custom
// resources are collected too.
//
//	metadata informers ──► graph changes (one goroutine, in order)
//	   │                      │ the ownership graph: a node per UID with
//	   │                      │ its owners and dependents; owners not seen
//	   │                      │ yet are "virtual" nodes, to be checked
//	   │                      ▼
//	   │            attemptToDelete queue          attemptToOrphan queue
//	   │              │ virtual: gone? then its      │ remove the owner from
//	   │              │   dependents are orphans      │ each dependent's
//	   │              │ owners all gone or deleting   │ ownerReferences, then
//	   │              │   in the foreground: delete   │ the orphan finalizer
//	   │              │ some owner alive: drop refs   │
//	   │              │   to the others               │
//	   │              │ foreground owner: remove its  │
//	   │              │   finalizer once no blocking  │
//	   │              │   dependent is left           │
//	   ▼              ▼                               ▼
//	             the API (metadata client: get, patch, delete)
//
// # Propagation
//
// Background: the API server deletes the owner at once; its dependents
// become dangling and are deleted (each with background propagation, or
// the policy its own finalizers ask for).
//
// Foreground: the API server sets the owner's deletionTimestamp and adds
// the foregroundDeletion finalizer. The collector deletes every dependent
// (those with dependents of their own in the foreground too) and removes
// the finalizer once no dependent with blockOwnerDeletion=true is left,
// which lets the API server delete the owner.
//
// Orphan: the API server adds the orphan finalizer; the collector removes
// the owner from its dependents' ownerReferences, then the finalizer.
//
// All writes are conditional: patches carry the object's uid and
// resourceVersion, deletions a UID and resourceVersion precondition, so
// the collector never acts on an object that changed since it judged it.
//
// # Invalid references
//
// A namespaced object's owners are looked up in its own namespace; an
// owner found nowhere there is absent. A cluster-scoped object naming a
// namespaced kind as owner cannot be resolved: the collector reports an
// OwnerRefInvalidNamespace event and keeps the object.
package garbagecollector
