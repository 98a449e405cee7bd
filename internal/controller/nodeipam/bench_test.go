package nodeipam

import (
	"net/netip"
	"testing"
)

// BenchmarkCIDRSetAllocate compares allocating (and releasing) a node
// subnet in the largest set, 10.0.0.0/8 cut into 65536 /24s, when it is
// empty and when all but one subnet are taken and the free one lies just
// behind the scan's start (the worst case: a full scan).
//
//	go test -run '^$' -bench BenchmarkCIDRSetAllocate ./internal/controller/nodeipam/
func BenchmarkCIDRSetAllocate(b *testing.B) {
	cluster := netip.MustParsePrefix("10.0.0.0/8")
	b.Run("Empty", func(b *testing.B) {
		s, err := newCIDRSet(cluster, 24)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			p, err := s.allocate()
			if err != nil {
				b.Fatal(err)
			}
			s.release(p)
		}
	})
	b.Run("OneFreeWorstCase", func(b *testing.B) {
		s, err := newCIDRSet(cluster, 24)
		if err != nil {
			b.Fatal(err)
		}
		for range s.size() - 1 {
			if _, err := s.allocate(); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			p, err := s.allocate() // the last free one, found after a full scan
			if err != nil {
				b.Fatal(err)
			}
			s.release(p)
		}
	})
}
