package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"

	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/ns"
)

// drainTimeout bounds how long the shim waits for the output pipes to
// close after the init exits (a process that left the container's PID
// namespace may still hold them).
const drainTimeout = 2 * time.Second

// runShim is the shim's main: argv is [name, bundle]; fd 3 is the sync
// socket to hand to the init; stderr is the bundle's shim.log.
func runShim() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "shim: no bundle")
		return 2
	}
	if err := shimMain(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "%s shim: %v\n", time.Now().Format(time.RFC3339Nano), err)
		return 1
	}
	return 0
}

// shimState is the running shim.
type shimState struct {
	cfg    Config
	log    *logWriter
	master *os.File // the pty master, when Terminal

	mu      sync.Mutex // guards clients and stdin
	clients map[*client]struct{}
	stdin   *os.File // write end of the container's stdin; nil once closed
}

type client struct {
	conn           net.Conn
	stdout, stderr bool
}

func shimMain(bundle string) error {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	if err := os.Chdir(bundle); err != nil {
		return err
	}
	data, err := os.ReadFile(ConfigFile)
	if err != nil {
		return err
	}
	s := &shimState{clients: map[*client]struct{}{}}
	if err := json.Unmarshal(data, &s.cfg); err != nil {
		return fmt.Errorf("read %s: %w", ConfigFile, err)
	}
	syncFile := os.NewFile(3, "sync")
	if s.log, err = openLog(s.cfg.LogPath, s.cfg.LogMaxSize, s.cfg.LogMaxFiles); err != nil {
		return err
	}

	// The container's stdio.
	var child [3]*os.File
	var outputs []*os.File
	var streams []string
	if s.cfg.Terminal {
		master, slave, err := openPty()
		if err != nil {
			return err
		}
		s.master, s.stdin = master, master
		child = [3]*os.File{slave, slave, slave}
		outputs, streams = []*os.File{master}, []string{"stdout"}
	} else {
		if s.cfg.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			child[0], s.stdin = r, w
		} else {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return err
			}
			child[0] = null
		}
		for i, name := range []string{"stdout", "stderr"} {
			r, w, err := os.Pipe()
			if err != nil {
				return err
			}
			child[i+1] = w
			outputs, streams = append(outputs, r), append(streams, name)
		}
	}

	cloneflags := uintptr(unix.CLONE_NEWNS)
	if s.cfg.NewPID {
		cloneflags |= unix.CLONE_NEWPID
	}
	attr := &os.ProcAttr{
		Env:   []string{ReexecEnv + "=" + RoleInit, "GOMAXPROCS=1"},
		Files: []*os.File{child[0], child[1], child[2], syncFile},
		Sys: &syscall.SysProcAttr{
			Cloneflags: cloneflags,
			Setsid:     true,
			Setctty:    s.cfg.Terminal,
			Ctty:       0,
		},
	}
	paths := map[ns.Type]string{}
	for t, p := range s.cfg.Namespaces {
		paths[ns.Type(t)] = p
	}
	var proc *os.Process
	err = ns.Do(paths, func() error {
		var err error
		proc, err = os.StartProcess("/proc/self/exe", []string{"skiff-init", bundle}, attr)
		return err
	})
	if err != nil {
		json.NewEncoder(syncFile).Encode(Message{Type: "error", Error: "start init: " + err.Error()})
		return fmt.Errorf("start init: %w", err)
	}
	initPid := proc.Pid
	proc.Release()
	if err := json.NewEncoder(syncFile).Encode(Message{Type: "pid", Pid: initPid}); err != nil {
		return fmt.Errorf("report init pid: %w", err)
	}
	syncFile.Close()
	for _, f := range child {
		f.Close()
	}

	ln, err := net.Listen("unix", SocketFile)
	if err != nil {
		return fmt.Errorf("listen on control socket: %w", err)
	}
	go s.serve(ln)

	var pumps sync.WaitGroup
	for i, f := range outputs {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			s.pump(f, streams[i])
		}()
	}

	status := waitFor(initPid)
	drained := make(chan struct{})
	go func() { pumps.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
	}
	s.log.close()
	ln.Close()
	s.mu.Lock()
	for c := range s.clients {
		c.conn.Close()
	}
	s.mu.Unlock()
	out, _ := json.Marshal(status)
	if err := writeFileAtomic(ExitFile, out); err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	os.Remove(SocketFile)
	return nil
}

// waitFor reaps children (the shim is a subreaper) until pid exits and
// returns its status.
func waitFor(pid int) ExitStatus {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// ECHILD: the init is gone and nobody reaped it for us.
			return ExitStatus{Pid: pid, ExitCode: 255, FinishedAt: time.Now()}
		}
		if got != pid {
			continue
		}
		st := ExitStatus{Pid: pid, FinishedAt: time.Now()}
		switch {
		case ws.Exited():
			st.ExitCode = ws.ExitStatus()
		case ws.Signaled():
			st.Signal = int(ws.Signal())
			st.ExitCode = 128 + st.Signal
		}
		return st
	}
}

// pump copies one output stream to the log and to attached clients.
func (s *shimState) pump(f *os.File, stream string) {
	defer f.Close()
	buf := make([]byte, 32*1024)
	var pending []byte
	for {
		n, err := f.Read(buf)
		if n > 0 {
			now := time.Now()
			s.broadcast(stream, buf[:n])
			pending = append(pending, buf[:n]...)
			pending = s.log.writeLines(stream, pending, now, false)
		}
		if err != nil {
			// EOF on a pipe; EIO on a pty master once the last slave
			// holder is gone.
			s.log.writeLines(stream, pending, time.Now(), true)
			return
		}
	}
}

func (s *shimState) broadcast(stream string, p []byte) {
	kind := byte(frameStdout)
	if stream == "stderr" {
		kind = frameStderr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		if (kind == frameStdout && !c.stdout) || (kind == frameStderr && !c.stderr) {
			continue
		}
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(c.conn, kind, p); err != nil {
			c.conn.Close()
			delete(s.clients, c)
		}
	}
}

func (s *shimState) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go s.handle(conn)
	}
}

func (s *shimState) handle(conn net.Conn) {
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		s.reply(conn, fmt.Errorf("bad request: %w", err))
		conn.Close()
		return
	}
	switch req.Op {
	case "reopen":
		s.reply(conn, s.log.reopen())
	case "resize":
		s.reply(conn, s.resize(req.Width, req.Height))
	case "close-stdin":
		s.closeStdin()
		s.reply(conn, nil)
	case "attach":
		s.attach(conn, r, req)
		return
	default:
		s.reply(conn, fmt.Errorf("unknown op %q", req.Op))
	}
	conn.Close()
}

func (s *shimState) reply(conn net.Conn, err error) {
	var rep reply
	if err != nil {
		rep.Error = err.Error()
	}
	json.NewEncoder(conn).Encode(rep)
}

func (s *shimState) resize(w, h uint16) error {
	if s.master == nil {
		return errors.New("container has no terminal")
	}
	return unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
}

func (s *shimState) closeStdin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stdin != nil && s.master == nil {
		s.stdin.Close()
		s.stdin = nil
	}
}

// attach streams output to conn and, when asked, its stdin frames into
// the container until the client goes away.
func (s *shimState) attach(conn net.Conn, r *bufio.Reader, req request) {
	s.reply(conn, nil)
	c := &client{conn: conn, stdout: req.Stdout, stderr: req.Stderr}
	s.mu.Lock()
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
		conn.Close()
		if req.Stdin && s.cfg.StdinOnce {
			s.closeStdin()
		}
	}()
	buf := make([]byte, 32*1024)
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
			s.mu.Lock()
			in := s.stdin
			s.mu.Unlock()
			if in != nil {
				in.Write(p)
			}
		case frameCloseStdin:
			if req.Stdin {
				s.closeStdin()
			}
		case frameResize:
			if len(p) == 4 {
				s.resize(uint16(p[0])<<8|uint16(p[1]), uint16(p[2])<<8|uint16(p[3]))
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
