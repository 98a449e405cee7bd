// Package ns creates, pins and enters Linux namespaces.
//
// Go runs goroutines on many OS threads, while most namespaces belong to a
// thread. Every function here that changes namespaces does so on a fresh
// OS thread locked to one goroutine and lets that thread die afterwards
// (the goroutine exits without unlocking it), so no other goroutine ever
// runs in a namespace it did not ask for.
//
// Pin creates namespaces without any process living in them: it unshares
// them on a throw-away thread and bind-mounts the thread's namespace files
// onto regular files, which keep the namespaces alive until Unpin.
package ns

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"

	"golang.org/x/sys/unix"
)

// Type is a kind of namespace, named as in /proc/<pid>/ns.
type Type string

// The namespace types this package handles.
const (
	Net    Type = "net"
	IPC    Type = "ipc"
	UTS    Type = "uts"
	PID    Type = "pid"
	Mount  Type = "mnt"
	Cgroup Type = "cgroup"
)

// ErrUnknownType is returned (wrapped) for a Type this package does not know.
var ErrUnknownType = errors.New("unknown namespace type")

// CloneFlag returns the CLONE_NEW* flag for t, or 0 for an unknown type.
func (t Type) CloneFlag() uintptr {
	switch t {
	case Net:
		return unix.CLONE_NEWNET
	case IPC:
		return unix.CLONE_NEWIPC
	case UTS:
		return unix.CLONE_NEWUTS
	case PID:
		return unix.CLONE_NEWPID
	case Mount:
		return unix.CLONE_NEWNS
	case Cgroup:
		return unix.CLONE_NEWCGROUP
	}
	return 0
}

// onFreshThread runs fn on an OS thread that is thrown away afterwards.
func onFreshThread(fn func() error) error {
	done := make(chan error, 1)
	go throwAwayThread(fn, done)
	return <-done
}

// throwAwayThread runs fn locked to a thread other than the main one and
// returns without unlocking, so the runtime terminates that thread. The
// main thread can never be terminated (a locked goroutine exiting on it
// only parks it), so when this goroutine lands there it holds the main
// thread while a second goroutine, which then cannot land there, does the
// work.
func throwAwayThread(fn func() error, done chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		inner := make(chan error, 1)
		go throwAwayThread(fn, inner)
		err := <-inner
		runtime.UnlockOSThread()
		done <- err
		return
	}
	done <- fn()
}

// Pin creates one new namespace of each of types, runs setup (if not nil)
// on a thread inside them, and bind-mounts each namespace onto dir/<type>,
// creating dir if needed. It returns the pinned paths. On error nothing is
// left mounted. The caller owns the namespaces and releases them with
// Unpin.
func Pin(dir string, types []Type, setup func() error) (map[Type]string, error) {
	var flags uintptr
	for _, t := range types {
		f := t.CloneFlag()
		if f == 0 || t == Mount || t == PID {
			return nil, fmt.Errorf("pin namespace %q: %w", t, ErrUnknownType)
		}
		flags |= f
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	paths := map[Type]string{}
	err := onFreshThread(func() error {
		if err := unix.Unshare(int(flags)); err != nil {
			return fmt.Errorf("unshare %v: %w", types, err)
		}
		if setup != nil {
			if err := setup(); err != nil {
				return err
			}
		}
		tid := unix.Gettid()
		for _, t := range types {
			p := path.Join(dir, string(t))
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY|os.O_EXCL, 0o444)
			if err != nil {
				return fmt.Errorf("pin namespace %s: %w", t, err)
			}
			f.Close()
			src := fmt.Sprintf("/proc/%d/task/%d/ns/%s", os.Getpid(), tid, t)
			if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
				os.Remove(p)
				return fmt.Errorf("pin namespace %s at %s: %w", t, p, err)
			}
			paths[t] = p
		}
		return nil
	})
	if err != nil {
		for _, p := range paths {
			Unpin(p)
		}
		return nil, err
	}
	return paths, nil
}

// Unpin unmounts a namespace pinned by Pin and removes its file. The
// namespace goes away once nothing else uses it. Unpin of a path that is
// not there is not an error, so it is safe to call twice.
func Unpin(file string) error {
	if err := unix.Unmount(file, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unpin namespace %s: %w", file, err)
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin namespace %s: %w", file, err)
	}
	return nil
}

// Do runs fn on a fresh OS thread that has joined the namespaces in paths
// (type -> namespace file, such as a pinned file or /proc/<pid>/ns/net).
// Joining a PID namespace affects only processes the thread starts;
// joining a mount namespace also moves the thread's root and working
// directory to that namespace's root. The thread is thrown away after fn,
// so fn may start processes that inherit the namespaces (exec.Cmd.Start)
// but must not leave goroutines behind that expect them.
func Do(paths map[Type]string, fn func() error) error {
	types := make([]Type, 0, len(paths))
	for t := range paths {
		if t.CloneFlag() == 0 {
			return fmt.Errorf("join namespace %q: %w", t, ErrUnknownType)
		}
		types = append(types, t)
	}
	// The mount namespace last: paths of the others must still resolve.
	sort.Slice(types, func(i, j int) bool { return types[j] == Mount && types[i] != Mount })
	fds := make([]int, 0, len(types))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, t := range types {
		fd, err := unix.Open(paths[t], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace %s %s: %w", t, paths[t], err)
		}
		fds = append(fds, fd)
	}
	return onFreshThread(func() error {
		for i, t := range types {
			if t == Mount {
				// A thread sharing its filesystem info with others
				// cannot change mount namespace.
				if err := unix.Unshare(unix.CLONE_FS); err != nil {
					return fmt.Errorf("unshare fs: %w", err)
				}
			}
			if err := unix.Setns(fds[i], int(t.CloneFlag())); err != nil {
				return fmt.Errorf("join namespace %s %s: %w", t, paths[t], err)
			}
		}
		return fn()
	})
}

// LoopbackUp brings up the "lo" interface of the calling thread's network
// namespace. Call it from Pin's setup or inside Do.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}
