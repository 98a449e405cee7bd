package storage

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

func TestSlogCore_ErrorsAreErrorsButKnownHarmlessOnes(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	z := zap.New(slogCore{logger: logger, closing: &atomic.Bool{}})
	z.Error("failed to update storage version", zap.String("error", "missing term information"))
	z.Error("raft: disk full")
	z.Warn("a warning")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=DEBUG msg="failed to update storage version"`,
		`level=ERROR msg="raft: disk full"`,
		`level=DEBUG msg="a warning"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s, want %s", i, lines[i], w)
		}
	}
}
