// Package core holds the rules of the API's non-workload resources:
// core/v1 namespaces, nodes, services, endpoints, configmaps, secrets,
// serviceaccounts, events, limitranges and resourcequotas;
// events.k8s.io/v1 events; coordination.k8s.io/v1 leases;
// discovery.k8s.io/v1 endpointslices; scheduling.k8s.io/v1
// priorityclasses; and the four rbac.authorization.k8s.io/v1 kinds.
// Resources returns them as registry.Resource values for the generic REST
// layer (internal/apiserver).
//
// Every rule follows upstream Kubernetes v1.37 on the v1 external types of
// k8s.io/api — scope, short names, categories, defaults, validation with
// upstream's field paths, error types and messages, field selectors — so
// that kubectl and client-go see the answers they expect. The REST layer
// runs the hooks in this order:
//
//	create:  PrepareForCreate ─► Default ─► Validate ─► BeforeCreate ─► store
//	                                                        │ failed write
//	                                                        └─► Rollback
//	update:  PrepareForUpdate ─► Default ─► ValidateUpdate ─► BeforeUpdate ─► store
//	delete:  store ─► AfterDelete
//
// Upstream defaults at decoding, before PrepareForCreate; skiff defaults
// after it, so PrepareForCreate hooks here never depend on defaults.
//
// # Service allocation
//
// Services get their cluster IP from Config.ServiceCIDR and their node
// ports from Config.NodePortRange in BeforeCreate and BeforeUpdate, after
// validation (upstream allocates before validating; the results are the
// same, but validation here accepts the fields the allocator fills in).
// Claims live in Reservations, an interface the server implements over
// etcd so that several API servers share them:
//
//	Reserve("serviceips/10.43.12.7", "default/web/<uid>")  → true
//	Reserve("servicenodeports/30080", "default/web/<uid>") → true
//
// A requested value must be in range and free (422 "provided IP is already
// allocated", "provided port is already allocated"); an unset one is
// chosen among the free values, preferring the upper part of each range so
// that the lower part stays free for values set by hand (the "kubernetes"
// Service's first address, a DNS Service's .10). A full range is a 500
// "range is full". Updates claim what the new object adds and release
// what it drops: NodePort → ClusterIP frees the node ports, → ExternalName
// frees the cluster IP. AfterDelete releases everything. Rollback undoes
// the last BeforeCreate or BeforeUpdate of the same object after a failed
// write or a dry run.
//
// Choices are derived from the Service's UID rather than drawn at random:
// the store retries an update on a conflict, running BeforeUpdate again on
// a fresh copy, and the retry must land on the claims of the first try
// (Reserve is idempotent for its owner) instead of leaking them.
//
// A claim can outlive its Service when a release fails (AfterDelete only
// logs) or a write fails after BeforeUpdate claimed; LeakedClaims finds
// such claims for a repair loop.
//
// With nil Config.Reservations, allocation is disabled: services get no
// cluster IP and no node ports, and values clients set are only checked
// against the ranges. Tests of other resources use this.
//
// # Events
//
// events.k8s.io/v1 events are stored apart from core/v1 events (upstream
// serves one storage under both APIs). ToEventsV1 and ToCoreEvent convert
// between the two as upstream does, and EventsV1FieldLabel maps field
// selectors, for a server that serves one storage under both.
package core
