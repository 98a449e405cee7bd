package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/auth/authn"
)

// Defaults for Config's zero values.
const (
	// DefaultAPIServerUser is the user (certificate CN) the API server's
	// kubelet client certificate names, as kubeadm names it.
	DefaultAPIServerUser = "kube-apiserver-kubelet-client"
	// DefaultAddress is where the API listens: every address, port
	// 10250, as the kubelet does.
	DefaultAddress = ":10250"
)

// ErrNotFound classifies a Pods.Container error: no such pod on this
// node, or no such container (instance) in it. The server answers 404.
var ErrNotFound = errors.New("not found")

// Container is one instance of a pod's container in the runtime.
type Container struct {
	// ID is the CRI container ID.
	ID string
	// LogPath is the instance's CRI log file.
	LogPath string
	// Running says whether the instance runs now; only a running
	// container's log is followed.
	Running bool
}

// Pods is what the server reads from the kubelet; the agent adapts
// *kubelet.Kubelet to it.
type Pods interface {
	// Pod returns a pod bound to this node by namespace and name.
	Pod(namespace, name string) (*corev1.Pod, bool)
	// Pods returns every pod bound to this node. The caller must not
	// modify the pods.
	Pods() []*corev1.Pod
	// Container finds a container's current instance (or, with
	// previous, the one before it) in the runtime. A missing pod or
	// container wraps ErrNotFound.
	Container(ctx context.Context, namespace, podName, name string, previous bool) (Container, error)
}

// Config configures a Server. Pods, Runtime, Certificate and ClientCAs
// are required.
type Config struct {
	// Pods gives the node's pods and finds their containers. Required.
	Pods Pods
	// Runtime is the CRI runtime: exec, attach and port-forward URLs,
	// container states and stats come from it. Required.
	Runtime runtimeapi.RuntimeServiceClient
	// Images is the CRI image service; /stats/summary reports its
	// filesystem. Nil: no image filesystem stats.
	Images runtimeapi.ImageServiceClient
	// NodeName names the node in /stats/summary.
	NodeName string
	// Address is the host:port to listen on (default DefaultAddress).
	Address string
	// Certificate is the serving certificate. Required.
	Certificate *tls.Certificate
	// ClientCAs verifies client certificates: the cluster CA. Required.
	ClientCAs *x509.CertPool
	// AllowedUsers may use every endpoint, besides anyone in the group
	// system:masters (default: DefaultAPIServerUser). Other
	// authenticated users get 403.
	AllowedUsers []string
	// RootDir is the filesystem reported as the node's fs in
	// /stats/summary (default "/").
	RootDir string
	// Host reads the node's CPU and memory usage (default ProcHost).
	Host Host
	// FsUsage reads RootDir's filesystem usage (default Statfs).
	FsUsage FsUsage
	// Clock tells the time for stats and log follow polling (default:
	// the real clock).
	Clock clock.WithTicker
	// Logger gets the server's logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Pods == nil || c.Runtime == nil {
		return errors.New("kubelet server: Config.Pods and Config.Runtime are required")
	}
	if c.Certificate == nil || c.ClientCAs == nil {
		return errors.New("kubelet server: Config.Certificate and Config.ClientCAs are required")
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("kubelet server: address %q: %w", c.Address, err)
	}
	if len(c.AllowedUsers) == 0 {
		c.AllowedUsers = []string{DefaultAPIServerUser}
	}
	if c.RootDir == "" {
		c.RootDir = "/"
	}
	if c.Host == nil {
		c.Host = ProcHost{}
	}
	if c.FsUsage == nil {
		c.FsUsage = Statfs
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is the kubelet's HTTPS API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.WithTicker
	handler http.Handler
	stats   *statsCache

	mu sync.Mutex // guards ln
	ln net.Listener
}

// New checks cfg and builds the Server; Run serves it.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, stats: newStatsCache()}
	x, err := authn.NewX509(authn.X509Config{Roots: cfg.ClientCAs})
	if err != nil {
		return nil, fmt.Errorf("kubelet server: %w", err)
	}
	h, err := authn.Middleware(x, s.authorize(s.routes()), authn.MiddlewareConfig{
		PublicPaths: []string{"/healthz"},
		Logger:      s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet server: %w", err)
	}
	s.handler = h
	return s, nil
}

// Handler is the server's handler, authentication included, for tests
// and for callers that serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig is the server's TLS configuration: the serving certificate,
// and client certificates requested (and verified per request, so a bad
// one gets a 401 body rather than a failed handshake).
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{*s.cfg.Certificate},
		ClientCAs:    s.cfg.ClientCAs,
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
		// No HTTP/2: SPDY and WebSocket upgrades need HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}
}

// Addr is the address the server listens on, once Run listens.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Listen opens the listening socket so that Addr is known before Run.
// Run calls it when it was not called.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("kubelet server: listen on %s: %w", s.cfg.Address, err)
	}
	s.ln = ln
	return nil
}

// Run serves HTTPS until ctx ends, then closes the listener and every
// stream. It returns nil after ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 30 * time.Second,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          log.New(debugWriter{s.log}, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(s.ln, srv.TLSConfig)) }()
	go s.warmStats(ctx)
	s.log.Info("serving kubelet API", "address", s.ln.Addr().String())
	select {
	case <-ctx.Done():
		srv.Close()
		return nil
	case err := <-errc:
		return fmt.Errorf("kubelet server: %w", err)
	}
}

type debugWriter struct{ log *slog.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

// authorize lets through the allowed users and system:masters, and the
// anonymous user to /healthz only.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := authn.UserFrom(r.Context())
		switch {
		case !ok:
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		case u.Name == authn.UserAnonymous:
			if r.URL.Path == "/healthz" {
				next.ServeHTTP(w, r)
				return
			}
			writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
			return
		case slices.Contains(u.Groups, authn.GroupMasters), slices.Contains(s.cfg.AllowedUsers, u.Name):
			next.ServeHTTP(w, r)
			return
		}
		s.log.Info("forbidden kubelet API request", "user", u.Name, "path", r.URL.Path)
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden,
			fmt.Sprintf("user %q is not allowed to use the kubelet API (path %s)", u.Name, r.URL.Path))
	})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /pods", s.servePods)
	mux.HandleFunc("GET /pods/", s.servePods)
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", s.serveLogs)
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /exec/{ns}/{pod}/{container}", s.serveExec)
		mux.HandleFunc(m+" /exec/{ns}/{pod}/{uid}/{container}", s.serveExec)
		mux.HandleFunc(m+" /attach/{ns}/{pod}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /attach/{ns}/{pod}/{uid}/{container}", s.serveAttach)
		mux.HandleFunc(m+" /portForward/{ns}/{pod}", s.servePortForward)
		mux.HandleFunc(m+" /portForward/{ns}/{pod}/{uid}", s.servePortForward)
	}
	mux.HandleFunc("GET /stats/summary", s.serveSummary)
	mux.HandleFunc("POST /stats/summary", s.serveSummary)
	mux.HandleFunc("GET /metrics/resource", s.serveResourceMetrics)
	return mux
}

func (s *Server) servePods(w http.ResponseWriter, r *http.Request) {
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []corev1.Pod{}}
	for _, p := range s.cfg.Pods.Pods() {
		list.Items = append(list.Items, *p)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	writeJSON(w, http.StatusOK, list)
}

// lookupPod finds the pod of a request and checks the optional UID in
// its path.
func (s *Server) lookupPod(w http.ResponseWriter, r *http.Request) (*corev1.Pod, bool) {
	ns, name := r.PathValue("ns"), r.PathValue("pod")
	pod, ok := s.cfg.Pods.Pod(ns, name)
	if !ok {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pod %s/%s not found on this node", ns, name))
		return nil, false
	}
	if uid := r.PathValue("uid"); uid != "" && string(pod.UID) != uid {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pod %s/%s with UID %s not found on this node", ns, name, uid))
		return nil, false
	}
	return pod, true
}

// containerError answers a failed container lookup.
func containerError(w http.ResponseWriter, ns, pod, container string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("container %q in pod %s/%s: %v", container, ns, pod, err))
	default:
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("container %q in pod %s/%s: %v", container, ns, pod, err))
	}
}

// writeStatus answers with a Kubernetes Status body, as the API server
// passes kubelet errors on to clients.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

// statsWarmInterval is how often the server reads stats on its own, so
// that the first /stats/summary a client asks for already has CPU rates
// (usageNanoCores needs two readings).
const statsWarmInterval = 10 * time.Second

func (s *Server) warmStats(ctx context.Context) {
	t := s.clock.NewTicker(statsWarmInterval)
	defer t.Stop()
	s.summary(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			if _, err := s.summary(ctx); err != nil && ctx.Err() == nil {
				s.log.Debug("reading stats", "err", err)
			}
		}
	}
}
