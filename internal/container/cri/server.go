package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/imageservice"
)

// Images is the image store, as the CRI image service uses it.
// *image.Store implements it.
type Images interface {
	Pull(ctx context.Context, ref string, auth *image.AuthConfig, progress image.ProgressFunc) (*image.Image, error)
	Get(ref string) (*image.Image, error)
	List() []*image.Image
	Remove(ref string) error
}

var _ Images = (*image.Store)(nil)

// Config configures a Server.
type Config struct {
	// Runtime runs the sandboxes and containers. Required.
	Runtime *container.Runtime
	// Images is the image store. Required.
	Images Images
	// ImageRoot is the image store's directory, reported by ImageFsInfo.
	ImageRoot string
	// StreamingAddress is the host:port the exec/attach/port-forward
	// server listens on (default 127.0.0.1:0, any free port).
	StreamingAddress string
	// Version is reported as the runtime version (default "dev").
	Version string
	// Metrics gets the server's collectors (default: not registered).
	Metrics prometheus.Registerer
	// Logger gets the server's logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Runtime == nil || c.Images == nil {
		return errors.New("cri: Config.Runtime and Config.Images are required")
	}
	if c.StreamingAddress == "" {
		c.StreamingAddress = "127.0.0.1:0"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is the CRI server.
type Server struct {
	cfg       Config
	rt        *container.Runtime
	images    Images
	log       *slog.Logger
	metrics   *metrics
	grpc      *grpc.Server
	stream    streaming.Server
	streamLn  net.Listener
	streamSrv *http.Server
}

var (
	_ runtimeapi.RuntimeServiceServer = (*runtimeService)(nil)
	_ runtimeapi.ImageServiceServer   = (*imageService)(nil)
)

// New makes a Server. It listens on the streaming address at once, so
// that exec URLs can be handed out before Serve.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, rt: cfg.Runtime, images: cfg.Images, log: cfg.Logger, metrics: newMetrics(cfg.Metrics)}
	ln, err := net.Listen("tcp", cfg.StreamingAddress)
	if err != nil {
		return nil, fmt.Errorf("cri: streaming server: %w", err)
	}
	sc := streaming.DefaultConfig
	sc.Addr = ln.Addr().String()
	sc.BaseURL = &url.URL{Scheme: "http", Host: ln.Addr().String()}
	stream, err := streaming.NewServer(sc, streamRuntime{s.rt})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("cri: streaming server: %w", err)
	}
	s.stream, s.streamLn = stream, ln
	s.streamSrv = &http.Server{Handler: stream, ReadHeaderTimeout: 30 * time.Second}
	s.grpc = grpc.NewServer(grpc.ChainUnaryInterceptor(s.unaryInterceptor), grpc.ChainStreamInterceptor(s.streamInterceptor))
	runtimeapi.RegisterRuntimeServiceServer(s.grpc, &runtimeService{s: s})
	runtimeapi.RegisterImageServiceServer(s.grpc, &imageService{s: s})
	// Beside the CRI, skiff's image service (imports, pulls with progress,
	// GC) when the store can do that; CRI clients never call it.
	if store, ok := cfg.Images.(imageservice.Store); ok {
		svc, err := imageservice.NewServer(imageservice.Config{Store: store, Logger: cfg.Logger.WithGroup("imageservice")})
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("cri: %w", err)
		}
		svc.Register(s.grpc)
	}
	return s, nil
}

// StreamingURL is the base URL of the streaming server.
func (s *Server) StreamingURL() string { return "http://" + s.streamLn.Addr().String() }

// Serve serves the CRI on ln and the streaming server until ctx ends,
// then stops both. It returns nil after ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 2)
	go func() { errc <- s.streamSrv.Serve(s.streamLn) }()
	go func() { errc <- s.grpc.Serve(ln) }()
	select {
	case <-ctx.Done():
		s.grpc.Stop()
		s.streamSrv.Close()
		return nil
	case err := <-errc:
		s.grpc.Stop()
		s.streamSrv.Close()
		return err
	}
}

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	err = toStatus(err)
	s.metrics.observe(info.FullMethod, err, time.Since(start))
	if err != nil {
		s.log.Debug("cri call failed", "method", info.FullMethod, "err", err)
	}
	return resp, err
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := toStatus(handler(srv, ss))
	s.metrics.observe(info.FullMethod, err, time.Since(start))
	return err
}

// toStatus maps runtime and image store errors to gRPC status errors.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, container.ErrNotFound), errors.Is(err, image.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, container.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, container.ErrInvalid), errors.Is(err, image.ErrInvalidReference), errors.Is(err, image.ErrUnsupported):
		code = codes.InvalidArgument
	case errors.Is(err, container.ErrNotReady):
		code = codes.FailedPrecondition
	case errors.Is(err, image.ErrUnauthorized):
		code = codes.Unauthenticated
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}
