package shim

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/mount"
)

// setupRootfs builds the container's filesystem in the init's new mount
// namespace and pivots into it.
func setupRootfs(s *specs.Spec) error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := s.Linux.RootfsPropagation; p != "" {
		if o := mount.ParseOptions([]string{p}); o.Propagation != 0 {
			prop = o.Propagation
		}
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set root propagation: %w", err)
	}
	root := s.Root.Path
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", root, err)
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(rootfd)
	devTmpfs := false
	for _, m := range s.Mounts {
		if isCgroupMount(m) {
			continue // after the cgroup namespace: see mountCgroups
		}
		if err := mountInto(rootfd, m); err != nil {
			return err
		}
		if path.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			devTmpfs = true
		}
	}
	if devTmpfs {
		if err := populateDev(rootfd, s.Process.Terminal); err != nil {
			return err
		}
	}
	if err := unix.Fchdir(rootfd); err != nil {
		return fmt.Errorf("enter rootfs: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one;
	// unmounting "." then drops the old root.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	for k, v := range s.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	for _, p := range s.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if s.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("make rootfs read-only: %w", err)
		}
	}
	return nil
}

// isCgroupMount reports whether m belongs to /sys/fs/cgroup, which must
// be mounted inside the container's cgroup namespace.
func isCgroupMount(m specs.Mount) bool {
	return m.Type == "cgroup" || m.Type == "cgroup2" || path.Clean(m.Destination) == "/sys/fs/cgroup"
}

// mountCgroups performs the /sys/fs/cgroup mounts, in the container's
// root (after pivot_root), once the init is in its cgroup namespace.
func mountCgroups(s *specs.Spec) error {
	rootfd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	for _, m := range s.Mounts {
		if isCgroupMount(m) {
			if err := mountInto(rootfd, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// openIn opens rel (resolved inside the tree at rootfd, symlinks
// included, so nothing escapes it) as an O_PATH descriptor, creating it
// and missing parents when create is set: a directory when dir is set, an
// empty file otherwise.
func openIn(rootfd int, rel string, create, dir bool) (int, error) {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel == "" {
		return unix.Dup(rootfd)
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(rootfd, rel, how)
	if err == nil || err != unix.ENOENT || !create {
		return fd, err
	}
	parent, err := openIn(rootfd, path.Dir(rel), true, true)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	// Reopen the parent as a real directory to create in it.
	pdir, err := unix.Openat(parent, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pdir)
	name := path.Base(rel)
	if dir {
		err = unix.Mkdirat(pdir, name, 0o755)
	} else {
		var f int
		f, err = unix.Openat(pdir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
		if err == nil {
			unix.Close(f)
		}
	}
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	return unix.Openat2(rootfd, rel, how)
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// mountInto performs one OCI mount inside the rootfs at rootfd.
func mountInto(rootfd int, m specs.Mount) error {
	dst := m.Destination
	if !path.IsAbs(dst) {
		return fmt.Errorf("mount %s: destination is not absolute", dst)
	}
	o := mount.ParseOptions(m.Options)
	bind := o.Bind() || m.Type == "bind"
	isDir := true
	if bind {
		st, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("mount %s on %s: invalid mount source: %w", m.Source, dst, err)
		}
		isDir = st.IsDir()
	}
	fd, err := openIn(rootfd, dst, true, isDir)
	if err != nil {
		return fmt.Errorf("mount %s: create mount point: %w", dst, err)
	}
	target := fdPath(fd)
	if bind {
		flags := uintptr(unix.MS_BIND)
		if o.Recursive() {
			flags |= unix.MS_REC
		}
		err = unix.Mount(m.Source, target, "", flags, "")
	} else {
		err = unix.Mount(m.Source, target, m.Type, o.Flags&^unix.MS_REMOUNT, o.Data)
	}
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, dst, err)
	}
	// Flags and propagation apply to the new mount, so reopen the path
	// (the old descriptor points below it).
	if !bind && o.Propagation == 0 {
		return nil
	}
	fd, err = openIn(rootfd, dst, false, isDir)
	if err != nil {
		return fmt.Errorf("mount %s: reopen: %w", dst, err)
	}
	defer unix.Close(fd)
	target = fdPath(fd)
	if bind {
		if extra := o.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|extra, ""); err != nil {
				return fmt.Errorf("remount %s with %v: %w", dst, m.Options, err)
			}
		}
	}
	if o.Propagation != 0 {
		if err := unix.Mount("", target, "", o.Propagation, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", dst, err)
		}
	}
	return nil
}

// populateDev fills a tmpfs /dev with the host's harmless device nodes
// (bind-mounted, so the device cgroup need not allow mknod) and the usual
// links.
func populateDev(rootfd int, terminal bool) error {
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		fd, err := openIn(rootfd, "/dev/"+name, true, false)
		if err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
		err = unix.Mount("/dev/"+name, fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bind /dev/%s: %w", name, err)
		}
	}
	devfd, err := openIn(rootfd, "/dev", false, true)
	if err != nil {
		return err
	}
	defer unix.Close(devfd)
	dir, err := unix.Openat(devfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dir, l[1]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("link /dev/%s: %w", l[1], err)
		}
	}
	if terminal {
		// /dev/console is the container's terminal.
		fd, err := openIn(rootfd, "/dev/console", true, false)
		if err != nil {
			return err
		}
		// Bind the terminal by its path: the descriptor belongs to the
		// host's mount namespace, from which nothing can be bound here.
		tty, err := os.Readlink("/proc/self/fd/0")
		if err == nil {
			err = unix.Mount(tty, fdPath(fd), "", unix.MS_BIND, "")
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bind /dev/console: %w", err)
		}
	}
	return nil
}

// maskPath hides p: an empty read-only tmpfs over a directory, /dev/null
// over a file. Missing paths are skipped.
func maskPath(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if st.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// readonlyPath makes p read-only. Missing paths are skipped.
func readonlyPath(p string) error {
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	if err := remount(p, unix.MS_RDONLY); err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	return nil
}

// remount remounts the bind mount at p adding flags and keeping the
// flags it has (the kernel refuses to drop locked ones).
func remount(p string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME)
	if st.Flags&unix.ST_RELATIME != 0 {
		keep |= unix.MS_RELATIME
	}
	return unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|keep|flags, "")
}
