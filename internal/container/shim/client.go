package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// dial connects to the shim of the container in bundle. The socket is
// reached through /proc/self/fd, which keeps the path short whatever the
// bundle's length (unix socket paths are limited to 108 bytes).
func dial(bundle string) (net.Conn, error) {
	dir, err := os.Open(bundle)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	defer dir.Close()
	conn, err := net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), SocketFile))
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return nil, err
	}
	return conn, nil
}

func call(bundle string, req request) error {
	conn, err := dial(bundle)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return err
	}
	var rep reply
	if err := json.NewDecoder(conn).Decode(&rep); err != nil {
		return fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	if rep.Error != "" {
		return errors.New(rep.Error)
	}
	return nil
}

// Reopen asks the shim to reopen the container's log file.
func Reopen(bundle string) error { return call(bundle, request{Op: "reopen"}) }

// Resize sets the size of the container's terminal.
func Resize(bundle string, width, height uint16) error {
	return call(bundle, request{Op: "resize", Width: width, Height: height})
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
func Attach(ctx context.Context, bundle string, o AttachOptions) error {
	conn, err := dial(bundle)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := request{Op: "attach", Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotRunning, err)
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil || rep.Error != "" {
		return fmt.Errorf("attach: %s", rep.Error)
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
