package imageservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"google.golang.org/grpc"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/imageservice/api"
)

// Store is the image store as the service uses it. *image.Store
// implements it.
type Store interface {
	Pull(ctx context.Context, ref string, auth *image.AuthConfig, progress image.ProgressFunc) (*image.Image, error)
	Import(ctx context.Context, r io.Reader, progress image.ProgressFunc) ([]*image.Image, error)
	Get(ref string) (*image.Image, error)
	List() []*image.Image
	Remove(ref string) error
	GC() (image.GCResult, error)
}

var _ Store = (*image.Store)(nil)

// Config configures a Server.
type Config struct {
	// Store is the image store to serve. Required.
	Store Store
	// Logger gets the service's logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("image service: Config.Store is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server serves the image service on a gRPC server. It is safe for
// concurrent use; every call is a call of the store.
type Server struct {
	api.UnimplementedImagesServer
	store Store
	log   *slog.Logger
}

var _ api.ImagesServer = (*Server)(nil)

// NewServer makes a Server.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Server{store: cfg.Store, log: cfg.Logger}, nil
}

// Register adds the service to s, next to whatever else s serves (the CRI).
func (s *Server) Register(r grpc.ServiceRegistrar) { api.RegisterImagesServer(r, s) }

// errImportDone tells the goroutine that feeds the archive to the store
// that the store stopped reading.
var errImportDone = errors.New("import ended")

// Import imports the archive the client streams. Progress is sent while
// the store works; the imported images come last, also when a later image
// of the archive failed, followed by the error status.
func (s *Server) Import(stream grpc.BidiStreamingServer[api.ImportRequest, api.ImportResponse]) error {
	ctx := stream.Context()
	pr, pw := io.Pipe()
	// The receiver ends when the client closes its side, when the store
	// stops reading (pr closed below), or when the stream ends with the
	// handler; it never outlives the stream.
	go func() {
		for {
			req, err := stream.Recv()
			if err == io.EOF {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(fmt.Errorf("receive archive: %w", err))
				return
			}
			if _, err := pw.Write(req.GetData()); err != nil {
				return
			}
		}
	}()
	progress := startSender(func(p *api.Progress) error {
		return stream.Send(&api.ImportResponse{Progress: p})
	})
	imgs, err := s.store.Import(ctx, pr, progress.report)
	pr.CloseWithError(errImportDone)
	progress.stop()
	if len(imgs) > 0 {
		resp := &api.ImportResponse{}
		for _, img := range imgs {
			resp.Images = append(resp.Images, toAPIImage(img))
		}
		if serr := stream.Send(resp); serr != nil && err == nil {
			return serr
		}
	}
	return toStatus(err)
}

// Pull pulls req.Ref, sending progress and, last, the image.
func (s *Server) Pull(req *api.PullRequest, stream grpc.ServerStreamingServer[api.PullResponse]) error {
	if req.GetRef() == "" {
		return toStatus(fmt.Errorf("pull: %w: empty image reference", ErrInvalid))
	}
	progress := startSender(func(p *api.Progress) error {
		return stream.Send(&api.PullResponse{Progress: p})
	})
	img, err := s.store.Pull(stream.Context(), req.GetRef(), fromAPIAuth(req.GetAuth()), progress.report)
	progress.stop()
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&api.PullResponse{Image: toAPIImage(img)})
}

// List lists the images, or only the one req.Ref names.
func (s *Server) List(ctx context.Context, req *api.ListRequest) (*api.ListResponse, error) {
	resp := &api.ListResponse{}
	if ref := req.GetRef(); ref != "" {
		img, err := s.store.Get(ref)
		if errors.Is(err, image.ErrNotFound) {
			return resp, nil
		}
		if err != nil {
			return nil, toStatus(err)
		}
		resp.Images = append(resp.Images, toAPIImage(img))
		return resp, nil
	}
	for _, img := range s.store.List() {
		resp.Images = append(resp.Images, toAPIImage(img))
	}
	return resp, nil
}

// Remove removes req.Ref and collects the garbage it leaves. An unknown
// reference is NotFound (unlike the CRI's RemoveImage, which succeeds).
func (s *Server) Remove(ctx context.Context, req *api.RemoveRequest) (*api.RemoveResponse, error) {
	ref := req.GetRef()
	if ref == "" {
		return nil, toStatus(fmt.Errorf("remove: %w: empty image reference", ErrInvalid))
	}
	img, err := s.store.Get(ref)
	if err != nil {
		return nil, toStatus(fmt.Errorf("remove %w", err))
	}
	if err := s.store.Remove(ref); err != nil {
		return nil, toStatus(err)
	}
	_, err = s.store.Get(img.ID)
	resp := &api.RemoveResponse{Id: img.ID, Deleted: errors.Is(err, image.ErrNotFound)}
	freed, err := s.store.GC()
	if err != nil {
		return nil, toStatus(fmt.Errorf("image %s removed, but: %w", img.ID, err))
	}
	resp.Freed = toAPIGC(freed)
	return resp, nil
}

// GC frees what nothing uses.
func (s *Server) GC(ctx context.Context, req *api.GCRequest) (*api.GCResponse, error) {
	freed, err := s.store.GC()
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.GCResponse{Freed: toAPIGC(freed)}, nil
}

// sender passes progress from the store to a stream without ever making
// the store wait for the client: the store's callback only keeps the
// latest snapshot, and a goroutine sends whatever is latest when the
// stream can take it. Intermediate snapshots may be skipped; each one is
// complete, so nothing is lost but intermediate states.
type sender struct {
	send func(*api.Progress) error
	wake chan struct{} // capacity 1: a snapshot is pending
	quit chan struct{} // closed by stop
	done chan struct{} // closed when run returns

	// mu guards pending and failed.
	mu      sync.Mutex
	pending *api.Progress
	failed  bool // a send failed: the client is gone, stop sending
}

func startSender(send func(*api.Progress) error) *sender {
	s := &sender{send: send, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// report is the store's ProgressFunc. It never blocks.
func (s *sender) report(p image.Progress) {
	ap := toAPIProgress(p)
	s.mu.Lock()
	s.pending = ap
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sender) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
			s.flush()
		case <-s.quit:
			return
		}
	}
}

// flush sends the pending snapshot, if any. Only run, or stop after run
// returned, calls it: a stream's Send must not be called concurrently.
func (s *sender) flush() {
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	failed := s.failed
	s.mu.Unlock()
	if p == nil || failed {
		return
	}
	if err := s.send(p); err != nil {
		s.mu.Lock()
		s.failed = true
		s.mu.Unlock()
	}
}

// stop ends the goroutine and sends the last snapshot, so the client sees
// the final state of every layer. The store must not report after stop.
func (s *sender) stop() {
	close(s.quit)
	<-s.done
	s.flush()
}

func toAPIImage(img *image.Image) *api.Image {
	out := &api.Image{
		Id: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, ManifestDigest: img.ManifestDigest,
		Size: img.Size, StoredUnixNano: img.Stored.UnixNano(),
	}
	if img.Stored.IsZero() {
		out.StoredUnixNano = 0
	}
	for _, l := range img.Layers {
		out.Layers = append(out.Layers, &api.Layer{Digest: l.Digest, DiffId: l.DiffID, Size: l.Size, MediaType: l.MediaType})
	}
	return out
}

func toAPIProgress(p image.Progress) *api.Progress {
	out := &api.Progress{Ref: p.Ref, Done: p.Done, Total: p.Total}
	for _, l := range p.Layers {
		out.Layers = append(out.Layers, &api.LayerProgress{Digest: l.Digest, State: string(l.State), Done: l.Done, Total: l.Total})
	}
	return out
}

func toAPIGC(r image.GCResult) *api.GCResult {
	return &api.GCResult{Blobs: int64(r.Blobs), Layers: int64(r.Layers), Bytes: r.Bytes}
}

func fromAPIAuth(a *api.AuthConfig) *image.AuthConfig {
	if a == nil {
		return nil
	}
	return &image.AuthConfig{
		Username: a.GetUsername(), Password: a.GetPassword(), Auth: a.GetAuth(),
		IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken(),
	}
}
