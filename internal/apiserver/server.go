package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/storage"
)

// Config configures the API server's REST layer.
type Config struct {
	// Store is the object store. Required.
	Store *storage.Store
	// Scheme knows every served type. Required.
	Scheme *runtime.Scheme
	// Resources are the served resources. Required.
	Resources []*registry.Resource
	// TypeConverter gives server-side apply the schema of every served
	// type; nil builds one from client-go's built-in schemas.
	TypeConverter managedfields.TypeConverter
	// TokenIssuer, when set, serves serviceaccounts/token.
	TokenIssuer TokenIssuer
	// Kubelet, when set, lets the server reach node agents for pods/log,
	// pods/exec, pods/attach and pods/portforward.
	Kubelet *KubeletConfig
	// MaxRequestBodyBytes caps request bodies; 0 means 3 MiB, upstream's
	// limit.
	MaxRequestBodyBytes int64
	// Registerer receives the server's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("apiserver: Store is required")
	case c.Scheme == nil:
		return errors.New("apiserver: Scheme is required")
	case len(c.Resources) == 0:
		return errors.New("apiserver: no resources")
	}
	if c.MaxRequestBodyBytes == 0 {
		c.MaxRequestBodyBytes = 3 * 1024 * 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Server is the REST layer: it serves every configured resource at its
// Kubernetes paths (/api/v1/..., /apis/<group>/<version>/...) plus
// discovery. Other paths (health, version, OpenAPI, metrics) are mounted by
// the caller next to Handler.
type Server struct {
	cfg     Config
	codecs  *codecs
	store   *storage.Store
	log     *slog.Logger
	metrics *metrics

	// endpoints by group/version/resource; fixed after New.
	endpoints map[schema.GroupVersionResource]*endpoint
	// byGroupVersion keeps the served resources of each group version in
	// a stable order, for discovery.
	groupVersions []schema.GroupVersion
	byGV          map[schema.GroupVersion][]*endpoint

	typeConverterOnce sync.Once
	typeConverter     managedfields.TypeConverter
	typeConverterErr  error

	namespaces *endpoint // for namespace lifecycle checks
	// deletedNamespaces holds, for a while, the names of namespaces this
	// server marked for deletion (name → time.Time after which the mark
	// no longer matters): the watch cache may not show it yet, so their
	// lifecycle check reads storage (see admitNamespace).
	deletedNamespaces sync.Map
	kubelets          *kubeletClient
}

// New builds the server. Start must run before it serves.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		codecs:    newCodecs(cfg.Scheme),
		store:     cfg.Store,
		log:       cfg.Logger,
		metrics:   m,
		endpoints: map[schema.GroupVersionResource]*endpoint{},
		byGV:      map[schema.GroupVersion][]*endpoint{},
	}
	if cfg.Kubelet != nil && cfg.Kubelet.TLS != nil {
		s.kubelets = newKubeletClient(*cfg.Kubelet)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(objectCounts{s}); err != nil {
			return nil, fmt.Errorf("register object counts: %w", err)
		}
	}
	if cfg.TypeConverter != nil {
		s.typeConverterOnce.Do(func() { s.typeConverter = cfg.TypeConverter })
	}
	for _, res := range cfg.Resources {
		ep, err := s.newEndpoint(res)
		if err != nil {
			return nil, err
		}
		if _, dup := s.endpoints[ep.gvr]; dup {
			return nil, fmt.Errorf("apiserver: %s served twice", ep.gvr)
		}
		s.endpoints[ep.gvr] = ep
		gv := res.GroupVersion
		if _, ok := s.byGV[gv]; !ok {
			s.groupVersions = append(s.groupVersions, gv)
		}
		s.byGV[gv] = append(s.byGV[gv], ep)
		if ep.gvr == (schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}) {
			s.namespaces = ep
		}
	}
	if s.kubelets != nil {
		s.groupVersions = append(s.groupVersions, metricsGV)
	}
	return s, nil
}

// Start fills every resource's watch cache and keeps them current until
// ctx ends. It returns once all caches hold a complete list.
func (s *Server) Start(ctx context.Context) error {
	var caches []*storage.Cache
	started := map[string]bool{}
	for _, ep := range s.endpoints {
		if started[ep.prefix] {
			continue
		}
		started[ep.prefix] = true
		go ep.cache.Run(ctx)
		caches = append(caches, ep.cache)
	}
	// Build the server-side apply schemas in the background: they take a
	// while and only the first apply needs them.
	go s.fieldTypeConverter()
	for _, c := range caches {
		select {
		case <-c.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Compacted tells every cache that etcd history before rev is gone.
func (s *Server) Compacted(rev int64) {
	for _, ep := range s.endpoints {
		ep.cache.Compacted(rev)
	}
}

func (s *Server) fieldTypeConverter() (managedfields.TypeConverter, error) {
	s.typeConverterOnce.Do(func() {
		s.typeConverter, s.typeConverterErr = newTypeConverter(s.cfg.Scheme)
	})
	return s.typeConverter, s.typeConverterErr
}

// ServeHTTP serves resource requests and discovery.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := parseRequestInfo(r)
	start := time.Now()
	rw := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "path", r.URL.Path, "panic", p, "stack", stack())
			s.writeError(rw, r, fmt.Errorf("internal error: %v", p), schema.GroupResource{}, "")
		}
		s.metrics.observe(info, rw.code, start)
	}()
	if !info.IsResource {
		s.serveDiscovery(rw, r)
		return
	}
	if info.Group == metricsGV.Group && info.Version == metricsGV.Version {
		s.serveMetricsAPI(rw, r, info)
		return
	}
	ep := s.endpoints[schema.GroupVersionResource{Group: info.Group, Version: info.Version, Resource: info.Resource}]
	if ep == nil {
		s.writeError(rw, r, errNotFoundResource(), schema.GroupResource{}, "")
		return
	}
	// A cluster-scoped resource has no namespaced paths and vice versa
	// (except the all-namespaces list and watch).
	if !ep.res.Namespaced && info.Namespace != "" {
		s.writeError(rw, r, errNotFoundResource(), ep.gr, "")
		return
	}
	if ep.res.Namespaced && info.Namespace == "" && info.Name != "" {
		s.writeError(rw, r, errNotFoundResource(), ep.gr, "")
		return
	}
	req := &request{s: s, w: rw, r: r, info: info, ep: ep, ctx: r.Context()}
	req.serve()
}

type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over to an upgrade (exec, attach,
// port-forward streams).
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("%T cannot be hijacked", r.ResponseWriter)
	}
	r.code, r.wroteHeader = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the connection (hijacking for
// upgrades, write deadlines for watches).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeError answers with err as a Status in the negotiated format (JSON
// when negotiation itself failed).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, gr schema.GroupResource, name string) {
	se := toAPIError(err, gr, name)
	st := se.ErrStatus
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	if st.Code >= 500 && st.Code != http.StatusGatewayTimeout && st.Code != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	out, nerr := s.codecs.negotiate(r)
	if nerr != nil || out.as != asObject {
		out = output{mediaType: mediaJSON, encoder: s.codecs.json}
	}
	st.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	w.Header().Set("Content-Type", out.contentType())
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
	}
	w.WriteHeader(int(st.Code))
	if r.Method == http.MethodHead {
		return
	}
	if err := out.encoder.Encode(&st, w); err != nil {
		s.log.Debug("write error response", "err", err)
	}
}

func stack() string { return string(debug.Stack()) }
