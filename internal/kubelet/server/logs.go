package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// followPoll is how often a followed log is checked for new lines, and
// runningPoll how often the container is asked whether it still runs.
const (
	followPoll  = 100 * time.Millisecond
	runningPoll = time.Second
)

// logOptions are the query parameters of /containerLogs.
type logOptions struct {
	follow     bool
	tail       int64 // -1: all
	since      time.Time
	timestamps bool
	limitBytes int64  // 0: no limit
	stream     string // "", "stdout" or "stderr"
}

// parseLogOptions reads the query the way the kubelet does: follow,
// previous, tailLines, sinceSeconds, sinceTime (RFC 3339), timestamps,
// limitBytes and stream (All, Stdout, Stderr).
func parseLogOptions(r *http.Request, now time.Time) (logOptions, bool, error) {
	q := r.URL.Query()
	o := logOptions{tail: -1}
	var err error
	boolParam := func(name string) bool {
		v := q.Get(name)
		if v == "" || err != nil {
			return false
		}
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			err = fmt.Errorf("%s=%q: not a boolean", name, v)
		}
		return b
	}
	intParam := func(name string) int64 {
		v := q.Get(name)
		if v == "" || err != nil {
			return 0
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			err = fmt.Errorf("%s=%q: not an integer", name, v)
		}
		return n
	}
	o.follow = boolParam("follow")
	previous := boolParam("previous")
	o.timestamps = boolParam("timestamps")
	if q.Has("tailLines") {
		if o.tail = intParam("tailLines"); o.tail < 0 && err == nil {
			err = errors.New("tailLines must not be negative")
		}
	}
	if q.Has("limitBytes") {
		if o.limitBytes = intParam("limitBytes"); o.limitBytes <= 0 && err == nil {
			err = errors.New("limitBytes must be positive")
		}
	}
	if q.Has("sinceSeconds") {
		secs := intParam("sinceSeconds")
		if secs <= 0 && err == nil {
			err = errors.New("sinceSeconds must be positive")
		}
		o.since = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" && err == nil {
		if q.Has("sinceSeconds") {
			err = errors.New("sinceSeconds and sinceTime cannot both be set")
		} else if t, perr := time.Parse(time.RFC3339, v); perr != nil {
			err = fmt.Errorf("sinceTime=%q: not an RFC 3339 time", v)
		} else {
			o.since = t
		}
	}
	switch v := q.Get("stream"); v {
	case "", "All":
	case "Stdout":
		o.stream = "stdout"
	case "Stderr":
		o.stream = "stderr"
	default:
		if err == nil {
			err = fmt.Errorf("stream=%q: want All, Stdout or Stderr", v)
		}
	}
	if o.stream != "" && o.tail >= 0 && err == nil {
		err = errors.New("tailLines cannot be combined with a single stream")
	}
	return o, previous, err
}

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, podName, name := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	opts, previous, err := parseLogOptions(r, s.clock.Now())
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	if _, ok := s.lookupPod(w, r); !ok {
		return
	}
	ref, err := s.cfg.Pods.Container(r.Context(), ns, podName, name, previous)
	if err != nil {
		containerError(w, ns, podName, name, err)
		return
	}
	f, err := os.Open(ref.LogPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// A container that never wrote has no file yet; an empty log.
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusOK)
			if !opts.follow || !ref.Running {
				return
			}
			if f, err = waitForFile(r.Context(), s.clock, ref.LogPath, s.runningFunc(ref.ID)); err != nil || f == nil {
				return
			}
		} else {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("open log of container %q: %v", name, err))
			return
		}
	} else {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
	}
	defer f.Close()
	if !ref.Running {
		opts.follow = false
	}
	out := &flushWriter{w: w}
	if fl, ok := w.(http.Flusher); ok {
		out.f = fl
	}
	lr := &logReader{path: ref.LogPath, opts: opts, clock: s.clock, running: s.runningFunc(ref.ID)}
	if err := lr.copy(r.Context(), f, out); err != nil && !errors.Is(err, errLimit) && r.Context().Err() == nil {
		s.log.Debug("log stream ended", "pod", ns+"/"+podName, "container", name, "err", err)
	}
}

// runningFunc asks the runtime whether the container still runs.
func (s *Server) runningFunc(id string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		st, err := s.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		return err == nil && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
	}
}

// waitForFile waits for a followed container's first log line.
func waitForFile(ctx context.Context, clk clock.Clock, path string, running func(context.Context) bool) (*os.File, error) {
	lastCheck := clk.Now()
	for {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if clk.Since(lastCheck) >= runningPoll {
			if !running(ctx) {
				return nil, nil
			}
			lastCheck = clk.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-clk.After(followPoll):
		}
	}
}

// flushWriter flushes every write so that followers see lines at once.
type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// errLimit ends a read at limitBytes.
var errLimit = errors.New("limitBytes reached")

// logReader copies a CRI log file to a client.
type logReader struct {
	path    string
	opts    logOptions
	clock   clock.Clock
	running func(context.Context) bool
	// written counts bytes sent, for limitBytes; midLine says the last
	// entry sent was a partial one, so no timestamp starts the next.
	written int64
	midLine bool
	buf     []byte // reused for each entry
	long    []byte // reused for lines longer than the read buffer
}

// entry is one parsed line of the CRI log format:
//
//	2016-10-06T00:17:09.669794202Z stdout F the whole line
//	2016-10-06T00:17:09.669794202Z stderr P the start of a long li
type entry struct {
	ts      time.Time // set when parseEntry was asked for it
	rawTS   []byte
	stream  string
	partial bool
	msg     []byte
}

// parseEntry parses one line (without its newline). Parsing the time is
// most of the cost, so it is done only when withTime is set; the
// timestamp's shape is checked either way.
func parseEntry(line []byte, withTime bool) (entry, error) {
	var e entry
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(ts) < len("2006-01-02T15:04:05Z") || ts[4] != '-' || ts[10] != 'T' {
		return e, fmt.Errorf("log line without a timestamp: %q", truncate(line))
	}
	if withTime {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			return e, fmt.Errorf("log line timestamp %q: %w", truncate(ts), err)
		}
		e.ts = t
	}
	e.rawTS = ts
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	switch {
	case ok && string(stream) == "stdout":
		e.stream = "stdout"
	case ok && string(stream) == "stderr":
		e.stream = "stderr"
	default:
		return e, fmt.Errorf("log line without a stream: %q", truncate(line))
	}
	// The tag ("P" partial, "F" full, possibly more ":"-separated
	// fields) is absent from runtimes that predate it.
	tag, msg, ok := bytes.Cut(rest, []byte{' '})
	switch {
	case ok && (bytes.Equal(tag, []byte("F")) || bytes.HasPrefix(tag, []byte("F:"))):
		e.msg = msg
	case ok && (bytes.Equal(tag, []byte("P")) || bytes.HasPrefix(tag, []byte("P:"))):
		e.msg, e.partial = msg, true
	case !ok && (bytes.Equal(rest, []byte("F")) || bytes.Equal(rest, []byte("P"))):
		e.partial = rest[0] == 'P'
	default:
		e.msg = rest
	}
	return e, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// copy writes the log from f to w with the reader's options, following
// the file (across rotation) while the container runs when asked to.
func (lr *logReader) copy(ctx context.Context, f *os.File, w io.Writer) error {
	if lr.opts.tail >= 0 {
		if err := seekTail(f, lr.opts.tail); err != nil {
			return err
		}
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	for {
		err := lr.drain(ctx, f, bw)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
		if !lr.opts.follow {
			return nil
		}
		next, err := lr.waitForMore(ctx, f)
		if err != nil || next == nil {
			return err
		}
		if next != f {
			f.Close()
			f = next
		}
	}
}

// drain writes every complete line from f's offset on, and leaves f at
// the start of a line still being written (no newline yet), for the
// next round.
func (lr *logReader) drain(ctx context.Context, f *os.File, w io.Writer) error {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var consumed int64
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			long := append(lr.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			lr.long, line = long, long
		}
		if errors.Is(err, io.EOF) {
			_, err := f.Seek(start+consumed, io.SeekStart)
			return err
		}
		if err != nil {
			return err
		}
		consumed += int64(len(line))
		e, perr := parseEntry(line[:len(line)-1], lr.opts.timestamps || !lr.opts.since.IsZero())
		if perr != nil {
			continue // skip a corrupt line, as the kubelet does
		}
		if err := lr.write(w, e); err != nil {
			return err
		}
	}
}

func (lr *logReader) write(w io.Writer, e entry) error {
	if !lr.opts.since.IsZero() && e.ts.Before(lr.opts.since) {
		return nil
	}
	if lr.opts.stream != "" && e.stream != lr.opts.stream {
		return nil
	}
	buf := lr.buf[:0]
	if lr.opts.timestamps && !lr.midLine {
		buf = e.ts.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, ' ')
	}
	buf = append(buf, e.msg...)
	if !e.partial {
		buf = append(buf, '\n')
	}
	lr.buf = buf
	lr.midLine = e.partial
	if lr.opts.limitBytes > 0 {
		left := lr.opts.limitBytes - lr.written
		if int64(len(buf)) >= left {
			n, err := w.Write(buf[:left])
			lr.written += int64(n)
			if err != nil {
				return err
			}
			return errLimit
		}
	}
	n, err := w.Write(buf)
	lr.written += int64(n)
	return err
}

// waitForMore waits until f has more to read, or the log was rotated (it
// returns the new file), or the container stopped (nil).
func (lr *logReader) waitForMore(ctx context.Context, f *os.File) (*os.File, error) {
	lastCheck := lr.clock.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-lr.clock.After(followPoll):
		}
		pos, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		cur, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if cur.Size() > pos {
			return f, nil
		}
		if cur.Size() < pos { // truncated in place
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			return f, nil
		}
		if onDisk, err := os.Stat(lr.path); err == nil && !sameFile(cur, onDisk) {
			// Rotated: the old file is drained; go on in the new one.
			next, err := os.Open(lr.path)
			if err == nil {
				return next, nil
			}
		}
		if lr.clock.Since(lastCheck) >= runningPoll {
			if !lr.running(ctx) {
				// One last look: lines written just before the exit.
				if st, err := f.Stat(); err == nil && st.Size() > pos {
					lr.opts.follow = false
					return f, nil
				}
				return nil, nil
			}
			lastCheck = lr.clock.Now()
		}
	}
}

func sameFile(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return os.SameFile(a, b)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int64) error {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	pos := end
	var lines int64
	// The last byte is normally the newline that ends the last line; it
	// does not start a new one.
	skipLast := true
	for pos > 0 {
		size := int64(block)
		if pos < size {
			size = pos
		}
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if skipLast && pos+i == end-1 {
				continue
			}
			lines++
			if lines == n {
				_, err := f.Seek(pos+i+1, io.SeekStart)
				return err
			}
		}
		skipLast = false
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}
