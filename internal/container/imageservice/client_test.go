package imageservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/imageservice/api"
)

func TestClient_ReportsAnUnreachableRuntime(t *testing.T) {
	dir, err := os.MkdirTemp("", "imgsvc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	// A gRPC server without the image service: another CRI runtime.
	gs := grpc.NewServer()
	other := filepath.Join(dir, "other.sock")
	ln, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)

	tests := []struct {
		name   string
		socket string
		want   error
	}{
		{name: "NothingListens", socket: filepath.Join(dir, "missing.sock"), want: ErrUnavailable},
		{name: "NotSkiffsRuntime", socket: other, want: ErrUnimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(tt.socket)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			calls := map[string]func() error{
				"List":   func() error { _, err := c.List(context.Background(), ""); return err },
				"GC":     func() error { _, err := c.GC(context.Background()); return err },
				"Remove": func() error { _, err := c.Remove(context.Background(), "x"); return err },
				"Pull":   func() error { _, err := c.Pull(context.Background(), "x", nil, nil); return err },
				"Import": func() error { _, err := c.Import(context.Background(), strings.NewReader(""), nil); return err },
			}
			for name, call := range calls {
				err := call()
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: error %v, want %v", name, err, tt.want)
				}
				if err != nil && !strings.Contains(err.Error(), tt.socket) {
					t.Errorf("%s: error %q does not name the socket", name, err)
				}
			}
		})
	}
}

func TestErrors_RoundTripTheirClass(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"NotFound", fmt.Errorf("pull image x: %w", image.ErrNotFound)},
		{"Unauthorized", fmt.Errorf("pull image x: %w", image.ErrUnauthorized)},
		{"DigestMismatch", fmt.Errorf("pull image x: %w: layer", image.ErrDigestMismatch)},
		{"UnsafeLayer", fmt.Errorf("import: %w", image.ErrUnsafeLayer)},
		{"InvalidReference", fmt.Errorf("pull image X: %w", image.ErrInvalidReference)},
		{"Unsupported", fmt.Errorf("pull: %w: schema 1", image.ErrUnsupported)},
		{"Invalid", fmt.Errorf("pull: %w: empty", ErrInvalid)},
		{"Canceled", fmt.Errorf("pull: %w", context.Canceled)},
		{"Unclassified", errors.New("dial tcp 127.0.0.1:1: connection refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromStatus(toStatus(tt.err), "unix:///s")
			if got.Error() != tt.err.Error() {
				t.Errorf("message %q, want %q", got.Error(), tt.err.Error())
			}
			for _, class := range []error{image.ErrNotFound, image.ErrUnauthorized, image.ErrDigestMismatch, image.ErrUnsafeLayer,
				image.ErrInvalidReference, image.ErrUnsupported, ErrInvalid, context.Canceled, ErrUnavailable, ErrUnimplemented} {
				if errors.Is(got, class) != errors.Is(tt.err, class) {
					t.Errorf("errors.Is(%v) = %v after the round trip, %v before", class, errors.Is(got, class), errors.Is(tt.err, class))
				}
			}
		})
	}
}

func TestSender_NeverMakesTheStoreWait(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sent []string
	s := startSender(func(p *api.Progress) error {
		<-release // a client that does not read
		mu.Lock()
		sent = append(sent, p.GetRef())
		mu.Unlock()
		return nil
	})
	for i := range 1000 {
		s.report(image.Progress{Ref: fmt.Sprint(i)})
	}
	close(release)
	s.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 || sent[len(sent)-1] != "999" {
		t.Fatalf("sent %v; want the last snapshot, 999, last", sent)
	}
	if len(sent) > 3 {
		t.Errorf("sent %d snapshots to a stuck client, want the pending ones coalesced", len(sent))
	}
}

func TestSender_StopsSendingToAGoneClient(t *testing.T) {
	calls := 0
	s := startSender(func(*api.Progress) error {
		calls++
		return errors.New("stream closed")
	})
	s.report(image.Progress{Ref: "a"})
	s.report(image.Progress{Ref: "b"})
	s.stop()
	if calls != 1 {
		t.Errorf("send called %d times, want 1", calls)
	}
}
