package nft

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Dump reads the table of the given family and name back from the kernel
// through c and formats it with Format. Chains are in the kernel's order,
// and rules in each chain's order.
func Dump(c *nftables.Conn, family nftables.TableFamily, name string) (string, error) {
	t, err := c.ListTableOfFamily(name, family)
	if err != nil {
		return "", fmt.Errorf("list nftables table %s %s: %w", FamilyName(family), name, err)
	}
	all, err := c.ListChainsOfTableFamily(family)
	if err != nil {
		return "", fmt.Errorf("list chains of nftables table %s %s: %w", FamilyName(family), name, err)
	}
	var chains []*nftables.Chain
	rules := map[string][]*nftables.Rule{}
	for _, ch := range all {
		if ch.Table == nil || ch.Table.Name != name {
			continue
		}
		chains = append(chains, ch)
		rs, err := c.GetRules(t, ch)
		if err != nil {
			return "", fmt.Errorf("list rules of nftables chain %s %s %s: %w", FamilyName(family), name, ch.Name, err)
		}
		rules[ch.Name] = rs
	}
	return Format(t, chains, rules), nil
}

// Format renders a table, its chains (in the order given) and each
// chain's rules (rules[chain name]) as text, as described in the package
// documentation.
func Format(t *nftables.Table, chains []*nftables.Chain, rules map[string][]*nftables.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s\n", FamilyName(t.Family), t.Name)
	for _, ch := range chains {
		b.WriteString(formatChain(ch))
		b.WriteByte('\n')
		for _, r := range rules[ch.Name] {
			b.WriteString("  rule")
			if c, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
				fmt.Fprintf(&b, " # %s", c)
			}
			b.WriteByte('\n')
			for _, e := range r.Exprs {
				fmt.Fprintf(&b, "    %s\n", FormatExpr(e))
			}
		}
	}
	return b.String()
}

// FamilyName returns nft's name of a table family.
func FamilyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyNetdev:
		return "netdev"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family(%d)", f)
}

func formatChain(ch *nftables.Chain) string {
	if ch.Hooknum == nil {
		return "chain " + ch.Name
	}
	prio := "?"
	if ch.Priority != nil {
		prio = fmt.Sprint(int32(*ch.Priority))
	}
	policy := "accept"
	if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
		policy = "drop"
	}
	return fmt.Sprintf("chain %s { type %s hook %s priority %s; policy %s; }", ch.Name, ch.Type, hookName(*ch.Hooknum), prio, policy)
}

func hookName(h nftables.ChainHook) string {
	switch uint32(h) {
	case unix.NF_INET_PRE_ROUTING:
		return "prerouting"
	case unix.NF_INET_LOCAL_IN:
		return "input"
	case unix.NF_INET_FORWARD:
		return "forward"
	case unix.NF_INET_LOCAL_OUT:
		return "output"
	case unix.NF_INET_POST_ROUTING:
		return "postrouting"
	}
	return fmt.Sprintf("hook(%d)", uint32(h))
}

// FormatExpr renders one expression on one line.
func FormatExpr(e expr.Any) string {
	switch e := e.(type) {
	case *expr.Meta:
		if e.SourceRegister {
			return fmt.Sprintf("meta set %s with reg %d", metaKeyName(e.Key), e.Register)
		}
		return fmt.Sprintf("meta load %s => reg %d", metaKeyName(e.Key), e.Register)
	case *expr.Cmp:
		return fmt.Sprintf("cmp %s reg %d %s", cmpOpName(e.Op), e.Register, hexData(e.Data))
	case *expr.Payload:
		if e.OperationType == expr.PayloadWrite {
			return fmt.Sprintf("payload write reg %d => %db @ %s + %d csum_type %d csum_off %d csum_flags 0x%x",
				e.SourceRegister, e.Len, payloadBaseName(e.Base), e.Offset, e.CsumType, e.CsumOffset, e.CsumFlags)
		}
		return fmt.Sprintf("payload load %db @ %s + %d => reg %d", e.Len, payloadBaseName(e.Base), e.Offset, e.DestRegister)
	case *expr.Bitwise:
		return fmt.Sprintf("bitwise reg %d = (reg %d & %s) ^ %s", e.DestRegister, e.SourceRegister, hexData(e.Mask), hexData(e.Xor))
	case *expr.Counter:
		return "counter"
	case *expr.Masq:
		var flags []string
		if e.Random {
			flags = append(flags, "random")
		}
		if e.FullyRandom {
			flags = append(flags, "fully-random")
		}
		if e.Persistent {
			flags = append(flags, "persistent")
		}
		s := "masq"
		if e.ToPorts {
			s += fmt.Sprintf(" proto_min reg %d proto_max reg %d", e.RegProtoMin, e.RegProtoMax)
		}
		if len(flags) > 0 {
			s += " flags " + strings.Join(flags, ",")
		}
		return s
	case *expr.Verdict:
		if e.Chain != "" {
			return fmt.Sprintf("immediate reg 0 %s %s", verdictName(e.Kind), e.Chain)
		}
		return fmt.Sprintf("immediate reg 0 %s", verdictName(e.Kind))
	case *expr.Immediate:
		return fmt.Sprintf("immediate reg %d %s", e.Register, hexData(e.Data))
	case *expr.Lookup:
		s := fmt.Sprintf("lookup reg %d set %s", e.SourceRegister, e.SetName)
		if e.IsDestRegSet {
			s += fmt.Sprintf(" dreg %d", e.DestRegister)
		}
		if e.Invert {
			s += " inverted"
		}
		return s
	case *expr.NAT:
		return formatNAT(e)
	case *expr.Fib:
		return formatFib(e)
	case *expr.Ct:
		if e.SourceRegister {
			return fmt.Sprintf("ct set %s with reg %d", ctKeyName(e.Key), e.Register)
		}
		return fmt.Sprintf("ct load %s => reg %d", ctKeyName(e.Key), e.Register)
	}
	return fmt.Sprintf("%T", e)
}

func hexData(b []byte) string {
	if len(b) == 0 {
		return "0x"
	}
	return "0x" + hex.EncodeToString(b)
}

func metaKeyName(k expr.MetaKey) string {
	switch k {
	case expr.MetaKeyLEN:
		return "len"
	case expr.MetaKeyPROTOCOL:
		return "protocol"
	case expr.MetaKeyMARK:
		return "mark"
	case expr.MetaKeyIIF:
		return "iif"
	case expr.MetaKeyOIF:
		return "oif"
	case expr.MetaKeyIIFNAME:
		return "iifname"
	case expr.MetaKeyOIFNAME:
		return "oifname"
	case expr.MetaKeyNFPROTO:
		return "nfproto"
	case expr.MetaKeyL4PROTO:
		return "l4proto"
	case expr.MetaKeyPKTTYPE:
		return "pkttype"
	}
	return fmt.Sprintf("key(%d)", uint32(k))
}

func cmpOpName(op expr.CmpOp) string {
	switch op {
	case expr.CmpOpEq:
		return "eq"
	case expr.CmpOpNeq:
		return "neq"
	case expr.CmpOpLt:
		return "lt"
	case expr.CmpOpLte:
		return "lte"
	case expr.CmpOpGt:
		return "gt"
	case expr.CmpOpGte:
		return "gte"
	}
	return fmt.Sprintf("op(%d)", uint32(op))
}

func payloadBaseName(b expr.PayloadBase) string {
	switch b {
	case expr.PayloadBaseLLHeader:
		return "link header"
	case expr.PayloadBaseNetworkHeader:
		return "network header"
	case expr.PayloadBaseTransportHeader:
		return "transport header"
	}
	return fmt.Sprintf("base(%d)", uint32(b))
}

func verdictName(k expr.VerdictKind) string {
	switch k {
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictGoto:
		return "goto"
	case expr.VerdictJump:
		return "jump"
	case expr.VerdictBreak:
		return "break"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictQueue:
		return "queue"
	}
	return fmt.Sprintf("verdict(%d)", int64(k))
}

func ctKeyName(k expr.CtKey) string {
	switch k {
	case expr.CtKeySTATE:
		return "state"
	case expr.CtKeyDIRECTION:
		return "direction"
	case expr.CtKeySTATUS:
		return "status"
	case expr.CtKeyMARK:
		return "mark"
	case expr.CtKeyL3PROTOCOL:
		return "l3protocol"
	case expr.CtKeyPROTOCOL:
		return "protocol"
	case expr.CtKeyPROTOSRC:
		return "proto-src"
	case expr.CtKeyPROTODST:
		return "proto-dst"
	}
	return fmt.Sprintf("key(%d)", uint32(k))
}

func formatNAT(e *expr.NAT) string {
	typ := "snat"
	if e.Type == expr.NATTypeDestNAT {
		typ = "dnat"
	}
	fam := fmt.Sprintf("family(%d)", e.Family)
	switch e.Family {
	case unix.NFPROTO_IPV4:
		fam = "ip"
	case unix.NFPROTO_IPV6:
		fam = "ip6"
	}
	s := fmt.Sprintf("nat %s %s", typ, fam)
	for _, r := range []struct {
		name string
		reg  uint32
	}{{"addr_min", e.RegAddrMin}, {"addr_max", e.RegAddrMax}, {"proto_min", e.RegProtoMin}, {"proto_max", e.RegProtoMax}} {
		if r.reg != 0 {
			s += fmt.Sprintf(" %s reg %d", r.name, r.reg)
		}
	}
	var flags []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"random", e.Random}, {"fully-random", e.FullyRandom}, {"persistent", e.Persistent}, {"prefix", e.Prefix}, {"proto-specified", e.Specified}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if len(flags) > 0 {
		s += " flags " + strings.Join(flags, ",")
	}
	return s
}

func formatFib(e *expr.Fib) string {
	var keys []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"saddr", e.FlagSADDR}, {"daddr", e.FlagDADDR}, {"mark", e.FlagMARK}, {"iif", e.FlagIIF}, {"oif", e.FlagOIF}, {"present", e.FlagPRESENT}} {
		if f.on {
			keys = append(keys, f.name)
		}
	}
	result := "?"
	switch {
	case e.ResultOIF:
		result = "oif"
	case e.ResultOIFNAME:
		result = "oifname"
	case e.ResultADDRTYPE:
		result = "type"
	}
	return fmt.Sprintf("fib %s %s => reg %d", strings.Join(keys, " . "), result, e.Register)
}
