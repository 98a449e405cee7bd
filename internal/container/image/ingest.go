package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// source is where an image's content comes from: a registry endpoint, an
// OCI layout directory or an unpacked `docker save` archive. The store
// verifies everything it reads from a source.
type source interface {
	// manifest returns the manifest or index d and its media type, if known.
	manifest(ctx context.Context, d v1.Hash) ([]byte, string, error)
	// blob opens the config or layer blob desc names.
	blob(ctx context.Context, desc v1.Descriptor) (io.ReadCloser, error)
}

type manifestKind int

const (
	kindImage manifestKind = iota
	kindIndex
)

// classify tells an image manifest from an index, by media type or, when
// that is missing or generic, by content.
func classify(mediaType string, body []byte) (manifestKind, error) {
	switch types.MediaType(mediaType) {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return kindImage, nil
	case types.OCIImageIndex, types.DockerManifestList:
		return kindIndex, nil
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return 0, fmt.Errorf("%w: Docker schema 1 manifests", ErrUnsupported)
	}
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []json.RawMessage `json:"manifests"`
		Layers        []json.RawMessage `json:"layers"`
		Config        json.RawMessage   `json:"config"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return 0, fmt.Errorf("manifest is not JSON: %w", err)
	}
	if probe.MediaType != "" && probe.MediaType != mediaType {
		return classify(probe.MediaType, body)
	}
	switch {
	case probe.SchemaVersion == 1:
		return 0, fmt.Errorf("%w: Docker schema 1 manifests", ErrUnsupported)
	case probe.Manifests != nil:
		return kindIndex, nil
	case probe.Config != nil:
		return kindImage, nil
	}
	return 0, fmt.Errorf("%w: manifest media type %q", ErrUnsupported, mediaType)
}

// resolve follows indexes down to the image manifest for the store's
// platform and returns it with its digest.
func (s *Store) resolve(ctx context.Context, src source, body []byte, mediaType string, d v1.Hash) ([]byte, v1.Hash, error) {
	for depth := 0; ; depth++ {
		kind, err := classify(mediaType, body)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("manifest %s: %w", d, err)
		}
		if kind == kindImage {
			return body, d, nil
		}
		if depth == 3 {
			return nil, v1.Hash{}, fmt.Errorf("index %s: %w: indexes nested too deep", d, ErrUnsupported)
		}
		idx, err := v1.ParseIndexManifest(bytes.NewReader(body))
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("index %s: %w", d, err)
		}
		child, err := s.pickPlatform(idx)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("index %s: %w", d, err)
		}
		if _, err := parseDigest(child.Digest.String()); err != nil {
			return nil, v1.Hash{}, fmt.Errorf("index %s: %w", d, err)
		}
		body, mediaType, err = src.manifest(ctx, child.Digest)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("manifest %s: %w", child.Digest, err)
		}
		if got := digestOf(body); got != child.Digest {
			return nil, v1.Hash{}, fmt.Errorf("%w: manifest %s: content hashes to %s", ErrDigestMismatch, child.Digest, got)
		}
		if mediaType == "" {
			mediaType = string(child.MediaType)
		}
		d = child.Digest
	}
}

// pickPlatform returns the index entry for the store's platform.
func (s *Store) pickPlatform(idx *v1.IndexManifest) (v1.Descriptor, error) {
	want := s.cfg.Platform
	var have []string
	for _, m := range idx.Manifests {
		p := m.Platform
		if p == nil {
			continue
		}
		have = append(have, p.String())
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		if want.Variant == "" || p.Variant == want.Variant ||
			(want.Architecture == "arm64" && p.Variant == "" && want.Variant == "v8") {
			return m, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%w: no image for platform %s (the index has: %s)",
		ErrNotFound, want.String(), strings.Join(have, ", "))
}

// request is one image to store.
type request struct {
	top            []byte  // the index or manifest a name points at
	topDigest      v1.Hash // its digest, the one RepoDigests name
	manifest       []byte  // the platform image manifest
	manifestDigest v1.Hash
	tags           []string // normalized name:tag references
	digests        []string // normalized name@digest references
}

var layerTypes = map[types.MediaType]bool{
	"":                            true,
	types.OCILayer:                true,
	types.OCILayerZStd:            true,
	types.OCIUncompressedLayer:    true,
	types.DockerLayer:             true,
	types.DockerUncompressedLayer: true,
}

// store fetches what is missing of req's image from src, unpacks its layers
// and adds it to the index. Nothing is indexed unless all of it is there.
func (s *Store) store(ctx context.Context, src source, req request, tr *tracker) (*Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(req.manifest))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", req.manifestDigest, err)
	}
	switch m.Config.MediaType {
	case types.DockerConfigJSON, types.OCIConfigJSON, "":
	default:
		return nil, fmt.Errorf("manifest %s: %w: config media type %q (not a container image)",
			req.manifestDigest, ErrUnsupported, m.Config.MediaType)
	}
	configDigest, err := parseDigest(m.Config.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("manifest %s: config: %w", req.manifestDigest, err)
	}
	holds := []string{req.topDigest.String(), req.manifestDigest.String(), configDigest.String()}
	for i, l := range m.Layers {
		if !layerTypes[l.MediaType] {
			return nil, fmt.Errorf("manifest %s: layer %d: %w: media type %q", req.manifestDigest, i, ErrUnsupported, l.MediaType)
		}
		if _, err := parseDigest(l.Digest.String()); err != nil {
			return nil, fmt.Errorf("manifest %s: layer %d: %w", req.manifestDigest, i, err)
		}
		holds = append(holds, l.Digest.String())
	}
	release := s.hold(holds...)
	defer release()

	raw, err := s.config(ctx, src, m.Config, configDigest)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", configDigest, err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: config has %d diff_ids for %d layers", configDigest, len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	diffIDs := make([]string, len(m.Layers))
	for i, d := range cf.RootFS.DiffIDs {
		if _, err := parseDigest(d.String()); err != nil {
			return nil, fmt.Errorf("config %s: diff_id %d: %w", configDigest, i, err)
		}
		diffIDs[i] = d.String()
	}
	releaseLayers := s.hold(diffIDs...)
	defer releaseLayers()

	digests := make([]string, len(m.Layers))
	sizes := make([]int64, len(m.Layers))
	for i, l := range m.Layers {
		digests[i], sizes[i] = l.Digest.String(), l.Size
	}
	tr.setLayers(digests, sizes)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.MaxConcurrentDownloads)
	for i, l := range m.Layers {
		g.Go(func() error {
			return s.ensureLayer(gctx, src, i, l, cf.RootFS.DiffIDs[i], tr)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	if err := s.writeBlobBytes(req.manifestDigest, req.manifest); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", req.manifestDigest, err)
	}
	if req.topDigest != req.manifestDigest {
		if err := s.writeBlobBytes(req.topDigest, req.top); err != nil {
			return nil, fmt.Errorf("index %s: %w", req.topDigest, err)
		}
	}
	rec := &record{
		ID:             configDigest.String(),
		RepoTags:       append([]string(nil), req.tags...),
		RepoDigests:    append([]string(nil), req.digests...),
		ManifestDigest: req.manifestDigest.String(),
		Size:           m.Config.Size,
		Stored:         s.cfg.Now().UTC(),
	}
	if req.topDigest != req.manifestDigest {
		rec.IndexDigest = req.topDigest.String()
	}
	for i, l := range m.Layers {
		rec.Layers = append(rec.Layers, layerRecord{
			Digest: l.Digest.String(), DiffID: diffIDs[i], Size: l.Size, MediaType: string(l.MediaType),
		})
		rec.Size += l.Size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.snapshotLocked()
	s.commitLocked(rec, cf)
	if err := s.saveLocked(); err != nil {
		s.restoreLocked(before)
		return nil, fmt.Errorf("image %s: save index: %w", rec.ID, err)
	}
	return s.imageLocked(s.st.Images[rec.ID]), nil
}

// snapshotLocked copies the image index, to undo a failed commit.
func (s *Store) snapshotLocked() map[string]record {
	out := make(map[string]record, len(s.st.Images))
	for id, rec := range s.st.Images {
		out[id] = *rec
	}
	return out
}

func (s *Store) restoreLocked(snap map[string]record) {
	s.st.Images = make(map[string]*record, len(snap))
	for id, rec := range snap {
		r := rec
		s.st.Images[id] = &r
	}
	for id := range s.configs {
		if _, ok := s.st.Images[id]; !ok {
			delete(s.configs, id)
		}
	}
}

// config returns the image config blob, fetching and storing it if needed.
func (s *Store) config(ctx context.Context, src source, desc v1.Descriptor, d v1.Hash) ([]byte, error) {
	if raw, err := s.readBlob(d, maxConfigSize); err == nil {
		return raw, nil
	}
	if desc.Size > maxConfigSize {
		return nil, fmt.Errorf("config %s: %d bytes is too large", d, desc.Size)
	}
	rc, err := src.blob(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", d, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", d, err)
	}
	if err := s.writeBlobBytes(d, raw); err != nil {
		return nil, fmt.Errorf("config %s: %w", d, err)
	}
	return raw, nil
}

// ensureLayer makes sure layer i (blob desc, uncompressed diffID) is
// unpacked. Concurrent calls for one diffID do the work once.
func (s *Store) ensureLayer(ctx context.Context, src source, i int, desc v1.Descriptor, diffID v1.Hash, tr *tracker) error {
	key := diffID.String()
	for {
		s.mu.Lock()
		if f, ok := s.flights[key]; ok {
			s.mu.Unlock()
			select {
			case <-f.done:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if exists(s.layerPath(diffID)) {
			s.mu.Unlock()
			tr.state(i, LayerExists)
			return nil
		}
		f := &flight{done: make(chan struct{})}
		s.flights[key] = f
		s.mu.Unlock()

		err := s.unpackLayer(ctx, src, i, desc, diffID, tr)
		s.mu.Lock()
		delete(s.flights, key)
		s.mu.Unlock()
		close(f.done)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		return nil
	}
}

// unpackLayer fetches the blob (or reads it from the store) and unpacks it
// in one stream: bytes go to the blob file and to the decompressor at once.
// The layer dir appears, by rename, only once both digests are verified.
func (s *Store) unpackLayer(ctx context.Context, src source, i int, desc v1.Descriptor, diffID v1.Hash, tr *tracker) error {
	tmp, err := os.MkdirTemp(filepath.Join(s.cfg.Root, tmpDir), "layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	var (
		in io.Reader
		bw *blobWriter
	)
	blobFile := s.blobPath(desc.Digest)
	if f, err := os.Open(blobFile); err == nil {
		defer f.Close()
		in = &meter{r: f, t: tr, i: -1}
		tr.state(i, LayerExtracting)
	} else {
		rc, err := src.blob(ctx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		if bw, err = s.newBlobWriter(); err != nil {
			return err
		}
		defer bw.abort()
		limit := desc.Size + 1
		if desc.Size <= 0 {
			limit = 1 << 40
		}
		in = io.TeeReader(&meter{r: io.LimitReader(rc, limit), s: s, t: tr, i: i}, bw)
		tr.state(i, LayerDownloading)
	}

	unpackErr := s.untar(tmp, in, diffID)
	if bw != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Read what the unpacker left (padding, trailers) so the digest
		// covers the whole blob; a bad digest is the real cause of most
		// unpack errors, so it is checked first.
		if _, err := io.Copy(io.Discard, in); err != nil && unpackErr == nil {
			unpackErr = err
		}
		if err := bw.verify(desc.Digest, desc.Size); err != nil {
			return err
		}
	}
	if unpackErr != nil {
		return unpackErr
	}
	if err := s.syncLayer(tmp); err != nil {
		return err
	}
	if bw != nil {
		if err := bw.commit(blobFile, desc.Digest, desc.Size); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, s.layerPath(diffID)); err != nil {
		return err
	}
	tr.state(i, LayerComplete)
	return nil
}

// untar unpacks a layer blob stream into dir and checks that the
// uncompressed stream hashes to diffID.
func (s *Store) untar(dir string, r io.Reader, diffID v1.Hash) error {
	zr, err := decompressed(r)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	defer zr.Close()
	h := sha256.New()
	tee := io.TeeReader(zr, h)
	if err := newUnpacker(dir, s.log).unpack(tar.NewReader(tee)); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
		return fmt.Errorf("%w: uncompressed layer %s: content hashes to %s", ErrDigestMismatch, diffID, got)
	}
	return nil
}

// meter counts downloaded bytes for progress and metrics; with i < 0 it
// only keeps the stall watchdog quiet.
type meter struct {
	r io.Reader
	s *Store
	t *tracker
	i int
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if m.i < 0 { // a local blob: not a download, only a sign of life
		m.t.touch()
		return n, err
	}
	if n > 0 {
		m.t.add(m.i, int64(n))
		m.s.metrics.bytes.Add(float64(n))
	}
	return n, err
}

// errorClass maps an error to a pull metrics result.
func errorClass(err error) string {
	switch {
	case err == nil:
		return resultSuccess
	case errors.Is(err, ErrNotFound):
		return resultNotFound
	case errors.Is(err, ErrUnauthorized):
		return resultUnauthorized
	case errors.Is(err, ErrDigestMismatch):
		return resultDigestMismatch
	}
	return resultError
}
