package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/container/shim"
	"github.com/skiff-sh/skiff/internal/sys/caps"
	"github.com/skiff-sh/skiff/internal/sys/ns"
)

// ExecOptions are the streams of a process run in a container. Nil
// streams are not connected (the process gets /dev/null).
type ExecOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TTY gives the process a pty; its output all goes to Stdout.
	TTY bool
	// Resize delivers terminal sizes (width, height) when TTY is set.
	Resize <-chan [2]uint16
}

// running returns the container's init PID and start time, or an error
// when it is not running.
func (r *Runtime) running(id string) (*ctr, int, uint64, error) {
	c, err := r.lookupContainer(id)
	if err != nil {
		return nil, 0, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != stateRunning {
		return nil, 0, 0, errNotRunning(c.rec.ID)
	}
	return c, c.rec.Pid, c.rec.PidStart, nil
}

// Exec runs cmd inside the running container with its user, environment,
// working directory, capabilities, seccomp profile and cgroup, and returns
// its exit code once it exits. When ctx ends the process is killed.
// A command that cannot be run fails with ErrInvalid.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, o ExecOptions) (int, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("exec: no command: %w", ErrInvalid)
	}
	c, pid, start, err := r.running(id)
	if err != nil {
		return 0, err
	}
	var sp specs.Spec
	data, err := os.ReadFile(filepath.Join(c.bundle, shim.SpecFile))
	if err == nil {
		err = json.Unmarshal(data, &sp)
	}
	if err != nil || sp.Process == nil || sp.Linux == nil {
		return 0, fmt.Errorf("exec in %s: read spec: %v", c.rec.ID, err)
	}
	proc := *sp.Process
	proc.Args = cmd
	proc.Terminal = o.TTY

	pidfd, err := pidfdFor(pid, start)
	if err != nil || pidfd < 0 {
		return 0, errNotRunning(c.rec.ID)
	}
	defer unix.Close(pidfd)
	base := "/proc/" + strconv.Itoa(pid) + "/ns/"
	paths := map[ns.Type]string{ns.Net: base + "net", ns.IPC: base + "ipc", ns.UTS: base + "uts", ns.Cgroup: base + "cgroup"}
	for _, n := range sp.Linux.Namespaces {
		if n.Type == specs.PIDNamespace {
			paths[ns.PID] = base + "pid"
		}
	}
	mnt, err := os.Open(base + "mnt")
	if err != nil {
		return 0, errNotRunning(c.rec.ID)
	}
	defer mnt.Close()

	var command *exec.Cmd
	var master *os.File
	var stdio func(cmd *exec.Cmd)
	if o.TTY {
		m, slave, err := openPty()
		if err != nil {
			return 0, err
		}
		master = m
		defer master.Close()
		defer slave.Close()
		stdio = func(cmd *exec.Cmd) { cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave }
	} else {
		stdio = func(cmd *exec.Cmd) { cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr }
	}
	if sp.Linux.Seccomp == nil && len(proc.Rlimits) == 0 && c.cgroup != nil {
		command = &exec.Cmd{Env: proc.Env, SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: o.TTY}}
		stdio(command)
		paths[ns.Mount] = base + "mnt"
		if err := startInContainer(command, &proc, paths, c.cgroup); err != nil {
			if errors.Is(err, errNoProgram) {
				return 0, fmt.Errorf("exec in %s: %w: %w", c.rec.ID, err, ErrInvalid)
			}
			return 0, fmt.Errorf("exec in %s: %w", c.rec.ID, err)
		}
	} else {
		if command, err = r.startExecInit(c, proc, sp.Linux.Seccomp, paths, mnt, stdio); err != nil {
			return 0, err
		}
	}
	if o.TTY {
		command.Stdin.(*os.File).Close()
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- command.Wait() }()
	// EOF: the exec succeeded and closed the socket.
	if o.TTY {
		if o.Stdin != nil {
			go io.Copy(master, o.Stdin)
		}
		if o.Resize != nil {
			go func() {
				for sz := range o.Resize {
					unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: sz[0], Row: sz[1]})
				}
			}()
		}
		copied := make(chan struct{})
		go func() {
			if o.Stdout != nil {
				io.Copy(o.Stdout, master)
			} else {
				io.Copy(io.Discard, master)
			}
			close(copied)
		}()
		defer func() {
			select {
			case <-copied:
			case <-time.After(time.Second):
			}
		}()
	}
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		command.Process.Kill()
		<-waitErr
		return 0, ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	return 0, err
}

// startExecInit starts proc in the container through the exec-init
// helper, which also applies seccomp and rlimits: it is started in the
// container's namespaces but the mount one, moved into the container's
// cgroup, sent the process spec, and execs the program (success closes
// the sync socket).
func (r *Runtime) startExecInit(c *ctr, proc specs.Process, sc *specs.LinuxSeccomp, paths map[ns.Type]string, mnt *os.File, stdio func(*exec.Cmd)) (*exec.Cmd, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parent := os.NewFile(uintptr(fds[0]), "sync")
	child := os.NewFile(uintptr(fds[1]), "sync")
	defer parent.Close()
	defer child.Close()
	command := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"skiff-exec"},
		Env:         []string{shim.ReexecEnv + "=" + shim.RoleExec, "GOMAXPROCS=1"},
		ExtraFiles:  []*os.File{child, mnt},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: proc.Terminal},
	}
	stdio(command)
	if err := ns.Do(paths, command.Start); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.rec.ID, err)
	}
	child.Close()
	fail := func(err error) (*exec.Cmd, error) {
		command.Process.Kill()
		command.Wait()
		return nil, err
	}
	if c.cgroup != nil {
		if err := c.cgroup.AddProc(command.Process.Pid); err != nil {
			return fail(fmt.Errorf("exec in %s: join cgroup: %w", c.rec.ID, err))
		}
	}
	conn, err := net.FileConn(parent)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := json.NewEncoder(conn).Encode(shim.Message{Type: "config", Exec: &shim.ExecConfig{Process: proc, Seccomp: sc}}); err != nil {
		return fail(fmt.Errorf("exec in %s: %w", c.rec.ID, err))
	}
	var m shim.Message
	if err := json.NewDecoder(conn).Decode(&m); err == nil && m.Type == "error" {
		return fail(fmt.Errorf("exec in %s: %s: %w", c.rec.ID, m.Error, ErrInvalid))
	}
	return command, nil
}

// errNoProgram is returned (wrapped) when the program to exec is not in
// the container.
var errNoProgram = errors.New("executable file not found")

// startInContainer starts proc in the running container without a helper
// process: a throw-away thread moves itself into the container's cgroups
// (per thread on cgroup v1; the child is cloned into the cgroup2 one),
// joins all the container's namespaces, drops the capability bounding set
// and sets no_new_privs; the process cloned from it inherits all of that,
// takes the container's user and groups, and execs the program from the
// container's filesystem. It cannot apply seccomp or rlimits without
// risking the runtime's own thread; callers use the exec-init for those.
func startInContainer(cmd *exec.Cmd, proc *specs.Process, paths map[ns.Type]string, cg Cgroup) error {
	var bounding, ambient caps.Set
	if pc := proc.Capabilities; pc != nil {
		var err error
		if bounding, err = caps.ParseSet(pc.Bounding); err != nil {
			return err
		}
		if ambient, err = caps.ParseSet(pc.Ambient); err != nil {
			return err
		}
	}
	// The cgroup files are opened now, in the runtime's mount namespace.
	var tasks []*os.File
	defer func() {
		for _, f := range tasks {
			f.Close()
		}
	}()
	seen := map[string]bool{}
	for ctl, dir := range cg.Dirs() {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if ctl == "" {
			fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open cgroup %s: %w", dir, err)
			}
			defer unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, "tasks"), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open cgroup %s: %w", dir, err)
		}
		tasks = append(tasks, f)
	}
	groups := make([]uint32, len(proc.User.AdditionalGids))
	copy(groups, proc.User.AdditionalGids)
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: proc.User.UID, Gid: proc.User.GID, Groups: groups}
	for _, c := range ambient.Caps() {
		cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(c))
	}
	cmd.Args = proc.Args
	cmd.Dir = proc.Cwd
	join := func() error {
		tid := []byte(strconv.Itoa(unix.Gettid()))
		for _, f := range tasks {
			if _, err := f.Write(tid); err != nil {
				return fmt.Errorf("join cgroup %s: %w", f.Name(), err)
			}
		}
		return nil
	}
	// Cgroups first: their files are the host's, but a thread cannot
	// join them from inside ns.Do's namespaces... it can, through the
	// descriptors opened above.
	return ns.Do(paths, func() error {
		if err := join(); err != nil {
			return err
		}
		if err := caps.DropBounding(bounding); err != nil {
			return err
		}
		if proc.NoNewPrivileges {
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				return err
			}
		}
		path, err := lookPath(proc.Args[0], proc.Env, proc.Cwd)
		if err != nil {
			return err
		}
		cmd.Path = path
		return cmd.Start()
	})
}

// lookPath finds the program in the container (the calling thread is in
// its mount namespace) the way execvp does, with the container's PATH.
func lookPath(name string, env []string, cwd string) (string, error) {
	isExec := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if !isExec(p) {
			return "", fmt.Errorf("%q: %w", name, errNoProgram)
		}
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if p := filepath.Join(dir, name); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w in $PATH", name, errNoProgram)
}

// ExecSync runs cmd in the container and returns its output and exit
// code. A timeout of 0 means none; on timeout the process is killed and
// the error wraps context.DeadlineExceeded.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (stdout, stderr []byte, code int, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var out, errb limitedBuffer
	out.max, errb.max = 16<<20, 16<<20
	code, err = r.Exec(ctx, id, cmd, ExecOptions{Stdout: &out, Stderr: &errb})
	return out.b, errb.b, code, err
}

// limitedBuffer keeps at most max bytes.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Attach connects the streams to a running container's stdio (through
// its shim) until the container exits or ctx ends.
func (r *Runtime) Attach(ctx context.Context, id string, o ExecOptions) error {
	c, _, _, err := r.running(id)
	if err != nil {
		return err
	}
	err = shim.Attach(ctx, r.cfg.Root, c.rec.ID, shim.AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Resize: o.Resize})
	if errors.Is(err, shim.ErrNotRunning) {
		return errNotRunning(c.rec.ID)
	}
	return err
}

// PortForward connects stream to port on the sandbox's loopback: it dials
// from inside the pod's network namespace and copies both ways until
// either side closes.
func (r *Runtime) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	s, err := r.lookupSandbox(sandboxID)
	if err != nil {
		return err
	}
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port forward: port %d: %w", port, ErrInvalid)
	}
	s.mu.Lock()
	netns := s.rec.Namespaces["net"]
	ready := s.rec.State == sandboxReady
	s.mu.Unlock()
	if !ready {
		return fmt.Errorf("sandbox %s is not ready: %w", s.rec.ID, ErrNotReady)
	}
	var conn net.Conn
	dial := func() error {
		var d net.Dialer
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
		c, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			c, err = d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port))))
		}
		conn = c
		return err
	}
	if netns != "" {
		err = ns.Do(map[ns.Type]string{ns.Net: netns}, dial)
	} else {
		err = dial()
	}
	if err != nil {
		return fmt.Errorf("port forward to %s port %d: %w", s.rec.ID, port, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func openPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", err)
	}
	return master, slave, nil
}
