package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/apiserver/openapi"
	"github.com/skiff-sh/skiff/internal/auth/authn"
	"github.com/skiff-sh/skiff/internal/auth/pki"
	"github.com/skiff-sh/skiff/internal/auth/serviceaccount"
	"github.com/skiff-sh/skiff/internal/storage"
	"github.com/skiff-sh/skiff/internal/sys/memtrim"
	"github.com/skiff-sh/skiff/internal/version"
)

// KubeletClientName is the user the API server is to kubelets (in group
// system:masters).
const KubeletClientName = "kube-apiserver-kubelet-client"

// Server is a running control plane.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}
	// isReady flips when bootstrap finished; /readyz reports it.
	isReady atomic.Bool
	url     string
	// kubeconfig is the admin kubeconfig's path.
	kubeconfig string
	bundle     *pki.Bundle
	api        *apiserver.Server
}

// New checks cfg. Run starts everything.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		ready:      make(chan struct{}),
		kubeconfig: filepath.Join(cfg.DataDir, "admin.kubeconfig"),
		url:        "https://127.0.0.1:" + strconv.Itoa(cfg.HTTPSPort),
	}, nil
}

// Ready is closed once the API server serves and the cluster's built-in
// objects exist.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// KubeconfigPath is the admin kubeconfig, written at start.
func (s *Server) KubeconfigPath() string { return s.kubeconfig }

// URL is the API server's loopback URL.
func (s *Server) URL() string { return s.url }

// Run starts the control plane and serves until ctx ends, then shuts down
// cleanly: it stops accepting requests, ends watches, and closes etcd.
func (s *Server) Run(ctx context.Context) error {
	start := time.Now()
	apiserver.WarmUp(scheme.Scheme) // overlaps the schema parse with PKI and etcd start
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	hostname, _ := os.Hostname()
	sans := []string{hostname}
	sans = append(sans, s.cfg.ExtraSANs...)
	ips := append(hostIPs(), firstServiceIP(s.cfg.ServiceCIDR), s.cfg.AdvertiseAddress)
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(s.cfg.DataDir, "tls"), DNSNames: sans, IPs: ips, Logger: s.log})
	if err != nil {
		return err
	}
	s.bundle = bundle

	etcd, closeEtcd, err := s.startEtcd(ctx)
	if err != nil {
		return err
	}
	defer closeEtcd()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := storage.NewStore(etcd, storage.NewProtobufCodec(scheme.Scheme), reg)
	if err != nil {
		return err
	}
	late := &lateBinding{}
	resources, err := s.resources(store, late)
	if err != nil {
		return err
	}
	tokens, err := serviceaccount.NewIssuer(bundle.ServiceAccountKey, serviceaccount.DefaultIssuer, nil)
	if err != nil {
		return err
	}
	kubeletClient, err := bundle.CA.IssueClient(KubeletClientName, []string{"system:masters"})
	if err != nil {
		return err
	}
	api, err := apiserver.New(apiserver.Config{
		Store:       store,
		Scheme:      scheme.Scheme,
		Resources:   resources,
		TokenIssuer: tokens,
		Kubelet: &apiserver.KubeletConfig{TLS: &tls.Config{
			Certificates: []tls.Certificate{kubeletClient.TLSCertificate()},
			// As upstream without --kubelet-certificate-authority: agents
			// that joined on their own may serve self-signed certificates.
			InsecureSkipVerify: true,
			MinVersion:         tls.VersionTLS12,
		}},
		Registerer: reg,
		Logger:     s.log.WithGroup("apiserver"),
	})
	if err != nil {
		return err
	}
	late.api = api
	s.api = api
	cacheCtx, stopCaches := context.WithCancel(context.Background())
	defer stopCaches()
	if err := api.Start(cacheCtx); err != nil {
		return err
	}
	oapi, err := openapi.New(api.OpenAPIResources(), openapi.Config{Version: version.Kubernetes, Logger: s.log.WithGroup("openapi")})
	if err != nil {
		return err
	}

	handler, err := s.handler(api, oapi, reg, etcd)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(s.cfg.BindAddress, strconv.Itoa(s.cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	serveCtx, cancelServe := context.WithCancel(context.Background())
	defer cancelServe()
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         bundle.ServerTLSConfig(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    1 << 20,
		BaseContext:       func(net.Listener) context.Context { return serveCtx },
		ErrorLog:          log.New(slogWriter{s.log}, "", 0),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()

	if err := pki.WriteKubeconfig(s.kubeconfig, bundle.AdminKubeconfig(s.url)); err != nil {
		return err
	}
	go s.compactLoop(cacheCtx, store, api)
	if err := s.bootstrap(ctx); err != nil {
		srv.Close()
		return err
	}
	s.isReady.Store(true)
	close(s.ready)
	s.log.Info("skiff server ready", "url", s.url, "kubeconfig", s.kubeconfig, "startup", time.Since(start).Round(time.Millisecond))
	go s.reconcileLoop(ctx)

	// The rest of the cluster: components that reach the API over HTTPS
	// like any client, stopped (and waited for) before the API server.
	compCtx, stopComponents := context.WithCancel(ctx)
	components, err := s.startParts(compCtx)
	if err != nil {
		stopComponents()
		srv.Close()
		return err
	}
	go s.trimMemory(ctx)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("api server: %w", err)
	case err := <-components.failed:
		runErr = err
	}
	stopComponents()
	components.wait()
	if runErr != nil {
		srv.Close()
		return runErr
	}
	s.log.Info("shutting down")
	s.isReady.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cancelServe() // ends watches and other long requests
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("http shutdown", "err", err)
	}
	stopCaches()
	return nil
}

// trimMemory gives back, a little after start, the memory only start-up
// used (see package memtrim).
func (s *Server) trimMemory(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(5 * time.Second):
	}
	st, err := memtrim.Release()
	if err != nil {
		s.log.Debug("memory trim", "err", err)
		return
	}
	s.log.Debug("released start-up memory", "mappings", st.Mappings, "bytes", st.Bytes)
}

// startEtcd starts the embedded member or connects to the external
// cluster, and returns the client and a function that releases it.
func (s *Server) startEtcd(ctx context.Context) (etcdClient, func(), error) {
	if len(s.cfg.EtcdServers) > 0 {
		c, err := storage.NewExternalClient(ctx, storage.ExternalConfig{Endpoints: s.cfg.EtcdServers, TLS: s.cfg.EtcdTLS})
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	e, err := storage.StartEmbedded(ctx, storage.EmbeddedConfig{Dir: filepath.Join(s.cfg.DataDir, "etcd"), Logger: s.log.WithGroup("etcd")})
	if err != nil {
		return nil, nil, err
	}
	return e.Client(), func() { e.Close() }, nil
}

// handler assembles the HTTP surface: health and version for everyone,
// everything else after authentication.
func (s *Server) handler(api *apiserver.Server, oapi *openapi.Service, reg *prometheus.Registry, etcd etcdClient) (http.Handler, error) {
	mux := http.NewServeMux()
	health := &health{s: s, etcd: etcd}
	mux.Handle("/healthz", health)
	mux.Handle("/healthz/", health)
	mux.Handle("/livez", health)
	mux.Handle("/livez/", health)
	mux.Handle("/readyz", health)
	mux.Handle("/readyz/", health)
	mux.HandleFunc("/version", serveVersion)
	mux.Handle("/metrics", metricsHandler(reg))
	oapi.Install(mux)
	mux.Handle("/", api)

	x509, err := authn.NewX509(authn.X509Config{Roots: s.bundle.CA.Pool()})
	if err != nil {
		return nil, err
	}
	saTokens, err := serviceaccount.NewVerifier(s.bundle.ServiceAccountKey.Public(), serviceaccount.DefaultIssuer, nil, s.lookupUID, nil)
	if err != nil {
		return nil, err
	}
	tokens := []authn.TokenAuthenticator{saTokens}
	if s.cfg.TokenAuthFile != "" {
		tf, err := authn.LoadTokenFile(s.cfg.TokenAuthFile)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, tf)
	}
	return authn.Middleware(authn.Union(x509, authn.BearerToken(authn.UnionTokens(tokens...))), mux, authn.MiddlewareConfig{
		PublicPaths: authn.PublicInfoPaths(),
		Logger:      s.log.WithGroup("authn"),
	})
}

// lookupUID finds the objects service-account tokens are bound to, in the
// API server's caches.
func (s *Server) lookupUID(ctx context.Context, kind, namespace, name string) (string, error) {
	resource := map[string]string{"ServiceAccount": "serviceaccounts", "Pod": "pods", "Secret": "secrets", "Node": "nodes"}[kind]
	if resource == "" || s.api == nil {
		return "", nil
	}
	obj, ok := s.api.Lookup(corev1.SchemeGroupVersion.WithResource(resource), namespace, name)
	if !ok {
		return "", nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", err
	}
	return string(m.GetUID()), nil
}

// slogWriter sends net/http's own log lines (TLS handshake errors) to slog
// at debug level: clients that hang up are not worth a warning.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(string(p))
	return len(p), nil
}
