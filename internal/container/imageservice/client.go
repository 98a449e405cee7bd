package imageservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/imageservice/api"
)

// Image is an image as the service reports it.
type Image struct {
	// ID is the digest of the image config, "sha256:...".
	ID string
	// RepoTags are normalized "domain/path:tag" references.
	RepoTags []string
	// RepoDigests are "domain/path@sha256:..." references.
	RepoDigests []string
	// ManifestDigest is the digest of the platform image manifest.
	ManifestDigest string
	// Size is the size of the config and the layer blobs, in bytes.
	Size int64
	// Stored is when the image entered the store.
	Stored time.Time
	// Layers are lowest first.
	Layers []Layer
}

// Layer is one layer of an Image.
type Layer struct {
	Digest    string // of the blob
	DiffID    string // of the uncompressed tar
	Size      int64  // of the blob
	MediaType string
}

// RemoveResult tells what Remove did.
type RemoveResult struct {
	// ID is the image the reference named.
	ID string
	// Deleted says the image is gone; otherwise only the reference was.
	Deleted bool
	// Freed is what the garbage collection after the removal freed.
	Freed image.GCResult
}

// chunkSize is the size of the pieces Import sends an archive in, well
// under gRPC's default 4 MiB message limit.
const chunkSize = 512 << 10

// Client calls the image service of a runtime. It is safe for concurrent
// use.
type Client struct {
	conn   *grpc.ClientConn // nil when the caller owns the connection
	api    api.ImagesClient
	target string
}

// Dial returns a client of the image service on the unix socket at path
// (the runtime's CRI socket). It does not connect: the first call does,
// and its error wraps ErrUnavailable when nothing listens there. Close the
// client when done.
func Dial(path string) (*Client, error) {
	target := "unix://" + path
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("image service at %s: %w", target, err)
	}
	return &Client{conn: conn, api: api.NewImagesClient(conn), target: target}, nil
}

// NewClient returns a client that calls the image service on cc, which
// the caller keeps and closes.
func NewClient(cc grpc.ClientConnInterface) *Client {
	return &Client{api: api.NewImagesClient(cc), target: "the runtime"}
}

// Close closes the connection Dial made. It is a no-op for NewClient's.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Import streams the archive read from r (a `docker save` or OCI-layout
// tarball, plain, gzip or zstd) to the runtime, which imports its images.
// progress (may be nil) gets the progress of the import, serially. It
// returns the imported images in archive order; when an image fails, the
// ones before it are returned too, with the error.
//
// Import returns once the runtime has answered. If the runtime fails
// before r is read to the end, Import does not wait for a pending r.Read
// (a terminal on stdin, say): the goroutine reading r ends when that Read
// returns.
func (c *Client) Import(ctx context.Context, r io.Reader, progress image.ProgressFunc) ([]Image, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.Import(ctx)
	if err != nil {
		return nil, fromStatus(err, c.target)
	}
	// readErr gets the error reading r before the stream is canceled for
	// it, so that the receiving side below finds it.
	readErr := make(chan error, 1)
	go func() {
		err := upload(stream, r)
		readErr <- err
		if err != nil {
			cancel() // the server must not take a cut archive for a whole one
		}
	}()
	var imgs []Image
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			// A failure to read r shows on the server as a cut archive;
			// the local error says more.
			select {
			case rerr := <-readErr:
				if rerr != nil {
					return imgs, rerr
				}
			default:
			}
			return imgs, fromStatus(err, c.target)
		}
		if p := resp.GetProgress(); p != nil && progress != nil {
			progress(fromAPIProgress(p))
		}
		for _, img := range resp.GetImages() {
			imgs = append(imgs, fromAPIImage(img))
		}
	}
	return imgs, nil
}

// upload sends r in chunks and closes the sending side at the end of r.
// It returns an error only when reading r fails. An error sending means
// the server ended the stream; the receiving side learns why.
func upload(stream grpc.BidiStreamingClient[api.ImportRequest, api.ImportResponse], r io.Reader) error {
	for {
		// A fresh buffer each time: gRPC may use a sent message lazily.
		buf := make([]byte, chunkSize)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := stream.Send(&api.ImportRequest{Data: buf[:n]}); serr != nil {
				return nil
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			stream.CloseSend()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
	}
}

// Pull pulls ref on the runtime. auth (nil: anonymous, or the runtime's
// registries configuration) is sent to the image's registry. progress (may
// be nil) gets the progress, serially.
func (c *Client) Pull(ctx context.Context, ref string, auth *image.AuthConfig, progress image.ProgressFunc) (Image, error) {
	req := &api.PullRequest{Ref: ref}
	if auth != nil {
		req.Auth = &api.AuthConfig{
			Username: auth.Username, Password: auth.Password, Auth: auth.Auth,
			IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken,
		}
	}
	stream, err := c.api.Pull(ctx, req)
	if err != nil {
		return Image{}, fromStatus(err, c.target)
	}
	var img *Image
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Image{}, fromStatus(err, c.target)
		}
		if p := resp.GetProgress(); p != nil && progress != nil {
			progress(fromAPIProgress(p))
		}
		if i := resp.GetImage(); i != nil {
			got := fromAPIImage(i)
			img = &got
		}
	}
	if img == nil {
		return Image{}, fmt.Errorf("pull %s: the runtime ended the pull without an image", ref)
	}
	return *img, nil
}

// List returns the runtime's images, oldest first; with ref set, only the
// image ref names (none when it names none).
func (c *Client) List(ctx context.Context, ref string) ([]Image, error) {
	resp, err := c.api.List(ctx, &api.ListRequest{Ref: ref})
	if err != nil {
		return nil, fromStatus(err, c.target)
	}
	out := make([]Image, 0, len(resp.GetImages()))
	for _, img := range resp.GetImages() {
		out = append(out, fromAPIImage(img))
	}
	return out, nil
}

// Remove removes ref: a tag or repo digest drops that reference (and the
// image with its last tag), an image ID or unique ID prefix the image with
// all its references. Content no image or container uses is then freed.
// The error wraps image.ErrNotFound when ref names nothing.
func (c *Client) Remove(ctx context.Context, ref string) (RemoveResult, error) {
	resp, err := c.api.Remove(ctx, &api.RemoveRequest{Ref: ref})
	if err != nil {
		return RemoveResult{}, fromStatus(err, c.target)
	}
	return RemoveResult{ID: resp.GetId(), Deleted: resp.GetDeleted(), Freed: fromAPIGC(resp.GetFreed())}, nil
}

// GC frees the blobs and layers that no image, container or operation in
// progress uses.
func (c *Client) GC(ctx context.Context) (image.GCResult, error) {
	resp, err := c.api.GC(ctx, &api.GCRequest{})
	if err != nil {
		return image.GCResult{}, fromStatus(err, c.target)
	}
	return fromAPIGC(resp.GetFreed()), nil
}

func fromAPIImage(img *api.Image) Image {
	out := Image{
		ID: img.GetId(), RepoTags: img.GetRepoTags(), RepoDigests: img.GetRepoDigests(),
		ManifestDigest: img.GetManifestDigest(), Size: img.GetSize(),
	}
	if ns := img.GetStoredUnixNano(); ns != 0 {
		out.Stored = time.Unix(0, ns)
	}
	for _, l := range img.GetLayers() {
		out.Layers = append(out.Layers, Layer{Digest: l.GetDigest(), DiffID: l.GetDiffId(), Size: l.GetSize(), MediaType: l.GetMediaType()})
	}
	return out
}

func fromAPIProgress(p *api.Progress) image.Progress {
	out := image.Progress{Ref: p.GetRef(), Done: p.GetDone(), Total: p.GetTotal()}
	for _, l := range p.GetLayers() {
		out.Layers = append(out.Layers, image.LayerProgress{
			Digest: l.GetDigest(), State: image.LayerState(l.GetState()), Done: l.GetDone(), Total: l.GetTotal(),
		})
	}
	return out
}

func fromAPIGC(r *api.GCResult) image.GCResult {
	return image.GCResult{Blobs: int(r.GetBlobs()), Layers: int(r.GetLayers()), Bytes: r.GetBytes()}
}
