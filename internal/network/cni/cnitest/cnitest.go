// Package cnitest builds the reference CNI plugins for tests that run real
// plugins: bridge, host-local and portmap from
// github.com/containernetworking/plugins.
package cnitest

import (
	"os"
	"os/exec"
	"testing"
)

// Version is the release of github.com/containernetworking/plugins that
// Plugins builds.
const Version = "v1.10.0"

// packages are the plugins Plugins builds.
var packages = []string{"main/bridge", "ipam/host-local", "meta/portmap"}

// Plugins builds bridge, host-local and portmap into a temporary directory
// of t and returns the directory. It runs `go install pkg@Version`, which
// builds with the plugins' own go.mod whatever skiff's requires, from the
// module cache or the Go module proxy (a few seconds once cached). When
// they cannot be built, t is skipped, or fails when SKIFF_REQUIRE_ROOT=1
// (CI), so CI never passes without running them.
func Plugins(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"install"}
	for _, p := range packages {
		args = append(args, "github.com/containernetworking/plugins/plugins/"+p+"@"+Version)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return dir
	}
	if os.Getenv("SKIFF_REQUIRE_ROOT") == "1" {
		t.Fatalf("build the reference CNI plugins %s: %v\n%s", Version, err, out)
	}
	t.Skipf("skipping: cannot build the reference CNI plugins %s (set SKIFF_REQUIRE_ROOT=1 to make this a failure): %v\n%s", Version, err, out)
	return ""
}
