package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// Epoch returns the modification time of every entry and the creation time
// of every image that does not set its own (2020-01-01 UTC), so that images
// are reproducible.
func Epoch() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }

// RefNameAnnotation is the OCI annotation that names an image in an OCI
// layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Kind is the type of a layer Entry.
type Kind int

// Entry kinds. A Whiteout entry deletes Path from the layers below (the tar
// gets "dir/.wh.base"); an Opaque entry hides everything the layers below
// have under the directory Path (the tar gets "Path/.wh..wh..opq").
const (
	File Kind = iota
	Dir
	Symlink
	Hardlink
	Whiteout
	Opaque
	CharDevice
	FIFO
)

// Entry is one tar entry of a layer.
type Entry struct {
	// Path is the name in the layer, without a leading "/" (one is
	// stripped). It is written as given otherwise, so tests can make
	// malicious names such as "../escape".
	Path string
	Kind Kind
	// Content is a File's data.
	Content []byte
	// Target is a Symlink's target, or the layer path a Hardlink links to.
	Target string
	// Mode holds the permission bits plus setuid (0o4000), setgid (0o2000)
	// and sticky (0o1000), as in a tar header. Zero means 0o644 for files,
	// 0o755 for dirs, 0o777 for symlinks and 0o666 for devices.
	Mode int64
	// UID and GID own the entry.
	UID, GID int
	// Xattrs are stored as PAX "SCHILY.xattr." records.
	Xattrs map[string]string
	// ModTime zero means Epoch().
	ModTime time.Time
	// Devmajor and Devminor are a CharDevice's numbers.
	Devmajor, Devminor int64
}

// Compression is how a layer blob is compressed.
type Compression int

// Layer compressions; the zero value is gzip, as almost every registry
// image has.
const (
	Gzip Compression = iota
	Zstd
	Uncompressed
)

// Layer is one image layer.
type Layer struct {
	Entries []Entry
	// Tar, when not nil, is the layer's uncompressed tar stream, used as is
	// instead of Entries (for layers Entries cannot express).
	Tar         []byte
	Compression Compression
}

// Spec describes an image for Build.
type Spec struct {
	// Base, when set, is the image whose layers and config come first.
	Base *Image
	// Layers are stacked in order, lowest first, on top of Base's.
	Layers []Layer
	// Config's non-zero fields replace the base's (Labels are merged).
	Config v1.Config
	// Platform zero means linux and the host's GOARCH.
	Platform v1.Platform
	// Docker selects Docker v2 schema 2 media types instead of OCI ones.
	Docker bool
}

// Image is a built image. It is immutable and safe to share.
type Image struct {
	img v1.Image
}

// V1 returns the go-containerregistry image.
func (i *Image) V1() v1.Image { return i.img }

// ID returns the image ID, the digest of its config ("sha256:...").
func (i *Image) ID() string { return mustHash(i.img.ConfigName()).String() }

// Digest returns the digest of the image manifest.
func (i *Image) Digest() string { return mustHash(i.img.Digest()).String() }

// ConfigFile returns a copy of the image's config file.
func (i *Image) ConfigFile() *v1.ConfigFile {
	cf, err := i.img.ConfigFile()
	if err != nil {
		panic(err) // in-memory images cannot fail here
	}
	return cf.DeepCopy()
}

// LayerDigests returns the digests of the layer blobs, lowest first.
func (i *Image) LayerDigests() []string {
	m, err := i.img.Manifest()
	if err != nil {
		panic(err)
	}
	out := make([]string, 0, len(m.Layers))
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// DiffIDs returns the digests of the uncompressed layers, lowest first.
func (i *Image) DiffIDs() []string {
	cf := i.ConfigFile()
	out := make([]string, 0, len(cf.RootFS.DiffIDs))
	for _, d := range cf.RootFS.DiffIDs {
		out = append(out, d.String())
	}
	return out
}

// CompressedSize returns the sum of the layer blob sizes.
func (i *Image) CompressedSize() int64 {
	m, err := i.img.Manifest()
	if err != nil {
		panic(err)
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func mustHash(h v1.Hash, err error) v1.Hash {
	if err != nil {
		panic(err) // in-memory images cannot fail here
	}
	return h
}

// Build makes the image spec describes, failing t on a bad spec.
func Build(t testing.TB, spec Spec) *Image {
	t.Helper()
	img, err := build(spec)
	if err != nil {
		t.Fatalf("testimage: build: %v", err)
	}
	return img
}

func build(spec Spec) (*Image, error) {
	var img v1.Image = empty.Image
	if spec.Base != nil {
		img = spec.Base.img
	}
	manifestType, configType := types.OCIManifestSchema1, types.OCIConfigJSON
	if spec.Docker {
		manifestType, configType = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	img = mutate.MediaType(img, manifestType)
	img = mutate.ConfigMediaType(img, configType)
	for n, l := range spec.Layers {
		ml, err := newLayer(l, spec.Docker)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", n, err)
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     ml,
			MediaType: ml.mediaType,
			History:   v1.History{Created: v1.Time{Time: Epoch()}, CreatedBy: fmt.Sprintf("testimage layer %d", n)},
		})
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", n, err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	p := spec.Platform
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = runtime.GOARCH
	}
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = p.OS, p.Architecture, p.Variant, p.OSVersion
	cf.Created = v1.Time{Time: Epoch()}
	mergeConfig(&cf.Config, spec.Config)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	// Resolve everything once, so later accessors cannot fail.
	if _, err := img.Digest(); err != nil {
		return nil, err
	}
	return &Image{img: img}, nil
}

func mergeConfig(dst *v1.Config, src v1.Config) {
	if src.Entrypoint != nil {
		dst.Entrypoint = src.Entrypoint
	}
	if src.Cmd != nil {
		dst.Cmd = src.Cmd
	}
	if src.Env != nil {
		dst.Env = src.Env
	}
	if src.WorkingDir != "" {
		dst.WorkingDir = src.WorkingDir
	}
	if src.User != "" {
		dst.User = src.User
	}
	if src.StopSignal != "" {
		dst.StopSignal = src.StopSignal
	}
	if src.ExposedPorts != nil {
		dst.ExposedPorts = src.ExposedPorts
	}
	if src.Volumes != nil {
		dst.Volumes = src.Volumes
	}
	if src.Healthcheck != nil {
		dst.Healthcheck = src.Healthcheck
	}
	for k, v := range src.Labels {
		if dst.Labels == nil {
			dst.Labels = map[string]string{}
		}
		dst.Labels[k] = v
	}
}

// TarEntries returns the uncompressed tar stream of entries, as a layer
// would hold it.
func TarEntries(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr, err := header(e)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg && len(e.Content) > 0 {
			if _, err := tw.Write(e.Content); err != nil {
				return nil, fmt.Errorf("entry %q: %w", e.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func header(e Entry) (*tar.Header, error) {
	p := strings.TrimPrefix(e.Path, "/")
	if p == "" {
		return nil, fmt.Errorf("entry with an empty path")
	}
	mt := e.ModTime
	if mt.IsZero() {
		mt = Epoch()
	}
	hdr := &tar.Header{
		Name:    p,
		Mode:    e.Mode,
		Uid:     e.UID,
		Gid:     e.GID,
		ModTime: mt,
		Format:  tar.FormatPAX,
	}
	switch e.Kind {
	case File:
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Content))
		hdr.Mode = orDefault(e.Mode, 0o644)
	case Dir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, strings.TrimSuffix(p, "/")+"/"
		hdr.Mode = orDefault(e.Mode, 0o755)
	case Symlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Target
		hdr.Mode = orDefault(e.Mode, 0o777)
	case Hardlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, strings.TrimPrefix(e.Target, "/")
		hdr.Mode = orDefault(e.Mode, 0o644)
	case Whiteout:
		dir, base := path.Split(strings.TrimSuffix(p, "/"))
		hdr.Typeflag, hdr.Name = tar.TypeReg, dir+".wh."+base
		hdr.Mode = 0o644
	case Opaque:
		hdr.Typeflag, hdr.Name = tar.TypeReg, strings.TrimSuffix(p, "/")+"/.wh..wh..opq"
		hdr.Mode = 0o644
	case CharDevice:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, e.Devmajor, e.Devminor
		hdr.Mode = orDefault(e.Mode, 0o666)
	case FIFO:
		hdr.Typeflag = tar.TypeFifo
		hdr.Mode = orDefault(e.Mode, 0o644)
	default:
		return nil, fmt.Errorf("entry %q: unknown kind %d", e.Path, e.Kind)
	}
	if len(e.Xattrs) > 0 {
		hdr.PAXRecords = map[string]string{}
		for k, v := range e.Xattrs {
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
	}
	return hdr, nil
}

func orDefault(mode, def int64) int64 {
	if mode == 0 {
		return def
	}
	return mode
}

// memLayer is a v1.Layer held in memory, compressed once.
type memLayer struct {
	compressed, uncompressed []byte
	digest, diffID           v1.Hash
	mediaType                types.MediaType
}

var _ v1.Layer = (*memLayer)(nil)

func newLayer(l Layer, docker bool) (*memLayer, error) {
	raw := l.Tar
	if raw == nil {
		var err error
		if raw, err = TarEntries(l.Entries); err != nil {
			return nil, err
		}
	}
	ml := &memLayer{uncompressed: raw, diffID: sha256Hash(raw)}
	var buf bytes.Buffer
	switch l.Compression {
	case Gzip:
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(raw) //nolint:errcheck // bytes.Buffer writes cannot fail
		if err := zw.Close(); err != nil {
			return nil, err
		}
		ml.compressed, ml.mediaType = buf.Bytes(), types.OCILayer
		if docker {
			ml.mediaType = types.DockerLayer
		}
	case Zstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		zw.Write(raw) //nolint:errcheck // bytes.Buffer writes cannot fail
		if err := zw.Close(); err != nil {
			return nil, err
		}
		ml.compressed, ml.mediaType = buf.Bytes(), types.OCILayerZStd
	case Uncompressed:
		ml.compressed, ml.mediaType = raw, types.OCIUncompressedLayer
		if docker {
			ml.mediaType = types.DockerUncompressedLayer
		}
	default:
		return nil, fmt.Errorf("unknown compression %d", l.Compression)
	}
	ml.digest = sha256Hash(ml.compressed)
	return ml, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func (l *memLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *memLayer) Size() (int64, error)     { return int64(len(l.compressed)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) {
	return l.mediaType, nil
}
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.compressed)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.uncompressed)), nil
}

// WriteOCILayout adds the image to the OCI image layout at dir, creating
// the layout when dir holds none. A non-empty refName is recorded as the
// org.opencontainers.image.ref.name annotation (e.g. "skiff.test/app:1").
func (i *Image) WriteOCILayout(t testing.TB, dir, refName string) {
	t.Helper()
	p := openLayout(t, dir)
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: refName}))
	}
	if err := p.AppendImage(i.img, opts...); err != nil {
		t.Fatalf("testimage: write OCI layout %s: %v", dir, err)
	}
}

// WriteOCIArchive writes the image as a tarball of an OCI image layout (what
// `docker save` of recent Docker, `podman save --format oci-archive` and
// `ctr export` make) to file.
func (i *Image) WriteOCIArchive(t testing.TB, file, refName string) {
	t.Helper()
	dir := t.TempDir()
	i.WriteOCILayout(t, dir, refName)
	if err := tarDir(dir, file); err != nil {
		t.Fatalf("testimage: write OCI archive %s: %v", file, err)
	}
}

// WriteDockerArchive writes the image as a `docker save` tarball
// (manifest.json with RepoTags) to file. Its layers are kept compressed, as
// go-containerregistry writes them; Docker itself writes them uncompressed.
func (i *Image) WriteDockerArchive(t testing.TB, file string, tags ...string) {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for _, tag := range tags {
		ref, err := name.NewTag(tag)
		if err != nil {
			t.Fatalf("testimage: tag %q: %v", tag, err)
		}
		refs[ref] = i.img
	}
	if len(tags) == 0 {
		d, err := name.NewDigest("skiff.test/untagged@" + i.Digest())
		if err != nil {
			t.Fatalf("testimage: %v", err)
		}
		refs[d] = i.img
	}
	if err := tarball.MultiRefWriteToFile(file, refs); err != nil {
		t.Fatalf("testimage: write docker archive %s: %v", file, err)
	}
}

// Push uploads the image to reg as repoTag ("repo/name:tag") and returns the
// full reference ("127.0.0.1:PORT/repo/name:tag").
func (i *Image) Push(t testing.TB, reg *Registry, repoTag string) string {
	t.Helper()
	ref := reg.ref(t, repoTag)
	if err := remote.Write(ref, i.img, reg.remoteOptions(t)...); err != nil {
		t.Fatalf("testimage: push %s: %v", ref, err)
	}
	return ref.String()
}

// Index is a multi-platform image index. It is immutable.
type Index struct {
	idx    v1.ImageIndex
	images []*Image
}

// BuildIndex makes an index of images, each under the platform of its
// config. The index is an OCI index unless every image has Docker media
// types, then it is a Docker manifest list.
func BuildIndex(t testing.TB, images ...*Image) *Index {
	t.Helper()
	idxType := types.DockerManifestList
	for _, img := range images {
		if mt, _ := img.img.MediaType(); mt != types.DockerManifestSchema2 {
			idxType = types.OCIImageIndex
		}
	}
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, idxType)
	for _, img := range images {
		cf := img.ConfigFile()
		p := cf.Platform()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img.img,
			Descriptor: v1.Descriptor{Platform: p},
		})
	}
	if _, err := idx.Digest(); err != nil {
		t.Fatalf("testimage: build index: %v", err)
	}
	return &Index{idx: idx, images: images}
}

// V1 returns the go-containerregistry index.
func (x *Index) V1() v1.ImageIndex { return x.idx }

// Digest returns the digest of the index manifest.
func (x *Index) Digest() string { return mustHash(x.idx.Digest()).String() }

// Images returns the images of the index, in index order. The caller owns
// the returned slice.
func (x *Index) Images() []*Image { return append([]*Image(nil), x.images...) }

// ForArch returns the image for linux/arch, or nil.
func (x *Index) ForArch(arch string) *Image {
	for _, img := range x.images {
		cf := img.ConfigFile()
		if cf.OS == "linux" && cf.Architecture == arch {
			return img
		}
	}
	return nil
}

// WriteOCILayout adds the index to the OCI layout at dir (see
// Image.WriteOCILayout).
func (x *Index) WriteOCILayout(t testing.TB, dir, refName string) {
	t.Helper()
	p := openLayout(t, dir)
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: refName}))
	}
	if err := p.AppendIndex(x.idx, opts...); err != nil {
		t.Fatalf("testimage: write OCI layout %s: %v", dir, err)
	}
}

// WriteOCIArchive writes the index as an OCI layout tarball to file.
func (x *Index) WriteOCIArchive(t testing.TB, file, refName string) {
	t.Helper()
	dir := t.TempDir()
	x.WriteOCILayout(t, dir, refName)
	if err := tarDir(dir, file); err != nil {
		t.Fatalf("testimage: write OCI archive %s: %v", file, err)
	}
}

// Push uploads the index and its images to reg as repoTag and returns the
// full reference.
func (x *Index) Push(t testing.TB, reg *Registry, repoTag string) string {
	t.Helper()
	ref := reg.ref(t, repoTag)
	if err := remote.WriteIndex(ref, x.idx, reg.remoteOptions(t)...); err != nil {
		t.Fatalf("testimage: push %s: %v", ref, err)
	}
	return ref.String()
}

func openLayout(t testing.TB, dir string) layout.Path {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		p, err := layout.FromPath(dir)
		if err != nil {
			t.Fatalf("testimage: open OCI layout %s: %v", dir, err)
		}
		return p
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("testimage: create OCI layout %s: %v", dir, err)
	}
	return p
}

// tarDir writes the tree under dir to file as a reproducible tar.
func tarDir(dir, file string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range paths {
		if err := addFile(tw, dir, p); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func addFile(tw *tar.Writer, dir, p string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	hdr, err := tar.FileInfoHeader(st, "")
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(rel)
	if st.IsDir() {
		hdr.Name += "/"
	}
	hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = Epoch(), 0, 0, "", ""
	hdr.AccessTime, hdr.ChangeTime, hdr.Format = time.Time{}, time.Time{}, tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
