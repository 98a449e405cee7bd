package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/clock"
)

// logFixture is a CRI log: two stdout lines, a line split in two partial
// entries, a stderr line, a corrupt line and a line without a tag.
const logFixture = `2026-01-02T15:04:00.000000001Z stdout F first
2026-01-02T15:04:01.000000000Z stderr F oops
2026-01-02T15:04:02.000000000Z stdout P a long 
2026-01-02T15:04:02.500000000Z stdout F line
this is not a log line
2026-01-02T15:04:03.000000000Z stdout F 
2026-01-02T15:04:04.000000000Z stdout F last
`

func TestLogReader(t *testing.T) {
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	tests := []struct {
		name string
		opts logOptions
		want string
	}{
		{"everything", logOptions{tail: -1}, "first\noops\na long line\n\nlast\n"},
		{"timestamps only at line starts", logOptions{tail: -1, timestamps: true},
			"2026-01-02T15:04:00.000000001Z first\n2026-01-02T15:04:01Z oops\n2026-01-02T15:04:02Z a long line\n2026-01-02T15:04:03Z \n2026-01-02T15:04:04Z last\n"},
		{"tail 2", logOptions{tail: 2}, "\nlast\n"},
		{"tail 0", logOptions{tail: 0}, ""},
		{"tail more than there is", logOptions{tail: 100}, "first\noops\na long line\n\nlast\n"},
		{"since", logOptions{tail: -1, since: at("2026-01-02T15:04:02Z")}, "a long line\n\nlast\n"},
		{"limitBytes cuts mid-line", logOptions{tail: -1, limitBytes: 8}, "first\noo"},
		{"stdout only", logOptions{tail: -1, stream: "stdout"}, "first\na long line\n\nlast\n"},
		{"stderr only", logOptions{tail: -1, stream: "stderr"}, "oops\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "0.log")
			if err := os.WriteFile(path, []byte(logFixture), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var out bytes.Buffer
			lr := &logReader{path: path, opts: tc.opts, clock: clock.RealClock{}}
			if err := lr.copy(context.Background(), f, &out); err != nil && err != errLimit {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseEntry(t *testing.T) {
	tests := []struct {
		line    string
		want    entry
		wantErr bool
	}{
		{line: "2026-01-02T15:04:05Z stdout F hello world", want: entry{stream: "stdout", msg: []byte("hello world")}},
		{line: "2026-01-02T15:04:05Z stderr P part", want: entry{stream: "stderr", msg: []byte("part"), partial: true}},
		{line: "2026-01-02T15:04:05Z stdout F", want: entry{stream: "stdout"}},
		{line: "2026-01-02T15:04:05Z stdout no tag here", want: entry{stream: "stdout", msg: []byte("no tag here")}},
		{line: "2026-01-02T15:04:05Z stdout F:x tagged", want: entry{stream: "stdout", msg: []byte("tagged")}},
		{line: "garbage", wantErr: true},
		{line: "2026-01-02T15:04:05Z stdin F x", wantErr: true},
		{line: "yesterday stdout F x", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			got, err := parseEntry([]byte(tc.line), true)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.ts, got.rawTS = time.Time{}, nil
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(entry{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogReader_FollowsAcrossRotationUntilTheContainerStops(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	appendLine := func(p, line string) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	appendLine(path, "2026-01-02T15:04:00Z stdout F one\n")
	var running sync.Mutex
	stopped := false
	lr := &logReader{path: path, opts: logOptions{tail: -1, follow: true}, clock: clock.RealClock{},
		running: func(context.Context) bool { running.Lock(); defer running.Unlock(); return !stopped }}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- lr.copy(context.Background(), f, out) }()

	waitFor(t, func() bool { return out.String() == "one\n" }, "first line")
	// A line written in two writes (the runtime flushes mid-line).
	appendLine(path, "2026-01-02T15:04:01Z stdout F t")
	appendLine(path, "wo\n")
	waitFor(t, func() bool { return out.String() == "one\ntwo\n" }, "line written in pieces")
	// Rotation: the runtime renames the file and starts a new one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLine(path+".1", "2026-01-02T15:04:02Z stdout F three\n")
	appendLine(path, "2026-01-02T15:04:03Z stdout F four\n")
	waitFor(t, func() bool { return out.String() == "one\ntwo\nthree\nfour\n" }, "lines across rotation")
	appendLine(path, "2026-01-02T15:04:04Z stdout F five\n")
	running.Lock()
	stopped = true
	running.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("follow did not end after the container stopped")
	}
	if got := out.String(); got != "one\ntwo\nthree\nfour\nfive\n" {
		t.Errorf("log %q", got)
	}
}

func TestLogReader_FollowEndsWhenTheClientGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	lr := &logReader{path: path, opts: logOptions{tail: -1, follow: true}, clock: clock.RealClock{}, running: func(context.Context) bool { return true }}
	done := make(chan error, 1)
	go func() { done <- lr.copy(ctx, f, &bytes.Buffer{}) }()
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("follow did not end")
	}
}

func TestServer_ContainerLogs(t *testing.T) {
	ts := newFixture(t)
	dir := t.TempDir()
	cur, prev := filepath.Join(dir, "1.log"), filepath.Join(dir, "0.log")
	os.WriteFile(cur, []byte("2026-01-02T15:04:00Z stdout F current\n"), 0o644)
	os.WriteFile(prev, []byte("2026-01-02T15:03:00Z stdout F previous\n"), 0o644)
	ts.pods.mu.Lock()
	ts.pods.containers["default/web/main"] = Container{ID: "ctr-main", LogPath: cur}
	ts.pods.containers["default/web/main/previous"] = Container{ID: "ctr-old", LogPath: prev}
	ts.pods.containers["default/web/quiet"] = Container{ID: "ctr-quiet", LogPath: filepath.Join(dir, "never-written.log")}
	ts.pods.mu.Unlock()
	tests := []struct{ path, want string }{
		{"/containerLogs/default/web/main", "current\n"},
		{"/containerLogs/default/web/main?previous=true", "previous\n"},
		{"/containerLogs/default/web/main?timestamps=true&tailLines=1", "2026-01-02T15:04:00Z current\n"},
		// The fake clock is at 15:04:05; the line was written at 15:04:00.
		{"/containerLogs/default/web/main?sinceSeconds=4", ""},
		{"/containerLogs/default/web/main?sinceSeconds=10&limitBytes=3", "cur"},
		{"/containerLogs/default/web/quiet", ""},
		{"/containerLogs/default/web/main?follow=true", "current\n"}, // not running: no follow
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := ts.get(t, tc.path)
			if code != 200 || body != tc.want {
				t.Errorf("got %d %q, want 200 %q", code, body, tc.want)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLogReader_LinesLongerThanTheBuffer(t *testing.T) {
	long := strings.Repeat("y", 200<<10)
	path := filepath.Join(t.TempDir(), "0.log")
	content := "2026-01-02T15:04:00Z stdout F short\n2026-01-02T15:04:01Z stdout F " + long + "\n2026-01-02T15:04:02Z stdout F end\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	lr := &logReader{path: path, opts: logOptions{tail: -1}, clock: clock.RealClock{}}
	if err := lr.copy(context.Background(), f, &out); err != nil {
		t.Fatal(err)
	}
	if want := "short\n" + long + "\nend\n"; out.String() != want {
		t.Errorf("got %d bytes, want %d", out.Len(), len(want))
	}
}
