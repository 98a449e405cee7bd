package openapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/handler3"
)

// Config says what the documents tell about the server. The zero value is
// usable.
type Config struct {
	// Title is info.title of every document; "" means "Kubernetes", as
	// upstream says.
	Title string
	// Version is info.version, normally the Kubernetes release the
	// server speaks ("v1.37.2"); "" means "unversioned".
	Version string
	// Logger receives a debug record per document built and an error
	// record when one cannot be built; nil discards them.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	for _, s := range []string{c.Title, c.Version} {
		if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' }) {
			return fmt.Errorf("%w: config: %q contains control characters", ErrInvalid, s)
		}
	}
	return nil
}

// Service serves the OpenAPI documents of a fixed list of resources. Its
// methods are safe for concurrent use.
//
// The documents are fixed when New returns; serving another list of
// resources (custom resources, later) takes a new Service.
type Service struct {
	log   *slog.Logger
	info  info
	model *model

	v2 *document
	// v3 maps a document key ("api/v1") to its document; v3Index is
	// the /openapi/v3 discovery document listing them.
	v3      map[string]*document
	v3Index *document
}

// The media types of the documents.
const (
	mediaJSON = "application/json"
	// mediaV2Proto is what the v2 protobuf is served as;
	// mediaV2ProtoOld is the spelling kubectl up to 1.22 asks for.
	mediaV2Proto    = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
	mediaV2ProtoOld = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mediaV3Proto    = "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"
	mediaV3ProtoOld = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// New checks the resources and reflects over their Go types. It does not
// render any document: each is rendered and encoded on its first request
// and kept. Errors wrap ErrInvalid. New keeps its own copy of resources;
// the objects in it are only read.
func New(resources []Resource, cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	rs := make([]Resource, len(resources))
	for i := range resources {
		r := resources[i]
		r.Verbs = append([]string(nil), r.Verbs...)
		r.Subresources = append([]Subresource(nil), r.Subresources...)
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("%w: resource %v: %w", ErrInvalid, &r, err)
		}
		key := r.GroupVersion.String() + "/" + r.Resource
		if seen[key] {
			return nil, fmt.Errorf("%w: resource %v listed twice", ErrInvalid, &r)
		}
		seen[key] = true
		rs[i] = r
	}
	m, err := buildModel(rs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s := &Service{
		log:   cfg.Logger,
		info:  info{title: cfg.Title, version: cfg.Version},
		model: m,
		v3:    make(map[string]*document, len(m.keys)),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.info.title == "" {
		s.info.title = "Kubernetes"
	}
	if s.info.version == "" {
		s.info.version = "unversioned"
	}
	s.v2 = s.newDocument("v2", func() ([]byte, error) {
		return s.model.swagger(s.info).MarshalJSON()
	}, v2ToProto)
	for _, key := range m.keys {
		s.v3[key] = s.newDocument("v3 "+key, func() ([]byte, error) {
			return json.Marshal(s.model.openAPI(key, s.info))
		}, handler3.ToV3ProtoBinary)
	}
	s.v3Index = s.newDocument("v3 index", s.renderIndex, nil)
	return s, nil
}

// v2ToProto converts the v2 JSON to gnostic's protobuf, as upstream does.
func v2ToProto(b []byte) ([]byte, error) {
	doc, err := openapi_v2.ParseDocument(b)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(doc)
}

// renderIndex renders /openapi/v3: every document with its hash, so that
// clients cache documents by URL.
func (s *Service) renderIndex() ([]byte, error) {
	index := handler3.OpenAPIV3Discovery{Paths: make(map[string]handler3.OpenAPIV3DiscoveryGroupVersion, len(s.v3))}
	for _, key := range s.model.keys {
		rep, err := s.v3[key].json.get()
		if err != nil {
			return nil, err
		}
		index.Paths[key] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: v3URL(key, rep.etag)}
	}
	return json.Marshal(index)
}

func v3URL(key, etag string) string {
	return "/openapi/v3/" + key + "?hash=" + etag
}

var _ http.Handler = (*Service)(nil)

// Paths are the paths the Service answers.
const (
	PathV2       = "/openapi/v2"
	PathV2Legacy = "/swagger-2.0.0.pb-v1"
	PathV3       = "/openapi/v3"
	// PathV3Prefix is followed by a document key: /openapi/v3/apis/apps/v1.
	PathV3Prefix = "/openapi/v3/"
)

// Mux is where Install registers the Service; *http.ServeMux is one.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Install registers the Service on mux for PathV2, PathV2Legacy, PathV3
// and everything below PathV3Prefix.
func (s *Service) Install(mux Mux) {
	for _, p := range []string{PathV2, PathV2Legacy, PathV3, PathV3Prefix} {
		mux.Handle(p, s)
	}
}

// ServeHTTP serves the documents:
//
//   - /openapi/v2: the v2 document as JSON, or as protobuf when Accept asks
//     for application/com.github.proto-openapi.spec.v2.v1.0+protobuf (or
//     its older spelling with "@").
//   - /swagger-2.0.0.pb-v1: the v2 document as protobuf, whatever Accept
//     says (kubectl 1.20 falls back to it).
//   - /openapi/v3: the list of v3 documents, each with a URL carrying its
//     hash.
//   - /openapi/v3/<key>: one v3 document as JSON or protobuf. With a hash
//     that is current the reply may be cached forever; with a stale one it
//     is a redirect to the current URL.
//
// Every reply has an ETag and honours If-None-Match, and is gzipped when
// the client accepts it. Other paths are 404, other methods than GET and
// HEAD 405, media types not offered 406.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == PathV2:
		s.serve(w, r, s.v2, []offer{{mediaJSON, mediaJSON, false}, {mediaV2Proto, mediaV2Proto, true}, {mediaV2ProtoOld, mediaV2Proto, true}}, "")
	case p == PathV2Legacy:
		s.serve(w, r, s.v2, []offer{{"*/*", mediaV2Proto, true}}, "")
	case p == PathV3:
		s.serve(w, r, s.v3Index, []offer{{mediaJSON, mediaJSON, false}}, "")
	case strings.HasPrefix(p, PathV3Prefix):
		key := strings.TrimPrefix(p, PathV3Prefix)
		d, ok := s.v3[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.serve(w, r, d, []offer{{mediaJSON, mediaJSON, false}, {mediaV3Proto, mediaV3Proto, true}, {mediaV3ProtoOld, mediaV3Proto, true}}, key)
	default:
		http.NotFound(w, r)
	}
}

// document is one document in its encodings, each made on first use and
// kept.
type document struct {
	json  lazy
	proto lazy // nil when the document has no protobuf form
}

func (s *Service) newDocument(name string, render func() ([]byte, error), toProto func([]byte) ([]byte, error)) *document {
	d := &document{}
	d.json.build = func() (*representation, error) {
		start := time.Now()
		b, err := render()
		if err != nil {
			s.log.Error("render OpenAPI document", "document", name, "err", err)
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		s.log.Debug("rendered OpenAPI document", "document", name, "bytes", len(b), "duration", time.Since(start))
		return newRepresentation(b), nil
	}
	if toProto != nil {
		d.proto.build = func() (*representation, error) {
			j, err := d.json.get()
			if err != nil {
				return nil, err
			}
			b, err := toProto(j.body)
			if err != nil {
				s.log.Error("encode OpenAPI document as protobuf", "document", name, "err", err)
				return nil, fmt.Errorf("encode %s as protobuf: %w", name, err)
			}
			// The ETag stays the JSON one: Vary: Accept tells
			// caches the two apart, as upstream does.
			rep := newRepresentation(b)
			rep.etag = j.etag
			return rep, nil
		}
	}
	return d
}

// lazy is a representation built once, on first use. A build error is
// kept too: rendering is deterministic, so retrying would fail again.
type lazy struct {
	once  sync.Once
	build func() (*representation, error)
	rep   *representation
	err   error
}

func (l *lazy) get() (*representation, error) {
	l.once.Do(func() { l.rep, l.err = l.build() })
	return l.rep, l.err
}
