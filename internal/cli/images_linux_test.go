package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// crictlVersion is the upstream crictl the test compares listings with.
const crictlVersion = "v1.37.0"

// buildOnce caches a binary a test run needs.
type buildOnce struct {
	once sync.Once
	path string
	err  error
}

var (
	skiffBin  buildOnce
	crictlBin buildOnce
)

// skiffBinary builds cmd/skiff once per test process, or takes the binary
// named by SKIFF_E2E_BINARY (CI builds it once for all packages).
func skiffBinary(t *testing.T) string {
	t.Helper()
	skiffBin.once.Do(func() {
		if p := os.Getenv("SKIFF_E2E_BINARY"); p != "" {
			skiffBin.path = p
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			skiffBin.err = fmt.Errorf("go env GOMOD: %v", err)
			return
		}
		dir, err := os.MkdirTemp("", "skiff-e2e-bin-")
		if err != nil {
			skiffBin.err = err
			return
		}
		skiffBin.path = filepath.Join(dir, "skiff")
		cmd := exec.Command("go", "build", "-o", skiffBin.path, "./cmd/skiff")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
		if out, err := cmd.CombinedOutput(); err != nil {
			skiffBin.err = fmt.Errorf("go build ./cmd/skiff: %v\n%s", err, out)
		}
	})
	if skiffBin.err != nil {
		t.Fatal(skiffBin.err)
	}
	return skiffBin.path
}

// crictl finds crictl on PATH or installs the pinned version into a cache
// directory with go install.
func crictl(t *testing.T) string {
	t.Helper()
	crictlBin.once.Do(func() {
		if p, err := exec.LookPath("crictl"); err == nil {
			crictlBin.path = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		gobin := filepath.Join(cache, "skiff-test-tools", "crictl-"+crictlVersion)
		crictlBin.path = filepath.Join(gobin, "crictl")
		if _, err := os.Stat(crictlBin.path); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "sigs.k8s.io/cri-tools/cmd/crictl@"+crictlVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			crictlBin.err = fmt.Errorf("install crictl: %v\n%s", err, out)
		}
	})
	if crictlBin.err != nil {
		t.Fatal(crictlBin.err)
	}
	return crictlBin.path
}

// runtimeNode is a `skiff cri` process, its state dir and its socket.
type runtimeNode struct {
	t      *testing.T
	bin    string
	root   string
	socket string
	parent string // cgroup parent
	cmd    *exec.Cmd
	log    *bytes.Buffer
}

func startRuntime(t *testing.T) *runtimeNode {
	t.Helper()
	testutil.RequireRoot(t)
	var b [6]byte
	rand.Read(b[:])
	root := t.TempDir()
	n := &runtimeNode{
		t: t, bin: skiffBinary(t), root: root, socket: filepath.Join(root, "cri.sock"),
		parent: "skiff-e2e-" + hex.EncodeToString(b[:]), log: &bytes.Buffer{},
	}
	t.Cleanup(n.stop)
	n.cmd = exec.Command(n.bin, "cri", "--root", n.state(), "--socket", n.socket, "--cgroup-parent", n.parent, "--log-level", "debug")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if r := n.skiff(nil, "images", "ls"); r.err == nil {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("skiff cri did not come up:\n%s", n.log)
	return nil
}

func (n *runtimeNode) state() string { return filepath.Join(n.root, "state") }

// stop stops the runtime's process group and removes what it made outside
// the test's temp dir: its monitor, if it started one, and cgroups.
func (n *runtimeNode) stop() {
	if n.t.Failed() {
		n.t.Logf("skiff cri log:\n%s", n.log)
	}
	if n.cmd.Process != nil && n.cmd.ProcessState == nil {
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	var mon struct{ Pid int }
	data, _ := os.ReadFile(filepath.Join(n.state(), "runtime", "monitor.json"))
	if json.Unmarshal(data, &mon) == nil && mon.Pid > 0 {
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", mon.Pid)); err != nil {
				break
			}
			if i == 80 {
				syscall.Kill(mon.Pid, syscall.SIGKILL)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/*"} {
		paths, _ := filepath.Glob(filepath.Join(dir, n.parent))
		for _, p := range paths {
			removeCgroupTree(p)
		}
	}
}

func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	unix.Rmdir(dir)
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

// skiff runs the skiff binary with --socket pointing at the runtime,
// stdin from in.
func (n *runtimeNode) skiff(in io.Reader, args ...string) result {
	return run(n.bin, in, append(slices.Clone(args), "--socket", n.socket)...)
}

func run(bin string, in io.Reader, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	}
	return r
}

func (n *runtimeNode) must(in io.Reader, args ...string) string {
	n.t.Helper()
	r := n.skiff(in, args...)
	if r.err != nil {
		n.t.Fatalf("skiff %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

func (n *runtimeNode) crictl(args ...string) string {
	n.t.Helper()
	full := append([]string{"--image-endpoint", "unix://" + n.socket, "--runtime-endpoint", "unix://" + n.socket, "--timeout", "30s"}, args...)
	r := run(crictl(n.t), nil, full...)
	if r.err != nil {
		n.t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r.stdout
}

// storeFiles lists the blobs and layer dirs of the runtime's image store
// and what is left in its tmp dir.
func (n *runtimeNode) storeFiles() []string {
	var out []string
	for _, d := range []string{"blobs/sha256", "layers/sha256", "tmp"} {
		entries, _ := os.ReadDir(filepath.Join(n.state(), "images", d))
		for _, e := range entries {
			out = append(out, d+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// appImage is a two-layer image whose second layer says which it is; with
// big set that layer is 3 MiB that do not compress, so progress shows.
func appImage(t *testing.T, which string, big bool) *testimage.Image {
	t.Helper()
	content := []byte(which)
	if big {
		content = make([]byte, 3<<20)
		var seed [32]byte
		copy(seed[:], which)
		rnd := mrand.New(mrand.NewChaCha8(seed))
		for i := range content {
			content[i] = byte(rnd.Uint32())
		}
	}
	return testimage.Build(t, testimage.Spec{Layers: []testimage.Layer{
		{Entries: []testimage.Entry{{Path: "etc/hello", Content: []byte("hello\n")}}},
		{Entries: []testimage.Entry{{Path: "data/" + which, Content: content}}},
	}, Config: v1.Config{Cmd: []string{"/bin/true"}}})
}

func TestImages_EndToEnd(t *testing.T) {
	n := startRuntime(t)
	files := t.TempDir()
	a, b, c := appImage(t, "a", false), appImage(t, "b", false), appImage(t, "c", false)
	pulled := appImage(t, "pulled", true)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{Auth: testimage.AuthBasic})
	pullRef := pulled.Push(t, reg, "team/pulled:1")

	t.Run("ImportDockerSave", func(t *testing.T) {
		p := filepath.Join(files, "a.tar")
		a.WriteDockerArchive(t, p, "skiff.test/a:1", "skiff.test/a:2")
		out := n.must(nil, "images", "import", p)
		t.Logf("skiff images import:\n%s", out)
		// docker save lists the tags in any order; progress names the
		// first.
		if !regexp.MustCompile(`Importing skiff.test/a:[12]: 2 layers`).MatchString(out) {
			t.Errorf("output lacks the progress header:\n%s", out)
		}
		for _, want := range []string{"Imported skiff.test/a:1, skiff.test/a:2 (image " + short(a.ID()) + ", 2 layers"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("ImportOCIArchiveFromStdin", func(t *testing.T) {
		p := filepath.Join(files, "b.tar")
		b.WriteOCIArchive(t, p, "skiff.test/b:1")
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out := n.must(f, "images", "import", "-q", "-")
		if strings.TrimSpace(out) != b.ID() {
			t.Errorf("import -q printed %q, want the ID %s", out, b.ID())
		}
	})
	t.Run("ImportOCILayoutDir", func(t *testing.T) {
		dir := filepath.Join(files, "c-layout")
		c.WriteOCILayout(t, dir, "skiff.test/c:1")
		out := n.must(nil, "images", "import", dir)
		if !strings.Contains(out, "Imported skiff.test/c:1") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("LsShowsThemAsCrictlDoes", func(t *testing.T) {
		out := n.must(nil, "images", "ls")
		t.Logf("skiff images ls:\n%s", out)
		for _, want := range []string{"skiff.test/a ", "skiff.test/b ", "skiff.test/c ", short(a.ID()), short(b.ID()), short(c.ID())} {
			if !strings.Contains(out, want) {
				t.Errorf("ls lacks %q:\n%s", want, out)
			}
		}
		if cri := n.crictl("images"); cri != out {
			t.Errorf("skiff images ls:\n%s\ncrictl images:\n%s", out, cri)
		}
		if got, want := n.must(nil, "images", "ls", "--digests"), n.crictl("images", "--digests"); got != want {
			t.Errorf("skiff images ls --digests:\n%s\ncrictl images --digests:\n%s", got, want)
		}
		ids := strings.Fields(n.must(nil, "images", "ls", "-q"))
		if want := []string{a.ID(), b.ID(), c.ID()}; !slices.Equal(ids, want) {
			t.Errorf("ls -q = %v, want %v", ids, want)
		}
		if got, want := n.must(nil, "images", "ls", "-q", "skiff.test/b:1"), b.ID()+"\n"; got != want {
			t.Errorf("ls -q skiff.test/b:1 = %q, want %q", got, want)
		}
	})
	t.Run("PullShowsProgressLines", func(t *testing.T) {
		out := n.must(nil, "images", "pull", "--creds", reg.Username+":"+reg.Password, pullRef)
		t.Logf("skiff images pull:\n%s", out)
		layer := short(pulled.LayerDigests()[1])[:12]
		for _, want := range []string{
			"Pulling " + pullRef + ": 2 layers",
			"  " + layer + "  Downloading  ",
			"  " + layer + "  Done  3.15MB",
			"Pulled " + pullRef + " (image " + short(pulled.ID()) + ", 2 layers, 3.15MB, 1 already present)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("pull output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("pull wrote terminal escapes to a pipe:\n%q", out)
		}
		if got := n.must(nil, "images", "ls", "-q", pullRef); strings.TrimSpace(got) != pulled.ID() {
			t.Errorf("ls -q %s = %q", pullRef, got)
		}
		if cri := n.crictl("images", "-q"); !strings.Contains(cri, pulled.ID()) {
			t.Errorf("crictl images -q lacks the pulled image:\n%s", cri)
		}
	})
	t.Run("PullOnATerminalRedrawsInPlace", func(t *testing.T) {
		ref := appImage(t, "tty", true).Push(t, reg, "team/tty:1")
		out := n.onTerminal(t, "images", "pull", "--creds", reg.Username+":"+reg.Password, ref)
		t.Logf("skiff images pull on a terminal:\n%q", out)
		for _, want := range []string{"\x1b[2KPulling " + ref + ": ", "[====================]", "Pulled " + ref + " (image "} {
			if !strings.Contains(out, want) {
				t.Errorf("terminal output lacks %q:\n%q", want, out)
			}
		}
		if !strings.Contains(out, "F\x1b[2K") { // cursor up to the block's start, then a redraw
			t.Errorf("terminal output never redraws:\n%q", out)
		}
	})
	t.Run("RmRemovesAndFrees", func(t *testing.T) {
		before := len(n.storeFiles())
		out := n.must(nil, "images", "rm", "skiff.test/a:1")
		if !strings.Contains(out, "Untagged: skiff.test/a:1") {
			t.Errorf("rm of one of two tags:\n%s", out)
		}
		out = n.must(nil, "images", "rm", "skiff.test/a:2", pullRef)
		for _, want := range []string{"Deleted: " + a.ID(), "Deleted: " + pulled.ID(), "Freed "} {
			if !strings.Contains(out, want) {
				t.Errorf("rm output lacks %q:\n%s", want, out)
			}
		}
		if after := len(n.storeFiles()); after >= before {
			t.Errorf("store has %d files after rm, %d before", after, before)
		}
		if cri := n.crictl("images", "-q"); strings.Contains(cri, a.ID()) || strings.Contains(cri, pulled.ID()) {
			t.Errorf("crictl still lists removed images:\n%s", cri)
		}
	})
	t.Run("GCFreesWhatCrictlRmiLeft", func(t *testing.T) {
		before := len(n.storeFiles())
		n.crictl("rmi", "skiff.test/b:1") // the CRI removes the image and collects in the background
		// Whichever comes first, the runtime's own collection or this
		// one, the image's files go.
		n.must(nil, "images", "gc")
		if after := len(n.storeFiles()); after >= before {
			t.Errorf("store has %d files after crictl rmi and gc, %d before", after, before)
		}
		if out := n.must(nil, "images", "gc"); out != "Nothing to free\n" {
			t.Errorf("second gc: %q", out)
		}
	})

	// Bad input: each a clear error, a non-zero exit, nothing left behind.
	corrupt := filepath.Join(files, "corrupt.tar")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte("not a tarball\n"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(files, "truncated.tar")
	{
		whole := filepath.Join(files, "whole.tar")
		appImage(t, "t", true).WriteDockerArchive(t, whole, "skiff.test/t:1")
		data, err := os.ReadFile(whole)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(truncated, data[:len(data)*2/3], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	down := testimage.DownAddr(t)
	bad := []struct {
		name    string
		args    []string
		in      io.Reader
		wantErr []string
	}{
		{name: "MissingFile", args: []string{"images", "import", filepath.Join(files, "nope.tar")}, wantErr: []string{"nope.tar", "no such file"}},
		{name: "CorruptTarball", args: []string{"images", "import", corrupt}, wantErr: []string{corrupt + ": import: ", "invalid tar header"}},
		{name: "TruncatedTarball", args: []string{"images", "import", truncated}, wantErr: []string{truncated + ": import: ", "unexpected EOF"}},
		{name: "EmptyStdin", args: []string{"images", "import", "-"}, in: strings.NewReader(""), wantErr: []string{"stdin: import: ", "neither a docker save archive"}},
		{name: "RmUnknownImage", args: []string{"images", "rm", "skiff.test/nothing:1"}, wantErr: []string{`"skiff.test/nothing:1"`, "not found"}},
		{name: "PullUnknownImage", args: []string{"images", "pull", "--creds", reg.Username + ":" + reg.Password, reg.Ref("team/nothing:1")},
			wantErr: []string{reg.Ref("team/nothing:1"), "not found"}},
		{name: "PullWithoutCredentials", args: []string{"images", "pull", pullRef}, wantErr: []string{pullRef, "unauthorized"}},
		{name: "PullFromARegistryThatIsDown", args: []string{"images", "pull", down + "/team/app:1"},
			wantErr: []string{down + "/team/app:1", "connection refused"}},
		{name: "PullBadReference", args: []string{"images", "pull", "Not:A:Reference"}, wantErr: []string{"invalid image reference"}},
		{name: "BadCreds", args: []string{"images", "pull", "--creds", "nocolon", pullRef}, wantErr: []string{"--creds wants USER:PASSWORD"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := n.storeFiles()
			imgs := n.must(nil, "images", "ls", "-q")
			r := n.skiff(tt.in, tt.args...)
			if r.code == 0 {
				t.Fatalf("exit 0; stdout:\n%s", r.stdout)
			}
			if !strings.HasPrefix(r.stderr, "error: ") {
				t.Errorf("stderr does not start with error: %q", r.stderr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q: %s", want, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("crashed: %s", r.stderr)
			}
			if after := n.storeFiles(); !slices.Equal(after, before) {
				t.Errorf("store files changed:\nbefore %v\nafter  %v", before, after)
			}
			if after := n.must(nil, "images", "ls", "-q"); after != imgs {
				t.Errorf("images changed:\nbefore %s\nafter  %s", imgs, after)
			}
			t.Logf("%s", strings.TrimSpace(r.stderr))
		})
	}
	t.Run("RuntimeNotRunning", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "none.sock")
		for _, args := range [][]string{{"images", "ls"}, {"images", "gc"}, {"images", "pull", "busybox"}, {"images", "rm", "x"}, {"images", "import", corrupt}} {
			r := run(n.bin, nil, append(args, "--socket", sock)...)
			if r.code == 0 || !strings.Contains(r.stderr, "no runtime socket at "+sock) {
				t.Errorf("skiff %v with no runtime: exit %d, stderr %q", args, r.code, r.stderr)
			}
		}
	})
}

// onTerminal runs skiff with its stdout on a pseudo-terminal 120 columns
// wide and returns what it wrote there.
func (n *runtimeNode) onTerminal(t *testing.T, args ...string) string {
	t.Helper()
	ptmx, tty := openPTY(t)
	args = append(slices.Clone(args), "--socket", n.socket)
	cmd := exec.Command(n.bin, args...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = tty, &errb
	cmd.Env = append(os.Environ(), "TERM=xterm")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it now; EOF (EIO) on ptmx when it exits
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, ptmx); close(copied) }()
	err := cmd.Wait()
	<-copied
	if err != nil {
		t.Fatalf("skiff %v: %v\n%s", args, err, errb.String())
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

// openPTY opens a pseudo-terminal pair, closed when the test ends.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	num, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", num), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	return ptmx, tty
}

// short is an ID as tables show it.
func short(id string) string { return strings.TrimPrefix(id, "sha256:")[:13] }
