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
