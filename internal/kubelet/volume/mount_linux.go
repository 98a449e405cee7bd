package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/sys/mount"
)

// setUpEmptyDir makes the emptyDir's directory, mode 0777 (group fsGroup
// and setgid when the pod has one). Medium Memory mounts a tmpfs there,
// sized by sizeLimit, else by the sum of the containers' memory limits
// when every container has one, else the kernel's default (half the
// RAM).
func (m *Manager) setUpEmptyDir(pod *v1.Pod, name string, src *v1.EmptyDirVolumeSource, own *ownership) error {
	dir := m.volumeDir(pod.UID, pluginEmptyDir, name)
	switch src.Medium {
	case v1.StorageMediumDefault, v1.StorageMediumMemory:
	default:
		return fmt.Errorf("%w: emptyDir medium %q", ErrUnsupported, src.Medium)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("make emptyDir: %w", err)
	}
	if src.Medium == v1.StorageMediumMemory {
		opts := "mode=0777"
		if size := tmpfsSize(pod, src); size > 0 {
			opts += ",size=" + strconv.FormatInt(size, 10)
		}
		if err := mountTmpfs(dir, opts); err != nil {
			return fmt.Errorf("emptyDir: %w", err)
		}
	}
	mode := fs.FileMode(0o777)
	if own != nil {
		if err := os.Lchown(dir, -1, int(own.GID)); err != nil {
			return fmt.Errorf("emptyDir: fsGroup: %w", err)
		}
		mode |= fs.ModeSetgid
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("emptyDir: %w", err)
	}
	return nil
}

// mountTmpfs mounts a tmpfs on dir unless one is there already.
func mountTmpfs(dir, opts string) error {
	mounted, err := mount.IsMountpoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

func tmpfsSize(pod *v1.Pod, src *v1.EmptyDirVolumeSource) int64 {
	if src.SizeLimit != nil && src.SizeLimit.Value() > 0 {
		return src.SizeLimit.Value()
	}
	var sum int64
	for _, c := range pod.Spec.Containers {
		q, ok := c.Resources.Limits[v1.ResourceMemory]
		if !ok || q.Value() <= 0 {
			return 0
		}
		sum += q.Value()
	}
	return sum
}

// checkHostPath checks a hostPath against its type, creating what
// DirectoryOrCreate and FileOrCreate ask for.
func checkHostPath(src *v1.HostPathVolumeSource) error {
	p := src.Path
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%w: hostPath %q is not absolute", ErrInvalid, p)
	}
	typ := v1.HostPathUnset
	if src.Type != nil {
		typ = *src.Type
	}
	info, err := os.Stat(p)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hostPath %q: %w", p, err)
	}
	switch typ {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("hostPath %q: create directory: %w", p, err)
			}
			return nil
		}
		if !info.IsDir() {
			return fmt.Errorf("%w: hostPath %q exists and is not a directory", ErrInvalid, p)
		}
		return nil
	case v1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("hostPath %q: create file: %w", p, err)
			}
			if f != nil {
				f.Close()
			}
			return nil
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%w: hostPath %q exists and is not a file", ErrInvalid, p)
		}
		return nil
	}
	want := map[v1.HostPathType]struct {
		ok   func(fs.FileMode) bool
		what string
	}{
		v1.HostPathDirectory: {func(m fs.FileMode) bool { return m.IsDir() }, "a directory"},
		v1.HostPathFile:      {func(m fs.FileMode) bool { return m.IsRegular() }, "a file"},
		v1.HostPathSocket:    {func(m fs.FileMode) bool { return m&fs.ModeSocket != 0 }, "a socket"},
		v1.HostPathCharDev:   {func(m fs.FileMode) bool { return m&fs.ModeCharDevice != 0 }, "a character device"},
		v1.HostPathBlockDev:  {func(m fs.FileMode) bool { return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0 }, "a block device"},
	}[typ]
	if want.ok == nil {
		return fmt.Errorf("%w: hostPath %q: unknown type %q", ErrInvalid, p, typ)
	}
	if !exists {
		return fmt.Errorf("%w: hostPath %q: %s does not exist", ErrInvalid, p, want.what)
	}
	if !want.ok(info.Mode()) {
		return fmt.Errorf("%w: hostPath %q is not %s", ErrInvalid, p, want.what)
	}
	return nil
}

// bindSubPath bind-mounts sub (relative to the volume at base) at a
// stable path under the pod's volume-subpaths directory and returns that
// path. It follows the kubelet's safety checks: sub must be relative
// without "..", and after resolving symlinks it must stay inside the
// volume; the bind is made from a file descriptor opened component by
// component without following symlinks, so that a container cannot swap
// a component for a symlink between the check and the mount. A missing
// sub is created as a directory (0755) in writable volumes.
func (m *Manager) bindSubPath(uid types.UID, volName, container string, index int, base, sub string, create, readOnly bool) (string, error) {
	if sub == "" || filepath.IsAbs(sub) || hasDotDot(sub) {
		return "", fmt.Errorf("%w: subPath %q must be a relative path without '..'", ErrInvalid, sub)
	}
	sub = filepath.Clean(sub)
	realBase, err := filepath.EvalSymlinks(base)
	if err != nil {
		return "", fmt.Errorf("subPath %q: volume: %w", sub, err)
	}
	full := filepath.Join(realBase, sub)
	if _, err := os.Lstat(full); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return "", fmt.Errorf("%w: subPath %q does not exist in the volume", ErrNotFound, sub)
		}
		if err := safeMkdirAll(realBase, sub); err != nil {
			return "", fmt.Errorf("subPath %q: %w", sub, err)
		}
	}
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	rel, err := filepath.Rel(realBase, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: subPath %q resolves to %q, outside the volume", ErrInvalid, sub, resolved)
	}
	fd, err := safeOpen(realBase, rel)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	target := filepath.Join(m.PodDir(uid), "volume-subpaths", volName, container, strconv.Itoa(index))
	if mounted, err := mount.IsMountpoint(target); err == nil && mounted {
		return target, nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(target, 0o750)
	} else {
		var f *os.File
		f, err = os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o640)
		if f != nil {
			f.Close()
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("subPath %q: bind target: %w", sub, err)
	}
	src := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("subPath %q: bind mount: %w", sub, err)
	}
	if readOnly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return "", fmt.Errorf("subPath %q: read-only remount: %w", sub, err)
		}
	}
	return target, nil
}

func hasDotDot(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// safeOpen opens base/rel with O_PATH, one component at a time, refusing
// symlinks, and returns the descriptor.
func safeOpen(base, rel string) (int, error) {
	fd, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if rel == "." {
		return fd, nil
	}
	for _, el := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, el, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", el, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(next)
			return -1, fmt.Errorf("%w: %s changed into a symlink", ErrInvalid, el)
		}
		fd = next
	}
	return fd, nil
}

// safeMkdirAll creates the missing directories of rel under base without
// following symlinks.
func safeMkdirAll(base, rel string) error {
	fd, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { unix.Close(fd) }()
	for _, el := range strings.Split(rel, "/") {
		err := unix.Mkdirat(fd, el, 0o755)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", el, err)
		}
		next, err := unix.Openat(fd, el, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%w: %s is not a directory (or is a symlink): %w", ErrInvalid, el, err)
		}
		unix.Close(fd)
		fd = next
	}
	return nil
}

// removeUnmounted unmounts everything at or below dir, checks that
// nothing is left mounted there and removes dir.
func removeUnmounted(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := mount.UnmountAll(dir); err != nil {
		return err
	}
	mounts, err := mount.Self()
	if err != nil {
		return err
	}
	if left := mount.Under(mounts, dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %s", strings.Join(left, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return nil
}

// ownedAs reports whether the file has the owner uid (when not nil) and
// the group own asks for (when not nil).
func ownedAs(info fs.FileInfo, uid *int64, own *ownership) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	if uid != nil && int64(st.Uid) != *uid {
		return false
	}
	if own != nil && int64(st.Gid) != own.GID {
		return false
	}
	return true
}
