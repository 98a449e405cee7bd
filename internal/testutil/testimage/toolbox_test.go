package testimage

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// toolboxDir links the toolbox binary under every command name in a temp dir.
func toolboxDir(t *testing.T) string {
	t.Helper()
	bin := ToolboxBinary(t, "")
	dir := t.TempDir()
	for _, c := range append(ToolboxCommands(), "toolbox") {
		if err := os.Symlink(bin, filepath.Join(dir, c)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestToolbox_CommandListMatchesBinary(t *testing.T) {
	dir := toolboxDir(t)
	out, err := exec.Command(filepath.Join(dir, "toolbox"), "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(out))
	if diff := cmp.Diff(ToolboxCommands(), got); diff != "" {
		t.Errorf("ToolboxCommands() differs from the binary's list (-want +got):\n%s", diff)
	}
}

func TestToolbox_Commands(t *testing.T) {
	dir := toolboxDir(t)
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "f"), []byte("content\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		argv     []string
		stdin    string
		wantOut  string
		wantCode int
	}{
		{name: "TrueExitsZero", argv: []string{"true"}},
		{name: "FalseExitsOne", argv: []string{"false"}, wantCode: 1},
		{name: "EchoJoinsArgs", argv: []string{"echo", "a", "b c"}, wantOut: "a b c\n"},
		{name: "DispatchesOnFirstArgOfToolbox", argv: []string{"toolbox", "echo", "hi"}, wantOut: "hi\n"},
		{name: "ExitReturnsCode", argv: []string{"exit", "7"}, wantCode: 7},
		{name: "CatPrintsFile", argv: []string{"cat", filepath.Join(work, "f")}, wantOut: "content\n"},
		{name: "CatMissingFileFails", argv: []string{"cat", filepath.Join(work, "missing")}, wantCode: 1},
		{name: "LsListsDir", argv: []string{"ls", work}, wantOut: "f\n"},
		{name: "StatShowsModeAndOwner", argv: []string{"stat", filepath.Join(work, "f")},
			wantOut: filepath.Join(work, "f") + " file 0640 " + strconv.Itoa(os.Getuid()) + " " + strconv.Itoa(os.Getgid()) + " 8\n"},
		{name: "PrintLinesCounts", argv: []string{"print-lines", "3"}, wantOut: "line 1\nline 2\nline 3\n"},
		{name: "ReadStdinEchoes", argv: []string{"read-stdin"}, stdin: "in put\n", wantOut: "in put\n"},
		{name: "ShRunsOneCommand", argv: []string{"sh", "-c", "exec echo 'quoted words' x"}, wantOut: "quoted words x\n"},
		{name: "ShRejectsUnterminatedQuote", argv: []string{"sh", "-c", "echo 'x"}, wantCode: 1},
		{name: "UnknownCommandExits127", argv: []string{"toolbox", "nope"}, wantCode: 127},
		{name: "SleepRejectsGarbage", argv: []string{"sleep", "soon"}, wantCode: 1},
		{name: "SleepShort", argv: []string{"sleep", "0.01"}},
		{name: "SpinStopsAfterDeadline", argv: []string{"spin", "0.05"}, wantOut: "*"},
		{name: "HogRejectsGarbage", argv: []string{"hog", "lots"}, wantCode: 1},
		{name: "TarRejectsOtherFlags", argv: []string{"tar", "tf", "-"}, wantCode: 2},
		{name: "PwdPrintsDir", argv: []string{"pwd"}, wantOut: work + "\n"},
		{name: "RmMissingIsNoError", argv: []string{"rm", filepath.Join(work, "missing")}},
		{name: "FetchRefusedFails", argv: []string{"fetch", "http://127.0.0.1:1/"}, wantCode: 1},
		{name: "FetchNeedsOneURL", argv: []string{"fetch"}, wantCode: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(dir, tc.argv[0]), tc.argv[1:]...)
			cmd.Dir = work
			cmd.Stdin = strings.NewReader(tc.stdin)
			var out bytes.Buffer
			cmd.Stdout = &out
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d", code, tc.wantCode)
			}
			if tc.wantOut != "*" && out.String() != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestToolbox_ServeHTTPAnswersHealthz(t *testing.T) {
	dir := toolboxDir(t)
	port := freePort(t)
	cmd := exec.Command(filepath.Join(dir, "serve-http"), strconv.Itoa(port), "hello")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The first line says it listens, so the request cannot race the bind.
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("first line = %q, %v", line, err)
	}
	for path, want := range map[string]string{"/healthz": "ok\n", "/": "hello\n"} {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("GET %s = %q, want %q", path, body, want)
		}
	}
}

func TestToolbox_RmRemovesTree(t *testing.T) {
	dir := toolboxDir(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(dir, "rm"), filepath.Join(work, "d"), filepath.Join(work, "f")).CombinedOutput(); err != nil {
		t.Fatalf("rm: %v %s", err, out)
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestToolbox_FetchPrintsBodyAndFailsOnErrorStatus(t *testing.T) {
	dir := toolboxDir(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	defer srv.Close()
	out, err := exec.Command(filepath.Join(dir, "fetch"), srv.URL+"/x").Output()
	if err != nil || string(out) != "hello from /x" {
		t.Errorf("fetch /x = %q, %v", out, err)
	}
	err = exec.Command(filepath.Join(dir, "fetch"), srv.URL+"/missing").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("fetch of a 404: %v, want exit 1", err)
	}
}

func TestToolbox_SignalsExitsZeroOnSIGTERM(t *testing.T) {
	dir := toolboxDir(t)
	cmd := exec.Command(filepath.Join(dir, "signals"), "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := bufio.NewReader(stdout)
	if line, _ := r.ReadString('\n'); line != "ready\n" {
		t.Fatalf("first line = %q, want ready", line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if want := "got SIGTERM\nexiting\n"; string(rest) != want {
		t.Errorf("output = %q, want %q", rest, want)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestToolbox_TarRoundTrip(t *testing.T) {
	dir := toolboxDir(t)
	src, dst := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "d", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "e", "f"), []byte("content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("e/f", filepath.Join(src, "d", "link")); err != nil {
		t.Fatal(err)
	}
	// As kubectl cp runs them: create by absolute path, extract with -C.
	archive, err := exec.Command(filepath.Join(dir, "tar"), "cf", "-", filepath.Join(src, "d")).Output()
	if err != nil {
		t.Fatalf("tar cf: %v", err)
	}
	x := exec.Command(filepath.Join(dir, "tar"), "-xmf", "-", "-C", dst)
	x.Stdin = bytes.NewReader(archive)
	if out, err := x.CombinedOutput(); err != nil {
		t.Fatalf("tar xmf: %v\n%s", err, out)
	}
	got := filepath.Join(dst, src, "d")
	if b, err := os.ReadFile(filepath.Join(got, "link")); err != nil || string(b) != "content\n" {
		t.Errorf("extracted d/link reads %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(got, "e", "f")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("extracted d/e/f: %v, %v", st, err)
	}
}
