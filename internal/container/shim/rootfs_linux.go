package shim

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/mount"
)

// setupRootfs builds the container's filesystem in the calling thread's
// new mount namespace and pivots into it. A terminal container's console
// is bound at /dev/console. It returns the mounts left to the init, which
// must make them from inside the container's PID namespace: proc
// filesystems and whatever is mounted below them. The /sys/fs/cgroup
// mounts are left out too (see isCgroupMount).
func setupRootfs(s *specs.Spec, console string) (late []specs.Mount, err error) {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := s.Linux.RootfsPropagation; p != "" {
		if o := mount.ParseOptions([]string{p}); o.Propagation != 0 {
			prop = o.Propagation
		}
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return nil, fmt.Errorf("set root propagation: %w", err)
	}
	root := s.Root.Path
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("bind rootfs %s: %w", root, err)
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(rootfd)
	devTmpfs := false
	var procs []string
	for _, m := range s.Mounts {
		if isCgroupMount(m) {
			continue // after the cgroup namespace
		}
		dst := path.Clean(m.Destination)
		if m.Type == "proc" || underAny(dst, procs) {
			if !path.IsAbs(dst) {
				return nil, fmt.Errorf("mount %s: destination is not absolute", m.Destination)
			}
			if m.Type == "proc" {
				procs = append(procs, dst)
				fd, err := openIn(rootfd, dst, true, true)
				if err != nil {
					return nil, fmt.Errorf("mount %s: create mount point: %w", dst, err)
				}
				unix.Close(fd)
			}
			late = append(late, m)
			continue
		}
		if err := mountInto(rootfd, m); err != nil {
			return nil, err
		}
		if dst == "/dev" && m.Type == "tmpfs" {
			devTmpfs = true
		}
	}
	if devTmpfs {
		if err := populateDev(rootfd, console); err != nil {
			return nil, err
		}
	}
	// Sysctls are written through the host's /proc: the network, IPC and
	// UTS ones belong to the writer's namespaces, which are the pod's.
	for k, v := range s.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return nil, fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	if err := unix.Fchdir(rootfd); err != nil {
		return nil, fmt.Errorf("enter rootfs: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one;
	// unmounting "." then drops the old root.
	if err := unix.PivotRoot(".", "."); err != nil {
		return nil, fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return nil, fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return nil, err
	}
	return late, nil
}

// underAny reports whether p is below one of dirs.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// isCgroupMount reports whether m belongs to /sys/fs/cgroup, which must
// be mounted inside the container's cgroup namespace.
func isCgroupMount(m specs.Mount) bool {
	return m.Type == "cgroup" || m.Type == "cgroup2" || path.Clean(m.Destination) == "/sys/fs/cgroup"
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
func populateDev(rootfd int, console string) error {
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
	if console != "" {
		// /dev/console is the container's terminal.
		fd, err := openIn(rootfd, "/dev/console", true, false)
		if err != nil {
			return err
		}
		// Bound by its path: the descriptor belongs to the host's mount
		// namespace, from which nothing can be bound here.
		err = unix.Mount(console, fdPath(fd), "", unix.MS_BIND, "")
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("bind /dev/console: %w", err)
		}
	}
	return nil
}
