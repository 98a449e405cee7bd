package shim

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strconv"
	"sync"
	"time"
)

// maxLogLine is the longest line written as one log entry; longer lines
// are split into partial ("P") entries, as containerd does.
const maxLogLine = 16 * 1024

// logWriter writes the CRI log format:
//
//	2024-01-02T15:04:05.999999999Z stdout F a whole line
//	2024-01-02T15:04:05.999999999Z stderr P the first part of a long li
type logWriter struct {
	mu       sync.Mutex // guards f and size
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
}

func openLog(file string, maxSize int64, maxFiles int) (*logWriter, error) {
	l := &logWriter{path: file, maxSize: maxSize, maxFiles: maxFiles}
	if maxFiles < 2 {
		l.maxFiles = 2
	}
	if file == "" {
		return l, nil
	}
	return l, l.reopen()
}

// reopen closes the log file and opens the path again (after the kubelet
// renamed it, for example).
func (l *logWriter) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reopenLocked()
}

func (l *logWriter) reopenLocked() error {
	if l.path == "" {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if err := os.MkdirAll(path.Dir(l.path), 0o755); err != nil {
		return fmt.Errorf("open log %s: %w", l.path, err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", l.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log %s: %w", l.path, err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// writeLines logs the complete lines in p and returns what is left (an
// unfinished line). Lines longer than maxLogLine go out in partial pieces;
// with final set, the unfinished rest is logged as a whole line.
func (l *logWriter) writeLines(stream string, p []byte, ts time.Time, final bool) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	stamp := ts.UTC().Format(time.RFC3339Nano)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 || i > maxLogLine {
			break
		}
		l.entry(&out, stamp, stream, "F", p[:i])
		p = p[i+1:]
	}
	for len(p) > maxLogLine {
		l.entry(&out, stamp, stream, "P", p[:maxLogLine])
		p = p[maxLogLine:]
	}
	if final && len(p) > 0 {
		l.entry(&out, stamp, stream, "F", p)
		p = nil
	}
	l.writeLocked(out.Bytes())
	if len(p) == 0 {
		return p[:0]
	}
	return append([]byte(nil), p...)
}

func (l *logWriter) entry(b *bytes.Buffer, stamp, stream, tag string, line []byte) {
	b.WriteString(stamp)
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
}

func (l *logWriter) writeLocked(p []byte) {
	if l.f == nil || len(p) == 0 {
		return
	}
	// Rotate before a write that would pass the limit, so the live file
	// always holds the latest lines.
	if l.maxSize > 0 && l.size > 0 && l.size+int64(len(p)) > l.maxSize {
		l.rotateLocked()
		if l.f == nil {
			return
		}
	}
	n, _ := l.f.Write(p)
	l.size += int64(n)
}

// rotateLocked renames path to path.1 (path.1 to path.2, ...), drops the
// oldest beyond maxFiles and opens a fresh path.
func (l *logWriter) rotateLocked() {
	l.f.Close()
	l.f = nil
	keep := l.maxFiles - 1
	os.Remove(l.path + "." + strconv.Itoa(keep))
	for i := keep - 1; i >= 1; i-- {
		os.Rename(l.path+"."+strconv.Itoa(i), l.path+"."+strconv.Itoa(i+1))
	}
	os.Rename(l.path, l.path+".1")
	l.reopenLocked()
}

func (l *logWriter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
