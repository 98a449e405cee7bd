package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Image is a stored image, as Get and List return it. The caller owns it.
type Image struct {
	// ID is the digest of the image config ("sha256:..."), as in the CRI.
	ID string
	// RepoTags are normalized "domain/path:tag" references.
	RepoTags []string
	// RepoDigests are "domain/path@sha256:..." references; the digest is
	// that of the manifest or index the image was pulled by.
	RepoDigests []string
	// ManifestDigest is the digest of the platform image manifest.
	ManifestDigest string
	// Size is the size of the config and the layer blobs, in bytes.
	Size int64
	// Config is the image's OCI config (entrypoint, env, user, ...).
	Config *v1.ConfigFile
	// Layers are lowest first.
	Layers []Layer
	// Stored is when the image entered the store.
	Stored time.Time
}

// Layer is one unpacked layer of an Image.
type Layer struct {
	Digest    string // of the blob
	DiffID    string // of the uncompressed tar
	Size      int64  // of the blob
	MediaType string
	// Dir is the unpacked layer, ready to be an overlayfs lower dir:
	// whiteouts are 0/0 character devices and opaque dirs carry the
	// trusted.overlay.opaque=y xattr. It must not be modified.
	Dir string
}

// LayerDirs returns the layer directories, lowest first. overlayfs wants
// them the other way round: lowerdir=top:...:bottom.
func (i *Image) LayerDirs() []string {
	out := make([]string, len(i.Layers))
	for n, l := range i.Layers {
		out[n] = l.Dir
	}
	return out
}

// state is what state.json holds.
type state struct {
	Version int                `json:"version"`
	Images  map[string]*record `json:"images"`
	Leases  map[string]*lease  `json:"leases"`
}

type record struct {
	ID             string        `json:"id"`
	RepoTags       []string      `json:"repoTags,omitempty"`
	RepoDigests    []string      `json:"repoDigests,omitempty"`
	ManifestDigest string        `json:"manifestDigest"`
	IndexDigest    string        `json:"indexDigest,omitempty"`
	Size           int64         `json:"size"`
	Layers         []layerRecord `json:"layers"`
	Stored         time.Time     `json:"stored"`
}

type layerRecord struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType,omitempty"`
}

// lease keeps the content of one image for one holder.
type lease struct {
	Image   string   `json:"image"`
	DiffIDs []string `json:"diffIDs"`
	Blobs   []string `json:"blobs"`
}

// Store is skiff's image store. It is safe for concurrent use, but only one
// Store may use a Root at a time.
type Store struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	// mu guards st, configs, active, flights and gen; it is never held
	// during network or disk-heavy work, except by GC.
	mu      sync.Mutex
	st      state
	gen     uint64                    // counts changes of st
	configs map[string]*v1.ConfigFile // by image ID
	// active counts in-flight operations per blob digest and diffID; GC
	// keeps what is active.
	active map[string]int
	// flights dedups concurrent work on one layer, by diffID.
	flights map[string]*flight

	// saveMu serializes writes of state.json; saved is the generation
	// of st last written. Taken after mu, never before.
	saveMu sync.Mutex
	saved  uint64
}

type flight struct {
	done chan struct{}
	err  error
}

// New opens (or creates) the store at cfg.Root. It empties tmp/ (work of a
// previous run that never finished) and drops index entries whose content
// is missing, so what it lists is complete.
func New(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger,
		configs: map[string]*v1.ConfigFile{},
		active:  map[string]int{},
		flights: map[string]*flight{},
	}
	for _, d := range []string{"", blobsDir, layersDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Root, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store %s: %w", cfg.Root, err)
		}
	}
	if err := s.cleanTmp(); err != nil {
		return nil, fmt.Errorf("image store %s: %w", cfg.Root, err)
	}
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("image store %s: %w", cfg.Root, err)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("image store: metrics: %w", err)
	}
	s.metrics = m
	return s, nil
}

func (s *Store) cleanTmp() error {
	dir := filepath.Join(s.cfg.Root, tmpDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) load() error {
	s.st = state{Version: 1, Images: map[string]*record{}, Leases: map[string]*lease{}}
	data, err := os.ReadFile(filepath.Join(s.cfg.Root, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &s.st); err != nil {
		return fmt.Errorf("%s: %w", stateFile, err)
	}
	if s.st.Images == nil {
		s.st.Images = map[string]*record{}
	}
	if s.st.Leases == nil {
		s.st.Leases = map[string]*lease{}
	}
	for id, rec := range s.st.Images {
		cf, err := s.checkRecord(rec)
		if err != nil {
			s.log.Warn("dropping incomplete image from the index", "image", id, "err", err)
			delete(s.st.Images, id)
			continue
		}
		s.configs[id] = cf
	}
	return nil
}

// checkRecord verifies that a record's content is on disk and returns its
// parsed config.
func (s *Store) checkRecord(rec *record) (*v1.ConfigFile, error) {
	id, err := parseDigest(rec.ID)
	if err != nil {
		return nil, err
	}
	raw, err := s.readBlob(id, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	for _, l := range rec.Layers {
		d, err := parseDigest(l.DiffID)
		if err != nil {
			return nil, err
		}
		if !exists(s.layerPath(d)) {
			return nil, fmt.Errorf("layer %s is missing", l.DiffID)
		}
	}
	return cf, nil
}

// saveLocked writes state.json. s.mu must be held.
func (s *Store) saveLocked() error {
	data, gen, err := s.changedLocked()
	if err != nil {
		return err
	}
	return s.save(data, gen)
}

// changedLocked counts a change of the state and returns the state as it
// now is, for save. s.mu must be held.
func (s *Store) changedLocked() ([]byte, uint64, error) {
	s.gen++
	data, err := marshalIndent(&s.st)
	return data, s.gen, err
}

// save writes data, the state as of generation gen, unless a later
// generation is on disk already. Leases change with every container
// created and removed: saved outside s.mu, their writes (two fsyncs each)
// hold up neither readers nor each other's callers more than needed.
func (s *Store) save(data []byte, gen uint64) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.saved >= gen {
		return nil
	}
	if err := writeFileAtomic(filepath.Join(s.cfg.Root, stateFile), data, !s.cfg.NoSync); err != nil {
		return err
	}
	s.saved = gen
	return nil
}

// imageLocked converts a record. s.mu must be held.
func (s *Store) imageLocked(rec *record) *Image {
	img := &Image{
		ID:             rec.ID,
		RepoTags:       slices.Clone(rec.RepoTags),
		RepoDigests:    slices.Clone(rec.RepoDigests),
		ManifestDigest: rec.ManifestDigest,
		Size:           rec.Size,
		Stored:         rec.Stored,
	}
	if cf := s.configs[rec.ID]; cf != nil {
		img.Config = cf.DeepCopy()
	}
	for _, l := range rec.Layers {
		d, _ := parseDigest(l.DiffID) // checked when the record was made
		img.Layers = append(img.Layers, Layer{
			Digest: l.Digest, DiffID: l.DiffID, Size: l.Size, MediaType: l.MediaType,
			Dir: s.layerPath(d),
		})
	}
	return img
}

// Get returns the image ref names: an image ID ("sha256:<hex>" or
// "<hex>"), a reference (normalized, so "busybox" finds
// docker.io/library/busybox:latest; a tag or a repo digest), or a unique
// prefix of an ID. The error wraps ErrNotFound when nothing matches.
func (s *Store) Get(ref string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, _, err := s.findLocked(ref)
	if err != nil {
		return nil, err
	}
	return s.imageLocked(rec), nil
}

// findLocked resolves ref; name is the normalized reference when ref named
// the image by tag or digest, "" when by ID.
func (s *Store) findLocked(ref string) (rec *record, name string, err error) {
	id := ref
	if !strings.HasPrefix(id, "sha256:") && len(id) == 64 {
		id = "sha256:" + id
	}
	if r, ok := s.st.Images[id]; ok {
		return r, "", nil
	}
	if r, perr := ParseReference(ref); perr == nil {
		full := r.TagRef()
		if r.Digest != "" {
			full = r.DigestRef(r.Digest)
		}
		for _, rec := range s.st.Images {
			if slices.Contains(rec.RepoTags, full) || slices.Contains(rec.RepoDigests, full) {
				return rec, full, nil
			}
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if prefix != "" && isHex(prefix) {
		var found *record
		for id, rec := range s.st.Images {
			if strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), prefix) {
				if found != nil {
					return nil, "", fmt.Errorf("image %q: %w (the ID prefix is ambiguous)", ref, ErrNotFound)
				}
				found = rec
			}
		}
		if found != nil {
			return found, "", nil
		}
	}
	return nil, "", fmt.Errorf("image %q: %w", ref, ErrNotFound)
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// List returns every image, oldest first. The caller owns the slice.
func (s *Store) List() []*Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Image, 0, len(s.st.Images))
	for _, rec := range s.st.Images {
		out = append(out, s.imageLocked(rec))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Stored.Equal(out[j].Stored) {
			return out[i].Stored.Before(out[j].Stored)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Remove drops ref. A tag or repo digest reference removes only that
// reference, and the image goes with its last tag (repo digests alone do
// not keep it, as in Docker) or its last reference. An image ID or ID
// prefix removes the image with all its references. Content is freed by
// the next GC, and leased layers outlive the image (see Lease). The error
// wraps ErrNotFound when ref names nothing.
func (s *Store) Remove(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, name, err := s.findLocked(ref)
	if err != nil {
		return fmt.Errorf("remove %w", err)
	}
	if name == "" {
		delete(s.st.Images, rec.ID)
		delete(s.configs, rec.ID)
	} else {
		s.dropRefLocked(rec, name)
	}
	if err := s.saveLocked(); err != nil {
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	s.log.Info("image removed", "ref", ref, "image", rec.ID)
	return nil
}

// dropRefLocked removes one reference from rec, and rec itself when no tag
// (or no reference at all) is left. s.mu must be held.
func (s *Store) dropRefLocked(rec *record, ref string) {
	hadTags := len(rec.RepoTags) > 0
	rec.RepoTags = slices.DeleteFunc(rec.RepoTags, func(t string) bool { return t == ref })
	rec.RepoDigests = slices.DeleteFunc(rec.RepoDigests, func(t string) bool { return t == ref })
	if (hadTags && len(rec.RepoTags) == 0) || len(rec.RepoTags)+len(rec.RepoDigests) == 0 {
		delete(s.st.Images, rec.ID)
		delete(s.configs, rec.ID)
	}
}

// Lease records that holder (a container ID, say) uses the image ref
// names, and returns it. Until Release(holder), GC keeps that image's
// layers and blobs, even when the image itself is removed. Leases are
// persisted, so they survive a restart. Lease is idempotent; leasing again
// with another image replaces the holder's lease. The runtime takes a lease
// before it mounts an image's layers and releases it when the container is
// deleted.
func (s *Store) Lease(holder, ref string) (*Image, error) {
	if holder == "" {
		return nil, errors.New("lease: empty holder")
	}
	s.mu.Lock()
	rec, _, err := s.findLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("lease %w", err)
	}
	l := &lease{Image: rec.ID, Blobs: []string{rec.ID, rec.ManifestDigest}}
	for _, layer := range rec.Layers {
		l.DiffIDs = append(l.DiffIDs, layer.DiffID)
		l.Blobs = append(l.Blobs, layer.Digest)
	}
	s.st.Leases[holder] = l
	img := s.imageLocked(rec)
	data, gen, err := s.changedLocked()
	s.mu.Unlock()
	if err == nil {
		err = s.save(data, gen)
	}
	if err != nil {
		s.mu.Lock()
		if s.st.Leases[holder] == l {
			delete(s.st.Leases, holder)
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("lease image %s for %s: %w", rec.ID, holder, err)
	}
	return img, nil
}

// Release drops holder's lease. Releasing an unknown holder is not an error.
func (s *Store) Release(holder string) error {
	s.mu.Lock()
	if _, ok := s.st.Leases[holder]; !ok {
		s.mu.Unlock()
		return nil
	}
	delete(s.st.Leases, holder)
	data, gen, err := s.changedLocked()
	s.mu.Unlock()
	if err == nil {
		err = s.save(data, gen)
	}
	if err != nil {
		return fmt.Errorf("release lease of %s: %w", holder, err)
	}
	return nil
}

// Leases returns the image ID leased by each holder.
func (s *Store) Leases() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for h, l := range s.st.Leases {
		out[h] = l.Image
	}
	return out
}

// GCResult tells what GC freed.
type GCResult struct {
	Blobs, Layers int
	Bytes         int64 // of the blobs; layer dirs are not measured
}

// GC removes the blobs and layer dirs that no image, lease or operation in
// progress references. It is safe to run at any time.
func (s *Store) GC() (GCResult, error) {
	var res GCResult
	var trash []string
	s.mu.Lock()
	keep := map[string]bool{}
	for k := range s.active {
		keep[k] = true
	}
	for _, rec := range s.st.Images {
		keep[rec.ID], keep[rec.ManifestDigest], keep[rec.IndexDigest] = true, true, true
		for _, l := range rec.Layers {
			keep[l.Digest], keep[l.DiffID] = true, true
		}
	}
	for _, l := range s.st.Leases {
		for _, d := range append(slices.Clone(l.Blobs), l.DiffIDs...) {
			keep[d] = true
		}
	}
	blobs, err := os.ReadDir(filepath.Join(s.cfg.Root, blobsDir))
	if err != nil {
		s.mu.Unlock()
		return res, fmt.Errorf("image gc: %w", err)
	}
	for _, e := range blobs {
		if keep["sha256:"+e.Name()] {
			continue
		}
		p := filepath.Join(s.cfg.Root, blobsDir, e.Name())
		if info, err := e.Info(); err == nil {
			res.Bytes += info.Size()
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.mu.Unlock()
			return res, fmt.Errorf("image gc: %w", err)
		}
		res.Blobs++
	}
	layers, err := os.ReadDir(filepath.Join(s.cfg.Root, layersDir))
	if err != nil {
		s.mu.Unlock()
		return res, fmt.Errorf("image gc: %w", err)
	}
	for _, e := range layers {
		if keep["sha256:"+e.Name()] {
			continue
		}
		// Move it out of layers/ at once; delete the tree without the lock.
		dst := filepath.Join(s.cfg.Root, tmpDir, "gc-"+e.Name())
		if err := os.Rename(filepath.Join(s.cfg.Root, layersDir, e.Name()), dst); err != nil {
			s.mu.Unlock()
			return res, fmt.Errorf("image gc: %w", err)
		}
		trash = append(trash, dst)
		res.Layers++
	}
	s.mu.Unlock()
	for _, p := range trash {
		if err := os.RemoveAll(p); err != nil {
			return res, fmt.Errorf("image gc: %w", err)
		}
	}
	if res.Blobs+res.Layers > 0 {
		s.log.Info("image gc", "blobs", res.Blobs, "layers", res.Layers, "bytes", res.Bytes)
	}
	return res, nil
}

// hold marks digests as in use by an operation until the returned func runs.
func (s *Store) hold(digests ...string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range digests {
		s.active[d]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range digests {
			if s.active[d]--; s.active[d] <= 0 {
				delete(s.active, d)
			}
		}
	}
}

// commitLocked adds an image whose content is complete, merging references
// into an existing record and taking tags away from other images.
// s.mu must be held.
func (s *Store) commitLocked(rec *record, cf *v1.ConfigFile) {
	for _, tag := range rec.RepoTags {
		for _, other := range s.st.Images {
			if other.ID != rec.ID && slices.Contains(other.RepoTags, tag) {
				s.dropRefLocked(other, tag)
			}
		}
	}
	if old, ok := s.st.Images[rec.ID]; ok {
		for _, t := range old.RepoTags {
			if !slices.Contains(rec.RepoTags, t) {
				rec.RepoTags = append(rec.RepoTags, t)
			}
		}
		for _, d := range old.RepoDigests {
			if !slices.Contains(rec.RepoDigests, d) {
				rec.RepoDigests = append(rec.RepoDigests, d)
			}
		}
		rec.Stored = old.Stored
	}
	sort.Strings(rec.RepoTags)
	sort.Strings(rec.RepoDigests)
	s.st.Images[rec.ID] = rec
	s.configs[rec.ID] = cf
}

// syncLayer flushes a freshly unpacked layer to disk.
func (s *Store) syncLayer(dir string) error {
	if s.cfg.NoSync {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// cleanupAfterFailure frees what a failed pull or import left (verified
// layers and blobs of an image that never made it into the index), so a
// failure leaves nothing behind. Content that another operation in progress
// holds is kept.
func (s *Store) cleanupAfterFailure() {
	if _, err := s.GC(); err != nil {
		s.log.Warn("cleanup after a failed pull", "err", err)
	}
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.cfg.Root }

// Usage returns the bytes and inodes the store uses on disk (blobs, layers
// and work in progress), for the CRI's ImageFsInfo. It walks the tree, so
// it costs time in proportion to the number of files.
func (s *Store) Usage() (bytes, inodes int64, err error) {
	err = filepath.WalkDir(s.cfg.Root, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // removed by a concurrent GC
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		inodes++
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			bytes += st.Blocks * 512
		} else {
			bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("image store usage: %w", err)
	}
	return bytes, inodes, nil
}
