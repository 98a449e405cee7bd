package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"syscall"
	"time"
)

// StartMonitor starts the monitor for dir (the runtime's root), in its
// own session. Its errors go to dir/monitor.log.
// The caller reaps it (it is the caller's child) and records its PID.
func StartMonitor(dir string) (*os.Process, error) {
	logf, err := os.OpenFile(path.Join(dir, MonitorLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	proc, err := os.StartProcess("/proc/self/exe", []string{"skiff-monitor", dir}, &os.ProcAttr{
		Env:   []string{ReexecEnv + "=" + RoleMonitor, "GOMAXPROCS=2", "GOGC=50"},
		Files: []*os.File{null, logf, logf},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	return proc, nil
}

// dial connects to the monitor in dir. The socket is reached through
// /proc/self/fd, which keeps the path short whatever dir's length (unix
// socket paths are limited to 108 bytes).
func dial(dir string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	defer d.Close()
	conn, err := dialUnix(fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), MonitorSocket))
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: monitor: %w", ErrNotRunning, err)
		}
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return conn, nil
}

// Ping reports whether a monitor answers in dir.
func Ping(dir string) bool {
	conn, err := dial(dir)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// callTimeout bounds a request to the monitor, so that a wedged monitor
// gives errors rather than hangs.
const callTimeout = 30 * time.Second

func call(dir string, req request) (reply2, error) {
	conn, err := dial(dir)
	if err != nil {
		return reply2{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(callTimeout))
	data, _ := json.Marshal(req)
	if _, err := conn.Write(data); err != nil {
		return reply2{}, err
	}
	var rep reply2
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		return rep, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	if rep.Error != "" {
		if req.ID != "" && rep.Error == fmt.Sprintf("container %s: %s", req.ID, ErrNotRunning) {
			return rep, fmt.Errorf("container %s: %w", req.ID, ErrNotRunning)
		}
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

// Create asks the monitor in dir to run the container in bundle: it hands
// the container to an init, which then speaks the sync protocol on sync
// (see Message). It returns the init's PID.
func Create(dir, id, bundle string, cfg Config, sync *os.File) (int, error) {
	conn, err := dial(dir)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(callTimeout))
	data, _ := json.Marshal(request{Op: "create", ID: id, Bundle: bundle, Config: &cfg})
	if err := sendMsg(conn, data, []int{int(sync.Fd())}); err != nil {
		return 0, fmt.Errorf("monitor: %w", err)
	}
	var rep reply2
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		return 0, fmt.Errorf("%w: monitor: %w", ErrNotRunning, err)
	}
	if rep.Setup {
		return 0, &SetupError{Reason: rep.Error}
	}
	if rep.Error != "" {
		return 0, errors.New(rep.Error)
	}
	return rep.Pid, nil
}

// EventStream is a subscription to the monitor's events.
type EventStream struct {
	conn  *os.File
	dec   *json.Decoder
	first bool // the snapshot is still to come
}

// Events subscribes to the monitor in dir. The first event is the "live"
// snapshot.
func Events(dir string) (*EventStream, error) {
	conn, err := dial(dir)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(request{Op: "events"})
	if _, err := conn.Write(data); err != nil {
		conn.Close()
		return nil, err
	}
	// The monitor answers at once with the live snapshot.
	conn.SetReadDeadline(time.Now().Add(callTimeout))
	return &EventStream{conn: conn, dec: json.NewDecoder(conn), first: true}, nil
}

// Next returns the next event; it fails when the monitor goes away or the
// stream is closed.
func (s *EventStream) Next() (Event, error) {
	var ev Event
	err := s.dec.Decode(&ev)
	if s.first {
		s.first = false
		s.conn.SetReadDeadline(time.Time{})
	}
	return ev, err
}

// Close ends the subscription.
func (s *EventStream) Close() error { return s.conn.Close() }

// Shutdown asks the monitor in dir to exit if it holds no container.
func Shutdown(dir string) error {
	_, err := call(dir, request{Op: "shutdown"})
	return err
}

// Reopen asks the monitor to reopen the container's log file.
func Reopen(dir, id string) error {
	_, err := call(dir, request{Op: "reopen", ID: id})
	return err
}

// Resize sets the size of the container's terminal.
func Resize(dir, id string, width, height uint16) error {
	_, err := call(dir, request{Op: "resize", ID: id, Width: width, Height: height})
	return err
}

// AttachOptions are the streams of an attach. Nil streams are not
// attached.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize delivers terminal sizes (width, height) for the container's
	// pty.
	Resize <-chan [2]uint16
}

// Attach connects the streams to the running container until it exits,
// ctx is done, or stdin ends for a StdinOnce container. It returns nil
// when the container's output ended.
func Attach(ctx context.Context, dir, id string, o AttachOptions) error {
	conn, err := dial(dir)
	if err != nil {
		return err
	}
	defer conn.Close()
	data, _ := json.Marshal(request{Op: "attach", ID: id, Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil})
	if _, err := conn.Write(data); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(callTimeout))
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	conn.SetReadDeadline(time.Time{})
	var rep reply2
	if err := json.Unmarshal(line, &rep); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("attach: %w", ErrNotRunning)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	done := make(chan struct{})
	defer close(done)
	if o.Stdin != nil {
		go func() {
			buf := make([]byte, 32*1024)
			for {
				n, err := o.Stdin.Read(buf)
				if n > 0 {
					if writeFrame(conn, frameStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					writeFrame(conn, frameCloseStdin, nil)
					return
				}
			}
		}()
	}
	if o.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					p := []byte{byte(sz[0] >> 8), byte(sz[0]), byte(sz[1] >> 8), byte(sz[1])}
					if writeFrame(conn, frameResize, p) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	buf := make([]byte, 32*1024)
	for {
		kind, p, err := readFrame(r, buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		switch kind {
		case frameStdout:
			if o.Stdout != nil {
				o.Stdout.Write(p)
			}
		case frameStderr:
			if o.Stderr != nil {
				o.Stderr.Write(p)
			}
		}
	}
}
