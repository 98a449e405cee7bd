// Package registry describes every resource the API server serves: its
// identity (group, version, kind, plural, scope, short names, categories) and
// the rules that make it behave like upstream Kubernetes — defaults,
// validation, what create and update may change, status and scale
// subresources, the fields it can be selected by and its table columns.
//
// The API server's REST layer (internal/apiserver) is generic: it knows how
// to create, update, patch, delete, list and watch any object, and asks a
// Resource for everything that differs between kinds. A Resource holds no
// state; the hooks that need cluster state (the Service IP allocator) get
// it through interfaces passed in when the registry is built.
package registry

import (
	"context"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry/printers"
)

// Resource is one served resource (for example apps/v1 deployments). The
// zero value of every hook means "nothing to do".
//
// All hooks receive objects of the resource's own Go type (*corev1.Pod for
// pods). obj is always the caller's private copy and may be modified; old is
// the stored object and must not be modified.
type Resource struct {
	// Identity.
	GroupVersion schema.GroupVersion
	Resource     string // plural, lower case: "deployments"
	Kind         string // "Deployment"
	ListKind     string // "DeploymentList"
	SingularName string // "deployment"
	ShortNames   []string
	Categories   []string
	Namespaced   bool

	// New and NewList return empty objects of the resource's type.
	New     func() runtime.Object
	NewList func() runtime.Object

	// Verbs lists the verbs served on the main resource, as discovery
	// shows them. Empty means all of create, delete, deletecollection, get,
	// list, patch, update, watch.
	Verbs []string

	// NameValidation checks metadata.name (prefix is true for a
	// generateName prefix) and returns messages as apimachinery's name
	// validators do. Nil means DNS-1123 subdomain, upstream's default.
	NameValidation func(name string, prefix bool) []string

	// StatusOnCreate keeps the status a client sends on create (nodes).
	// Otherwise the REST layer clears status on create for resources with
	// a status subresource.
	StatusOnCreate bool

	// AllowCreateOnUpdate lets PUT create a missing object (upstream:
	// endpoints, leases, events, nodes? — as each strategy says).
	AllowCreateOnUpdate bool

	// HasGeneration makes the server keep metadata.generation: 1 on create,
	// +1 on every update that changes anything but metadata and status.
	HasGeneration bool

	// Default sets upstream's defaults on obj. It runs on create, on
	// update and on the result of every patch, first of all the hooks
	// (upstream defaults while decoding).
	Default func(obj runtime.Object)

	// PrepareForCreate clears what a client may not set on create and
	// sets server-owned fields. It runs after Default, with metadata.uid,
	// the final name and creationTimestamp already set.
	PrepareForCreate func(ctx context.Context, obj runtime.Object)

	// PrepareForUpdate carries over from old what an update of the main
	// resource may not change (for most kinds: status).
	PrepareForUpdate func(ctx context.Context, obj, old runtime.Object)

	// Validate checks a new object. Field paths are rooted at the object
	// ("metadata.name", "spec.containers[0].image"). Object metadata (name,
	// namespace, labels, annotations, finalizers, ownerReferences) is
	// validated by the REST layer; Validate checks the rest.
	Validate func(ctx context.Context, obj runtime.Object) field.ErrorList

	// ValidateUpdate checks an update against the stored object:
	// immutable fields, plus everything Validate checks.
	ValidateUpdate func(ctx context.Context, obj, old runtime.Object) field.ErrorList

	// AfterDelete runs after the store acknowledged a delete (the Service
	// allocators release addresses here). Errors are logged by the caller,
	// never returned to the client.
	AfterDelete func(ctx context.Context, obj runtime.Object) error

	// BeforeCreate runs after validation, just before the write: it may
	// allocate (Service cluster IPs and node ports) and fail the request
	// with an API status error. If the write then fails, Rollback is
	// called with the same object.
	BeforeCreate func(ctx context.Context, obj runtime.Object) error
	// BeforeUpdate is BeforeCreate for updates.
	BeforeUpdate func(ctx context.Context, obj, old runtime.Object) error
	// Rollback undoes BeforeCreate or BeforeUpdate after a failed write.
	Rollback func(ctx context.Context, obj runtime.Object)

	// Status, when set, serves the status subresource. The REST layer
	// already keeps status unchanged on updates of the main resource, and
	// everything but status and metadata.managedFields on updates of the
	// subresource, by copying the Status field; the hooks
	// add kind-specific rules.
	Status *Subresource

	// Scale, when set, serves the scale subresource.
	Scale *Scale

	// GracefulDelete, when set, decides how a delete proceeds: it returns
	// the grace period to apply (and may adjust options). Returning
	// graceful=false deletes immediately. Pods use it.
	GracefulDelete func(obj runtime.Object, opts *metav1.DeleteOptions) (gracePeriodSeconds int64, graceful bool)

	// ReturnDeletedObject makes DELETE answer with the deleted object
	// (upstream: pods, services, namespaces); otherwise it answers with a
	// Status of Success.
	ReturnDeletedObject bool

	// DefaultPropagation reports the default propagation when the client
	// sends none; nil means Background (upstream's default for most
	// kinds).
	DefaultPropagation func() metav1.DeletionPropagation

	// SelectableFields returns the fields the object can be selected by
	// with a field selector, beyond metadata.name and metadata.namespace
	// which the REST layer adds itself ("spec.nodeName" → "node-1").
	SelectableFields func(obj runtime.Object) fields.Set
	// FieldLabels lists the keys SelectableFields returns, so that a
	// selector on any other field is rejected with 400 as upstream does.
	FieldLabels []string

	// Table gives the columns for "kubectl get". Nil means the default
	// NAME / CREATED AT table.
	Table *printers.Table
}

// Subresource holds the rules for a status-like subresource: what an update
// through it may change.
type Subresource struct {
	// PrepareForUpdate carries over from old everything the subresource
	// may not change (for status: spec and most metadata).
	PrepareForUpdate func(ctx context.Context, obj, old runtime.Object)
	// ValidateUpdate checks the update.
	ValidateUpdate func(ctx context.Context, obj, old runtime.Object) field.ErrorList
}

// Scale maps a resource to the autoscaling/v1 Scale subresource.
type Scale struct {
	// Get reads the scale from obj (spec.replicas, status.replicas and the
	// selector as a string).
	Get func(obj runtime.Object) *autoscalingv1.Scale
	// Set writes spec.replicas from scale into obj.
	Set func(obj runtime.Object, scale *autoscalingv1.Scale)
	// ReplicasPath is the field path of the replica count in the parent
	// (".spec.replicas"), for server-side apply's field ownership.
	ReplicasPath string
}
