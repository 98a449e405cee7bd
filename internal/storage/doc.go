// Package storage keeps API objects in etcd and mirrors them in memory.
//
// Three pieces, used by the API server only (nothing else in skiff may
// import this package; components talk to the API):
//
//   - Embedded / NewExternalClient: the etcd member skiff runs in-process by
//     default (on unix sockets in the data dir, with an in-process client),
//     or a client for an external cluster.
//   - Store: create, get, guaranteed update (read, modify, compare-and-swap,
//     retry), delete with preconditions, and paginated list, on string keys,
//     with a Codec (protobuf, as Kubernetes stores objects). An object's
//     resourceVersion is its etcd modification revision.
//   - Cache: the watch cache. One per resource, fed by one etcd watch on the
//     resource's prefix; it serves lists at any resourceVersion it has
//     reached, consistent lists (after a progress notification proves it is
//     current), and any number of watches, each resuming from a revision in
//     its history or starting with the current state.
//
// Errors are classified by the sentinels in errors.go.
package storage
