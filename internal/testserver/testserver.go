// Package testserver starts a real skiff control plane (API server on an
// embedded etcd, HTTPS, certificates, bootstrap objects — no scheduler,
// controllers or node agent) inside a test process, on a temporary data dir and a free port, for integration tests
// of anything that talks to the API: controllers, the scheduler, the node
// agent.
//
//	ts := testserver.Start(t)
//	client := kubernetes.NewForConfigOrDie(ts.Config)
package testserver

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/server"
)

// Server is a running control plane.
type Server struct {
	// Config is an admin client config for it.
	Config *rest.Config
	// Kubeconfig is the path of its admin kubeconfig.
	Kubeconfig string
	// DataDir is its data dir.
	DataDir string
	// URL is its HTTPS URL.
	URL string
}

// Options tune Start.
type Options struct {
	// Logger receives the server's logs; nil sends warnings and errors to
	// the test log.
	Logger *slog.Logger
	// CompactionInterval, when not zero, overrides the server's.
	CompactionInterval time.Duration
}

// Start runs a control plane until the test ends.
func Start(t testing.TB) *Server { return StartWithOptions(t, Options{}) }

// StartWithOptions is Start with options.
func StartWithOptions(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := server.New(server.Config{
		DataDir:            dir,
		BindAddress:        "127.0.0.1",
		HTTPSPort:          port,
		CompactionInterval: opts.CompactionInterval,
		Logger:             logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("test server did not stop")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("test server exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("test server not ready after 60s")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	return &Server{Config: cfg, Kubeconfig: s.KubeconfigPath(), DataDir: dir, URL: s.URL()}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testWriter sends log lines to the test log, and nowhere once the test
// has finished (goroutines may log during shutdown).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { recover() }()
	w.t.Log(string(p))
	return len(p), nil
}
