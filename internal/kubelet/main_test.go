package kubelet_test

import (
	"os"
	"testing"

	"github.com/skiff-sh/skiff/internal/container"
)

// TestMain lets the test binary serve as the container runtime's helpers
// when the in-process runtime of the root tests re-executes it.
func TestMain(m *testing.M) {
	container.MaybeRunInit()
	os.Exit(m.Run())
}
