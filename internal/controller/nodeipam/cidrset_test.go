package nodeipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCIDRSet_AllocatesInOrder(t *testing.T) {
	tests := []struct {
		name     string
		cluster  string
		nodeBits int
		want     []string
	}{
		{name: "IPv4Slash24", cluster: "10.42.0.0/16", nodeBits: 24, want: []string{"10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"}},
		{name: "IPv4WholeClusterOneNode", cluster: "192.168.7.0/24", nodeBits: 24, want: []string{"192.168.7.0/24"}},
		{name: "IPv4HostRoutes", cluster: "10.0.0.0/30", nodeBits: 32, want: []string{"10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32"}},
		{name: "IPv6Slash64", cluster: "fd00:42::/56", nodeBits: 64, want: []string{"fd00:42::/64", "fd00:42:0:1::/64", "fd00:42:0:2::/64"}},
		{name: "IPv6ShiftAbove64", cluster: "fd00::/32", nodeBits: 48, want: []string{"fd00::/48", "fd00:0:1::/48", "fd00:0:2::/48"}},
		{name: "IPv6ShiftBelow64", cluster: "fd00::/104", nodeBits: 112, want: []string{"fd00::/112", "fd00::1:0/112", "fd00::2:0/112"}},
		{name: "IPv6ShiftExactly64", cluster: "fd00::/48", nodeBits: 64, want: []string{"fd00::/64", "fd00:0:0:1::/64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newCIDRSet(netip.MustParsePrefix(tt.cluster), tt.nodeBits)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for range tt.want {
				p, err := s.allocate()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("allocations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCIDRSet_IndexRoundTrips(t *testing.T) {
	for _, c := range []struct {
		cluster  string
		nodeBits int
	}{{"10.42.0.0/16", 24}, {"10.0.0.0/8", 20}, {"fd00::/40", 56}, {"fd00::/56", 64}, {"fd00::/100", 112}, {"2001::/16", 32}} {
		s, err := newCIDRSet(netip.MustParsePrefix(c.cluster), c.nodeBits)
		if err != nil {
			t.Fatal(err)
		}
		for i := range s.size() {
			p := s.subnet(i)
			if !s.cluster.Contains(p.Addr()) || p.Masked() != p {
				t.Fatalf("%s: subnet %d = %s, not a subnet of the cluster CIDR", c.cluster, i, p)
			}
			if got := s.index(p.Addr()); got != i {
				t.Fatalf("%s: index(subnet(%d) = %s) = %d", c.cluster, i, p, got)
			}
		}
	}
}

func TestCIDRSet_FullThenRoundRobin(t *testing.T) {
	s, err := newCIDRSet(netip.MustParsePrefix("10.0.0.0/30"), 31)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.allocate()
	b, _ := s.allocate()
	if _, err := s.allocate(); !errors.Is(err, errFull) {
		t.Fatalf("third allocation: err = %v, want errFull", err)
	}
	s.release(a)
	got, err := s.allocate()
	if err != nil || got != a {
		t.Fatalf("after releasing %s: got %s, %v", a, got, err)
	}
	s.release(b)
	s.release(a)
	// The subnet after the last one handed out (a) is b.
	if got, _ := s.allocate(); got != b {
		t.Errorf("round robin: got %s, want %s", got, b)
	}
}

func TestCIDRSet_Occupy(t *testing.T) {
	tests := []struct {
		name         string
		occupy       []string
		wantInRange  []bool
		wantConflict []bool
		wantFree     int
		wantNext     string // what allocate hands out next
	}{
		{name: "OneSubnet", occupy: []string{"10.42.0.0/24"}, wantInRange: []bool{true}, wantConflict: []bool{false}, wantFree: 3, wantNext: "10.42.1.0/24"},
		{name: "LargerPrefixTakesSeveral", occupy: []string{"10.42.0.0/23"}, wantInRange: []bool{true}, wantConflict: []bool{false}, wantFree: 2, wantNext: "10.42.2.0/24"},
		{name: "SmallerPrefixTakesItsSubnet", occupy: []string{"10.42.0.128/25"}, wantInRange: []bool{true}, wantConflict: []bool{false}, wantFree: 3, wantNext: "10.42.1.0/24"},
		{name: "UnmaskedPrefix", occupy: []string{"10.42.0.7/24"}, wantInRange: []bool{true}, wantConflict: []bool{false}, wantFree: 3, wantNext: "10.42.1.0/24"},
		{name: "CoveringPrefixTakesAll", occupy: []string{"10.0.0.0/8"}, wantInRange: []bool{true}, wantConflict: []bool{false}, wantFree: 0},
		{name: "OutsideRange", occupy: []string{"10.43.0.0/24"}, wantInRange: []bool{false}, wantConflict: []bool{false}, wantFree: 4, wantNext: "10.42.0.0/24"},
		{name: "OtherFamily", occupy: []string{"fd00::/64"}, wantInRange: []bool{false}, wantConflict: []bool{false}, wantFree: 4, wantNext: "10.42.0.0/24"},
		{name: "Conflict", occupy: []string{"10.42.1.0/24", "10.42.1.0/24"}, wantInRange: []bool{true, true}, wantConflict: []bool{false, true}, wantFree: 3, wantNext: "10.42.0.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newCIDRSet(netip.MustParsePrefix("10.42.0.0/22"), 24)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range tt.occupy {
				in, conflict := s.occupy(netip.MustParsePrefix(o))
				if in != tt.wantInRange[i] || conflict != tt.wantConflict[i] {
					t.Errorf("occupy(%s) = %v, %v; want %v, %v", o, in, conflict, tt.wantInRange[i], tt.wantConflict[i])
				}
			}
			if s.free != tt.wantFree {
				t.Errorf("free = %d, want %d", s.free, tt.wantFree)
			}
			p, err := s.allocate()
			if tt.wantNext == "" {
				if !errors.Is(err, errFull) {
					t.Errorf("allocate = %s, %v; want errFull", p, err)
				}
				return
			}
			if err != nil || p.String() != tt.wantNext {
				t.Errorf("allocate = %s, %v; want %s", p, err, tt.wantNext)
			}
		})
	}
}

func TestCIDRSet_ReleaseCountsClaims(t *testing.T) {
	s, err := newCIDRSet(netip.MustParsePrefix("10.42.0.0/23"), 24)
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("10.42.0.0/24")
	s.occupy(p)
	s.occupy(p) // a second node claims it too
	s.release(p)
	if s.free != 1 {
		t.Fatalf("after one of two claims is released: free = %d, want 1", s.free)
	}
	s.release(p)
	s.release(p) // releasing a free subnet is a no-op
	s.release(netip.MustParsePrefix("192.168.0.0/24"))
	if s.free != 2 {
		t.Fatalf("free = %d, want 2", s.free)
	}
}

func TestNewCIDRSet_RejectsBadSizes(t *testing.T) {
	tests := []struct {
		name     string
		cluster  netip.Prefix
		nodeBits int
		want     string
	}{
		{name: "Invalid", cluster: netip.Prefix{}, nodeBits: 24, want: "invalid cluster CIDR"},
		{name: "NotNetworkAddress", cluster: netip.MustParsePrefix("10.42.3.1/16"), nodeBits: 24, want: "did you mean 10.42.0.0/16"},
		{name: "NodeMaskTooLong", cluster: netip.MustParsePrefix("10.42.0.0/16"), nodeBits: 33, want: "longer than an address"},
		{name: "NodeMaskShorterThanCluster", cluster: netip.MustParsePrefix("10.42.0.0/16"), nodeBits: 8, want: "shorter than cluster CIDR"},
		{name: "TooManySubnets", cluster: netip.MustParsePrefix("10.0.0.0/8"), nodeBits: 28, want: "more than 2^16 subnets"},
		{name: "TooManyIPv6Subnets", cluster: netip.MustParsePrefix("fd00::/32"), nodeBits: 64, want: "more than 2^16 subnets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCIDRSet(tt.cluster, tt.nodeBits)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
