package nft

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Register is the register the builders load into and compare in.
const Register = 1

// Field is a packet header field the builders match.
type Field int

// The IPv4 header fields the builders know.
const (
	IPv4Saddr Field = iota
	IPv4Daddr
)

// offset returns the field's offset in the network header.
func (f Field) offset() uint32 {
	if f == IPv4Daddr {
		return 16
	}
	return 12
}

// MatchNFProto returns the expressions that match packets of one layer 3
// protocol (unix.NFPROTO_IPV4 or unix.NFPROTO_IPV6) in an inet table:
// nft's "meta nfproto ipv4". Put it before any IPv4 header match there.
func MatchNFProto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: Register},
		&expr.Cmp{Op: expr.CmpOpEq, Register: Register, Data: []byte{proto}},
	}
}

// MatchIPv4Prefix returns the expressions that match packets whose field
// is inside p (or, with not, outside it): nft's "ip saddr 10.42.0.0/24" or
// "ip daddr != 10.42.0.0/16". p must be a valid IPv4 prefix; its host bits
// are ignored. A /32 needs no mask; a /0 masks every bit away, so it
// matches every packet (and, with not, none).
func MatchIPv4Prefix(f Field, p netip.Prefix, not bool) []expr.Any {
	op := expr.CmpOpEq
	if not {
		op = expr.CmpOpNeq
	}
	p = p.Masked()
	addr := p.Addr().As4()
	out := []expr.Any{
		&expr.Payload{DestRegister: Register, Base: expr.PayloadBaseNetworkHeader, Offset: f.offset(), Len: 4},
	}
	if p.Bits() < 32 {
		mask := make([]byte, 4)
		binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
		if p.Bits() == 0 {
			mask = []byte{0, 0, 0, 0}
		}
		out = append(out, &expr.Bitwise{SourceRegister: Register, DestRegister: Register, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}})
	}
	return append(out, &expr.Cmp{Op: op, Register: Register, Data: addr[:]})
}

// Comment returns a rule's UserData holding a comment, which nft shows
// after the rule.
func Comment(text string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, text)
}

// NFProtoIPv4 is the argument of MatchNFProto for IPv4.
const NFProtoIPv4 = byte(unix.NFPROTO_IPV4)

// Transport protocol numbers, for MatchL4Proto.
const (
	ProtoTCP  = byte(unix.IPPROTO_TCP)
	ProtoUDP  = byte(unix.IPPROTO_UDP)
	ProtoSCTP = byte(unix.IPPROTO_SCTP)
)

// MatchL4Proto returns the expressions that match packets of one
// transport protocol (ProtoTCP, ProtoUDP, ProtoSCTP): nft's "meta l4proto
// tcp". Put it before MatchDPort.
func MatchL4Proto(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: Register},
		&expr.Cmp{Op: expr.CmpOpEq, Register: Register, Data: []byte{proto}},
	}
}

// MatchDPort returns the expressions that match the destination port of
// the transport header: nft's "th dport 8080". TCP, UDP and SCTP keep it
// at the same offset; match the protocol first with MatchL4Proto.
func MatchDPort(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: Register, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: Register, Data: binary.BigEndian.AppendUint16(nil, port)},
	}
}

// MatchLocalDaddr returns the expressions that match packets addressed to
// one of the host's own addresses (loopback included): nft's "fib daddr
// type local".
func MatchLocalDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: Register, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: Register, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
	}
}

// MatchIIFName returns the expressions that match packets that came in
// through the interface called name: nft's "iifname skiff0". Matching by
// name keeps working when the interface is made again.
func MatchIIFName(name string) []expr.Any { return matchIfName(expr.MetaKeyIIFNAME, name) }

// MatchOIFName returns the expressions that match packets that leave
// through the interface called name: nft's "oifname skiff0".
func MatchOIFName(name string) []expr.Any { return matchIfName(expr.MetaKeyOIFNAME, name) }

func matchIfName(key expr.MetaKey, name string) []expr.Any {
	// The kernel loads the name as IFNAMSIZ bytes, NUL padded; nft
	// compares all of them.
	data := make([]byte, unix.IFNAMSIZ)
	copy(data, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: Register},
		&expr.Cmp{Op: expr.CmpOpEq, Register: Register, Data: data},
	}
}

// MatchCtDNAT returns the expressions that match packets of connections
// whose destination was rewritten (nft's "ct status dnat"), or, with not,
// of connections whose destination was not.
func MatchCtDNAT(not bool) []expr.Any {
	op := expr.CmpOpNeq
	if not {
		op = expr.CmpOpEq
	}
	zero := []byte{0, 0, 0, 0}
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: Register},
		&expr.Bitwise{SourceRegister: Register, DestRegister: Register, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, ipsDstNAT), Xor: zero},
		&expr.Cmp{Op: op, Register: Register, Data: zero},
	}
}

// ipsDstNAT is the conntrack status bit IPS_DST_NAT.
const ipsDstNAT = 1 << 5

// DNAT returns the expressions that rewrite a new connection's destination
// to the IPv4 address and port of to: nft's "dnat ip to 10.42.0.5:80". It
// uses registers 1 and 2.
func DNAT(to netip.AddrPort) []expr.Any {
	addr := to.Addr().As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: addr[:]},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, to.Port())},
		// The kernel reports a single address and port as a range of
		// one, with "proto specified": saying so here keeps what is
		// written and what is read back the same.
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true},
	}
}
