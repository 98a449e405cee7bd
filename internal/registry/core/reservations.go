package core

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/netip"
	"strconv"
)

// Reservations is the shared store of the Service allocators: one claim
// per cluster IP or node port, so that several API servers never hand out
// the same value. The server implements it over etcd; every method must be
// safe for concurrent use and atomic across API servers.
//
// Keys are "serviceips/<ip>" (the canonical form of the address, e.g.
// "serviceips/10.43.0.15", "serviceips/fd00::a") and
// "servicenodeports/<port>" ("servicenodeports/30080"). Owners are
// "<namespace>/<name>/<uid>" of the Service that holds the claim, so a
// repair pass can tell a leaked claim from a live one.
type Reservations interface {
	// Reserve claims key for owner. It returns true when owner holds the
	// claim afterwards, including when owner already held it (so a
	// retried request may reserve again), and false when another owner
	// holds it. Errors are storage failures only.
	Reserve(ctx context.Context, key, owner string) (bool, error)
	// Release drops the claim on key if owner holds it, and does nothing
	// otherwise: it is idempotent and never releases another owner's
	// claim.
	Release(ctx context.Context, key, owner string) error
	// List returns every claim whose key starts with prefix, as key to
	// owner. The caller owns the map.
	List(ctx context.Context, prefix string) (map[string]string, error)
}

// Key prefixes of the claims in Reservations.
const (
	ServiceIPPrefix       = "serviceips/"
	ServiceNodePortPrefix = "servicenodeports/"
)

// errRangeFull reports that no value of a pool is free.
var errRangeFull = errors.New("range is full")

// randomTries is how many pseudo-random candidates are tried before a
// pool falls back to listing every claim and scanning for a free value.
const randomTries = 12

// pool is a range of values (cluster IPs or node ports) claimed in
// Reservations under one key prefix. Values are numbered 0..size-1.
//
// Like upstream's allocators, a pool keeps a lower band [0, static) for
// values that clients request by hand (the kubernetes service's .1, the
// DNS service's .10): random choices come from the upper band first and
// fall back to the lower band only when the upper band is full. Values
// below skip are never chosen at random.
type pool struct {
	prefix string
	size   uint64
	static uint64
	skip   uint64
	// key returns the key of value number i.
	key func(i uint64) string
}

// band is a half-open range [lo, hi) of value numbers.
type band struct{ lo, hi uint64 }

// bands returns the bands random choices come from, in order of
// preference.
func (p *pool) bands() []band {
	if p.static > p.skip && p.static < p.size {
		return []band{{p.static, p.size}, {p.skip, p.static}}
	}
	return []band{{p.skip, p.size}}
}

// candidate returns the n-th pseudo-random choice for (owner, slot) in b.
// Choices are a hash of their inputs rather than draws from a random
// source: a request that the store retries on a conflict runs the
// allocator again, and must land on the claim it made the first time
// (Reserve is idempotent for its owner) instead of leaking it. Owners
// carry the object's UID, so choices still differ between objects.
func candidate(owner, slot string, n int, b band) uint64 {
	h := fnv.New64a()
	h.Write([]byte(owner))
	h.Write([]byte{0})
	h.Write([]byte(slot))
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(n))
	h.Write(buf[:])
	return b.lo + h.Sum64()%(b.hi-b.lo)
}

// allocate claims a free value for owner and returns its key. exclude
// holds keys the caller already uses for other slots of the same object:
// they are never returned, even though Reserve would accept them. It
// returns errRangeFull when every value is taken.
func (p *pool) allocate(ctx context.Context, r Reservations, owner, slot string, exclude map[string]bool) (string, error) {
	bands := p.bands()
	for n := 0; n < randomTries; n++ {
		k := p.key(candidate(owner, slot, n, bands[0]))
		if exclude[k] {
			continue
		}
		ok, err := r.Reserve(ctx, k, owner)
		if err != nil {
			return "", err
		}
		if ok {
			return k, nil
		}
	}
	// Crowded: list the claims and try every free value, starting at a
	// pseudo-random point of each band.
	held, err := r.List(ctx, p.prefix)
	if err != nil {
		return "", err
	}
	for _, b := range bands {
		n := b.hi - b.lo
		start := candidate(owner, slot, -1, band{0, n})
		for j := uint64(0); j < n; j++ {
			k := p.key(b.lo + (start+j)%n)
			if exclude[k] {
				continue
			}
			if o, taken := held[k]; taken && o != owner {
				continue
			}
			ok, err := r.Reserve(ctx, k, owner)
			if err != nil {
				return "", err
			}
			if ok {
				return k, nil
			}
		}
	}
	return "", errRangeFull
}

// staticBand is upstream's size of the lower band: min(max(lo, size/step),
// hi), or none for ranges of at most lo values.
func staticBand(size, lo, step, hi uint64) uint64 {
	if size <= lo {
		return 0
	}
	return min(max(lo, size/step), hi)
}

// ipPool returns the pool of cluster IPs of prefix: every address but the
// network address (and, for IPv4, the broadcast address), the first
// usable one kept for requests only.
func ipPool(prefix netip.Prefix) *pool {
	hostBits := prefix.Addr().BitLen() - prefix.Bits()
	total := uint64(1) << hostBits
	size := total - 1 // not the network address
	if prefix.Addr().Is4() {
		size-- // nor the broadcast address
	}
	network := prefix.Masked().Addr()
	p := &pool{
		prefix: ServiceIPPrefix,
		size:   size,
		static: staticBand(total, 16, 16, 256),
		skip:   1,
	}
	p.key = func(i uint64) string { return ServiceIPPrefix + addrAdd(network, i+1).String() }
	return p
}

// ipIndex returns the value number of a in the pool of prefix, false when
// a is not a usable address of prefix.
func ipIndex(prefix netip.Prefix, size uint64, a netip.Addr) (uint64, bool) {
	a = a.Unmap()
	if !prefix.Contains(a) {
		return 0, false
	}
	off := addrDiff(prefix.Masked().Addr(), a)
	if off == 0 || off > size {
		return 0, false
	}
	return off - 1, true
}

// portPool returns the pool of node ports of r.
func portPool(r PortRange) *pool {
	size := uint64(r.Last - r.First + 1)
	p := &pool{
		prefix: ServiceNodePortPrefix,
		size:   size,
		static: staticBand(size, 16, 32, 128),
	}
	p.key = func(i uint64) string { return portKey(r.First + int(i)) }
	return p
}

func portKey(port int) string { return ServiceNodePortPrefix + strconv.Itoa(port) }

func ipKey(a netip.Addr) string { return ServiceIPPrefix + a.Unmap().String() }

// addrAdd returns a+n (n fits the host bits of a service CIDR).
func addrAdd(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	lo := binary.BigEndian.Uint64(b[8:]) + n
	if lo < binary.BigEndian.Uint64(b[8:]) {
		binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])+1)
	}
	binary.BigEndian.PutUint64(b[8:], lo)
	out := netip.AddrFrom16(b)
	if a.Is4() {
		return out.Unmap()
	}
	return out
}

// addrDiff returns b-a for addresses of one service CIDR (the difference
// fits in 64 bits).
func addrDiff(a, b netip.Addr) uint64 {
	x, y := a.As16(), b.As16()
	return binary.BigEndian.Uint64(y[8:]) - binary.BigEndian.Uint64(x[8:])
}
