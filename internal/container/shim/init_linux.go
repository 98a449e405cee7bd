package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/caps"
	"github.com/skiff-sh/skiff/internal/sys/memtrim"
)

// runInit is the container init: argv is [name]; fd 3 is its control
// socket from the monitor, on which it waits for its container (an
// Assignment with the container's stdio and the runtime's sync socket).
// The monitor starts inits ahead of time, so that their start-up is off
// the path of CreateContainer. It never returns on success (it execs).
func runInit() int {
	runtime.LockOSThread()
	prewarm()
	// While it waits, a warm init holds none of the executable's pages:
	// they would count as shared with the agent, which could then not
	// page out its own start-up code (see memtrim.Forget). The few it
	// needs fault back in from the page cache once the container comes.
	_, _ = memtrim.Forget()
	a, files, err := receiveAssignment(3)
	if err != nil {
		logf("init: %v", err)
		return 1
	}
	unix.Close(3)
	bundle := a.Bundle
	for i := 0; i < 3; i++ {
		if err := unix.Dup2(int(files[i].Fd()), i); err != nil {
			logf("init: stdio: %v", err)
			return 1
		}
		files[i].Close()
	}
	syncFile := files[3]
	fail := func(err error) int {
		json.NewEncoder(syncFile).Encode(Message{Type: "error", Error: err.Error()})
		return 1
	}
	if a.Terminal {
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return fail(fmt.Errorf("set controlling terminal: %w", err))
		}
	}
	// Join the pod's namespaces; the mount namespace comes later, fresh.
	for _, t := range []string{"ipc", "uts", "net"} {
		p, ok := a.Namespaces[t]
		if !ok {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("open %s namespace: %w", t, err))
		}
		flag := map[string]int{"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "net": unix.CLONE_NEWNET}[t]
		err = unix.Setns(fd, flag)
		unix.Close(fd)
		if err != nil {
			return fail(fmt.Errorf("join %s namespace: %w", t, err))
		}
	}
	data, err := os.ReadFile(path.Join(bundle, SpecFile))
	if err != nil {
		return fail(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fail(fmt.Errorf("read spec: %w", err))
	}
	if spec.Process == nil || spec.Root == nil || spec.Linux == nil {
		return fail(errors.New("spec has no process, root or linux section"))
	}
	// The fifo is opened now, while the host's filesystem is visible,
	// and reopened for writing through /proc once set-up is done.
	fifo, err := unix.Open(path.Join(bundle, FifoFile), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open exec fifo: %w", err))
	}

	// Non-dumpable until exec: processes in the container must not reach
	// this binary through /proc/<pid>/exe.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	// A fresh mount namespace, copied from the host's as it is now (so
	// it has the rootfs, volumes and pod files mounted since this init
	// was started). Other threads of this process stay where they are;
	// only this one execs.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fail(fmt.Errorf("new mount namespace: %w", err))
	}
	// The filesystem is built while the runtime moves this process into
	// the container's cgroup; only the cgroup namespace and the cgroup
	// mounts wait for that.
	if err := setupRootfs(&spec); err != nil {
		return fail(err)
	}
	r := bufio.NewReader(syncFile)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return 1 // the runtime gave up on us
	}
	var msg Message
	if err := json.Unmarshal(line, &msg); err != nil || msg.Type != "joined" {
		return fail(fmt.Errorf("unexpected sync message %q", line))
	}
	if hasNamespace(&spec, specs.CgroupNamespace) {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fail(fmt.Errorf("new cgroup namespace: %w", err))
		}
	}
	if err := mountCgroups(&spec); err != nil {
		return fail(err)
	}
	if spec.Hostname != "" && !hasJoinedNamespace(&spec, specs.UTSNamespace) && hasNamespace(&spec, specs.UTSNamespace) {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fail(fmt.Errorf("set hostname: %w", err))
		}
	}
	prog, err := finishProcess(spec.Process, spec.Linux.Seccomp)
	if err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(syncFile).Encode(Message{Type: "created"}); err != nil {
		return 1
	}
	syncFile.Close()

	// Block until StartContainer opens the other end.
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fifo), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "skiff-init: open exec fifo: %v\n", err)
		return 127
	}
	unix.Write(w, []byte{'0'})
	resetIgnoredSignals()
	err = unix.Exec(prog, spec.Process.Args, spec.Process.Env)
	msgText := fmt.Sprintf("exec %s: %v", spec.Process.Args[0], err)
	unix.Write(w, []byte(msgText))
	fmt.Fprintln(os.Stderr, msgText)
	return 127
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

// receiveAssignment waits on the control socket for the container.
func receiveAssignment(fd int) (Assignment, []*os.File, error) {
	var a Assignment
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return a, nil, fmt.Errorf("wait for container: %w", err)
	}
	if n == 0 {
		return a, nil, errors.New("monitor went away")
	}
	files := parseRights(oob[:oobn])
	if len(files) != 4 {
		return a, nil, fmt.Errorf("assignment with %d descriptors, want 4", len(files))
	}
	if err := json.Unmarshal(buf[:n], &a); err != nil {
		return a, nil, fmt.Errorf("read assignment: %w", err)
	}
	return a, files, nil
}

// prewarm does, while the init waits for its container, the one-time
// work its first use of encoding/json and the capability tables would
// otherwise do on the container's start path.
func prewarm() {
	s := specs.Spec{
		Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}, Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}}},
		Root:    &specs.Root{Path: "/"},
		Mounts:  []specs.Mount{{Destination: "/"}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
			Seccomp:    &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Args: []specs.LinuxSeccompArg{{}}}}},
			Sysctl:     map[string]string{"a": "b"},
		},
		Annotations: map[string]string{"a": "b"},
	}
	data, _ := json.Marshal(&s)
	json.Unmarshal(data, &specs.Spec{})
	caps.Last()
}
