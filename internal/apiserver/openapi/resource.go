package openapi

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ErrInvalid is wrapped by every error New returns for a malformed Resource
// list, Config or Go type (a field of a kind JSON cannot carry, two Go types
// with one definition name). Check it with errors.Is.
var ErrInvalid = errors.New("invalid OpenAPI input")

// The verbs a Resource or Subresource may list, as discovery spells them.
const (
	VerbGet              = "get"
	VerbList             = "list"
	VerbWatch            = "watch"
	VerbCreate           = "create"
	VerbUpdate           = "update"
	VerbPatch            = "patch"
	VerbDelete           = "delete"
	VerbDeleteCollection = "deletecollection"
)

// Resource is one served resource (apps/v1 deployments), as the documents
// describe it. The server adapts its registry to this struct; the package
// keeps no table of its own, so whatever the server serves is documented and
// nothing else.
type Resource struct {
	// GroupVersion is the resource's API group and version; the empty
	// group is the core group served under /api.
	GroupVersion schema.GroupVersion
	// Resource is the plural, lower-case name in the URL: "deployments".
	Resource string
	// Kind is the kind of Object: "Deployment".
	Kind string
	// Namespaced is true for resources that live in a namespace.
	Namespaced bool
	// Verbs lists the verbs served on the main resource, as discovery
	// shows them (VerbGet, VerbList, ...). Empty means all eight.
	Verbs []string
	// Object is an empty object of the resource's Go type
	// (&appsv1.Deployment{}); its fields are read by reflection, never
	// written.
	Object runtime.Object
	// List is an empty object of the list type (&appsv1.DeploymentList{}).
	// It is required when Verbs include list or deletecollection. Its
	// kind is the Go type's name.
	List runtime.Object
	// Subresources are served below an object: status, scale, log, exec.
	Subresources []Subresource
}

// Subresource is one subresource of a Resource (pods/status,
// deployments/scale, pods/log, pods/exec).
type Subresource struct {
	// Name is the last path segment: "status", "scale", "exec".
	Name string
	// Verbs lists the verbs served: VerbGet, VerbUpdate and VerbPatch for
	// status-like subresources, VerbCreate for pods/binding. For a
	// Connect subresource VerbGet, VerbCreate, VerbUpdate, VerbPatch and
	// VerbDelete stand for the HTTP methods GET, POST, PUT, PATCH and
	// DELETE.
	Verbs []string
	// Object is an empty object of the request and response body's Go
	// type: the parent's type for status, &autoscalingv1.Scale{} for
	// scale. Nil for streams (log, exec, attach, portforward, proxy),
	// whose response is documented as a string.
	Object runtime.Object
	// Kind is the group, version and kind of Object. It may be left
	// empty when Object has the parent's Go type; it is required
	// otherwise (Scale is autoscaling/v1, Eviction is policy/v1).
	Kind schema.GroupVersionKind
	// Options is an empty options object whose fields are the query
	// parameters of the subresource (&corev1.PodLogOptions{} for log,
	// &corev1.PodExecOptions{} for exec). Optional.
	Options runtime.Object
	// Connect marks subresources upstream documents as "connect"
	// operations (exec, attach, portforward, proxy): one operation per
	// HTTP method, no request body, a string response.
	Connect bool
	// WithPath also documents Name/{path} (proxy).
	WithPath bool
}

var allVerbs = []string{VerbCreate, VerbDelete, VerbDeleteCollection, VerbGet, VerbList, VerbPatch, VerbUpdate, VerbWatch}

var subresourceVerbs = []string{VerbCreate, VerbDelete, VerbGet, VerbPatch, VerbUpdate}

var (
	// pathSegment matches a group name, a version, a resource or
	// subresource name: what may stand between two slashes of an API
	// path.
	pathSegment = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
	kindName    = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

// verbs returns the resource's verbs, defaulted.
func (r *Resource) verbs() []string {
	if len(r.Verbs) == 0 {
		return allVerbs
	}
	return r.Verbs
}

func (r *Resource) has(verb string) bool { return slices.Contains(r.verbs(), verb) }

func (r *Resource) gvk() schema.GroupVersionKind { return r.GroupVersion.WithKind(r.Kind) }

// String names the resource in errors: "apps/v1/deployments".
func (r *Resource) String() string {
	return strings.TrimPrefix(r.GroupVersion.String()+"/"+r.Resource, "/")
}

// validate checks one resource on its own; New checks what concerns
// several.
func (r *Resource) validate() error {
	if r.GroupVersion.Group != "" && !pathSegment.MatchString(r.GroupVersion.Group) {
		return fmt.Errorf("group %q is not a valid group name", r.GroupVersion.Group)
	}
	if !pathSegment.MatchString(r.GroupVersion.Version) {
		return fmt.Errorf("version %q is not a valid version", r.GroupVersion.Version)
	}
	if !pathSegment.MatchString(r.Resource) {
		return fmt.Errorf("resource name %q is not a lower-case path segment", r.Resource)
	}
	if !kindName.MatchString(r.Kind) {
		return fmt.Errorf("kind %q is not a CamelCase name", r.Kind)
	}
	for _, v := range r.Verbs {
		if !slices.Contains(allVerbs, v) {
			return fmt.Errorf("unknown verb %q", v)
		}
	}
	if err := checkStruct("object", r.Object); err != nil {
		return err
	}
	if r.List != nil {
		if err := checkStruct("list", r.List); err != nil {
			return err
		}
	} else if r.has(VerbList) || r.has(VerbDeleteCollection) {
		return errors.New("list object is required for the list and deletecollection verbs")
	}
	seen := map[string]bool{}
	for i := range r.Subresources {
		sub := &r.Subresources[i]
		if seen[sub.Name] {
			return fmt.Errorf("subresource %q listed twice", sub.Name)
		}
		seen[sub.Name] = true
		if err := sub.validate(r); err != nil {
			return fmt.Errorf("subresource %q: %w", sub.Name, err)
		}
	}
	return nil
}

func (s *Subresource) validate(parent *Resource) error {
	if !pathSegment.MatchString(s.Name) {
		return errors.New("name is not a lower-case path segment")
	}
	if len(s.Verbs) == 0 {
		return errors.New("no verbs")
	}
	for _, v := range s.Verbs {
		if !slices.Contains(subresourceVerbs, v) {
			return fmt.Errorf("verb %q is not one of %v", v, subresourceVerbs)
		}
	}
	if s.Options != nil {
		if err := checkStruct("options", s.Options); err != nil {
			return err
		}
	}
	if s.WithPath && !s.Connect {
		return errors.New("WithPath needs Connect")
	}
	if s.Connect {
		if s.Object != nil {
			return errors.New("a connect subresource has no object")
		}
		return nil
	}
	if s.Object == nil {
		if len(s.Verbs) != 1 || s.Verbs[0] != VerbGet {
			return errors.New("a stream without object (like log) serves only get")
		}
		return nil
	}
	if err := checkStruct("object", s.Object); err != nil {
		return err
	}
	if s.Kind.Empty() {
		if reflect.TypeOf(s.Object) != reflect.TypeOf(parent.Object) {
			return fmt.Errorf("kind is required: object %T is not the parent's %T", s.Object, parent.Object)
		}
		return nil
	}
	if s.Kind.Version == "" || !kindName.MatchString(s.Kind.Kind) {
		return fmt.Errorf("kind %q is incomplete", s.Kind)
	}
	return nil
}

// kind returns the subresource object's kind, defaulted to the parent's.
func (s *Subresource) kind(parent *Resource) schema.GroupVersionKind {
	if s.Kind.Empty() {
		return parent.gvk()
	}
	return s.Kind
}

// checkStruct requires obj to be a non-nil pointer to a struct.
func checkStruct(what string, obj runtime.Object) error {
	if obj == nil {
		return fmt.Errorf("%s is nil", what)
	}
	t := reflect.TypeOf(obj)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%s %T is not a pointer to a struct", what, obj)
	}
	return nil
}
