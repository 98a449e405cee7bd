package reservationstest

import (
	"testing"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

func TestMemory(t *testing.T) {
	Run(t, func(*testing.T) core.Reservations { return NewMemory() })
}
