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
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/memtrim"
)

// drainTimeout bounds how long the monitor waits for a container's
// output pipes to close after its init exits (a process that left the
// container's PID namespace may still hold them).
const drainTimeout = 2 * time.Second

// idleExit is how long the monitor lingers with no container and no
// runtime connected before it exits.
const idleExit = 3 * time.Second

// earlyExitTTL is how long the monitor keeps the exit status of a child
// it does not know, in case it is an init whose registration is under way.
const earlyExitTTL = time.Minute

// runMonitor is the monitor's main: argv is [name, dir]; stderr is
// dir/monitor.log.
func runMonitor() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "monitor: no state directory")
		return 2
	}
	if err := monitorMain(os.Args[1]); err != nil {
		logf("monitor: %v", err)
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

// monitor is the running monitor process.
type monitor struct {
	mu         sync.Mutex // guards everything below
	containers map[string]*mcontainer
	byPid      map[int]*mcontainer
	early      map[int]ExitStatus // exits of children not (yet) registered
	subs       map[*os.File]struct{}
	idleSince  time.Time
	// exited is signalled when a child exits (watched with pidfds).
	exited chan struct{}
}

// watch signals m.exited when the child pid exits.
func (m *monitor) watch(pid int) {
	go func() {
		waitExit(pid)
		select {
		case m.exited <- struct{}{}:
		default:
		}
	}()
}

// mcontainer is one container the monitor holds.
type mcontainer struct {
	id, bundle string
	cfg        Config
	pid        int
	log        *logWriter
	master     *os.File // the pty master, when Terminal
	pumps      sync.WaitGroup

	mu      sync.Mutex // guards clients and stdin
	clients map[*client]struct{}
	stdin   *os.File // write end of the container's stdin; nil once closed
}

type client struct {
	conn           *os.File
	stdout, stderr bool
}

// forgetDelay is how long after start the monitor drops its mappings of
// the executable: before the agent trims its memory.
const forgetDelay = time.Second

func monitorMain(dir string) error {
	ignoreSignals(unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	m := &monitor{
		containers: map[string]*mcontainer{}, byPid: map[int]*mcontainer{}, early: map[int]ExitStatus{},
		subs:      map[*os.File]struct{}{},
		idleSince: time.Now(),
	}
	exited := make(chan struct{}, 1)
	m.exited = exited
	ln, err := listenUnix(MonitorSocket)
	if err != nil {
		return err
	}
	go m.serve(ln)
	// The monitor shares the skiff executable with the node agent and
	// runs little of it: let go of the pages start-up touched, so that
	// the agent's own trim can free them (see memtrim.Forget).
	time.AfterFunc(forgetDelay, func() { _, _ = memtrim.Forget() })
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			m.reap()
		case <-tick.C:
			m.reap()
			if m.idle() {
				ln.Close()
				os.Remove(MonitorSocket)
				return nil
			}
		}
	}
}

// idle reports whether the monitor has had nothing to do for idleExit.
func (m *monitor) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.containers) > 0 {
		m.idleSince = time.Now()
		return false
	}
	if m.idleSince.IsZero() {
		return true
	}
	if len(m.subs) > 0 {
		m.idleSince = time.Now()
		return false
	}
	return time.Since(m.idleSince) > idleExit
}

// reap collects exited children.
func (m *monitor) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if !ws.Exited() && !ws.Signaled() {
			continue
		}
		st := ExitStatus{Pid: pid, FinishedAt: time.Now()}
		if ws.Exited() {
			st.ExitCode = ws.ExitStatus()
		} else {
			st.Signal = int(ws.Signal())
			st.ExitCode = 128 + st.Signal
		}
		m.mu.Lock()
		c := m.byPid[pid]
		if c == nil {
			// An init not registered yet, or an orphan from a container
			// in the host's PID namespace: kept a while for the former.
			for p, e := range m.early {
				if time.Since(e.FinishedAt) > earlyExitTTL {
					delete(m.early, p)
				}
			}
			m.early[pid] = st
		}
		m.mu.Unlock()
		if c != nil {
			go m.finish(c, st)
		}
	}
}

// finish records a container's exit once its output has drained.
func (m *monitor) finish(c *mcontainer, st ExitStatus) {
	drained := make(chan struct{})
	go func() { c.pumps.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	c.log.close()
	c.mu.Lock()
	for cl := range c.clients {
		cl.conn.Close()
	}
	c.mu.Unlock()
	out, _ := json.Marshal(st)
	if err := writeFileAtomic(path.Join(c.bundle, ExitFile), out); err != nil {
		logf("container %s: write exit status: %v", c.id, err)
	}
	m.mu.Lock()
	delete(m.containers, c.id)
	delete(m.byPid, c.pid)
	subs := make([]*os.File, 0, len(m.subs))
	for s := range m.subs {
		subs = append(subs, s)
	}
	m.mu.Unlock()
	ev, _ := json.Marshal(Event{Type: "exit", ID: c.id})
	for _, s := range subs {
		s.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.Write(append(ev, '\n')); err != nil {
			s.Close()
		}
	}
}

func (m *monitor) serve(ln *os.File) {
	for {
		conn, err := accept(ln)
		if errors.Is(err, os.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors, say: the runtime still needs us to
			// answer once it passes.
			logf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go m.handle(conn)
	}
}

func (m *monitor) handle(conn *os.File) {
	buf := make([]byte, 64*1024)
	n, files, err := recvMsg(conn, buf)
	if err != nil || n == 0 {
		conn.Close()
		return
	}
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
	}
	var req request
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		closeFiles()
		reply(conn, fmt.Errorf("bad request: %w", err))
		conn.Close()
		return
	}
	if req.Op == "events" {
		closeFiles()
		m.subscribe(conn)
		return
	}
	if req.Op == "shutdown" {
		// Exit now if there is nothing to keep; the runtime asks this
		// when it stops with no container left.
		m.mu.Lock()
		if len(m.containers) == 0 {
			m.idleSince = time.Time{}
		}
		m.mu.Unlock()
		reply(conn, nil)
		conn.Close()
		return
	}
	if req.Op == "create" {
		pid, err := m.create(req, files)
		closeFiles()
		var setup *SetupError
		json.NewEncoder(conn).Encode(reply2{Pid: pid, Error: errText(err), Setup: errors.As(err, &setup)})
		conn.Close()
		return
	}
	closeFiles()
	m.mu.Lock()
	c := m.containers[req.ID]
	m.mu.Unlock()
	if c == nil {
		reply(conn, fmt.Errorf("container %s: %w", req.ID, ErrNotRunning))
		conn.Close()
		return
	}
	switch req.Op {
	case "reopen":
		reply(conn, c.log.reopen())
	case "resize":
		reply(conn, c.resize(req.Width, req.Height))
	case "close-stdin":
		c.closeStdin()
		reply(conn, nil)
	case "attach":
		c.attach(conn, bufio.NewReader(conn), req)
		return
	default:
		reply(conn, fmt.Errorf("unknown op %q", req.Op))
	}
	conn.Close()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func reply(conn *os.File, err error) {
	json.NewEncoder(conn).Encode(reply2{Error: errText(err)})
}

func parseRights(oob []byte) []*os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var out []*os.File
	for _, msg := range msgs {
		fds, err := unix.ParseUnixRights(&msg)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			out = append(out, os.NewFile(uintptr(fd), "passed"))
		}
	}
	return out
}

// subscribe streams exit events to conn, after a snapshot of the live
// containers.
func (m *monitor) subscribe(conn *os.File) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.containers))
	for id := range m.containers {
		ids = append(ids, id)
	}
	data, _ := json.Marshal(Event{Type: "live", IDs: ids})
	conn.Write(append(data, '\n'))
	m.subs[conn] = struct{}{}
	m.mu.Unlock()
	// The runtime never writes; a read returns when it goes away.
	var b [1]byte
	conn.Read(b[:])
	m.mu.Lock()
	delete(m.subs, conn)
	m.mu.Unlock()
	conn.Close()
}

// create hands a container to an init: files[0] is the runtime's end of
// the sync socket, which the init gets. It returns the init's PID.
func (m *monitor) create(req request, files []*os.File) (int, error) {
	if req.Config == nil || req.ID == "" || req.Bundle == "" || len(files) != 1 {
		return 0, errors.New("create: need id, bundle, config and the sync socket")
	}
	cfg := *req.Config
	c := &mcontainer{id: req.ID, bundle: req.Bundle, cfg: cfg, clients: map[*client]struct{}{}}
	var err error
	if c.log, err = openLog(cfg.LogPath, cfg.LogMaxSize, cfg.LogMaxFiles); err != nil {
		return 0, err
	}
	var child [3]*os.File
	var outputs []*os.File
	var streams []string
	defer func() {
		for _, f := range child {
			if f != nil {
				f.Close()
			}
		}
	}()
	if cfg.Terminal {
		master, slave, err := openPty()
		if err != nil {
			return 0, err
		}
		c.master, c.stdin = master, master
		child = [3]*os.File{slave, nil, nil}
		outputs, streams = []*os.File{master}, []string{"stdout"}
	} else {
		if cfg.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return 0, err
			}
			child[0], c.stdin = r, w
		} else if child[0], err = os.Open(os.DevNull); err != nil {
			return 0, err
		}
		for i, name := range []string{"stdout", "stderr"} {
			r, w, err := os.Pipe()
			if err != nil {
				return 0, err
			}
			child[i+1] = w
			outputs, streams = append(outputs, r), append(streams, name)
		}
	}
	stdio := [3]int{int(child[0].Fd()), int(child[1].Fd()), int(child[2].Fd())}
	if cfg.Terminal {
		stdio = [3]int{stdio[0], stdio[0], stdio[0]}
	}
	var spec specs.Spec
	data, err := os.ReadFile(path.Join(req.Bundle, SpecFile))
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		return 0, fmt.Errorf("read spec: %w", err)
	}
	// The init is forked from a thread that joins the container's
	// namespaces and root: it never returns to the Go scheduler, and
	// exits with this goroutine.
	// The init writes a byte to started as soon as it runs; its PID is
	// in tid by then.
	started, startedW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer started.Close()
	tid := new(int32)
	forked := make(chan error, 2)
	go func() {
		runtime.LockOSThread()
		defer startedW.Close()
		p, err := prepareInit(&spec, req.Bundle, cfg, stdio, int(files[0].Fd()))
		if err != nil {
			forked <- &SetupError{Reason: err.Error()}
			return
		}
		p.tid, p.started = tid, int(startedW.Fd())
		// Returns once the container's program runs (or the init gave
		// up): this thread is the init's until then.
		_, err = forkInit(p)
		unix.Close(p.fifo)
		runtime.KeepAlive(p)
		if err != nil {
			forked <- fmt.Errorf("fork init: %w", err)
		}
	}()
	go func() {
		// Nothing to read: prepareInit or the fork failed (and said so
		// first), or the init died before its first step.
		var b [1]byte
		if n, _ := started.Read(b[:]); n == 1 {
			forked <- nil
		} else {
			forked <- errors.New("container init exited before it started")
		}
	}()
	if err := <-forked; err != nil {
		return 0, err
	}
	c.pid = int(atomic.LoadInt32(tid))
	m.mu.Lock()
	m.containers[c.id] = c
	m.byPid[c.pid] = c
	st, gone := m.early[c.pid]
	delete(m.early, c.pid)
	m.mu.Unlock()
	if gone {
		go m.finish(c, st)
	}
	m.watch(c.pid)
	for i, f := range outputs {
		c.pumps.Add(1)
		go func() {
			defer c.pumps.Done()
			c.pump(f, streams[i])
		}()
	}
	return c.pid, nil
}

// pump copies one output stream to the log and to attached clients.
func (c *mcontainer) pump(f *os.File, stream string) {
	defer f.Close()
	buf := make([]byte, 16*1024)
	var pending []byte
	for {
		n, err := f.Read(buf)
		if n > 0 {
			now := time.Now()
			c.broadcast(stream, buf[:n])
			pending = append(pending, buf[:n]...)
			pending = c.log.writeLines(stream, pending, now, false)
		}
		if err != nil {
			// EOF on a pipe; EIO on a pty master once the last slave
			// holder is gone.
			c.log.writeLines(stream, pending, time.Now(), true)
			return
		}
	}
}

func (c *mcontainer) broadcast(stream string, p []byte) {
	kind := byte(frameStdout)
	if stream == "stderr" {
		kind = frameStderr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for cl := range c.clients {
		if (kind == frameStdout && !cl.stdout) || (kind == frameStderr && !cl.stderr) {
			continue
		}
		cl.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(cl.conn, kind, p); err != nil {
			cl.conn.Close()
			delete(c.clients, cl)
		}
	}
}

func (c *mcontainer) resize(w, h uint16) error {
	if c.master == nil {
		return errors.New("container has no terminal")
	}
	return unix.IoctlSetWinsize(int(c.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
}

func (c *mcontainer) closeStdin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdin != nil && c.master == nil {
		c.stdin.Close()
		c.stdin = nil
	}
}

// attach streams output to conn and, when asked, its stdin frames into
// the container until the client goes away.
func (c *mcontainer) attach(conn *os.File, r *bufio.Reader, req request) {
	reply(conn, nil)
	cl := &client{conn: conn, stdout: req.Stdout, stderr: req.Stderr}
	c.mu.Lock()
	c.clients[cl] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.clients, cl)
		c.mu.Unlock()
		conn.Close()
		if req.Stdin && c.cfg.StdinOnce {
			c.closeStdin()
		}
	}()
	buf := make([]byte, 16*1024)
	for {
		kind, p, err := readFrame(r, buf)
		if err != nil {
			return
		}
		switch kind {
		case frameStdin:
			if !req.Stdin {
				continue
			}
			c.mu.Lock()
			in := c.stdin
			c.mu.Unlock()
			if in != nil {
				in.Write(p)
			}
		case frameCloseStdin:
			if req.Stdin {
				c.closeStdin()
			}
		case frameResize:
			if len(p) == 4 {
				c.resize(uint16(p[0])<<8|uint16(p[1]), uint16(p[2])<<8|uint16(p[3]))
			}
		}
	}
}

func openPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
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
