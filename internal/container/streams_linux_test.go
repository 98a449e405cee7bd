package container

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_Exec(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("exec")
	c := containerConfig("target", "sleep", "3600")
	c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	id := h.run(pod, c)
	tests := []struct {
		name      string
		cmd       []string
		stdout    string
		code      int
		wantError error
	}{
		{name: "Output", cmd: []string{"echo", "hi", "there"}, stdout: "hi there\n"},
		{name: "ExitCode", cmd: []string{"sh", "-c", "exit 3"}, code: 3},
		{name: "SameUserAsTheContainer", cmd: []string{"id"}, stdout: "uid=1000(app) gid=1000(app) groups=1000\n"},
		{name: "SamePIDNamespace", cmd: []string{"ps"}, stdout: "PID COMMAND\n1 sleep\n"},
		{name: "SameHostname", cmd: []string{"hostname"}, stdout: "exec\n"},
		{name: "MissingProgram", cmd: []string{"no-such-program"}, wantError: ErrInvalid},
		{name: "NoCommand", cmd: nil, wantError: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, code, err := h.rt.ExecSync(t.Context(), id, tt.cmd, 10*time.Second)
			if !errors.Is(err, tt.wantError) {
				t.Fatalf("ExecSync error = %v, want %v", err, tt.wantError)
			}
			if err != nil {
				return
			}
			if string(out) != tt.stdout && !(tt.name == "SamePIDNamespace" && strings.HasPrefix(string(out), "PID COMMAND\n1 sleep\n")) {
				t.Errorf("stdout = %q, want %q", out, tt.stdout)
			}
			if code != tt.code {
				t.Errorf("exit code = %d, want %d", code, tt.code)
			}
		})
	}
	t.Run("TimeoutKillsTheProcess", func(t *testing.T) {
		_, _, _, err := h.rt.ExecSync(t.Context(), id, []string{"sleep", "30"}, 200*time.Millisecond)
		if err == nil {
			t.Fatal("ExecSync did not time out")
		}
	})
	t.Run("StdinAndTTY", func(t *testing.T) {
		var out bytes.Buffer
		code, err := h.rt.Exec(t.Context(), id, []string{"read-stdin"}, ExecOptions{Stdin: strings.NewReader("piped\n"), Stdout: &out})
		if err != nil || code != 0 || out.String() != "piped\n" {
			t.Errorf("exec with stdin: %d %v %q", code, err, out.String())
		}
		out.Reset()
		code, err = h.rt.Exec(t.Context(), id, []string{"echo", "on a tty"}, ExecOptions{TTY: true, Stdout: &out})
		if err != nil || code != 0 || out.String() != "on a tty\r\n" {
			t.Errorf("exec with tty: %d %v %q", code, err, out.String())
		}
	})
	t.Run("NotRunning", func(t *testing.T) {
		done := h.run(pod, containerConfig("done", "true"))
		h.wait(done)
		if _, _, _, err := h.rt.ExecSync(t.Context(), done, []string{"true"}, time.Second); !errors.Is(err, ErrNotReady) {
			t.Errorf("exec in exited container: %v, want ErrNotReady", err)
		}
	})
}

func TestRuntime_AttachAndPortForward(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("attach")
	t.Run("AttachSendsStdinAndReceivesOutput", func(t *testing.T) {
		c := containerConfig("cat", "read-stdin")
		c.Stdin, c.StdinOnce = true, true
		id := h.run(pod, c)
		pr, pw := io.Pipe()
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() { done <- h.rt.Attach(t.Context(), id, ExecOptions{Stdin: pr, Stdout: &out}) }()
		time.Sleep(100 * time.Millisecond)
		pw.Write([]byte("through attach\n"))
		pw.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("attach did not end when stdin closed")
		}
		if out.String() != "through attach\n" {
			t.Errorf("attach output = %q", out.String())
		}
		if st := h.wait(id); st.ExitCode != 0 {
			t.Errorf("exit %d", st.ExitCode)
		}
		if diff := cmp.Diff([]string{"stdout F through attach"}, h.logLines(id)); diff != "" {
			t.Errorf("log (-want +got):\n%s", diff)
		}
	})
	t.Run("PortForwardReachesThePodsLoopback", func(t *testing.T) {
		id := h.run(pod, containerConfig("echo-server", "serve-tcp", "7777"))
		waitForLog(t, h, id, "listening")
		client, server := net.Pipe()
		go h.rt.PortForward(t.Context(), pod, 7777, server)
		client.SetDeadline(time.Now().Add(10 * time.Second))
		client.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "ping" {
			t.Errorf("echo through port-forward = %q, %v", buf, err)
		}
		client.Close()
		if err := h.rt.PortForward(t.Context(), pod, 7778, nopStream{}); err == nil {
			t.Error("port-forward to a closed port succeeded")
		}
	})
}

type nopStream struct{}

func (nopStream) Read([]byte) (int, error)    { return 0, io.EOF }
func (nopStream) Write(p []byte) (int, error) { return len(p), nil }
func (nopStream) Close() error                { return nil }

func TestRuntime_Logs(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LogMaxSize = 64 << 10; c.LogMaxFiles = 3 })
	pod := h.runPod("logs")
	t.Run("LongLinesAreSplitIntoPartials", func(t *testing.T) {
		long := strings.Repeat("x", 40000)
		id := h.run(pod, containerConfig("long", "echo", long))
		h.wait(id)
		var tags []string
		var total int
		for _, l := range h.logLines(id) {
			f := strings.SplitN(l, " ", 3)
			tags = append(tags, f[1])
			total += len(f[2])
		}
		if diff := cmp.Diff([]string{"P", "P", "F"}, tags); diff != "" || total != 40000 {
			t.Errorf("tags (-want +got):\n%s; %d bytes", diff, total)
		}
	})
	t.Run("RotatesBySize", func(t *testing.T) {
		id := h.run(pod, containerConfig("many", "print-lines", "20000"))
		st := h.wait(id)
		rotated, _ := filepath.Glob(st.LogPath + ".*")
		if len(rotated) != 2 {
			t.Errorf("rotated files = %v, want 2 (LogMaxFiles 3)", rotated)
		}
		data, err := os.ReadFile(st.LogPath)
		if err != nil || !strings.HasSuffix(string(data), " stdout F line 20000\n") {
			t.Errorf("live log does not end with the last line")
		}
	})
	t.Run("ReopenAfterRename", func(t *testing.T) {
		c := containerConfig("ticker", "sh", "-c", "print-lines 1")
		c.Args = []string{"signals", "0"}
		id := h.run(pod, c)
		waitForLog(t, h, id, "ready")
		st, _, _ := h.rt.ContainerStatus(t.Context(), id, false)
		if err := os.Rename(st.LogPath, st.LogPath+".old"); err != nil {
			t.Fatal(err)
		}
		if err := h.rt.ReopenContainerLog(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if err := h.rt.StopContainer(t.Context(), id, 10); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(st.LogPath)
		if err != nil || !strings.Contains(string(data), "SIGTERM") {
			t.Errorf("reopened log = %q, %v; want the output after the reopen", data, err)
		}
		if err := h.rt.ReopenContainerLog(t.Context(), id); !errors.Is(err, ErrNotReady) {
			t.Errorf("reopen of a stopped container: %v, want ErrNotReady", err)
		}
	})
}
