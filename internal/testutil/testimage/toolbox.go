package testimage

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the toolbox source
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

//go:embed toolbox/main.go
var toolboxSource []byte

// ToolboxCommands are the names under which the toolbox image links the
// toolbox binary in /bin (each is a symlink to /bin/toolbox).
func ToolboxCommands() []string {
	return []string{
		"cat", "echo", "env", "exit", "false", "fetch", "forkbomb", "hog",
		"hostname", "id", "ifaces", "ls", "mkdir", "mknod", "mounts",
		"print-lines", "ps", "pwd", "read-stdin", "rm", "serve-http",
		"serve-tcp", "sh", "signals", "sleep", "spin", "stat", "tar", "tick", "touch",
		"true", "write",
	}
}

// ToolboxBinary returns the path of the static toolbox binary for linux/arch
// (arch as in GOARCH; "" means the host's), compiling it with CGO_ENABLED=0
// the first time. Binaries are cached in os.TempDir() under a name keyed by
// the source, the Go version and the architecture, so the many tests and
// test binaries that use it compile it once. The caller must not modify the
// file.
func ToolboxBinary(t testing.TB, arch string) string {
	t.Helper()
	if arch == "" {
		arch = runtime.GOARCH
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", runtime.Version(), arch)
	h.Write(toolboxSource)
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(os.TempDir(), "skiff-testimage-toolbox-"+key)
	bin := filepath.Join(dir, "toolbox-linux-"+arch)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testimage: toolbox cache: %v", err)
	}
	src, err := os.MkdirTemp(dir, "src-")
	if err != nil {
		t.Fatalf("testimage: toolbox cache: %v", err)
	}
	defer os.RemoveAll(src)
	files := map[string][]byte{
		"go.mod":  []byte("module toolbox\n\ngo 1.22\n"),
		"main.go": toolboxSource,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatalf("testimage: toolbox source: %v", err)
		}
	}
	tmp := filepath.Join(src, "toolbox")
	cmd := exec.Command(goTool(), "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
		"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local", "GO111MODULE=on")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("testimage: build toolbox for linux/%s: %v\n%s", arch, err, out.Bytes())
	}
	// Rename is atomic: a concurrent builder either sees no file or a whole one.
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatalf("testimage: toolbox cache: %v", err)
	}
	return bin
}

// goTool finds the go command: the one of the toolchain that built the test
// binary when it is there, else the one on PATH.
func goTool() string {
	if root := runtime.GOROOT(); root != "" { //nolint:staticcheck // the test binary's own toolchain is the best match
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}
