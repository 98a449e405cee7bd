// Package endpointslice keeps the discovery.k8s.io/v1 EndpointSlices of
// every Service with a selector in step with the pods it selects, as
// upstream's endpointslice-controller does. The service proxy and cluster
// DNS read these slices.
//
// # What a sync computes
//
// For each address type of the Service (IPv4 and/or IPv6, from
// spec.ipFamilies) every selected pod that has an IP of that family and
// has not finished (phase Succeeded or Failed) becomes one endpoint:
//
//	addresses   the pod's IP of that family
//	conditions  serving = pod Ready; terminating = pod being deleted;
//	            ready = serving and not terminating — or always true with
//	            publishNotReadyAddresses
//	nodeName, zone (the node's topology.kubernetes.io/zone label),
//	hostname (when the pod's subdomain names the Service), targetRef
//	hints       with trafficDistribution PreferClose/PreferSameZone, ready
//	            endpoints get their own zone (PreferSameNode: and node)
//
// Terminating pods stay in the slices (marked so) until they are gone,
// which lets the proxy drain them. A pod on a node that stopped reporting
// (phase Unknown, Ready False) stays as a not-ready endpoint.
//
// Each Service port maps to the pod's port (the targetPort number, or the
// container or sidecar port it names); pods whose ports resolve to a
// different set (say, one lacks the named port) go to different slices.
//
// # How slices are written
//
//	desired endpoints, grouped by (address type, ports)
//	        │
//	        ▼
//	existing slices of the Service ──► keep each endpoint still desired
//	        │                          in the slice that has it (update the
//	        │                          slice only if something changed;
//	        │                          delete it if it ends up empty)
//	        ▼
//	endpoints not placed yet ─────────► fill the slices being updated
//	        │                          anyway, then one unchanged slice with
//	        │                          room, then new slices of at most
//	        │                          Config.MaxEndpointsPerSlice
//	        ▼
//	a delete and a create of the same address type become one update;
//	a Service without endpoints keeps one empty placeholder slice;
//	writes go out as creates, then updates, then deletes
//
// so a pod that changes touches one slice, and traffic never loses an
// endpoint that stays.
//
// Slices are named after the Service (generateName "<service>-"), carry its
// labels plus kubernetes.io/service-name, endpointslice.kubernetes.io/
// managed-by=endpointslice-controller.k8s.io and, for headless Services,
// service.kubernetes.io/headless, and are owned by the Service. When the
// Service is deleted, loses its selector or becomes ExternalName, the
// controller deletes its slices itself (upstream leaves the first to the
// garbage collector and keeps the others).
//
// # Mirroring
//
// Mirror, a second controller in this package, copies hand-written
// Endpoints of Services without a selector into slices managed by
// endpointslicemirroring-controller.k8s.io (upstream's
// endpointslicemirroring-controller), with the same planning and
// tracking, so that every Service reaches slice readers.
//
// # Our own writes and the cache
//
// The informer cache lags behind the controller's own writes. A tracker
// remembers the metadata.generation each written slice must reach (or that
// it was deleted); a sync that finds the cache older than that waits and
// retries instead of acting on stale data, and slice events that only echo
// our writes do not trigger syncs. A change made by anyone else to a
// managed slice triggers a sync, which puts it back.
package endpointslice
