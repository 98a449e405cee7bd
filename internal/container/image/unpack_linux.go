package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Overlayfs conventions for layers unpacked side by side and stacked later:
// a whiteout is a 0/0 character device, an opaque dir carries this xattr.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	metaPrefix     = ".wh..wh." // AUFS bookkeeping (.wh..wh.plnk ...), dropped
	opaqueXattr    = "trusted.overlay.opaque"
	overlayXattrs  = "trusted.overlay."
)

// decompressed returns the uncompressed stream of a layer blob, detecting
// gzip and zstd by their magic numbers (media types lie often enough).
func decompressed(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// unpacker writes one layer's tar stream into an empty directory.
//
// It never follows a symlink while writing: every parent of an entry is
// checked with lstat to be a real directory inside the root, files are
// opened with O_NOFOLLOW|O_EXCL, and hardlink targets must be relative and
// inside the layer. Whiteouts and opaque markers become their overlayfs form.
type unpacker struct {
	root string
	log  *slog.Logger
	// dirs caches the root-relative paths known to be real directories.
	// It is reset whenever a directory is removed or replaced.
	dirs     map[string]bool
	dirTimes []dirTime
	rootless bool
	buf      []byte
}

type dirTime struct {
	path  string
	times []unix.Timespec
}

func newUnpacker(root string, log *slog.Logger) *unpacker {
	return &unpacker{
		root:     root,
		log:      log,
		dirs:     map[string]bool{"": true},
		rootless: os.Geteuid() != 0,
		buf:      make([]byte, 256<<10),
	}
}

// unpack applies every entry of tr; the caller removes root on error.
func (u *unpacker) unpack(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last: creating entries inside changes them.
	for i := len(u.dirTimes) - 1; i >= 0; i-- {
		dt := u.dirTimes[i]
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dt.path, dt.times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", dt.path, err)
		}
	}
	return nil
}

// cleanName turns a tar name into a root-relative path ("" is the root).
// Leading "/" and "./" are dropped; any ".." is rejected.
func cleanName(name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: entry %q: path contains \"..\"", ErrUnsafeLayer, name)
		}
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: entry %q: NUL in name", ErrUnsafeLayer, name)
	}
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/"), nil
}

func (u *unpacker) full(rel string) string { return filepath.Join(u.root, rel) }

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" { // the layer's root directory itself
		if hdr.Typeflag == tar.TypeDir {
			return u.metadata(hdr, u.root, true)
		}
		return nil
	}
	parent, base := path.Split(rel)
	parent = strings.TrimSuffix(parent, "/")
	if err := u.ensureDir(parent, true); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	full := u.full(rel)

	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(hdr.Name, parent, base)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		st, err := os.Lstat(full)
		switch {
		case err == nil && st.IsDir():
		case err == nil || !errors.Is(err, os.ErrNotExist):
			if err := u.remove(full); err != nil {
				return err
			}
			fallthrough
		default:
			if err := os.Mkdir(full, 0o700); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		}
		u.dirs[rel] = true
		return u.metadata(hdr, full, true)

	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars still use TypeRegA
		if err := u.remove(full); err != nil {
			return err
		}
		f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		_, err = io.CopyBuffer(f, r, u.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		return u.metadata(hdr, full, false)

	case tar.TypeSymlink:
		if err := u.remove(full); err != nil {
			return err
		}
		if err := os.Symlink(hdr.Linkname, full); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		return u.metadata(hdr, full, false)

	case tar.TypeLink:
		if strings.HasPrefix(hdr.Linkname, "/") {
			return fmt.Errorf("%w: hardlink %q: absolute target %q", ErrUnsafeLayer, hdr.Name, hdr.Linkname)
		}
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "" {
			return fmt.Errorf("%w: hardlink %q: target %q is outside the layer", ErrUnsafeLayer, hdr.Name, hdr.Linkname)
		}
		tparent, _ := path.Split(target)
		if err := u.ensureDir(strings.TrimSuffix(tparent, "/"), false); err != nil {
			return fmt.Errorf("hardlink %q: target %q: %w", hdr.Name, hdr.Linkname, err)
		}
		tfull := u.full(target)
		st, err := os.Lstat(tfull)
		if err != nil {
			return fmt.Errorf("hardlink %q: target %q is not in this layer: %w", hdr.Name, hdr.Linkname, err)
		}
		if st.IsDir() {
			return fmt.Errorf("%w: hardlink %q: target %q is a directory", ErrUnsafeLayer, hdr.Name, hdr.Linkname)
		}
		if target == rel {
			return nil
		}
		if err := u.remove(full); err != nil {
			return err
		}
		// link(2) does not follow a final symlink, and the parents were
		// just checked, so this cannot reach outside the root.
		if err := os.Link(tfull, full); err != nil {
			return fmt.Errorf("hardlink %q: %w", hdr.Name, err)
		}
		return nil

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := u.remove(full); err != nil {
			return err
		}
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(full, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("entry %q: mknod: %w", hdr.Name, err)
		}
		return u.metadata(hdr, full, false)
	}
	return fmt.Errorf("%w: entry %q: tar entry type %q", ErrUnsupported, hdr.Name, hdr.Typeflag)
}

// whiteout turns an AUFS-style whiteout entry into the overlayfs form.
func (u *unpacker) whiteout(name, parent, base string) error {
	pfull := u.full(parent)
	if base == opaqueMarker {
		if err := unix.Lsetxattr(pfull, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("opaque dir %q: set %s: %w", parent, opaqueXattr, err)
		}
		return nil
	}
	if strings.HasPrefix(base, metaPrefix) {
		u.log.Debug("dropping AUFS metadata entry", "entry", name)
		return nil
	}
	hidden := strings.TrimPrefix(base, whiteoutPrefix)
	if hidden == "" || hidden == "." || hidden == ".." {
		return fmt.Errorf("%w: whiteout %q names nothing", ErrUnsafeLayer, name)
	}
	full := filepath.Join(pfull, hidden)
	if err := u.remove(full); err != nil {
		return err
	}
	if err := unix.Mknod(full, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %q: mknod: %w", name, err)
	}
	return nil
}

// ensureDir makes sure rel is a real directory inside the root, creating
// missing components (0755, root-owned) when create is set. A component that
// is a symlink is an ErrUnsafeLayer: writing through it could leave the root.
func (u *unpacker) ensureDir(rel string, create bool) error {
	if u.dirs[rel] {
		return nil
	}
	parent, _ := path.Split(rel)
	if err := u.ensureDir(strings.TrimSuffix(parent, "/"), create); err != nil {
		return err
	}
	full := u.full(rel)
	st, err := os.Lstat(full)
	switch {
	case err == nil && st.IsDir():
	case err == nil && st.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%w: %q is a symlink, refusing to write through it", ErrUnsafeLayer, rel)
	case err == nil:
		return fmt.Errorf("%q is not a directory", rel)
	case errors.Is(err, os.ErrNotExist) && create:
		if err := os.Mkdir(full, 0o755); err != nil {
			return err
		}
	default:
		return err
	}
	u.dirs[rel] = true
	return nil
}

// remove deletes whatever is at full (a later tar entry replaces an
// earlier one). Removing a directory forgets the cached directories.
func (u *unpacker) remove(full string) error {
	st, err := os.Lstat(full)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		u.dirs = map[string]bool{"": true}
		return os.RemoveAll(full)
	}
	return os.Remove(full)
}

// metadata applies owner, mode (with setuid/setgid/sticky), xattrs and
// times. chown comes before chmod because chown clears setuid.
func (u *unpacker) metadata(hdr *tar.Header, full string, dir bool) error {
	if err := os.Lchown(full, hdr.Uid, hdr.Gid); err != nil && !u.rootless {
		return fmt.Errorf("entry %q: chown: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Chmod(full, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("entry %q: chmod: %w", hdr.Name, err)
		}
	}
	for key, value := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(attr, overlayXattrs) {
			// Overlay xattrs from a layer could redirect lookups; only
			// the unpacker itself sets them.
			u.log.Warn("dropping overlay xattr from layer", "entry", hdr.Name, "xattr", attr)
			continue
		}
		if err := unix.Lsetxattr(full, attr, []byte(value), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
				u.log.Debug("xattr not supported here, skipped", "entry", hdr.Name, "xattr", attr, "err", err)
				continue
			}
			return fmt.Errorf("entry %q: set xattr %s: %w", hdr.Name, attr, err)
		}
	}
	mtime := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	atime := mtime
	if !hdr.AccessTime.IsZero() {
		atime = unix.NsecToTimespec(hdr.AccessTime.UnixNano())
	}
	times := []unix.Timespec{atime, mtime}
	if dir {
		u.dirTimes = append(u.dirTimes, dirTime{path: full, times: times})
		return nil
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, full, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("entry %q: set times: %w", hdr.Name, err)
	}
	return nil
}
