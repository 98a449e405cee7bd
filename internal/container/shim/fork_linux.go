package shim

import (
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A container's init is a vfork of the monitor, not a new program: the
// monitor's thread that prepared the container (see prepareInit) clones
// itself, and the child, PID 1 of the container's new PID namespace,
// finishes the set-up and execs the container's program. Re-executing
// this binary instead costs about 40 ms of CPU per container for the Go
// runtime and package initialisation, which dominated starting many pods
// at once. A plain fork costs less but still copies the monitor's page
// tables, and every page the monitor writes afterwards faults and is
// copied while the child lives: the child shares the monitor's memory
// instead (CLONE_VM), and the forking thread waits in the kernel
// (CLONE_VFORK) until the child execs or exits, in a system call as far
// as the Go scheduler is concerned.
//
// The Go runtime cannot run in the child: no allocation, no stack
// growth, no locks, no writes to memory but its own locals. Everything
// the child does is therefore worked out beforehand as an initPlan of raw
// system calls, and forkInit carries them out in its own stack frame,
// calling only nosplit functions, as the standard library's
// forkAndExecInChild does.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// rawVfork is clone(flags) for a child that shares the caller's memory
// and stack (vfork_*.s); with CLONE_PARENT_SETTID the kernel stores the
// child's PID at parentTID before the child runs.
func rawVfork(flags, parentTID uintptr) (pid uintptr, errno syscall.Errno)

// stepKind is what a step of the child does.
type stepKind uint8

const (
	// stepCall makes one system call, which must succeed (or fail with
	// the step's ignore errno).
	stepCall stepKind = iota
	// stepMask hides path: an empty read-only tmpfs over a directory,
	// /dev/null over a file. A missing path is skipped.
	stepMask
	// stepReadonly bind-mounts path on itself read-only. A missing path
	// is skipped.
	stepReadonly
	// stepRemountRO remounts the mount at path read-only, keeping the
	// flags it has (the kernel refuses to drop locked ones).
	stepRemountRO
)

// step is one thing the child does.
type step struct {
	kind   stepKind
	trap   uintptr
	args   [6]uintptr
	ignore syscall.Errno
	path   *byte  // for stepMask, stepReadonly, stepRemountRO
	what   []byte // the error message's subject, JSON-escaped
	refs   []any  // what args point into, kept alive until the fork
}

// initPlan is everything a container's init does after the fork.
type initPlan struct {
	cloneFlags uintptr
	// tid is where the kernel stores the child's PID, for the monitor's
	// other goroutines to read once the child has written a byte to
	// started (the forking thread waits until the child execs).
	tid        *int32
	started    int
	stdio      [3]int // the monitor's descriptors that become 0, 1 and 2
	sync, fifo int    // the sync socket and the exec fifo (O_PATH), kept as they are
	// closeSpans are the close_range spans that close every other
	// descriptor the child inherited from the monitor.
	closeSpans [][2]uintptr
	terminal   bool
	// before runs while the runtime moves the init into its cgroup;
	// after, once it says so with the joined line.
	before, after []step
	joined        []byte
	fifoPath      *byte
	exe           *byte
	argv, envv    []*byte // nil-terminated
	execWhat      []byte  // "exec <program>: "
	errnos        [][]byte
}

// Fixed texts of the sync protocol, as the runtime's JSON decoder reads
// them.
var (
	msgCreated  = []byte(`{"type":"created"}` + "\n")
	msgErrHead  = []byte(`{"type":"error","error":"`)
	msgErrTail  = []byte(`"}` + "\n")
	colonSpace  = []byte(": ")
	newline     = []byte("\n")
	startedByte = []byte("0")
)

// errnoTexts returns the errno messages, indexed by errno, for the child
// to write without formatting.
var errnoTexts = sync.OnceValue(func() [][]byte {
	t := make([][]byte, 134)
	for i := range t {
		t[i] = jsonText(syscall.Errno(i).Error())
	}
	return t
})

// jsonText is s escaped for the inside of a JSON string.
func jsonText(s string) []byte {
	b, _ := json.Marshal(s)
	return b[1 : len(b)-1]
}

// cstring returns s NUL-terminated, for a system call. A string holding
// a NUL is cut there: the call will fail on what is left.
func cstring(s string) *byte {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	p, _ := syscall.BytePtrFromString(s)
	return p
}

// cstrings returns ss as a nil-terminated array of C strings.
func cstrings(ss []string) []*byte {
	out := make([]*byte, len(ss)+1)
	for i, s := range ss {
		out[i] = cstring(s)
	}
	return out
}

func ptr(p *byte) uintptr { return uintptr(unsafe.Pointer(p)) }

// sysStep is a stepCall.
func sysStep(what string, trap uintptr, args ...uintptr) step {
	s := step{kind: stepCall, trap: trap, what: jsonText(what)}
	copy(s.args[:], args)
	return s
}

// text is the subject of s's error message, unescaped.
func (s step) text() string {
	var t string
	json.Unmarshal(append(append([]byte{'"'}, s.what...), '"'), &t)
	return t
}

// holding returns s keeping refs, which its arguments point into, alive.
func (s step) holding(refs ...any) step {
	s.refs = refs
	return s
}

// atFDCWD is AT_FDCWD (-100) as a system call argument.
const atFDCWD = ^uintptr(99)

// forkInit clones the calling thread into a container init that carries
// out p. It returns once the init has exec'd the container's program or
// exited; the init's PID is known as soon as it writes to p.started.
//
//go:norace
//go:nocheckptr
func forkInit(p *initPlan) (int, error) {
	// Every variable the child uses is declared here, before the fork,
	// so that none is allocated after it.
	var (
		r1    uintptr
		errno syscall.Errno
		i     int
		s     *step
		list  []step
		what  []byte
		stx   unix.Statx_t
		sfs   unix.Statfs_t
		line  [64]byte
		n     int
		fd    uintptr
		keep  uintptr
		old   sigaction
		dflt  sigaction
		phase int
	)
	runtimeBeforeFork()
	entersyscall()
	r1, errno = rawVfork(p.cloneFlags|syscall.CLONE_VM|syscall.CLONE_VFORK|syscall.CLONE_PARENT_SETTID|uintptr(syscall.SIGCHLD), uintptr(unsafe.Pointer(p.tid)))
	if errno != 0 || r1 != 0 {
		// The parent, once the child has exec'd or exited. The child
		// used this frame meanwhile: only rawVfork's results are ours.
		exitsyscall()
		runtimeAfterFork()
		if errno != 0 {
			return 0, errno
		}
		return int(r1), nil
	}

	// The child. Signals get their default handlers back (ignored ones
	// stay ignored until just before exec) and are unblocked.
	runtimeAfterForkInChild()
	rawWrite(p.started, startedByte)
	for i = 0; i < 3; i++ {
		_, _, errno = syscall.RawSyscall(unix.SYS_DUP3, uintptr(p.stdio[i]), uintptr(i), 0)
		if errno != 0 {
			what = stdioWhat
			goto fail
		}
	}
	for i = 0; i < len(p.closeSpans); i++ {
		syscall.RawSyscall(unix.SYS_CLOSE_RANGE, p.closeSpans[i][0], p.closeSpans[i][1], 0)
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); errno != 0 {
		what = setsidWhat
		goto fail
	}
	if p.terminal {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, 0, syscall.TIOCSCTTY, 0); errno != 0 {
			what = cttyWhat
			goto fail
		}
	}
	// Non-dumpable until exec: processes in the container must not reach
	// the monitor's memory or binary through /proc/<pid>. The flag belongs
	// to the memory, so the monitor (root, and never traced) is
	// non-dumpable too from its first container on.
	syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0, 0, 0, 0)

	list = p.before
	for phase = 0; phase < 2; phase++ {
		if phase == 1 {
			// Wait until the runtime has moved us into our cgroup.
			for n = 0; n < len(line); {
				r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, uintptr(p.sync), uintptr(unsafe.Pointer(&line[n])), 1)
				if errno == syscall.EINTR {
					continue
				}
				if errno != 0 || r1 == 0 {
					rawExit(1) // the runtime gave up on us
				}
				if line[n] == '\n' {
					break
				}
				n++
			}
			if n != len(p.joined) {
				rawExit(1)
			}
			for i = 0; i < n; i++ {
				if line[i] != p.joined[i] {
					rawExit(1)
				}
			}
			list = p.after
		}
		for i = 0; i < len(list); i++ {
			s = &list[i]
			what = s.what
			switch s.kind {
			case stepCall:
				_, _, errno = syscall.RawSyscall6(s.trap, s.args[0], s.args[1], s.args[2], s.args[3], s.args[4], s.args[5])
				if errno != 0 && errno != s.ignore {
					goto fail
				}
			case stepMask, stepReadonly:
				_, _, errno = syscall.RawSyscall6(unix.SYS_STATX, atFDCWD, uintptr(unsafe.Pointer(s.path)), 0, unix.STATX_TYPE, uintptr(unsafe.Pointer(&stx)), 0)
				if errno == syscall.ENOENT {
					continue
				}
				if errno != 0 {
					goto fail
				}
				if s.kind == stepMask {
					if stx.Mode&syscall.S_IFMT == syscall.S_IFDIR {
						_, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, ptr(&tmpfsName[0]), uintptr(unsafe.Pointer(s.path)), ptr(&tmpfsName[0]), syscall.MS_RDONLY, ptr(&emptyTmpfs[0]), 0)
					} else {
						_, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, ptr(&devNull[0]), uintptr(unsafe.Pointer(s.path)), 0, syscall.MS_BIND, 0, 0)
					}
					if errno != 0 {
						goto fail
					}
					continue
				}
				_, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(s.path)), uintptr(unsafe.Pointer(s.path)), 0, syscall.MS_BIND|syscall.MS_REC, 0, 0)
				if errno != 0 {
					goto fail
				}
				fallthrough
			case stepRemountRO:
				_, _, errno = syscall.RawSyscall(syscall.SYS_STATFS, uintptr(unsafe.Pointer(s.path)), uintptr(unsafe.Pointer(&sfs)), 0)
				if errno != 0 {
					goto fail
				}
				keep = uintptr(sfs.Flags) & (unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME)
				if sfs.Flags&unix.ST_RELATIME != 0 {
					keep |= unix.MS_RELATIME
				}
				_, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, 0, uintptr(unsafe.Pointer(s.path)), 0, syscall.MS_REMOUNT|syscall.MS_BIND|keep|syscall.MS_RDONLY, 0, 0)
				if errno != 0 {
					goto fail
				}
			}
		}
	}
	rawWrite(p.sync, msgCreated)
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(p.sync), 0, 0)

	// Block until StartContainer opens the other end of the fifo.
	for {
		fd, _, errno = syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(p.fifoPath)), syscall.O_WRONLY|syscall.O_CLOEXEC, 0, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno != 0 {
		rawWrite(2, fifoWhat)
		rawWrite(2, errnoText(p.errnos, errno))
		rawWrite(2, newline)
		rawExit(127)
	}
	rawWrite(int(fd), startedByte)
	// Ignored signals survive execve, and the monitor ignores terminal
	// signals: give them their default disposition back.
	for i = 1; i <= 64; i++ {
		if i == int(syscall.SIGKILL) || i == int(syscall.SIGSTOP) {
			continue
		}
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(i), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); errno == 0 && old.handler == sigIgnore {
			syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(i), uintptr(unsafe.Pointer(&dflt)), 0, 8, 0, 0)
		}
	}
	_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(p.exe)), uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])))
	rawWrite(int(fd), p.execWhat)
	rawWrite(int(fd), errnoText(p.errnos, errno))
	rawWrite(2, p.execWhat)
	rawWrite(2, errnoText(p.errnos, errno))
	rawWrite(2, newline)
	rawExit(127)

fail:
	rawWrite(p.sync, msgErrHead)
	rawWrite(p.sync, what)
	rawWrite(p.sync, colonSpace)
	rawWrite(p.sync, errnoText(p.errnos, errno))
	rawWrite(p.sync, msgErrTail)
	rawExit(1)
	return 0, nil // not reached
}

// Subjects of the child's own error messages, and arguments of its
// mounts.
var (
	stdioWhat  = []byte("set up stdio")
	setsidWhat = []byte("new session")
	cttyWhat   = []byte("set controlling terminal")
	fifoWhat   = []byte("skiff-init: open exec fifo: ")
	tmpfsName  = []byte("tmpfs\x00")
	emptyTmpfs = []byte("size=0k\x00")
	devNull    = []byte("/dev/null\x00")
)

// errnoText is errno's message, for the child.
//
//go:nosplit
func errnoText(texts [][]byte, e syscall.Errno) []byte {
	if int(e) < len(texts) {
		return texts[e]
	}
	return texts[0]
}

// rawWrite writes b to fd, for the child.
//
//go:nosplit
func rawWrite(fd int, b []byte) {
	for len(b) > 0 {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n == 0 {
			return
		}
		b = b[n:]
	}
}

// rawExit ends the child.
//
//go:nosplit
func rawExit(code int) {
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(code), 0, 0)
	}
}
