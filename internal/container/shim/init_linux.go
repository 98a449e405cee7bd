package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/mount"
)

// prepareInit readies the calling thread to fork a container's init and
// returns the plan the child carries out (see forkInit). The thread must
// be locked to its goroutine and never unlocked, so that it exits with
// it: it joins the pod's namespaces, builds the container's filesystem in
// a new mount namespace of its own, pivots into it and resolves the
// program there. What must happen in the container's PID namespace (its
// /proc), after the runtime has moved the init into its cgroup (the
// cgroup namespace and mounts), or as the container's user is left to the
// child. stdio, sync and the returned fifo descriptor belong to the
// monitor; the caller closes the fifo once the child is forked.
func prepareInit(s *specs.Spec, bundle string, cfg Config, stdio [3]int, sync int) (*initPlan, error) {
	if s.Process == nil || s.Root == nil || s.Linux == nil {
		return nil, errors.New("spec has no process, root or linux section")
	}
	if len(s.Process.Args) == 0 {
		return nil, errors.New("no command")
	}
	// Join the pod's namespaces; the mount namespace comes next, fresh.
	for _, t := range []string{"ipc", "uts", "net"} {
		p, ok := cfg.Namespaces[t]
		if !ok {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s namespace: %w", t, err)
		}
		flag := map[string]int{"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "net": unix.CLONE_NEWNET}[t]
		err = unix.Setns(fd, flag)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("join %s namespace: %w", t, err)
		}
	}
	if s.Hostname != "" && hasNamespace(s, specs.UTSNamespace) && !hasJoinedNamespace(s, specs.UTSNamespace) {
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			return nil, fmt.Errorf("new UTS namespace: %w", err)
		}
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return nil, fmt.Errorf("set hostname: %w", err)
		}
	}
	// A fresh mount namespace, copied from the host's as it is now (so it
	// has the rootfs, volumes and pod files the runtime mounted). The
	// thread first stops sharing its root and working directory with the
	// monitor's other threads.
	if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("new mount namespace: %w", err)
	}
	// The fifo is opened now, while the host's filesystem is visible; the
	// child reopens it for writing through /proc once set-up is done.
	fifo, err := unix.Open(path.Join(bundle, FifoFile), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	p := &initPlan{stdio: stdio, sync: sync, fifo: fifo, terminal: cfg.Terminal, errnos: errnoTexts()}
	if cfg.NewPID {
		p.cloneFlags = unix.CLONE_NEWPID
	}
	console := ""
	if cfg.Terminal {
		// The container's terminal, bound at /dev/console by its path.
		console, _ = os.Readlink(fdPath(stdio[0]))
	}
	late, err := setupRootfs(s, console)
	if err != nil {
		unix.Close(fifo)
		return nil, err
	}
	for _, m := range late {
		p.before = append(p.before, mountSteps(m)...)
	}
	for _, mp := range s.Linux.MaskedPaths {
		p.before = append(p.before, step{kind: stepMask, path: cstring(mp), what: jsonText("mask " + mp)})
	}
	for _, rp := range s.Linux.ReadonlyPaths {
		p.before = append(p.before, step{kind: stepReadonly, path: cstring(rp), what: jsonText("make " + rp + " read-only")})
	}
	if s.Root.Readonly {
		p.before = append(p.before, step{kind: stepRemountRO, path: cstring("/"), what: jsonText("make rootfs read-only")})
	}
	joined, _ := json.Marshal(Message{Type: "joined"})
	p.joined = joined
	if hasNamespace(s, specs.CgroupNamespace) {
		p.after = append(p.after, sysStep("new cgroup namespace", unix.SYS_UNSHARE, unix.CLONE_NEWCGROUP))
	}
	for _, m := range s.Mounts {
		if isCgroupMount(m) {
			if d := path.Clean(m.Destination); d != "/sys/fs/cgroup" {
				dir := cstring(d)
				mk := sysStep("create mount point "+d, unix.SYS_MKDIRAT, atFDCWD, ptr(dir), 0o755).holding(dir)
				mk.ignore = unix.EEXIST
				p.after = append(p.after, mk)
			}
			p.after = append(p.after, mountSteps(m)...)
		}
	}
	steps, exe, err := processSteps(s.Process, s.Linux.Seccomp)
	if err != nil {
		unix.Close(fifo)
		return nil, err
	}
	p.after = append(p.after, steps...)
	p.exe = cstring(exe)
	p.argv, p.envv = cstrings(s.Process.Args), cstrings(s.Process.Env)
	p.execWhat = []byte("exec " + s.Process.Args[0] + ": ")
	p.fifoPath = cstring(fdPath(fifo))
	p.closeSpans = closeSpans(sync, fifo)
	return p, nil
}

// closeSpans returns the close_range spans that close every descriptor
// from 3 on except keep.
func closeSpans(keep ...int) [][2]uintptr {
	slices.Sort(keep)
	var spans [][2]uintptr
	lo := 3
	for _, k := range keep {
		if k > lo {
			spans = append(spans, [2]uintptr{uintptr(lo), uintptr(k - 1)})
		}
		lo = max(lo, k+1)
	}
	return append(spans, [2]uintptr{uintptr(lo), ^uintptr(0)})
}

// mountSteps are the system calls of one OCI mount done by the child, on
// a mount point that exists: a mount, then for a bind mount its flags,
// then its propagation.
func mountSteps(m specs.Mount) []step {
	o := mount.ParseOptions(m.Options)
	dst := path.Clean(m.Destination)
	src, target, fstype, data := cstring(m.Source), cstring(dst), cstring(m.Type), cstring(o.Data)
	what := fmt.Sprintf("mount %s (%s) on %s", m.Source, m.Type, dst)
	refs := []any{src, target, fstype, data}
	var steps []step
	if o.Bind() || m.Type == "bind" {
		flags := uintptr(unix.MS_BIND)
		if o.Recursive() {
			flags |= unix.MS_REC
		}
		steps = append(steps, sysStep(what, unix.SYS_MOUNT, ptr(src), ptr(target), 0, flags, 0))
		if extra := o.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
			steps = append(steps, sysStep("remount "+dst, unix.SYS_MOUNT, 0, ptr(target), 0, unix.MS_REMOUNT|unix.MS_BIND|extra, 0))
		}
	} else {
		steps = append(steps, sysStep(what, unix.SYS_MOUNT, ptr(src), ptr(target), ptr(fstype), o.Flags&^unix.MS_REMOUNT, ptr(data)))
	}
	if o.Propagation != 0 {
		steps = append(steps, sysStep("set propagation of "+dst, unix.SYS_MOUNT, 0, ptr(target), 0, o.Propagation, 0))
	}
	for i := range steps {
		steps[i].refs = refs
	}
	return steps
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t {
			return true
		}
	}
	return false
}

func hasJoinedNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t && n.Path != "" {
			return true
		}
	}
	return false
}

// runExecInit runs a process inside a running container: argv is [name];
// fd 3 is the sync socket, fd 4 the container's mount namespace. The
// runtime started it in the container's other namespaces and sends the
// config once it has joined the container's cgroup.
func runExecInit() int {
	runtime.LockOSThread()
	syncFile := os.NewFile(3, "sync")
	unix.CloseOnExec(3)
	unix.CloseOnExec(4)
	fail := func(err error) int {
		json.NewEncoder(syncFile).Encode(Message{Type: "error", Error: err.Error()})
		return 126
	}
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	line, err := bufio.NewReader(syncFile).ReadBytes('\n')
	if err != nil {
		return 126
	}
	var msg Message
	if err := json.Unmarshal(line, &msg); err != nil || msg.Type != "config" || msg.Exec == nil {
		return fail(fmt.Errorf("unexpected sync message %q", line))
	}
	// Join the container's filesystem: first stop sharing filesystem
	// info with the runtime's other threads, which setns requires.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fail(fmt.Errorf("unshare fs: %w", err))
	}
	if err := unix.Setns(4, unix.CLONE_NEWNS); err != nil {
		return fail(fmt.Errorf("join mount namespace: %w", err))
	}
	unix.Close(4)
	p := msg.Exec.Process
	prog, err := finishProcess(&p, msg.Exec.Seccomp)
	if err != nil {
		return fail(err)
	}
	// Success is the sync socket closing on exec.
	resetIgnoredSignals()
	err = unix.Exec(prog, p.Args, p.Env)
	return fail(fmt.Errorf("exec %s: %w", p.Args[0], err))
}
