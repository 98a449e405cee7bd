package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// On-disk layout under Config.Root:
//
//	blobs/sha256/<hex>     content-addressed blobs: manifests, configs, layers
//	layers/sha256/<hex>    one unpacked layer per diffID (an overlayfs lower dir)
//	tmp/                   work in progress; emptied by New
//	state.json             the image index and leases, replaced atomically
const (
	blobsDir  = "blobs/sha256"
	layersDir = "layers/sha256"
	tmpDir    = "tmp"
	stateFile = "state.json"
)

// Limits for the small JSON blobs read into memory.
const (
	maxManifestSize = 8 << 20
	maxConfigSize   = 32 << 20
)

// parseDigest accepts only "sha256:<64 lowercase hex>", so a digest can
// never name a path outside the store.
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil || h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return v1.Hash{}, fmt.Errorf("digest %q: want sha256:<64 hex digits>", s)
	}
	for _, c := range h.Hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return v1.Hash{}, fmt.Errorf("digest %q: want sha256:<64 hex digits>", s)
		}
	}
	return h, nil
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func (s *Store) blobPath(d v1.Hash) string {
	return filepath.Join(s.cfg.Root, blobsDir, d.Hex)
}

func (s *Store) layerPath(diffID v1.Hash) string {
	return filepath.Join(s.cfg.Root, layersDir, diffID.Hex)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// blobWriter writes a blob to a temp file while hashing it; commit verifies
// and renames it into place.
type blobWriter struct {
	f    *os.File
	h    hash.Hash
	n    int64
	sync bool
}

func (s *Store) newBlobWriter() (*blobWriter, error) {
	f, err := os.CreateTemp(filepath.Join(s.cfg.Root, tmpDir), "blob-")
	if err != nil {
		return nil, err
	}
	return &blobWriter{f: f, h: sha256.New(), sync: !s.cfg.NoSync}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

func (w *blobWriter) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
}

// verify checks what was written against want and size (-1: any size).
func (w *blobWriter) verify(want v1.Hash, size int64) error {
	if size >= 0 && w.n != size {
		return fmt.Errorf("%w: blob %s: got %d bytes, want %d", ErrDigestMismatch, want, w.n, size)
	}
	if got := w.digest(); got != want {
		return fmt.Errorf("%w: blob %s: content hashes to %s", ErrDigestMismatch, want, got)
	}
	return nil
}

// commit verifies, syncs and renames the blob to its place. The writer is
// closed and its temp file gone afterwards, whatever the outcome.
func (w *blobWriter) commit(dst string, want v1.Hash, size int64) error {
	defer w.abort()
	if err := w.verify(want, size); err != nil {
		return err
	}
	if w.sync {
		if err := w.f.Sync(); err != nil {
			return err
		}
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	return os.Rename(w.f.Name(), dst)
}

// abort drops the blob; it is safe after commit.
func (w *blobWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// writeBlob stores r as blob want, verifying digest and size (-1: any).
// An existing blob is kept and r is not read.
func (s *Store) writeBlob(want v1.Hash, size int64, r io.Reader) error {
	dst := s.blobPath(want)
	if exists(dst) {
		return nil
	}
	w, err := s.newBlobWriter()
	if err != nil {
		return err
	}
	limit := size + 1
	if size < 0 {
		limit = 1 << 40
	}
	if _, err := io.Copy(w, io.LimitReader(r, limit)); err != nil {
		w.abort()
		return err
	}
	return w.commit(dst, want, size)
}

// writeBlobBytes stores b, which must hash to want.
func (s *Store) writeBlobBytes(want v1.Hash, b []byte) error {
	if got := digestOf(b); got != want {
		return fmt.Errorf("%w: blob %s: content hashes to %s", ErrDigestMismatch, want, got)
	}
	return s.writeBlob(want, int64(len(b)), bytes.NewReader(b))
}

// readBlob returns a stored blob of at most limit bytes.
func (s *Store) readBlob(d v1.Hash, limit int64) ([]byte, error) {
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", d, limit)
	}
	return b, nil
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, and
// fsync of the directory, so a crash leaves the old or the new content.
func writeFileAtomic(path string, data []byte, sync bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func marshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
