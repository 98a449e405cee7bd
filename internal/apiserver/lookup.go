package apiserver

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/apiserver/openapi"
)

// Lookup returns the cached object of a served resource (admission-style
// lookups from registry hooks). The object is shared: do not modify it.
func (s *Server) Lookup(gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, bool) {
	ep := s.endpoints[gvr]
	if ep == nil {
		return nil, false
	}
	it, ok := ep.cache.Get(ep.key(namespace, name))
	if !ok {
		return nil, false
	}
	return it.Object, true
}

// LookupAll returns every cached object of a served resource. The objects
// are shared: do not modify them.
func (s *Server) LookupAll(gvr schema.GroupVersionResource) []runtime.Object {
	ep := s.endpoints[gvr]
	if ep == nil {
		return nil
	}
	items, _ := ep.cache.List(ep.prefix, nil)
	out := make([]runtime.Object, len(items))
	for i, it := range items {
		out[i] = it.Object
	}
	return out
}

// OpenAPIResources describes every served resource for the OpenAPI
// documents.
func (s *Server) OpenAPIResources() []openapi.Resource {
	var out []openapi.Resource
	for _, gv := range s.groupVersions {
		for _, ep := range s.byGV[gv] {
			r := openapi.Resource{
				GroupVersion: gv,
				Resource:     ep.res.Resource,
				Kind:         ep.res.Kind,
				Namespaced:   ep.res.Namespaced,
				Verbs:        sortedVerbs(ep),
				Object:       ep.res.New(),
				List:         ep.res.NewList(),
			}
			for _, sr := range ep.subresources() {
				osr := openapi.Subresource{Name: sr.name, Verbs: sr.verbs, Kind: sr.kind}
				obj, err := s.cfg.Scheme.New(sr.kind)
				switch {
				case sr.connect:
					// Streams: the kind names the options, the body is a stream.
					osr.Connect, osr.Options, osr.Kind = true, obj, schema.GroupVersionKind{}
				case sr.name == "log":
					osr.Options, osr.Kind = &corev1.PodLogOptions{}, schema.GroupVersionKind{}
				case err == nil:
					osr.Object = obj
				}
				r.Subresources = append(r.Subresources, osr)
			}
			out = append(out, r)
		}
	}
	return out
}
