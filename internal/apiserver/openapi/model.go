package openapi

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// model is what every document is rendered from: the definitions and the
// routes, grouped by OpenAPI v3 document. It is built once by New and
// never modified, so any number of goroutines may render from it.
type model struct {
	defs map[string]*definition
	// docs maps a v3 document key ("api/v1", "apis/apps/v1", "version")
	// to its routes; keys holds the keys sorted.
	docs map[string][]*route
	keys []string
}

// buildModel reflects over the resources' Go types and lays out their
// routes. Resources must have been validated.
func buildModel(resources []Resource) (*model, error) {
	types := newTypeBuilder()
	routes, err := newRouteBuilder(types)
	if err != nil {
		return nil, err
	}
	m := &model{docs: map[string][]*route{}}

	var gvs []schema.GroupVersion
	for i := range resources {
		r := &resources[i]
		key := documentKey(r.GroupVersion)
		if _, ok := m.docs[key]; !ok {
			gvs = append(gvs, r.GroupVersion)
			m.docs[key] = []*route{routes.groupVersionRoute(r.GroupVersion)}
		}
		rs, err := routes.resourceRoutes(r)
		if err != nil {
			return nil, fmt.Errorf("resource %v: %w", r, err)
		}
		m.docs[key] = append(m.docs[key], rs...)
	}

	// Discovery outside the group versions, as every server serves it.
	type discovery struct {
		key, path, id, tag, desc string
		body                     reflect.Type
		media                    []string
	}
	ds := []discovery{
		{"api", "/api/", "getCoreAPIVersions", "core", "get available API versions", reflect.TypeFor[metav1.APIVersions](), objectMedia},
		{"apis", "/apis/", "getAPIVersions", "apis", "get available API versions", reflect.TypeFor[metav1.APIGroupList](), objectMedia},
		{"version", "/version/", "getCodeVersion", "version", "get the version information for this server", versionInfo, []string{"application/json"}},
	}
	groups := map[string]bool{}
	for _, gv := range gvs {
		if gv.Group == "" || groups[gv.Group] {
			continue
		}
		groups[gv.Group] = true
		group := identifier(strings.TrimSuffix(gv.Group, ".k8s.io"), false)
		ds = append(ds, discovery{
			"apis/" + gv.Group, "/apis/" + gv.Group + "/", "get" + title(group) + "APIGroup", group,
			"get information of a group", reflect.TypeFor[metav1.APIGroup](), objectMedia,
		})
	}
	for _, d := range ds {
		rt, err := routes.discoveryRoute(d.path, d.id, d.tag, d.desc, d.body, d.media)
		if err != nil {
			return nil, err
		}
		m.docs[d.key] = append(m.docs[d.key], rt)
	}

	// Kinds every group version serves, listed as upstream lists them.
	status, err := types.define(reflect.TypeFor[metav1.Status]())
	if err != nil {
		return nil, err
	}
	status.addGVK(schema.GroupVersionKind{Version: "v1", Kind: "Status"})
	for _, t := range []reflect.Type{
		reflect.TypeFor[metav1.APIVersions](), reflect.TypeFor[metav1.APIGroupList](),
		reflect.TypeFor[metav1.APIGroup](), reflect.TypeFor[metav1.APIResourceList](),
	} {
		def, err := types.define(t)
		if err != nil {
			return nil, err
		}
		def.addGVK(schema.GroupVersionKind{Version: "v1", Kind: t.Name()})
	}
	everywhere := append([]schema.GroupVersion{{Version: "v1"}}, gvs...)
	for _, t := range []reflect.Type{reflect.TypeFor[metav1.DeleteOptions](), reflect.TypeFor[metav1.WatchEvent]()} {
		def, err := types.define(t)
		if err != nil {
			return nil, err
		}
		for _, gv := range everywhere {
			def.addGVK(gv.WithKind(t.Name()))
		}
	}

	m.defs = types.defs
	for _, d := range m.defs {
		slices.SortFunc(d.gvks, func(a, b schema.GroupVersionKind) int {
			return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Kind, b.Kind))
		})
	}
	for key, rs := range m.docs {
		m.keys = append(m.keys, key)
		if err := checkUnique(rs); err != nil {
			return nil, fmt.Errorf("document %s: %w", key, err)
		}
	}
	slices.Sort(m.keys)
	return m, nil
}

// checkUnique rejects two routes with one path or two operations with one
// ID, which two resources of one name would produce.
func checkUnique(rs []*route) error {
	paths := map[string]bool{}
	ids := map[string]bool{}
	for _, r := range rs {
		if paths[r.path] {
			return fmt.Errorf("path %s documented twice", r.path)
		}
		paths[r.path] = true
		for _, o := range r.ops {
			if ids[o.id] {
				return fmt.Errorf("operation %s documented twice", o.id)
			}
			ids[o.id] = true
		}
	}
	return nil
}

// documentKey is the v3 document of a group version: "api/v1",
// "apis/apps/v1".
func documentKey(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// closure returns the definitions the routes use, directly or through
// other definitions, sorted by name.
func (m *model) closure(routes []*route) []*definition {
	seen := map[string]bool{}
	var queue []string
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			queue = append(queue, name)
		}
	}
	for _, r := range routes {
		for _, o := range r.ops {
			add(o.body)
			for _, resp := range o.responses {
				add(resp.def)
			}
		}
	}
	var out []*definition
	for len(queue) > 0 {
		d := m.defs[queue[0]]
		queue = queue[1:]
		out = append(out, d)
		for _, ref := range d.refs {
			add(ref)
		}
	}
	slices.SortFunc(out, func(a, b *definition) int { return strings.Compare(a.name, b.name) })
	return out
}

// allRoutes returns the routes of every document, sorted by path.
func (m *model) allRoutes() []*route {
	var out []*route
	for _, key := range m.keys {
		out = append(out, m.docs[key]...)
	}
	slices.SortFunc(out, func(a, b *route) int { return strings.Compare(a.path, b.path) })
	return out
}
