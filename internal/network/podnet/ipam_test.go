package podnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustOpen(t *testing.T, dir, cidr string) *allocator {
	t.Helper()
	a, err := openAllocator(dir, netip.MustParsePrefix(cidr), discard())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// allocIPs allocates for each sandbox ID and returns the IPs as strings,
// or the error's sentinel name.
func allocIPs(t *testing.T, a *allocator, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		rec, err := a.allocate(PodRef{SandboxID: id})
		switch {
		case errors.Is(err, ErrExhausted):
			out = append(out, "exhausted")
		case err != nil:
			t.Fatalf("allocate %s: %v", id, err)
		default:
			out = append(out, rec.IP.String())
		}
	}
	return out
}

func TestAllocator_HandsOutAddresses(t *testing.T) {
	tests := []struct {
		name    string
		cidr    string
		ids     []string
		release []string // IPs freed after the first round
		then    []string // sandbox IDs allocated after that
		want    []string
	}{
		{
			name: "skips network gateway and broadcast",
			cidr: "10.42.0.0/29",
			ids:  []string{"a", "b", "c", "d", "e", "f"},
			want: []string{"10.42.0.2", "10.42.0.3", "10.42.0.4", "10.42.0.5", "10.42.0.6", "exhausted"},
		},
		{
			name: "a /30 has one pod address",
			cidr: "10.42.0.0/30",
			ids:  []string{"a", "b"},
			want: []string{"10.42.0.2", "exhausted"},
		},
		{
			name:    "round robin does not reuse a freed address at once",
			cidr:    "10.42.0.0/24",
			ids:     []string{"a", "b"},
			release: []string{"10.42.0.2"},
			then:    []string{"c"},
			want:    []string{"10.42.0.2", "10.42.0.3", "10.42.0.4"},
		},
		{
			name:    "wraps around to freed addresses",
			cidr:    "10.42.0.0/29",
			ids:     []string{"a", "b", "c", "d", "e"},
			release: []string{"10.42.0.3"},
			then:    []string{"f", "g"},
			want:    []string{"10.42.0.2", "10.42.0.3", "10.42.0.4", "10.42.0.5", "10.42.0.6", "10.42.0.3", "exhausted"},
		},
		{
			name: "pod CIDR not at a /24 boundary",
			cidr: "10.42.8.0/22",
			ids:  []string{"a", "b"},
			want: []string{"10.42.8.2", "10.42.8.3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustOpen(t, t.TempDir(), tt.cidr)
			got := allocIPs(t, a, tt.ids...)
			for _, ip := range tt.release {
				if err := a.release(netip.MustParseAddr(ip)); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, allocIPs(t, a, tt.then...)...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("allocations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllocator_PersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	a := mustOpen(t, dir, "10.42.0.0/24")
	allocIPs(t, a, "a", "b", "c")
	if err := a.release(netip.MustParseAddr("10.42.0.4")); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, dir, "10.42.0.0/24")
	rec, ok := b.get("b")
	if !ok || rec.IP != netip.MustParseAddr("10.42.0.3") {
		t.Errorf("after reopen, b = %+v, %v; want 10.42.0.3", rec, ok)
	}
	if _, ok := b.get("c"); ok {
		t.Error("after reopen, released c is still allocated")
	}
	// Allocation resumes after the highest address in use.
	if got := allocIPs(t, b, "d"); !cmp.Equal(got, []string{"10.42.0.4"}) {
		t.Errorf("after reopen, d got %v, want 10.42.0.4", got)
	}
}

func TestAllocator_SurvivesDebrisInItsDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("10.42.0.2", `{"ip":"10.42.0.2","sandboxID":"good"}`)
	write("10.42.0.3", `not json`)
	write("10.42.0.4", `{"ip":"10.42.0.9","sandboxID":"mismatch"}`)
	write("10.42.0.5", `{"ip":"10.42.0.5","sandboxID":"good"}`) // a second one for "good"
	write("10.42.0.6", `{"ip":"10.42.0.6","sandboxID":"bad/id"}`)
	write("10.42.7.7", `{"ip":"10.42.7.7","sandboxID":"old-cidr"}`)
	write("10.42.0.8", `{"ip":"10.42.0.8","sandb`) // a crash while writing
	write("README", `someone else's`)

	a := mustOpen(t, dir, "10.42.0.0/24")
	var got []string
	for _, rec := range a.all() {
		got = append(got, rec.IP.String()+"="+rec.SandboxID)
	}
	want := []string{"10.42.0.2=good", "10.42.0.3=", "10.42.0.4=", "10.42.0.6=", "10.42.0.8=", "10.42.7.7=old-cidr"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("loaded allocations (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("someone else's file was touched: %v", err)
	}
	// Allocation resumes after the highest address in use, and the
	// unreadable records keep theirs until the pod CIDR is full.
	if got := allocIPs(t, a, "next"); !cmp.Equal(got, []string{"10.42.0.9"}) {
		t.Errorf("next pod got %v, want 10.42.0.9", got)
	}
	for i := 0; ; i++ {
		rec, err := a.allocate(PodRef{SandboxID: fmt.Sprintf("fill-%d", i)})
		if errors.Is(err, ErrExhausted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.IP.String() {
		case "10.42.0.3", "10.42.0.4", "10.42.0.6", "10.42.0.8":
			t.Errorf("reserved %s was handed out", rec.IP)
		}
	}
}

func TestAllocator_ReleaseOfAFreeAddressIsFine(t *testing.T) {
	a := mustOpen(t, t.TempDir(), "10.42.0.0/24")
	if err := a.release(netip.MustParseAddr("10.42.0.9")); err != nil {
		t.Error(err)
	}
}

func TestAllocator_UnwritableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openAllocator(filepath.Join(file, "sub"), netip.MustParsePrefix("10.42.0.0/24"), discard()); err == nil {
		t.Error("openAllocator under a regular file succeeded")
	}
}

func TestBroadcastOf(t *testing.T) {
	tests := []struct{ cidr, want string }{
		{"10.42.0.0/24", "10.42.0.255"},
		{"10.42.8.0/22", "10.42.11.255"},
		{"10.42.0.0/30", "10.42.0.3"},
		{"10.0.0.0/8", "10.255.255.255"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			if got := broadcastOf(netip.MustParsePrefix(tt.cidr)).String(); got != tt.want {
				t.Errorf("broadcastOf(%s) = %s, want %s", tt.cidr, got, tt.want)
			}
		})
	}
}
