// Package testutil holds small helpers shared by skiff's tests.
package testutil

import (
	"os"
	"testing"
)

// RequireRoot skips t when the test process is not root. When the
// environment sets SKIFF_REQUIRE_ROOT=1 (CI does), it fails t instead, so a
// run that should exercise the real kernel can never pass by skipping.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SKIFF_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root, and SKIFF_REQUIRE_ROOT=1 forbids skipping it")
	}
	t.Skip("skipping: this test needs root (set SKIFF_REQUIRE_ROOT=1 to make this a failure)")
}

// SkipUnlessRequired skips t because the host lacks something the test
// needs (a command, a kernel feature). When SKIFF_REQUIRE_ROOT=1 (CI, whose
// hack/test-deps installs what the tests need) it fails t instead, so a
// run can never pass by skipping what it was meant to exercise.
func SkipUnlessRequired(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("SKIFF_REQUIRE_ROOT") == "1" {
		t.Fatalf("%s, and SKIFF_REQUIRE_ROOT=1 forbids skipping", why)
	}
	t.Skip("skipping: " + why)
}
