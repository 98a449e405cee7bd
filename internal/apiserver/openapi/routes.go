package openapi

import (
	"reflect"
	"slices"
	"strings"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
)

// route is one documented path with its operations.
type route struct {
	path   string
	params []param // path-level: name, namespace, pretty
	ops    []*operation
}

// operation is one method on a route, independent of the OpenAPI version.
type operation struct {
	method string // lower case: get, put, post, patch, delete
	id     string
	desc   string
	action string // x-kubernetes-action
	gvk    *schema.GroupVersionKind
	tag    string
	params []param
	// body is the definition of the request body; "" for none.
	body string
	// patch makes the body a patch in any of patchMedia.
	patch     bool
	consumes  []string
	produces  []string
	responses []response
}

type param struct {
	name, in, desc, typ string
	required            bool
}

type response struct {
	code int
	// def is the definition of the body; "" with scalar set for a
	// string body, both empty for none.
	def    string
	scalar string
}

// Media types of request and response bodies. Read only, like the other
// package-level tables here.
var (
	objectMedia = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	watchMedia  = append(slices.Clone(objectMedia), "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
	streamMedia = []string{"text/plain", "application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	patchMedia  = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
	anyMedia    = []string{"*/*"}
)

// routeBuilder turns Resources into routes. Definitions of the bodies are
// made through types.
type routeBuilder struct {
	types *typeBuilder

	// Query parameters, read from the options types of apimachinery.
	listParams, createParams, updateParams, patchParams, deleteParams []param

	status, deleteOptions, patchBody, resourceList string
}

func newRouteBuilder(types *typeBuilder) (*routeBuilder, error) {
	b := &routeBuilder{
		types:        types,
		listParams:   queryParams(reflect.TypeFor[metav1.ListOptions]()),
		createParams: queryParams(reflect.TypeFor[metav1.CreateOptions]()),
		updateParams: queryParams(reflect.TypeFor[metav1.UpdateOptions]()),
		patchParams:  queryParams(reflect.TypeFor[metav1.PatchOptions]()),
		deleteParams: queryParams(reflect.TypeFor[metav1.DeleteOptions]()),
	}
	for _, d := range []struct {
		name *string
		t    reflect.Type
	}{
		{&b.status, reflect.TypeFor[metav1.Status]()},
		{&b.deleteOptions, reflect.TypeFor[metav1.DeleteOptions]()},
		{&b.patchBody, reflect.TypeFor[metav1.Patch]()},
		{&b.resourceList, reflect.TypeFor[metav1.APIResourceList]()},
	} {
		def, err := types.define(d.t)
		if err != nil {
			return nil, err
		}
		*d.name = def.name
	}
	return b, nil
}

// names are the spellings of one resource in operation IDs and paths.
type names struct {
	prefix     string // "/api/v1", "/apis/apps/v1"
	idGV       string // "CoreV1", "AppsV1"
	tag        string // "core_v1", "apps_v1"
	namespaced string // "Namespaced" or ""
	kind       string
}

func groupVersionNames(gv schema.GroupVersion) names {
	group := strings.TrimSuffix(gv.Group, ".k8s.io")
	prefix := "/apis/" + gv.Group + "/" + gv.Version
	if gv.Group == "" {
		group = "core"
		prefix = "/api/" + gv.Version
	}
	return names{
		prefix: prefix,
		idGV:   identifier(group, true) + identifier(gv.Version, true),
		tag:    identifier(group, false) + "_" + identifier(gv.Version, false),
	}
}

// identifier keeps the letters, digits (not leading) and underscores of s
// and capitalizes the letter after every character dropped, and the first
// when capitalize is set: "rbac.authorization" → "RbacAuthorization".
// Upstream builds operation IDs and tags this way.
func identifier(s string, capitalize bool) string {
	var sb strings.Builder
	for i, r := range s {
		if unicode.IsLetter(r) || r == '_' || (i != 0 && unicode.IsDigit(r)) {
			if capitalize {
				r = unicode.ToUpper(r)
				capitalize = false
			}
			sb.WriteRune(r)
			continue
		}
		capitalize = true
	}
	return sb.String()
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// resourceRoutes returns the routes of one resource, and marks the
// definitions of its object, list and subresource types with their kinds.
func (b *routeBuilder) resourceRoutes(r *Resource) ([]*route, error) {
	n := groupVersionNames(r.GroupVersion)
	n.kind = r.Kind
	if r.Namespaced {
		n.namespaced = "Namespaced"
	}
	gvk := r.gvk()
	obj, err := b.types.define(reflect.TypeOf(r.Object).Elem())
	if err != nil {
		return nil, err
	}
	obj.addGVK(gvk)
	var list string
	if r.List != nil {
		lt := reflect.TypeOf(r.List).Elem()
		def, err := b.types.define(lt)
		if err != nil {
			return nil, err
		}
		def.addGVK(r.GroupVersion.WithKind(lt.Name()))
		list = def.name
	}

	collection := n.prefix + "/" + r.Resource
	pathParams := []param{prettyParam}
	if r.Namespaced {
		collection = n.prefix + "/namespaces/{namespace}/" + r.Resource
		pathParams = []param{namespaceParam, prettyParam}
	}
	itemPath := collection + "/{name}"
	itemParams := append([]param{nameParam(r.Kind)}, pathParams...)
	op := func(method, verb, action, desc string) *operation {
		return &operation{
			method: method,
			id:     verb + n.idGV + n.namespaced + n.kind,
			desc:   desc,
			action: action,
			gvk:    &gvk,
			tag:    n.tag,
		}
	}

	var routes []*route
	coll := &route{path: collection, params: pathParams}
	listParams := b.listParams
	listMedia := objectMedia
	if r.has(VerbWatch) {
		listMedia = watchMedia
	} else {
		listParams = withoutWatch(listParams)
	}
	if r.has(VerbList) {
		o := op("get", "list", "list", "list or watch "+r.Kind+" objects")
		o.params = listParams
		o.consumes, o.produces = anyMedia, listMedia
		o.responses = []response{{code: 200, def: list}, {code: 401}}
		coll.ops = append(coll.ops, o)
	}
	if r.has(VerbCreate) {
		o := op("post", "create", "post", "create a "+r.Kind)
		o.params = b.createParams
		o.body = obj.name
		o.consumes, o.produces = anyMedia, objectMedia
		o.responses = []response{{code: 200, def: obj.name}, {code: 201, def: obj.name}, {code: 202, def: obj.name}, {code: 401}}
		coll.ops = append(coll.ops, o)
	}
	if r.has(VerbDeleteCollection) {
		o := op("delete", "delete", "deletecollection", "delete a collection of "+r.Kind+" objects")
		o.id = "delete" + n.idGV + "Collection" + n.namespaced + n.kind
		o.params = append(slices.Clone(b.deleteParams), withoutWatch(b.listParams)...)
		o.body = b.deleteOptions
		o.consumes, o.produces = anyMedia, objectMedia
		o.responses = []response{{code: 200, def: b.status}, {code: 401}}
		coll.ops = append(coll.ops, o)
	}
	if len(coll.ops) > 0 {
		routes = append(routes, coll)
	}

	item := &route{path: itemPath, params: itemParams}
	if r.has(VerbGet) {
		o := op("get", "read", "get", "read the specified "+r.Kind)
		o.consumes, o.produces = anyMedia, objectMedia
		o.responses = []response{{code: 200, def: obj.name}, {code: 401}}
		item.ops = append(item.ops, o)
	}
	if r.has(VerbUpdate) {
		o := op("put", "replace", "put", "replace the specified "+r.Kind)
		o.params = b.updateParams
		o.body = obj.name
		o.consumes, o.produces = anyMedia, objectMedia
		o.responses = []response{{code: 200, def: obj.name}, {code: 201, def: obj.name}, {code: 401}}
		item.ops = append(item.ops, o)
	}
	if r.has(VerbPatch) {
		o := op("patch", "patch", "patch", "partially update the specified "+r.Kind)
		o.params = b.patchParams
		o.body, o.patch = b.patchBody, true
		o.consumes, o.produces = patchMedia, objectMedia
		o.responses = []response{{code: 200, def: obj.name}, {code: 201, def: obj.name}, {code: 401}}
		item.ops = append(item.ops, o)
	}
	if r.has(VerbDelete) {
		o := op("delete", "delete", "delete", "delete a "+r.Kind)
		o.params = b.deleteParams
		o.body = b.deleteOptions
		o.consumes, o.produces = anyMedia, objectMedia
		o.responses = []response{{code: 200, def: b.status}, {code: 202, def: b.status}, {code: 401}}
		item.ops = append(item.ops, o)
	}
	if len(item.ops) > 0 {
		routes = append(routes, item)
	}

	if r.Namespaced && r.has(VerbList) {
		o := op("get", "list", "list", "list or watch "+r.Kind+" objects in all namespaces")
		o.id = "list" + n.idGV + n.kind + "ForAllNamespaces"
		o.params = listParams
		o.consumes, o.produces = anyMedia, listMedia
		o.responses = []response{{code: 200, def: list}, {code: 401}}
		routes = append(routes, &route{path: n.prefix + "/" + r.Resource, params: []param{prettyParam}, ops: []*operation{o}})
	}

	for i := range r.Subresources {
		subRoutes, err := b.subresourceRoutes(r, &r.Subresources[i], n, itemPath, itemParams)
		if err != nil {
			return nil, err
		}
		routes = append(routes, subRoutes...)
	}
	return routes, nil
}

func (b *routeBuilder) subresourceRoutes(r *Resource, sub *Subresource, n names, itemPath string, itemParams []param) ([]*route, error) {
	gvk := sub.kind(r)
	suffix := title(sub.Name)
	var options []param
	if sub.Options != nil {
		options = queryParams(reflect.TypeOf(sub.Options).Elem())
	}
	op := func(method, verb, action, desc string) *operation {
		return &operation{
			method: method,
			id:     verb + n.idGV + n.namespaced + n.kind + suffix,
			desc:   desc,
			action: action,
			gvk:    &gvk,
			tag:    n.tag,
		}
	}
	path := itemPath + "/" + sub.Name

	if sub.Connect {
		// A connect operation is of the options' kind, as upstream
		// says (PodExecOptions): never the parent's, whose PATCH
		// operations clients search for fieldValidation.
		var connectGVK *schema.GroupVersionKind
		switch {
		case !sub.Kind.Empty():
			connectGVK = &sub.Kind
		case sub.Options != nil:
			k := r.GroupVersion.WithKind(reflect.TypeOf(sub.Options).Elem().Name())
			connectGVK = &k
		}
		var routes []*route
		for _, p := range []struct {
			path, suffix string
			params       []param
		}{
			{path, "", itemParams},
			{path + "/{path}", "WithPath", append(slices.Clone(itemParams), pathParam)},
		} {
			if p.suffix != "" && !sub.WithPath {
				continue
			}
			rt := &route{path: p.path, params: p.params}
			for _, verb := range sub.Verbs {
				method := connectMethod(verb)
				o := op(method, "connect", "connect", "connect "+strings.ToUpper(method)+" requests to "+sub.Name+" of "+r.Kind)
				o.id = "connect" + n.idGV + title(method) + n.namespaced + n.kind + suffix + p.suffix
				o.gvk = connectGVK
				o.params = options
				o.consumes, o.produces = anyMedia, anyMedia
				o.responses = []response{{code: 200, scalar: "string"}, {code: 401}}
				rt.ops = append(rt.ops, o)
			}
			routes = append(routes, rt)
		}
		return routes, nil
	}

	rt := &route{path: path, params: itemParams}
	if sub.Object == nil {
		// A stream read with get (pods/log).
		o := op("get", "read", "get", "read "+sub.Name+" of the specified "+r.Kind)
		o.params = options
		o.consumes, o.produces = anyMedia, streamMedia
		o.responses = []response{{code: 200, scalar: "string"}, {code: 401}}
		rt.ops = append(rt.ops, o)
		return []*route{rt}, nil
	}

	def, err := b.types.define(reflect.TypeOf(sub.Object).Elem())
	if err != nil {
		return nil, err
	}
	def.addGVK(gvk)
	for _, verb := range sub.Verbs {
		var o *operation
		switch verb {
		case VerbGet:
			o = op("get", "read", "get", "read "+sub.Name+" of the specified "+r.Kind)
			o.params = options
			o.responses = []response{{code: 200, def: def.name}, {code: 401}}
		case VerbUpdate:
			o = op("put", "replace", "put", "replace "+sub.Name+" of the specified "+r.Kind)
			o.params = b.updateParams
			o.body = def.name
			o.responses = []response{{code: 200, def: def.name}, {code: 201, def: def.name}, {code: 401}}
		case VerbPatch:
			o = op("patch", "patch", "patch", "partially update "+sub.Name+" of the specified "+r.Kind)
			o.params = b.patchParams
			o.body, o.patch = b.patchBody, true
			o.responses = []response{{code: 200, def: def.name}, {code: 201, def: def.name}, {code: 401}}
		case VerbCreate:
			o = op("post", "create", "post", "create "+sub.Name+" of a "+r.Kind)
			o.params = append(slices.Clone(b.createParams), options...)
			o.body = def.name
			o.responses = []response{{code: 200, def: def.name}, {code: 201, def: def.name}, {code: 202, def: def.name}, {code: 401}}
		case VerbDelete:
			o = op("delete", "delete", "delete", "delete "+sub.Name+" of a "+r.Kind)
			o.params = b.deleteParams
			o.body = b.deleteOptions
			o.responses = []response{{code: 200, def: b.status}, {code: 202, def: b.status}, {code: 401}}
		}
		o.consumes, o.produces = anyMedia, objectMedia
		if o.patch {
			o.consumes = patchMedia
		}
		rt.ops = append(rt.ops, o)
	}
	return []*route{rt}, nil
}

// connectMethod is the HTTP method a verb of a connect subresource stands
// for, in lower case.
func connectMethod(verb string) string {
	switch verb {
	case VerbCreate:
		return "post"
	case VerbUpdate:
		return "put"
	}
	return verb // get, patch, delete
}

// groupVersionRoute documents the group version's resource list
// (GET /apis/apps/v1/).
func (b *routeBuilder) groupVersionRoute(gv schema.GroupVersion) *route {
	n := groupVersionNames(gv)
	return &route{path: n.prefix + "/", ops: []*operation{{
		method:    "get",
		id:        "get" + n.idGV + "APIResources",
		desc:      "get available resources",
		tag:       n.tag,
		consumes:  objectMedia,
		produces:  objectMedia,
		responses: []response{{code: 200, def: b.resourceList}, {code: 401}},
	}}}
}

// discoveryRoute documents a discovery path outside the group versions:
// /api/, /apis/, /apis/<group>/, /version/.
func (b *routeBuilder) discoveryRoute(path, id, tag, desc string, body reflect.Type, media []string) (*route, error) {
	def, err := b.types.define(body)
	if err != nil {
		return nil, err
	}
	return &route{path: path, ops: []*operation{{
		method:    "get",
		id:        id,
		desc:      desc,
		tag:       tag,
		consumes:  media,
		produces:  media,
		responses: []response{{code: 200, def: def.name}, {code: 401}},
	}}}, nil
}

var versionInfo = reflect.TypeFor[version.Info]()

// Parameters that no options type describes.
var (
	prettyParam    = param{name: "pretty", in: "query", typ: "string", desc: "If 'true', the output is indented for people to read."}
	namespaceParam = param{name: "namespace", in: "path", typ: "string", required: true, desc: "namespace of the objects, their scope for names and authorization"}
	pathParam      = param{name: "path", in: "path", typ: "string", required: true, desc: "path to the resource"}
)

func nameParam(kind string) param {
	return param{name: "name", in: "path", typ: "string", required: true, desc: "name of the " + kind}
}

// queryParams returns the query parameters an options struct stands for:
// its scalar fields and string lists, described by its SwaggerDoc.
// Upstream documents a list of strings as one string parameter; so does
// this.
func queryParams(t reflect.Type) []param {
	doc := docOf(t)
	var out []param
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		var typ string
		switch ft.Kind() {
		case reflect.String:
			typ = "string"
		case reflect.Bool:
			typ = "boolean"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			typ = "integer"
		case reflect.Slice:
			if ft.Elem().Kind() != reflect.String {
				continue
			}
			typ = "string"
		default:
			continue
		}
		out = append(out, param{name: name, in: "query", typ: typ, desc: doc[name]})
	}
	return out
}

func withoutWatch(ps []param) []param {
	var out []param
	for _, p := range ps {
		switch p.name {
		case "watch", "allowWatchBookmarks", "sendInitialEvents":
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *definition) addGVK(gvk schema.GroupVersionKind) {
	for _, g := range d.gvks {
		if g == gvk {
			return
		}
	}
	d.gvks = append(d.gvks, gvk)
}
