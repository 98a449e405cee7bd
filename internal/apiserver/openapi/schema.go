package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/util"
)

// node is a schema independent of the OpenAPI version: references are
// definition names, rendered as "#/definitions/..." in v2 and
// "#/components/schemas/..." in v3 (behind allOf when a description,
// default or extension stands beside them).
type node struct {
	ref         string // definition name; only description, default and extensions accompany it
	typ         string
	format      string
	description string
	def         any      // default value; nil for none
	oneOf       []string // v3: the alternative types of a definition (IntOrString)
	items       *node
	additional  *node // map values
	properties  []property
	required    []string
	extensions  map[string]any
}

type property struct {
	name string
	node *node
}

// definition is one named schema: a Go struct, or a type that says how it
// is serialized (metav1.Time, resource.Quantity).
type definition struct {
	name   string
	goType reflect.Type
	node   *node
	// refs are the definitions node refers to directly.
	refs []string
	// gvks are the kinds the type is served as; the
	// x-kubernetes-group-version-kind extension.
	gvks []schema.GroupVersionKind
}

// The methods API types declare to describe themselves, as upstream's
// generator reads them.
const (
	methodSwaggerDoc   = "SwaggerDoc"          // map[string]string: descriptions by JSON name, "" for the type
	methodModelName    = "OpenAPIModelName"    // string: the definition name
	methodSchemaType   = "OpenAPISchemaType"   // []string: serialized as this type
	methodSchemaFormat = "OpenAPISchemaFormat" // string
	methodV3OneOf      = "OpenAPIV3OneOfTypes" // []string: in v3, one of these types
)

// typeBuilder turns Go types into definitions by reflection. It is used by
// one goroutine while New runs.
type typeBuilder struct {
	defs     map[string]*definition
	byType   map[reflect.Type]*definition
	declared map[methodOf]bool // see declaresCached
}

type methodOf struct {
	t      reflect.Type
	method string
}

func newTypeBuilder() *typeBuilder {
	return &typeBuilder{
		defs:     map[string]*definition{},
		byType:   map[reflect.Type]*definition{},
		declared: map[methodOf]bool{},
	}
}

// define returns the definition of the named type t, building it (and
// everything it refers to) on first use.
func (b *typeBuilder) define(t reflect.Type) (*definition, error) {
	if d, ok := b.byType[t]; ok {
		return d, nil
	}
	name := definitionName(t)
	if other, ok := b.defs[name]; ok {
		return nil, fmt.Errorf("Go types %v and %v both have the definition name %q", other.goType, t, name)
	}
	d := &definition{name: name, goType: t}
	// Registered before the fields are walked, so that recursive types
	// (JSONSchemaProps) end in a reference.
	b.defs[name] = d
	b.byType[t] = d

	doc := docOf(t)
	if types, ok := callDeclared[[]string](t, methodSchemaType); ok {
		d.node = &node{description: doc[""]}
		if len(types) > 0 {
			d.node.typ = types[0]
		}
		d.node.format, _ = callDeclared[string](t, methodSchemaFormat)
		d.node.oneOf, _ = callDeclared[[]string](t, methodV3OneOf)
		return d, nil
	}
	n := &node{typ: "object", description: doc[""]}
	if err := b.fields(t, n, t.String()); err != nil {
		return nil, err
	}
	if c, _ := commentsOf(t); c != nil && c.structType != "" {
		n.extension("x-kubernetes-map-type", c.structType)
	}
	d.node = n
	d.refs = n.refs(nil)
	slices.Sort(d.refs)
	d.refs = slices.Compact(d.refs)
	return d, nil
}

// fields adds the JSON fields of struct t to n: its own, then those of
// embedded structs without a JSON name (json:",inline"), which lose to
// fields of the same name closer to the top as in encoding/json.
func (b *typeBuilder) fields(t reflect.Type, n *node, where string) error {
	doc := docOf(t)
	comments, known := commentsOf(t)
	var inline []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct && !b.describesItself(ft) {
			inline = append(inline, ft)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if n.property(name) != nil {
			continue
		}
		p, err := b.schema(f.Type, where+"."+f.Name)
		if err != nil {
			return err
		}
		omitempty := hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero")
		if hasOpt(opts, "string") {
			switch ft.Kind() {
			case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
				p = &node{typ: "string"}
			}
		}
		var fc fieldComments
		if comments != nil {
			fc = comments.fields[name]
		}
		p.description = doc[name]
		if !hasOpt(opts, "string") {
			p.def = b.defaultOf(f.Type, omitempty)
		}
		if p.def == nil && fc.defaultJSON != "" {
			var v any
			if json.Unmarshal([]byte(fc.defaultJSON), &v) == nil {
				p.def = v
			}
		}
		if s := f.Tag.Get("patchStrategy"); s != "" {
			p.extension("x-kubernetes-patch-strategy", s)
		}
		if k := f.Tag.Get("patchMergeKey"); k != "" {
			p.extension("x-kubernetes-patch-merge-key", k)
		}
		if fc.listType != "" {
			p.extension("x-kubernetes-list-type", fc.listType)
		}
		if len(fc.listMapKeys) > 0 {
			keys := make([]any, len(fc.listMapKeys))
			for i, k := range fc.listMapKeys {
				keys[i] = k
			}
			p.extension("x-kubernetes-list-map-keys", keys)
		}
		if fc.mapType != "" {
			p.extension("x-kubernetes-map-type", fc.mapType)
		}
		n.properties = append(n.properties, property{name: name, node: p})
		if isRequired(f, fc, known, omitempty) {
			n.required = append(n.required, name)
		}
	}
	for _, it := range inline {
		// The embedded type's own SwaggerDoc and comments describe
		// its fields (TypeMeta's apiVersion and kind).
		sub := &node{}
		if err := b.fields(it, sub, where+"."+it.Name()); err != nil {
			return err
		}
		for _, p := range sub.properties {
			if n.property(p.name) == nil {
				n.properties = append(n.properties, p)
				if slices.Contains(sub.required, p.name) {
					n.required = append(n.required, p.name)
				}
			}
		}
	}
	return nil
}

// schema returns the schema of a value of type t: a reference for
// definitions, an inline schema for everything else.
func (b *typeBuilder) schema(t reflect.Type, where string) (*node, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if b.isDefinition(t) {
		d, err := b.define(t)
		if err != nil {
			return nil, err
		}
		return &node{ref: d.name}, nil
	}
	switch t.Kind() {
	case reflect.String:
		return &node{typ: "string"}, nil
	case reflect.Bool:
		return &node{typ: "boolean"}, nil
	case reflect.Int, reflect.Int16, reflect.Int32, reflect.Uint16:
		return &node{typ: "integer", format: "int32"}, nil
	case reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return &node{typ: "integer", format: "int64"}, nil
	case reflect.Int8, reflect.Uint8:
		return &node{typ: "integer", format: "byte"}, nil
	case reflect.Float32:
		return &node{typ: "number", format: "float"}, nil
	case reflect.Float64:
		return &node{typ: "number", format: "double"}, nil
	case reflect.Interface:
		return &node{typ: "object"}, nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &node{typ: "string", format: "byte"}, nil
		}
		items, err := b.schema(t.Elem(), where+"[]")
		if err != nil {
			return nil, err
		}
		items.def = b.defaultOf(t.Elem(), false)
		return &node{typ: "array", items: items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: map key %v is not a string", where, t.Key())
		}
		values, err := b.schema(t.Elem(), where+"[]")
		if err != nil {
			return nil, err
		}
		values.def = b.defaultOf(t.Elem(), false)
		return &node{typ: "object", additional: values}, nil
	case reflect.Struct:
		if t.PkgPath() == "time" && t.Name() == "Time" {
			return &node{typ: "string", format: "date-time"}, nil
		}
		// An unnamed struct: inline, without a definition of its own.
		n := &node{typ: "object"}
		if err := b.fields(t, n, where); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("%s: JSON cannot carry a %v", where, t.Kind())
}

// isDefinition reports whether t gets a definition of its own: named
// structs, and named types that say how they are serialized. Other named
// types (type PullPolicy string, type ResourceList map[...]) are inlined
// as upstream does.
func (b *typeBuilder) isDefinition(t reflect.Type) bool {
	if t.Name() == "" || t.PkgPath() == "" {
		return false
	}
	if b.describesItself(t) {
		return true
	}
	return t.Kind() == reflect.Struct && !(t.PkgPath() == "time" && t.Name() == "Time")
}

// definitionName is the upstream name of a definition: the one the type
// declares (OpenAPIModelName), else its package path with the domain
// reversed and its name: k8s.io/api/core/v1.Pod → io.k8s.api.core.v1.Pod.
func definitionName(t reflect.Type) string {
	if name, ok := callDeclared[string](t, methodModelName); ok && name != "" {
		return name
	}
	path := t.PkgPath()
	if i := strings.LastIndex(path, "/vendor/"); i >= 0 {
		path = path[i+len("/vendor/"):]
	}
	return util.ToRESTFriendlyName(path + "." + t.Name())
}

// declares reports whether t itself declares the method, with a value or
// a pointer receiver. A method promoted from an embedded field does not
// count: a type embedding metav1.TypeMeta takes neither its name nor its
// description. The compiler's wrappers for promoted methods are the only
// methods without a source file.
func declares(t reflect.Type, method string) (reflect.Value, bool) {
	if t.Kind() == reflect.Interface {
		return reflect.Value{}, false
	}
	for i, rt := range []reflect.Type{t, reflect.PointerTo(t)} {
		m, ok := rt.MethodByName(method)
		if !ok {
			continue
		}
		pc := m.Func.Pointer()
		if fn := runtime.FuncForPC(pc); fn == nil {
			continue
		} else if file, _ := fn.FileLine(pc); file == "<autogenerated>" {
			continue
		}
		recv := reflect.Zero(t)
		if i == 1 {
			recv = reflect.New(t)
		}
		return recv.MethodByName(method), true
	}
	return reflect.Value{}, false
}

// callDeclared calls the method t declares without arguments and returns
// its result, when the method exists and returns an R.
func callDeclared[R any](t reflect.Type, method string) (R, bool) {
	var zero R
	m, ok := declares(t, method)
	if !ok || m.Type().NumIn() != 0 || m.Type().NumOut() != 1 {
		return zero, false
	}
	r, ok := m.Call(nil)[0].Interface().(R)
	return r, ok
}

// describesItself reports whether t says how it is serialized
// (OpenAPISchemaType), so that its fields do not matter.
func (b *typeBuilder) describesItself(t reflect.Type) bool {
	return b.declaresCached(t, methodSchemaType)
}

// declaresCached is declares for the questions asked of every field,
// with the answers kept: looking methods up is the bulk of New's time.
func (b *typeBuilder) declaresCached(t reflect.Type, method string) bool {
	k := methodOf{t, method}
	v, ok := b.declared[k]
	if !ok {
		_, v = declares(t, method)
		b.declared[k] = v
	}
	return v
}

// docOf returns the descriptions t declares (SwaggerDoc), or nil.
func docOf(t reflect.Type) map[string]string {
	doc, _ := callDeclared[map[string]string](t, methodSwaggerDoc)
	return doc
}

func hasOpt(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

func (n *node) property(name string) *node {
	for _, p := range n.properties {
		if p.name == name {
			return p.node
		}
	}
	return nil
}

func (n *node) extension(key string, value any) {
	if n.extensions == nil {
		n.extensions = map[string]any{}
	}
	n.extensions[key] = value
}

// refs appends the definition names n refers to, at any depth short of
// another definition.
func (n *node) refs(out []string) []string {
	if n == nil {
		return out
	}
	if n.ref != "" {
		out = append(out, n.ref)
	}
	out = n.items.refs(out)
	out = n.additional.refs(out)
	for _, p := range n.properties {
		out = p.node.refs(out)
	}
	return out
}
