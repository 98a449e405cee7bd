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
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations that name the images of an OCI layout.
const (
	refNameAnnotation    = "org.opencontainers.image.ref.name"
	containerdAnnotation = "io.containerd.image.name"
)

// Import adds the images of an archive read from r: a `docker save`
// tarball (manifest.json; RepoTags name the images) or an OCI image-layout
// tarball (index.json; each entry named by its io.containerd.image.name
// annotation, or by org.opencontainers.image.ref.name when that is a full
// reference such as "docker.io/library/busybox:1.36"; entries with no
// usable name are imported by ID only). The archive may be gzip or zstd
// compressed. Digests are verified as for Pull. It returns the imported
// images in archive order. If one image fails, the ones before it stay.
func (s *Store) Import(ctx context.Context, r io.Reader, progress ProgressFunc) ([]*Image, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.cfg.Root, tmpDir), "import-")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := extractArchive(ctx, r, dir); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	imgs, err := s.importDir(ctx, dir, progress)
	if err != nil {
		s.cleanupAfterFailure()
		return imgs, fmt.Errorf("import: %w", err)
	}
	return imgs, nil
}

// ImportPath imports the archive at path (see Import), or the OCI layout
// directory (or unpacked `docker save` directory) at path.
func (s *Store) ImportPath(ctx context.Context, p string, progress ProgressFunc) ([]*Image, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if st.IsDir() {
		imgs, err := s.importDir(ctx, p, progress)
		if err != nil {
			s.cleanupAfterFailure()
			return imgs, fmt.Errorf("import %s: %w", p, err)
		}
		return imgs, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	imgs, err := s.Import(ctx, f, progress)
	if err != nil {
		return imgs, fmt.Errorf("%s: %w", p, err)
	}
	return imgs, nil
}

// extractArchive unpacks the regular files of an image archive into dir.
// Symlinks and hardlinks (docker save links duplicate layers) become
// hardlinks to files inside dir; anything reaching outside is an error.
func extractArchive(ctx context.Context, r io.Reader, dir string) error {
	zr, err := decompressed(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	links := map[string]string{} // name -> target, both cleaned, relative to dir
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		rel, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "" {
			continue
		}
		full := filepath.Join(dir, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(full, 0o700); err != nil {
				return err
			}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars
			if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(rel), target)
			}
			if strings.HasPrefix(target, "/") || strings.HasPrefix(path.Clean(target), "..") {
				return fmt.Errorf("%w: archive entry %q links outside the archive (%q)", ErrUnsafeLayer, hdr.Name, hdr.Linkname)
			}
			links[rel] = path.Clean(target)
		}
	}
	// Resolve links, following chains a few steps.
	for range 8 {
		pending := 0
		for name, target := range links {
			tfull := filepath.Join(dir, target)
			st, err := os.Lstat(tfull)
			if err != nil || !st.Mode().IsRegular() {
				pending++
				continue
			}
			full := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
				return err
			}
			if err := os.Link(tfull, full); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			delete(links, name)
		}
		if pending == 0 {
			break
		}
	}
	return nil
}

func (s *Store) importDir(ctx context.Context, dir string, progress ProgressFunc) ([]*Image, error) {
	if exists(filepath.Join(dir, "manifest.json")) {
		return s.importDockerSave(ctx, dir, progress)
	}
	if exists(filepath.Join(dir, "index.json")) {
		return s.importLayout(ctx, dir, progress)
	}
	return nil, fmt.Errorf("%w: neither a docker save archive (manifest.json) nor an OCI layout (index.json)", ErrUnsupported)
}

// layoutSource reads an OCI image layout directory.
type layoutSource struct{ dir string }

var _ source = layoutSource{}

func (l layoutSource) path(d v1.Hash) (string, error) {
	if _, err := parseDigest(d.String()); err != nil {
		return "", err
	}
	return filepath.Join(l.dir, "blobs", d.Algorithm, d.Hex), nil
}

func (l layoutSource) manifest(_ context.Context, d v1.Hash) ([]byte, string, error) {
	p, err := l.path(d)
	if err != nil {
		return nil, "", err
	}
	b, err := readLimited(p, maxManifestSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("%w: blob %s is not in the layout", ErrNotFound, d)
	}
	return b, "", err
}

func (l layoutSource) blob(_ context.Context, desc v1.Descriptor) (io.ReadCloser, error) {
	p, err := l.path(desc.Digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s is not in the layout", ErrNotFound, desc.Digest)
	}
	return f, err
}

func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(p), limit)
	}
	return b, nil
}

func (s *Store) importLayout(ctx context.Context, dir string, progress ProgressFunc) ([]*Image, error) {
	raw, err := readLimited(filepath.Join(dir, "index.json"), maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("OCI layout: %w", err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("OCI layout index.json: %w", err)
	}
	src := layoutSource{dir: dir}
	var out []*Image
	for _, desc := range idx.Manifests {
		body, _, err := src.manifest(ctx, desc.Digest)
		if err != nil {
			return out, fmt.Errorf("OCI layout: manifest %s: %w", desc.Digest, err)
		}
		if got := digestOf(body); got != desc.Digest {
			return out, fmt.Errorf("%w: OCI layout: manifest %s: content hashes to %s", ErrDigestMismatch, desc.Digest, got)
		}
		manifest, md, err := s.resolve(ctx, src, body, string(desc.MediaType), desc.Digest)
		if err != nil {
			return out, fmt.Errorf("OCI layout: %w", err)
		}
		req := request{top: body, topDigest: desc.Digest, manifest: manifest, manifestDigest: md}
		label := desc.Digest.String()
		if ref, ok := layoutName(desc.Annotations); ok {
			label = ref.String()
			if t := ref.TagRef(); t != "" {
				req.tags = []string{t}
			}
			req.digests = []string{ref.DigestRef(desc.Digest.String())}
		} else {
			s.log.Info("imported image has no usable name; it is known by ID only", "manifest", desc.Digest)
		}
		img, err := s.store(ctx, src, req, newTracker(label, progress))
		if err != nil {
			return out, fmt.Errorf("OCI layout: image %s: %w", label, err)
		}
		out = append(out, img)
	}
	return out, nil
}

// layoutName returns the reference an OCI layout entry is named by. A bare
// ref.name such as "1.0" or "latest" (a tag without a repository, which the
// OCI spec allows) is not a usable name.
func layoutName(ann map[string]string) (Reference, bool) {
	if n := ann[containerdAnnotation]; n != "" {
		if r, err := ParseReference(n); err == nil {
			return r, true
		}
	}
	n := ann[refNameAnnotation]
	if n == "" || !strings.ContainsAny(n, "/:") {
		return Reference{}, false
	}
	r, err := ParseReference(n)
	return r, err == nil
}

// dockerSaveEntry is one element of a docker save manifest.json.
type dockerSaveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// fileSource serves blobs from files named in a docker save manifest.json.
type fileSource struct{ files map[v1.Hash]string }

var _ source = fileSource{}

func (f fileSource) manifest(context.Context, v1.Hash) ([]byte, string, error) {
	return nil, "", fmt.Errorf("%w: docker save archives hold no manifests", ErrNotFound)
}

func (f fileSource) blob(_ context.Context, desc v1.Descriptor) (io.ReadCloser, error) {
	p, ok := f.files[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, desc.Digest)
	}
	return os.Open(p)
}

func (s *Store) importDockerSave(ctx context.Context, dir string, progress ProgressFunc) ([]*Image, error) {
	raw, err := readLimited(filepath.Join(dir, "manifest.json"), maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("docker save manifest.json: %w", err)
	}
	var entries []dockerSaveEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("docker save manifest.json: %w", err)
	}
	var out []*Image
	for n, e := range entries {
		img, err := s.importDockerSaveEntry(ctx, dir, e, progress)
		if err != nil {
			return out, fmt.Errorf("docker save image %d (%s): %w", n, strings.Join(e.RepoTags, ", "), err)
		}
		out = append(out, img)
	}
	return out, nil
}

func (s *Store) importDockerSaveEntry(ctx context.Context, dir string, e dockerSaveEntry, progress ProgressFunc) (*Image, error) {
	src := fileSource{files: map[v1.Hash]string{}}
	file := func(name string) (string, error) {
		rel, err := cleanName(name)
		if err != nil || rel == "" {
			return "", fmt.Errorf("%w: bad path %q in manifest.json", ErrUnsafeLayer, name)
		}
		return filepath.Join(dir, rel), nil
	}
	cp, err := file(e.Config)
	if err != nil {
		return nil, err
	}
	config, err := readLimited(cp, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(config)), Digest: digestOf(config)},
	}
	src.files[m.Config.Digest] = cp
	for _, l := range e.Layers {
		lp, err := file(l)
		if err != nil {
			return nil, err
		}
		desc, err := describeLayerFile(lp)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l, err)
		}
		src.files[desc.Digest] = lp
		m.Layers = append(m.Layers, desc)
	}
	manifest, err := json.Marshal(&m)
	if err != nil {
		return nil, err
	}
	md := digestOf(manifest)
	req := request{top: manifest, topDigest: md, manifest: manifest, manifestDigest: md}
	label := m.Config.Digest.String()
	for _, t := range e.RepoTags {
		r, err := ParseReference(t)
		if err != nil {
			return nil, fmt.Errorf("RepoTags: %w", err)
		}
		if tr := r.TagRef(); tr != "" {
			if len(req.tags) == 0 {
				label = tr // progress names the image by its first tag
			}
			req.tags = append(req.tags, tr)
		}
	}
	return s.store(ctx, src, req, newTracker(label, progress))
}

// describeLayerFile hashes a layer file and tells its compression.
func describeLayerFile(p string) (v1.Descriptor, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	magic := make([]byte, 4)
	n, _ := io.ReadFull(f, magic)
	mt := types.DockerUncompressedLayer
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		mt = types.DockerLayer
	case n == 4 && bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		mt = types.OCILayerZStd
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return v1.Descriptor{}, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{
		MediaType: mt,
		Size:      size,
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))},
	}, nil
}
