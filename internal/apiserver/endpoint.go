package apiserver

import (
	"fmt"
	"reflect"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/registry/printers"
	"github.com/skiff-sh/skiff/internal/storage"
)

// endpoint is one served resource: its rules, its keys in etcd and its
// watch cache.
type endpoint struct {
	res *registry.Resource
	gvr schema.GroupVersionResource
	gvk schema.GroupVersionKind
	gr  schema.GroupResource
	// prefix is the etcd key prefix, ending in "/".
	prefix string
	cache  *storage.Cache
	table  *printers.Table
	// fieldLabels are the field selector keys the resource supports.
	fieldLabels sets.Set[string]
	verbs       sets.Set[string]
	nameFn      apivalidation.ValidateNameFunc

	// tokens signs service-account tokens (serviceaccounts only).
	tokens TokenIssuer

	// managers are the server-side apply field managers, built on first
	// use, keyed by subresource ("" for the main resource).
	managers managerSet
}

var defaultVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func (s *Server) newEndpoint(res *registry.Resource) (*endpoint, error) {
	if res.New == nil || res.NewList == nil || res.Resource == "" || res.Kind == "" {
		return nil, fmt.Errorf("apiserver: resource %q of %s is incomplete", res.Resource, res.GroupVersion)
	}
	ep := &endpoint{
		res:    res,
		gvr:    res.GroupVersion.WithResource(res.Resource),
		gvk:    res.GroupVersion.WithKind(res.Kind),
		gr:     schema.GroupResource{Group: res.GroupVersion.Group, Resource: res.Resource},
		prefix: keyPrefix(res),
		table:  tableFor(res),
		nameFn: apivalidation.NameIsDNSSubdomain,
	}
	if res.NameValidation != nil {
		ep.nameFn = res.NameValidation
	}
	if ep.gvr == corev1.SchemeGroupVersion.WithResource("serviceaccounts") {
		ep.tokens = s.cfg.TokenIssuer
	}
	ep.fieldLabels = sets.New("metadata.name")
	if res.Namespaced {
		ep.fieldLabels.Insert("metadata.namespace")
	}
	ep.fieldLabels.Insert(res.FieldLabels...)
	verbs := res.Verbs
	if len(verbs) == 0 {
		verbs = defaultVerbs
	}
	ep.verbs = sets.New(verbs...)
	cache, err := storage.NewCache(storage.CacheConfig{
		Store:     s.store,
		Prefix:    ep.prefix,
		Attrs:     ep.attrs,
		NewObject: res.New,
		Logger:    s.log.With("resource", ep.gr.String()),
	})
	if err != nil {
		return nil, err
	}
	ep.cache = cache
	return ep, nil
}

// keyPrefix is where a resource lives in etcd: /registry/<resource>/ for
// the core group, /registry/<group>/<resource>/ otherwise.
func keyPrefix(res *registry.Resource) string {
	if res.GroupVersion.Group == "" {
		return "/registry/" + res.Resource + "/"
	}
	return "/registry/" + res.GroupVersion.Group + "/" + res.Resource + "/"
}

func (ep *endpoint) key(namespace, name string) string {
	if ep.res.Namespaced {
		return ep.prefix + namespace + "/" + name
	}
	return ep.prefix + name
}

// listPrefix is the key prefix of a list in namespace ("" for all).
func (ep *endpoint) listPrefix(namespace string) string {
	if ep.res.Namespaced && namespace != "" {
		return ep.prefix + namespace + "/"
	}
	return ep.prefix
}

// attrs returns the labels and selectable fields of obj.
func (ep *endpoint) attrs(obj runtime.Object) (labels.Set, fields.Set) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	f := fields.Set{"metadata.name": m.GetName()}
	if ep.res.Namespaced {
		f["metadata.namespace"] = m.GetNamespace()
	}
	if ep.res.SelectableFields != nil {
		for k, v := range ep.res.SelectableFields(obj) {
			f[k] = v
		}
	}
	return m.GetLabels(), f
}

// tableFor returns the resource's table: its own, else upstream's printer
// for it, else upstream's default (name and creation time).
func tableFor(res *registry.Resource) *printers.Table {
	if res.Table != nil {
		return res.Table
	}
	gr := schema.GroupResource{Group: res.GroupVersion.Group, Resource: res.Resource}
	if t := printers.For(gr, printers.Options{}); t != nil {
		return t
	}
	return printers.Default()
}

// statusField returns obj's Status field, if it has one.
func statusField(obj runtime.Object) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName("Status")
	return f, f.IsValid() && f.CanSet()
}

// copyStatus sets dst's Status to src's.
func copyStatus(dst, src runtime.Object) {
	d, ok := statusField(dst)
	if !ok {
		return
	}
	sv, ok := statusField(src)
	if !ok {
		return
	}
	d.Set(sv)
}

// clearStatus zeroes obj's Status.
func clearStatus(obj runtime.Object) {
	if f, ok := statusField(obj); ok {
		f.Set(reflect.Zero(f.Type()))
	}
}

// copyAllButMetaAndStatus sets every field of dst but its TypeMeta,
// ObjectMeta and Status to src's (both of one type).
func copyAllButMetaAndStatus(dst, src runtime.Object) {
	vd, vs := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	t := vd.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if vd.Field(i).CanSet() {
			vd.Field(i).Set(vs.Field(i))
		}
	}
}

// specChanged reports whether anything but metadata and status differs
// between two objects of one type: what makes metadata.generation move.
func specChanged(a, b runtime.Object) bool {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !equality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return true
		}
	}
	return false
}

// managerSet builds field managers lazily.
type managerSet struct {
	mu      sync.Mutex // guards entries
	entries map[string]*managedfields.FieldManager
}

// resetFields are the fields each kind of write may not own in server-side
// apply: the main resource does not own status; status does not own spec.
func resetFields(gv schema.GroupVersion, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	var set *fieldpath.Set
	if subresource == "status" {
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("spec"))
	} else {
		set = fieldpath.NewSet(fieldpath.MakePathOrDie("status"))
	}
	return map[fieldpath.APIVersion]fieldpath.Filter{
		fieldpath.APIVersion(gv.String()): fieldpath.NewExcludeSetFilter(set),
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
