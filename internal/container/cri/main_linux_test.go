package cri_test

import (
	"os"
	"testing"

	"github.com/skiff-sh/skiff/internal/container"
)

// TestMain lets the test binary serve as the runtime's helpers when the
// in-process runtime re-executes it.
func TestMain(m *testing.M) {
	container.MaybeRunInit()
	os.Exit(m.Run())
}
