package openapi

import (
	"maps"
	"net/http"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

const (
	gvkExtension    = "x-kubernetes-group-version-kind"
	actionExtension = "x-kubernetes-action"
	bearerToken     = "BearerToken"
)

// info is what the documents say about the server.
type info struct {
	title, version string
}

// openAPIVersion tells the renderers apart.
type openAPIVersion int

const (
	v2 openAPIVersion = iota
	v3
)

func (v openAPIVersion) ref(name string) spec.Ref {
	if v == v2 {
		return spec.MustCreateRef("#/definitions/" + name)
	}
	return spec.MustCreateRef("#/components/schemas/" + name)
}

// schema renders n. In v3 a reference with a description, default or
// extensions beside it is wrapped in allOf, where the siblings are not
// ignored.
func (n *node) schema(v openAPIVersion) *spec.Schema {
	s := &spec.Schema{}
	s.Description = n.description
	s.Default = n.def
	if len(n.extensions) > 0 {
		s.Extensions = maps.Clone(n.extensions)
	}
	if n.ref != "" {
		if v == v3 && (n.description != "" || n.def != nil || len(n.extensions) > 0) {
			s.AllOf = []spec.Schema{{SchemaProps: spec.SchemaProps{Ref: v.ref(n.ref)}}}
		} else {
			s.Ref = v.ref(n.ref)
		}
		return s
	}
	if v == v3 && len(n.oneOf) > 0 {
		for _, t := range n.oneOf {
			s.OneOf = append(s.OneOf, spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{t}}})
		}
	} else if n.typ != "" {
		s.Type = spec.StringOrArray{n.typ}
	}
	s.Format = n.format
	if n.items != nil {
		s.Items = &spec.SchemaOrArray{Schema: n.items.schema(v)}
	}
	if n.additional != nil {
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: n.additional.schema(v)}
	}
	if len(n.properties) > 0 {
		s.Properties = make(map[string]spec.Schema, len(n.properties))
		for _, p := range n.properties {
			s.Properties[p.name] = *p.node.schema(v)
		}
	}
	s.Required = n.required
	return s
}

// schema renders the definition, with its kinds.
func (d *definition) schema(v openAPIVersion) *spec.Schema {
	s := d.node.schema(v)
	if len(d.gvks) > 0 {
		list := make([]any, len(d.gvks))
		for i, g := range d.gvks {
			list[i] = gvkValue(g)
		}
		if s.Extensions == nil {
			s.Extensions = spec.Extensions{}
		}
		s.Extensions[gvkExtension] = list
	}
	return s
}

func gvkValue(g schema.GroupVersionKind) map[string]any {
	return map[string]any{"group": g.Group, "version": g.Version, "kind": g.Kind}
}

func (o *operation) extensions() spec.Extensions {
	ext := spec.Extensions{}
	if o.action != "" {
		ext[actionExtension] = o.action
	}
	if o.gvk != nil {
		ext[gvkExtension] = gvkValue(*o.gvk)
	}
	return ext
}

// swagger renders the OpenAPI v2 document: every route and definition.
func (m *model) swagger(in info) *spec.Swagger {
	paths := make(map[string]spec.PathItem)
	for _, r := range m.allRoutes() {
		item := spec.PathItem{}
		for _, p := range r.params {
			item.Parameters = append(item.Parameters, p.v2())
		}
		for _, o := range r.ops {
			op := o.v2()
			switch o.method {
			case "get":
				item.Get = op
			case "put":
				item.Put = op
			case "post":
				item.Post = op
			case "patch":
				item.Patch = op
			case "delete":
				item.Delete = op
			}
		}
		paths[r.path] = item
	}
	defs := make(spec.Definitions, len(m.defs))
	for name, d := range m.defs {
		defs[name] = *d.schema(v2)
	}
	return &spec.Swagger{SwaggerProps: spec.SwaggerProps{
		Swagger:     "2.0",
		Info:        &spec.Info{InfoProps: spec.InfoProps{Title: in.title, Version: in.version}},
		Paths:       &spec.Paths{Paths: paths},
		Definitions: defs,
		SecurityDefinitions: spec.SecurityDefinitions{bearerToken: &spec.SecurityScheme{SecuritySchemeProps: spec.SecuritySchemeProps{
			Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
		}}},
		Security: []map[string][]string{{bearerToken: {}}},
	}}
}

func (p param) v2() spec.Parameter {
	return spec.Parameter{
		ParamProps:   spec.ParamProps{Name: p.name, In: p.in, Description: p.desc, Required: p.required},
		SimpleSchema: spec.SimpleSchema{Type: p.typ},
	}
}

func (o *operation) v2() *spec.Operation {
	op := &spec.Operation{
		VendorExtensible: spec.VendorExtensible{Extensions: o.extensions()},
		OperationProps: spec.OperationProps{
			ID:          o.id,
			Description: o.desc,
			Tags:        []string{o.tag},
			Consumes:    o.consumes,
			Produces:    o.produces,
			Schemes:     []string{"https"},
			Responses:   &spec.Responses{ResponsesProps: spec.ResponsesProps{StatusCodeResponses: map[int]spec.Response{}}},
		},
	}
	if o.body != "" {
		op.Parameters = append(op.Parameters, spec.Parameter{ParamProps: spec.ParamProps{
			Name: "body", In: "body", Required: true, Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Ref: v2.ref(o.body)}},
		}})
	}
	for _, p := range o.params {
		op.Parameters = append(op.Parameters, p.v2())
	}
	for _, r := range o.responses {
		resp := spec.Response{ResponseProps: spec.ResponseProps{Description: http.StatusText(r.code)}}
		resp.Schema = r.schema(v2)
		op.Responses.StatusCodeResponses[r.code] = resp
	}
	return op
}

func (r response) schema(v openAPIVersion) *spec.Schema {
	switch {
	case r.def != "":
		return &spec.Schema{SchemaProps: spec.SchemaProps{Ref: v.ref(r.def)}}
	case r.scalar != "":
		return &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{r.scalar}}}
	}
	return nil
}

// openAPI renders the v3 document key: its routes and the definitions
// they use.
func (m *model) openAPI(key string, in info) *spec3.OpenAPI {
	routes := m.docs[key]
	paths := make(map[string]*spec3.Path, len(routes))
	for _, r := range routes {
		item := &spec3.Path{}
		for _, p := range r.params {
			item.Parameters = append(item.Parameters, p.v3())
		}
		for _, o := range r.ops {
			op := o.v3()
			switch o.method {
			case "get":
				item.Get = op
			case "put":
				item.Put = op
			case "post":
				item.Post = op
			case "patch":
				item.Patch = op
			case "delete":
				item.Delete = op
			}
		}
		paths[r.path] = item
	}
	schemas := map[string]*spec.Schema{}
	for _, d := range m.closure(routes) {
		schemas[d.name] = d.schema(v3)
	}
	return &spec3.OpenAPI{
		Version: "3.0.0",
		Info:    &spec.Info{InfoProps: spec.InfoProps{Title: in.title, Version: in.version}},
		Paths:   &spec3.Paths{Paths: paths},
		Components: &spec3.Components{
			Schemas: schemas,
			SecuritySchemes: spec3.SecuritySchemes{bearerToken: &spec3.SecurityScheme{SecuritySchemeProps: spec3.SecuritySchemeProps{
				Type: "apiKey", Name: "authorization", In: "header", Description: "Bearer Token authentication",
			}}},
		},
		SecurityRequirement: []map[string][]string{{bearerToken: {}}},
	}
}

func (p param) v3() *spec3.Parameter {
	return &spec3.Parameter{ParameterProps: spec3.ParameterProps{
		Name: p.name, In: p.in, Description: p.desc, Required: p.required,
		Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{p.typ}}},
	}}
}

func (o *operation) v3() *spec3.Operation {
	op := &spec3.Operation{
		VendorExtensible: spec.VendorExtensible{Extensions: o.extensions()},
		OperationProps: spec3.OperationProps{
			OperationId: o.id,
			Description: o.desc,
			Tags:        []string{o.tag},
			Responses:   &spec3.Responses{ResponsesProps: spec3.ResponsesProps{StatusCodeResponses: map[int]*spec3.Response{}}},
		},
	}
	for _, p := range o.params {
		op.Parameters = append(op.Parameters, p.v3())
	}
	if o.body != "" {
		body := &spec3.RequestBody{RequestBodyProps: spec3.RequestBodyProps{Content: map[string]*spec3.MediaType{}, Required: o.patch}}
		for _, media := range o.consumes {
			body.Content[media] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{
				Schema: &spec.Schema{SchemaProps: spec.SchemaProps{Ref: v3.ref(o.body)}},
			}}
		}
		op.RequestBody = body
	}
	for _, r := range o.responses {
		resp := &spec3.Response{ResponseProps: spec3.ResponseProps{Description: http.StatusText(r.code)}}
		if s := r.schema(v3); s != nil {
			resp.Content = make(map[string]*spec3.MediaType, len(o.produces))
			for _, media := range o.produces {
				resp.Content[media] = &spec3.MediaType{MediaTypeProps: spec3.MediaTypeProps{Schema: s}}
			}
		}
		op.Responses.StatusCodeResponses[r.code] = resp
	}
	return op
}
