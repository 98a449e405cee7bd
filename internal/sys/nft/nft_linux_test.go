package nft_test

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/skiff-sh/skiff/internal/sys/nft"
	"github.com/skiff-sh/skiff/internal/sys/ns"
	"github.com/skiff-sh/skiff/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// sample is a table using every builder, with a base chain and a regular
// one.
func sample() (*nftables.Table, []*nftables.Chain, map[string][]*nftables.Rule) {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: "skiff-test"}
	accept := nftables.ChainPolicyAccept
	post := &nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}
	drop := nftables.ChainPolicyDrop
	fwd := &nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop}
	other := &nftables.Chain{Name: "pods", Table: t}
	pre := &nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept}
	post2 := &nftables.Chain{Name: "postrouting2", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}
	cat := func(parts ...[]expr.Any) []expr.Any {
		var out []expr.Any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	rules := map[string][]*nftables.Rule{
		"postrouting": {{
			Table: t, Chain: post,
			Exprs: cat(nft.MatchNFProto(nft.NFProtoIPv4),
				nft.MatchIPv4Prefix(nft.IPv4Saddr, netip.MustParsePrefix("10.42.0.0/24"), false),
				nft.MatchIPv4Prefix(nft.IPv4Daddr, netip.MustParsePrefix("10.42.0.0/16"), true),
				[]expr.Any{&expr.Counter{}, &expr.Masq{FullyRandom: true}}),
			UserData: nft.Comment("masquerade"),
		}},
		"forward": {
			{Table: t, Chain: fwd, Exprs: cat(nft.MatchNFProto(nft.NFProtoIPv4),
				nft.MatchIPv4Prefix(nft.IPv4Daddr, netip.MustParsePrefix("10.42.0.7/32"), false),
				[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "pods"}})},
			{Table: t, Chain: fwd, Exprs: cat(nft.MatchNFProto(nft.NFProtoIPv4),
				nft.MatchIPv4Prefix(nft.IPv4Saddr, netip.MustParsePrefix("0.0.0.0/0"), false),
				[]expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}})},
		},
		"pods": {{Table: t, Chain: other, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, UserData: nft.Comment("accept pods")}},
		"prerouting": {{
			Table: t, Chain: pre,
			Exprs: cat(nft.MatchNFProto(nft.NFProtoIPv4), nft.MatchLocalDaddr(), nft.MatchL4Proto(nft.ProtoTCP), nft.MatchDPort(8080),
				nft.DNAT(netip.MustParseAddrPort("10.42.0.5:80"))),
			UserData: nft.Comment("hostPort"),
		}},
		"postrouting2": {{
			Table: t, Chain: post2,
			Exprs: cat(nft.MatchIIFName("skiff0"), nft.MatchOIFName("skiff0"), nft.MatchCtDNAT(false), nft.MatchCtDNAT(true),
				nft.MatchL4Proto(nft.ProtoUDP), nft.MatchL4Proto(nft.ProtoSCTP), []expr.Any{&expr.Masq{}}),
		}},
	}
	return t, []*nftables.Chain{post, fwd, other, pre, post2}, rules
}

func TestFormat_Golden(t *testing.T) {
	got := nft.Format(sample())
	golden := filepath.Join("testdata", "sample.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("Format (-want +got):\n%s", diff)
	}
}

func TestMatchIPv4Prefix_MasksHostBits(t *testing.T) {
	a := nft.FormatExpr(nft.MatchIPv4Prefix(nft.IPv4Saddr, netip.MustParsePrefix("10.42.0.9/24"), false)[2])
	b := nft.FormatExpr(nft.MatchIPv4Prefix(nft.IPv4Saddr, netip.MustParsePrefix("10.42.0.0/24"), false)[2])
	if a != b {
		t.Errorf("host bits changed the comparison: %q vs %q", a, b)
	}
}

// TestDump_ReadsBackWhatWasWritten installs the sample table in a network
// namespace of its own and checks that the kernel's copy dumps as the
// sample formats: the builders make rules the kernel takes, and Dump
// reads them back whole.
func TestDump_ReadsBackWhatWasWritten(t *testing.T) {
	testutil.RequireRoot(t)
	paths, err := ns.Pin(t.TempDir(), []ns.Type{ns.Net}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Unpin(paths[ns.Net]) })
	f, err := os.Open(paths[ns.Net])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	table, chains, rules := sample()
	c.AddTable(table)
	for _, ch := range chains {
		c.AddChain(ch)
	}
	for _, ch := range chains {
		for _, r := range rules[ch.Name] {
			c.AddRule(r)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("install sample: %v", err)
	}
	got, err := nft.Dump(c, nftables.TableFamilyINet, table.Name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(nft.Format(sample()), got); diff != "" {
		t.Errorf("Dump (-written +read back):\n%s", diff)
	}

	t.Run("missing table", func(t *testing.T) {
		if _, err := nft.Dump(c, nftables.TableFamilyINet, "no-such-table"); err == nil {
			t.Error("Dump of a missing table succeeded")
		}
	})
}
