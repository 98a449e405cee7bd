package nodeipam

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// maxSubnetBits bounds how many node subnets one cluster CIDR holds
// (2^16), as upstream's range allocator does.
const maxSubnetBits = 16

// errFull is returned by cidrSet.allocate when every subnet is taken.
var errFull = errors.New("no free node CIDR left")

// cidrSet hands out the node-sized subnets of one cluster CIDR.
//
// Subnet i of the set is the cluster CIDR's base address plus
// i << (address bits - node mask size). Each subnet has a use count: 0 is
// free, 1 is held by one node, more means several nodes claim it (a
// conflict the controller reports but cannot undo, since spec.podCIDR is
// immutable). Allocation scans from the subnet after the last one handed
// out, so a released subnet is not reused at once.
//
// A cidrSet is not safe for concurrent use; the controller guards it.
type cidrSet struct {
	cluster  netip.Prefix
	nodeBits int // node mask size
	shift    int // address bits - nodeBits
	used     []uint16
	free     int
	next     int
}

// newCIDRSet returns the set of /nodeBits subnets of cluster, which must
// be a masked prefix no more than maxSubnetBits shorter than nodeBits.
func newCIDRSet(cluster netip.Prefix, nodeBits int) (*cidrSet, error) {
	if !cluster.IsValid() {
		return nil, errors.New("invalid cluster CIDR")
	}
	if cluster.Masked() != cluster {
		return nil, fmt.Errorf("cluster CIDR %s is not a network address (did you mean %s?)", cluster, cluster.Masked())
	}
	addrBits := cluster.Addr().BitLen()
	switch {
	case nodeBits > addrBits:
		return nil, fmt.Errorf("node mask size /%d is longer than an address of %s", nodeBits, cluster)
	case nodeBits < cluster.Bits():
		return nil, fmt.Errorf("node mask size /%d is shorter than cluster CIDR %s", nodeBits, cluster)
	case nodeBits-cluster.Bits() > maxSubnetBits:
		return nil, fmt.Errorf("node mask size /%d cuts cluster CIDR %s into more than 2^%d subnets", nodeBits, cluster, maxSubnetBits)
	}
	n := 1 << (nodeBits - cluster.Bits())
	return &cidrSet{
		cluster:  cluster,
		nodeBits: nodeBits,
		shift:    addrBits - nodeBits,
		used:     make([]uint16, n),
		free:     n,
	}, nil
}

// size is the number of subnets.
func (s *cidrSet) size() int { return len(s.used) }

// subnet returns subnet i.
func (s *cidrSet) subnet(i int) netip.Prefix {
	b := s.cluster.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	// Add i << shift to the 128-bit address (shift < 128; i < 2^16).
	var addHi, addLo uint64
	switch {
	case s.shift >= 64:
		addHi = uint64(i) << (s.shift - 64)
	case s.shift == 0:
		addLo = uint64(i)
	default:
		addLo = uint64(i) << s.shift
		addHi = uint64(i) >> (64 - s.shift)
	}
	lo2 := lo + addLo
	carry := uint64(0)
	if lo2 < lo {
		carry = 1
	}
	hi += addHi + carry
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo2)
	addr := netip.AddrFrom16(b)
	if s.cluster.Addr().Is4() {
		addr = addr.Unmap()
	}
	return netip.PrefixFrom(addr, s.nodeBits)
}

// index returns the subnet index of addr, which must be in the cluster
// CIDR.
func (s *cidrSet) index(addr netip.Addr) int {
	a, base := addr.As16(), s.cluster.Addr().As16()
	// The offset fits in 16+shift bits; compute it 128-bit wide, then shift.
	ahi, alo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	bhi, blo := binary.BigEndian.Uint64(base[:8]), binary.BigEndian.Uint64(base[8:])
	lo := alo - blo
	borrow := uint64(0)
	if alo < blo {
		borrow = 1
	}
	hi := ahi - bhi - borrow
	switch {
	case s.shift >= 64:
		return int(hi >> (s.shift - 64))
	case s.shift == 0:
		return int(lo)
	default:
		return int(lo>>s.shift | hi<<(64-s.shift))
	}
}

// allocate takes the next free subnet.
func (s *cidrSet) allocate() (netip.Prefix, error) {
	if s.free == 0 {
		return netip.Prefix{}, fmt.Errorf("cluster CIDR %s: %w", s.cluster, errFull)
	}
	for k := range len(s.used) {
		i := (s.next + k) % len(s.used)
		if s.used[i] == 0 {
			s.used[i] = 1
			s.free--
			s.next = (i + 1) % len(s.used)
			return s.subnet(i), nil
		}
	}
	panic("cidrSet: free count out of step with the use counts")
}

// span returns the range [first, last] of subnets that p overlaps, or
// ok=false when p lies outside the cluster CIDR.
func (s *cidrSet) span(p netip.Prefix) (first, last int, ok bool) {
	p = p.Masked()
	if p.Addr().BitLen() != s.cluster.Addr().BitLen() || !s.cluster.Overlaps(p) {
		return 0, 0, false
	}
	if p.Bits() <= s.cluster.Bits() {
		// p covers the whole cluster CIDR.
		return 0, len(s.used) - 1, true
	}
	first = s.index(p.Addr())
	if p.Bits() >= s.nodeBits {
		return first, first, true
	}
	return first, first + 1<<(s.nodeBits-p.Bits()) - 1, true
}

// occupy marks the subnets p overlaps as used once more. It reports
// whether p lies in the cluster CIDR, and whether any of its subnets was
// already used (a conflict).
func (s *cidrSet) occupy(p netip.Prefix) (inRange, conflict bool) {
	first, last, ok := s.span(p)
	if !ok {
		return false, false
	}
	for i := first; i <= last; i++ {
		if s.used[i] == 0 {
			s.free--
		} else {
			conflict = true
		}
		if s.used[i] < ^uint16(0) {
			s.used[i]++
		}
	}
	return true, conflict
}

// release undoes one occupy or allocate of p. Releasing a subnet that is
// free is a no-op.
func (s *cidrSet) release(p netip.Prefix) {
	first, last, ok := s.span(p)
	if !ok {
		return
	}
	for i := first; i <= last; i++ {
		if s.used[i] == 0 {
			continue
		}
		s.used[i]--
		if s.used[i] == 0 {
			s.free++
		}
	}
}
