package apiserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// aggregatedMediaType is the response type of aggregated discovery (v2),
// which kubectl asks for first and falls back from.
const aggregatedMediaType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// serveDiscovery answers /api, /api/v1, /apis, /apis/<group> and
// /apis/<group>/<version>.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, r, errMethodNotSupported(schema.GroupResource{}, strings.ToLower(r.Method)), schema.GroupResource{}, "")
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(segs) == 1 && segs[0] == "api":
		if wantsAggregated(r) {
			s.writeAggregated(w, r, true)
			return
		}
		s.writeDiscovery(w, r, &metav1.APIVersions{
			TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
			Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{
				ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host,
			}},
		})
	case len(segs) == 2 && segs[0] == "api":
		s.writeResourceList(w, r, schema.GroupVersion{Version: segs[1]})
	case len(segs) == 1 && segs[0] == "apis":
		if wantsAggregated(r) {
			s.writeAggregated(w, r, false)
			return
		}
		list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		for _, g := range s.groups() {
			list.Groups = append(list.Groups, g)
		}
		s.writeDiscovery(w, r, list)
	case len(segs) == 2 && segs[0] == "apis":
		for _, g := range s.groups() {
			if g.Name == segs[1] {
				g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
				s.writeDiscovery(w, r, &g)
				return
			}
		}
		s.writeError(w, r, errNotFoundResource(), schema.GroupResource{}, "")
	case len(segs) == 3 && segs[0] == "apis":
		s.writeResourceList(w, r, schema.GroupVersion{Group: segs[1], Version: segs[2]})
	default:
		s.writeError(w, r, errNotFoundResource(), schema.GroupResource{}, "")
	}
}

func wantsAggregated(r *http.Request) bool {
	for _, c := range parseAccept(r.Header.Get("Accept")) {
		if c.mediaType == mediaJSON && c.params["as"] == "APIGroupDiscoveryList" && c.params["g"] == "apidiscovery.k8s.io" && c.params["v"] == "v2" {
			return true
		}
		if c.mediaType == mediaJSON && len(c.params) == 0 {
			return false
		}
	}
	return false
}

// groups lists the named API groups in the order they were configured.
func (s *Server) groups() []metav1.APIGroup {
	var out []metav1.APIGroup
	index := map[string]int{}
	for _, gv := range s.groupVersions {
		if gv.Group == "" {
			continue
		}
		v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		if i, ok := index[gv.Group]; ok {
			out[i].Versions = append(out[i].Versions, v)
			continue
		}
		index[gv.Group] = len(out)
		out = append(out, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
	}
	return out
}

func (s *Server) apiResources(gv schema.GroupVersion) []metav1.APIResource {
	if gv == metricsGV && s.kubelets != nil {
		return metricsAPIResources()
	}
	var out []metav1.APIResource
	for _, ep := range s.byGV[gv] {
		res := ep.res
		verbs := append([]string(nil), sortedVerbs(ep)...)
		out = append(out, metav1.APIResource{
			Name:               res.Resource,
			SingularName:       res.SingularName,
			Namespaced:         res.Namespaced,
			Kind:               res.Kind,
			Verbs:              verbs,
			ShortNames:         res.ShortNames,
			Categories:         res.Categories,
			StorageVersionHash: storageVersionHash(ep.gvk),
		})
		for _, sr := range ep.subresources() {
			r := metav1.APIResource{
				Name:       res.Resource + "/" + sr.name,
				Namespaced: res.Namespaced,
				Kind:       sr.kind.Kind,
				Verbs:      sr.verbs,
			}
			if sr.kind.GroupVersion() != gv {
				r.Group, r.Version = sr.kind.Group, sr.kind.Version
			}
			out = append(out, r)
		}
	}
	return out
}

func sortedVerbs(ep *endpoint) []string {
	v := ep.verbs.UnsortedList()
	sort.Strings(v)
	return v
}

// storageVersionHash is upstream's short hash of the storage version.
func storageVersionHash(gvk schema.GroupVersionKind) string {
	sum := sha256.Sum256([]byte(gvk.Group + "/" + gvk.Version + "/" + gvk.Kind))
	return hex.EncodeToString(sum[:])[:11]
}

func (s *Server) writeResourceList(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion) {
	if _, ok := s.byGV[gv]; !ok && (gv != metricsGV || s.kubelets == nil) {
		s.writeError(w, r, errNotFoundResource(), schema.GroupResource{}, "")
		return
	}
	s.writeDiscovery(w, r, &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: s.apiResources(gv),
	})
}

func (s *Server) writeAggregated(w http.ResponseWriter, r *http.Request, core bool) {
	list := &apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{APIVersion: "apidiscovery.k8s.io/v2", Kind: "APIGroupDiscoveryList"},
	}
	byGroup := map[string]int{}
	for _, gv := range s.groupVersions {
		if (gv.Group == "") != core {
			continue
		}
		vd := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		if gv == metricsGV {
			for _, r := range metricsAPIResources() {
				scope := apidiscoveryv2.ScopeCluster
				if r.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				vd.Resources = append(vd.Resources, apidiscoveryv2.APIResourceDiscovery{
					Resource: r.Name, Scope: scope, Verbs: r.Verbs,
					ResponseKind: &metav1.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: r.Kind},
				})
			}
		}
		for _, ep := range s.byGV[gv] {
			scope := apidiscoveryv2.ScopeCluster
			if ep.res.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			rd := apidiscoveryv2.APIResourceDiscovery{
				Resource:         ep.res.Resource,
				ResponseKind:     &metav1.GroupVersionKind{Group: ep.gvk.Group, Version: ep.gvk.Version, Kind: ep.gvk.Kind},
				Scope:            scope,
				SingularResource: ep.res.SingularName,
				Verbs:            sortedVerbs(ep),
				ShortNames:       ep.res.ShortNames,
				Categories:       ep.res.Categories,
			}
			for _, sr := range ep.subresources() {
				rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
					Subresource:  sr.name,
					ResponseKind: &metav1.GroupVersionKind{Group: sr.kind.Group, Version: sr.kind.Version, Kind: sr.kind.Kind},
					Verbs:        sr.verbs,
				})
			}
			vd.Resources = append(vd.Resources, rd)
		}
		i, ok := byGroup[gv.Group]
		if !ok {
			i = len(list.Items)
			byGroup[gv.Group] = i
			list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: gv.Group}})
		}
		list.Items[i].Versions = append(list.Items[i].Versions, vd)
	}
	s.writeJSON(w, r, aggregatedMediaType, list)
}

func (s *Server) writeDiscovery(w http.ResponseWriter, r *http.Request, obj runtime.Object) {
	out, err := s.codecs.negotiate(r)
	if err != nil || out.as != asObject {
		out = output{mediaType: mediaJSON, encoder: s.codecs.json}
	}
	var buf bytes.Buffer
	if err := out.encoder.Encode(obj, &buf); err != nil {
		s.writeError(w, r, err, schema.GroupResource{}, "")
		return
	}
	s.writeBytes(w, r, out.mediaType, buf.Bytes())
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, contentType string, obj runtime.Object) {
	var buf bytes.Buffer
	if err := s.codecs.json.Encode(obj, &buf); err != nil {
		s.writeError(w, r, err, schema.GroupResource{}, "")
		return
	}
	s.writeBytes(w, r, contentType, buf.Bytes())
}

// writeBytes writes a cacheable discovery document with an ETag, answering
// 304 when the client already has it.
func (s *Server) writeBytes(w http.ResponseWriter, r *http.Request, contentType string, data []byte) {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Vary", "Accept")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}
