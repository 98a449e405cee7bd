package podnet_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/skiff-sh/skiff/internal/network/podnet"
	"github.com/skiff-sh/skiff/internal/testutil"
)

func TestSetup_PodsReachEachOtherTheGatewayAndTheHost(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	a := n.newPod(t, "a")
	b := n.newPod(t, "b")

	want := podnet.Result{
		IPs:           []netip.Prefix{netip.MustParsePrefix("10.42.0.2/24")},
		Gateway:       netip.MustParseAddr("10.42.0.1"),
		Interface:     "eth0",
		HostInterface: a.res.HostInterface,
	}
	if diff := cmp.Diff(want, a.res, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("Setup result (-want +got):\n%s", diff)
	}
	if got := b.ip(); got != netip.MustParseAddr("10.42.0.3") {
		t.Errorf("second pod IP = %s, want 10.42.0.3", got)
	}

	t.Run("pod to pod keeps the pod address", func(t *testing.T) {
		serve(t, b.ns, b.ip().String()+":8080")
		seen, err := dial(a.ns, b.ip().String()+":8080")
		if err != nil {
			t.Fatalf("pod a to pod b: %v", err)
		}
		if seen != a.ip() {
			t.Errorf("pod b saw the connection from %s, want pod a's %s", seen, a.ip())
		}
	})
	t.Run("pod pings pod and gateway", func(t *testing.T) {
		for _, dst := range []netip.Addr{b.ip(), a.res.Gateway} {
			if err := ping(a.ns, dst); err != nil {
				t.Errorf("ping from pod a: %v", err)
			}
		}
	})
	t.Run("host reaches the pod", func(t *testing.T) {
		serve(t, a.ns, a.ip().String()+":8081")
		if _, err := dial(n.ns, a.ip().String()+":8081"); err != nil {
			t.Fatalf("host to pod a: %v", err)
		}
	})
	t.Run("pod reaches the host", func(t *testing.T) {
		serve(t, n.ns, "10.42.0.1:8082")
		if _, err := dial(b.ns, "10.42.0.1:8082"); err != nil {
			t.Fatalf("pod b to host: %v", err)
		}
	})
	t.Run("interfaces are as documented", func(t *testing.T) {
		ph := handleIn(t, a.ns)
		if got, want := links(t, ph), []string{"eth0", "lo"}; !cmp.Equal(got, want) {
			t.Errorf("pod links = %v, want %v", got, want)
		}
		eth, err := ph.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := eth.Attrs().HardwareAddr.String(), "0a:58:0a:2a:00:02"; got != want {
			t.Errorf("pod MAC = %s, want %s", got, want)
		}
		if eth.Attrs().MTU != podnet.DefaultMTU {
			t.Errorf("pod MTU = %d, want %d (no default route on the host)", eth.Attrs().MTU, podnet.DefaultMTU)
		}
		host, err := n.nl.LinkByName(a.res.HostInterface)
		if err != nil {
			t.Fatal(err)
		}
		br, err := n.nl.LinkByName(podnet.DefaultBridge)
		if err != nil {
			t.Fatal(err)
		}
		if host.Attrs().MasterIndex != br.Attrs().Index {
			t.Errorf("host veth master = %d, want the bridge %d", host.Attrs().MasterIndex, br.Attrs().Index)
		}
		if pi, err := n.nl.LinkGetProtinfo(host); err != nil || !pi.Hairpin {
			t.Errorf("host veth hairpin is off: %+v, %v", pi, err)
		}
		if got := sysctl(t, n.ns, "net.ipv4.ip_forward"); got != "1" {
			t.Errorf("ip_forward = %s, want 1", got)
		}
	})
}

func TestSetup_IsIdempotentAndRepairs(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	a := n.newPod(t, "a")
	again, err := n.net.Setup(context.Background(), a.ref, a.ns)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(again, a.res, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })) {
		t.Errorf("second Setup = %+v, want %+v", again, a.res)
	}

	// Damage: the host end goes (and the pod end with it).
	hl, err := n.nl.LinkByName(a.res.HostInterface)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.nl.LinkDel(hl); err != nil {
		t.Fatal(err)
	}
	repaired, err := n.net.Setup(context.Background(), a.ref, a.ns)
	if err != nil {
		t.Fatalf("Setup after damage: %v", err)
	}
	if repaired.IPs[0] != a.res.IPs[0] {
		t.Errorf("repaired IP = %s, want the same %s", repaired.IPs[0], a.res.IPs[0])
	}
	if err := ping(a.ns, a.res.Gateway); err != nil {
		t.Errorf("after repair: %v", err)
	}
	if got := stateFiles(t, n.stateDir); !cmp.Equal(got, []string{"10.42.0.2"}) {
		t.Errorf("allocations = %v, want one", got)
	}

	t.Run("bridge deleted under a running network", func(t *testing.T) {
		br, err := n.nl.LinkByName(podnet.DefaultBridge)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.nl.LinkDel(br); err != nil {
			t.Fatal(err)
		}
		b := n.newPod(t, "b")
		if err := ping(b.ns, b.res.Gateway); err != nil {
			t.Errorf("new pod after the bridge was made again: %v", err)
		}
		if got := sysctl(t, n.ns, "net.ipv4.conf."+podnet.DefaultBridge+".route_localnet"); got != "1" {
			t.Errorf("route_localnet on the new bridge = %s, want 1", got)
		}
		// Pod a's port was detached with the bridge; Setup puts it back.
		if _, err := n.net.Setup(context.Background(), a.ref, a.ns); err != nil {
			t.Fatal(err)
		}
		if err := ping(a.ns, b.ip()); err != nil {
			t.Errorf("old pod after repair: %v", err)
		}
	})
}

func TestSetup_HostNetworkPodIsSkipped(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	before := links(t, n.nl)
	res, err := n.net.Setup(context.Background(), podnet.PodRef{SandboxID: "host", HostNetwork: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 0 {
		t.Errorf("host-network pod got %v", res.IPs)
	}
	if got := links(t, n.nl); !cmp.Equal(got, before) {
		t.Errorf("links = %v, want unchanged %v", got, before)
	}
	if err := n.net.Teardown(context.Background(), "host", ""); err != nil {
		t.Errorf("Teardown of a host-network pod: %v", err)
	}
}

func TestTeardown_RemovesVethAndFreesIP(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	a := n.newPod(t, "a")
	ctx := context.Background()

	if err := n.net.Teardown(ctx, a.ref.SandboxID, a.ns); err != nil {
		t.Fatal(err)
	}
	if _, err := n.nl.LinkByName(a.res.HostInterface); !isNotFound(err) {
		t.Errorf("host veth after teardown: err = %v, want not found", err)
	}
	if got := links(t, handleIn(t, a.ns)); !cmp.Equal(got, []string{"lo"}) {
		t.Errorf("pod links after teardown = %v, want only lo", got)
	}
	if got := stateFiles(t, n.stateDir); len(got) != 0 {
		t.Errorf("allocations after teardown = %v, want none", got)
	}

	t.Run("twice is fine", func(t *testing.T) {
		if err := n.net.Teardown(ctx, a.ref.SandboxID, a.ns); err != nil {
			t.Error(err)
		}
	})
	t.Run("gone namespace is fine", func(t *testing.T) {
		b := n.newPod(t, "b")
		if err := n.net.Teardown(ctx, b.ref.SandboxID, filepath.Join(t.TempDir(), "gone")); err != nil {
			t.Fatal(err)
		}
		if _, err := n.nl.LinkByName(b.res.HostInterface); !isNotFound(err) {
			t.Errorf("host veth after teardown: err = %v, want not found", err)
		}
	})
	t.Run("pod end only", func(t *testing.T) {
		// A pod interface whose host end is missing (renamed away):
		// Teardown finds it through the namespace.
		c := n.newPod(t, "c")
		hl, err := n.nl.LinkByName(c.res.HostInterface)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.nl.LinkSetDown(hl); err != nil {
			t.Fatal(err)
		}
		if err := n.nl.LinkSetName(hl, "renamed0"); err != nil {
			t.Fatal(err)
		}
		if err := n.net.Teardown(ctx, c.ref.SandboxID, c.ns); err != nil {
			t.Fatal(err)
		}
		if got := links(t, handleIn(t, c.ns)); !cmp.Equal(got, []string{"lo"}) {
			t.Errorf("pod links after teardown = %v, want only lo", got)
		}
	})
	t.Run("freed IP is handed out again once the others are used", func(t *testing.T) {
		// Round-robin: the next pod gets a new address, not a's.
		d := n.newPod(t, "d")
		if d.ip() == a.ip() {
			t.Errorf("the freed address %s was reused at once", a.ip())
		}
	})
}

func TestTeardown_ManyAtOnce(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	var pods []*pod
	for i := range 12 {
		pods = append(pods, n.newPod(t, fmt.Sprintf("p%d", i)))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods))
	for _, p := range pods {
		wg.Go(func() { errs <- n.net.Teardown(ctx, p.ref.SandboxID, p.ns) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := links(t, n.nl); slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "skv") }) {
		t.Errorf("host links after teardown = %v, want no pod veth", got)
	}
	if got := stateFiles(t, n.stateDir); len(got) != 0 {
		t.Errorf("allocations after teardown = %v, want none", got)
	}
	// The node still sets pods up afterwards, each with an address of its
	// own.
	seen := map[netip.Addr]bool{}
	for i := range 12 {
		p := n.newPod(t, fmt.Sprintf("q%d", i))
		if seen[p.ip()] {
			t.Errorf("%s handed out twice", p.ip())
		}
		seen[p.ip()] = true
	}
}

func TestNew_RestartKeepsAllocations(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	a := n.newPod(t, "a")
	b := n.newPod(t, "b")
	rulesBefore := dumpRules(t, n.ns)
	if err := n.net.Close(); err != nil {
		t.Fatal(err)
	}

	n.start(t)
	again, err := n.net.Setup(context.Background(), a.ref, a.ns)
	if err != nil {
		t.Fatal(err)
	}
	if again.IPs[0] != a.res.IPs[0] {
		t.Errorf("after restart pod a has %s, want %s", again.IPs[0], a.res.IPs[0])
	}
	c := n.newPod(t, "c")
	if c.ip() == a.ip() || c.ip() == b.ip() {
		t.Errorf("after restart a new pod got %s, which is in use", c.ip())
	}
	if err := ping(a.ns, b.ip()); err != nil {
		t.Errorf("pods across the restart: %v", err)
	}
	if got := dumpRules(t, n.ns); got != rulesBefore {
		t.Errorf("rules changed across the restart:\n%s\nwant:\n%s", got, rulesBefore)
	}
}

func TestReconcile_CollectsGoneSandboxes(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	a := n.newPod(t, "a")
	b := n.newPod(t, "b")
	c := n.newPod(t, "c")
	ctx := context.Background()

	// A veth named like ours but with no allocation, and one of
	// someone else's.
	stray := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "skv0123456789ab"}, PeerName: "stray-peer"}
	other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "other0"}, PeerName: "other-peer"}
	for _, v := range []*netlink.Veth{stray, other} {
		if err := n.nl.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
	}

	// An allocation a crash left unreadable, found on restart.
	if err := os.WriteFile(filepath.Join(n.stateDir, "10.42.0.200"), []byte(`{"ip":"10.4`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.net.Close(); err != nil {
		t.Fatal(err)
	}
	n.start(t)

	collected, err := n.net.Reconcile(ctx, []string{a.ref.SandboxID})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{b.ref.SandboxID, c.ref.SandboxID}; !cmp.Equal(collected, want) {
		t.Errorf("collected %v, want %v", collected, want)
	}
	want := sortedStrings([]string{"lo", podnet.DefaultBridge, a.res.HostInterface, "other0", "other-peer"})
	if got := links(t, n.nl); !cmp.Equal(got, want) {
		t.Errorf("host links after reconcile = %v, want %v", got, want)
	}
	if got := stateFiles(t, n.stateDir); !cmp.Equal(got, []string{a.ip().String()}) {
		t.Errorf("allocations after reconcile = %v, want only pod a's", got)
	}
	if err := ping(a.ns, a.res.Gateway); err != nil {
		t.Errorf("live pod after reconcile: %v", err)
	}
}

func TestSetup_BadInputLeavesNothingBehind(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/30") // one pod address: 10.42.0.2
	ctx := context.Background()
	full := n.newPod(t, "full")
	hostLinks := links(t, n.nl)
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ref     podnet.PodRef
		netns   string // "" for none; "new" for a fresh namespace
		wantErr error
	}{
		{name: "empty sandbox ID", ref: podnet.PodRef{}, netns: "new", wantErr: podnet.ErrInvalid},
		{name: "sandbox ID with a slash", ref: podnet.PodRef{SandboxID: "../x"}, netns: "new", wantErr: podnet.ErrInvalid},
		{name: "no netns path", ref: podnet.PodRef{SandboxID: "s1"}, netns: "", wantErr: podnet.ErrInvalid},
		{name: "missing netns path", ref: podnet.PodRef{SandboxID: "s2"}, netns: filepath.Join(t.TempDir(), "missing"), wantErr: fs.ErrNotExist},
		{name: "regular file for netns", ref: podnet.PodRef{SandboxID: "s3"}, netns: regular, wantErr: podnet.ErrInvalid},
		{name: "host namespace for a pod", ref: podnet.PodRef{SandboxID: "s4"}, netns: n.ns, wantErr: podnet.ErrInvalid},
		{name: "pod CIDR exhausted", ref: podnet.PodRef{SandboxID: "s5"}, netns: "new", wantErr: podnet.ErrExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.netns
			if path == "new" {
				path = newNetNS(t)
			}
			_, err := n.net.Setup(ctx, tt.ref, path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Setup error = %v, want %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
			if got := links(t, n.nl); !cmp.Equal(got, hostLinks) {
				t.Errorf("host links = %v, want unchanged %v", got, hostLinks)
			}
			if got := stateFiles(t, n.stateDir); !cmp.Equal(got, []string{full.ip().String()}) {
				t.Errorf("allocations = %v, want only the first pod's", got)
			}
			if tt.netns == "new" {
				if got := links(t, handleIn(t, path)); !cmp.Equal(got, []string{"lo"}) {
					t.Errorf("pod links = %v, want only lo", got)
				}
			}
		})
	}

	t.Run("freed address is handed out again", func(t *testing.T) {
		if err := n.net.Teardown(ctx, full.ref.SandboxID, full.ns); err != nil {
			t.Fatal(err)
		}
		p := n.newPod(t, "next")
		if p.ip() != full.ip() {
			t.Errorf("got %s, want the only address %s", p.ip(), full.ip())
		}
	})
}

func TestSetup_ReplacesAStaleEth0AndRefusesAfterClose(t *testing.T) {
	testutil.RequireRoot(t)
	// The runtime makes the namespace for the pod network alone, so an
	// eth0 already there is a leftover: Setup replaces it.
	n := newNode(t, "10.42.0.0/24")
	path := newNetNS(t)
	ph := handleIn(t, path)
	if err := ph.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "stale"}); err != nil {
		t.Fatal(err)
	}
	ref := podnet.PodRef{SandboxID: "busy"}
	if _, err := n.net.Setup(context.Background(), ref, path); err != nil {
		t.Fatalf("Setup over a stale eth0: %v", err)
	}
	eth, err := ph.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if got := eth.Attrs().HardwareAddr.String(); got != "0a:58:0a:2a:00:02" {
		t.Errorf("eth0 has MAC %s, want the pod's veth 0a:58:0a:2a:00:02", got)
	}
	if got := links(t, ph); !cmp.Equal(got, []string{"eth0", "lo"}) {
		t.Errorf("pod links = %v, want eth0 and lo", got)
	}

	n.net.Close()
	if _, err := n.net.Setup(context.Background(), podnet.PodRef{SandboxID: "late"}, path); err == nil {
		t.Error("Setup on a closed Network succeeded")
	}
}

func TestNew_BadHostSetup(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	if err := n.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "taken0"}, PeerName: "taken1"}); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*podnet.Config)
		wantErr error
	}{
		{name: "bridge name taken by another kind of link", edit: func(c *podnet.Config) { c.Bridge = "taken0" }, wantErr: podnet.ErrInvalid},
		{name: "missing host namespace", edit: func(c *podnet.Config) { c.HostNetNS = filepath.Join(t.TempDir(), "missing") }, wantErr: fs.ErrNotExist},
		{name: "host namespace is a regular file", edit: func(c *podnet.Config) { c.HostNetNS = regular }, wantErr: podnet.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := n.cfg
			cfg.StateDir = t.TempDir()
			tt.edit(&cfg)
			pn, err := podnet.New(cfg)
			if err == nil {
				pn.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestNew_MTUFromTheDefaultRoute(t *testing.T) {
	testutil.RequireRoot(t)
	host := newNetNS(t)
	outside := newNetNS(t)
	connect(t, host, outside, "wan0", netip.MustParsePrefix("203.0.113.1/24"), netip.MustParsePrefix("203.0.113.2/24"))
	h := handleIn(t, host)
	wan, err := h.LinkByName("wan0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetMTU(wan, 1400); err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP("203.0.113.2")}); err != nil {
		t.Fatal(err)
	}
	pn, err := podnet.New(podnet.Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/24"), StateDir: t.TempDir(), HostNetNS: host, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pn.Close() })
	path := newNetNS(t)
	if _, err := pn.Setup(context.Background(), podnet.PodRef{SandboxID: "mtu"}, path); err != nil {
		t.Fatal(err)
	}
	eth, err := handleIn(t, path).LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth.Attrs().MTU != 1400 {
		t.Errorf("pod MTU = %d, want the default route's 1400", eth.Attrs().MTU)
	}
}

func TestMasquerade_OutsideSeesTheNodeAddress(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	outside := newNetNS(t)
	connect(t, n.ns, outside, "wan0", netip.MustParsePrefix("203.0.113.1/24"), netip.MustParsePrefix("203.0.113.2/24"))
	if err := n.nl.RouteAdd(&netlink.Route{Gw: net.ParseIP("203.0.113.2")}); err != nil {
		t.Fatal(err)
	}
	a := n.newPod(t, "a")
	serve(t, outside, "203.0.113.2:9000")
	// The outside has no route back to 10.42.0.0/24: only a masqueraded
	// connection can succeed.
	seen, err := dial(a.ns, "203.0.113.2:9000")
	if err != nil {
		t.Fatalf("pod to outside: %v", err)
	}
	if want := netip.MustParseAddr("203.0.113.1"); seen != want {
		t.Errorf("outside saw %s, want the node's %s", seen, want)
	}
}

func TestRules_Golden(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.3.0/24")
	got := dumpRules(t, n.ns)
	checkGolden(t, "ruleset.golden", got)
	if !strings.Contains(got, "masq") {
		t.Errorf("no masquerade in the ruleset:\n%s", got)
	}
}

func TestSyncRoutes_PodsOnTwoNodesReachEachOther(t *testing.T) {
	testutil.RequireRoot(t)
	nodeA := newNode(t, "10.42.0.0/24")
	nodeB := newNode(t, "10.42.1.0/24")
	connect(t, nodeA.ns, nodeB.ns, "lan0", netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.2/24"))
	peers := []podnet.Peer{
		{Node: "a", CIDR: netip.MustParsePrefix("10.42.0.0/24"), NodeIP: netip.MustParseAddr("198.51.100.1")},
		{Node: "b", CIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("198.51.100.2")},
	}
	ctx := context.Background()
	for _, n := range []*node{nodeA, nodeB} {
		if err := n.net.SyncRoutes(ctx, peers); err != nil {
			t.Fatalf("SyncRoutes: %v", err)
		}
	}
	a := nodeA.newPod(t, "a")
	b := nodeB.newPod(t, "b")

	t.Run("pod on A reaches pod on B with its own address", func(t *testing.T) {
		serve(t, b.ns, b.ip().String()+":8080")
		seen, err := dial(a.ns, b.ip().String()+":8080")
		if err != nil {
			t.Fatalf("pod a to pod b: %v", err)
		}
		if seen != a.ip() {
			t.Errorf("pod b saw %s, want pod a's %s (no masquerade inside the cluster)", seen, a.ip())
		}
		if err := ping(b.ns, a.ip()); err != nil {
			t.Error(err)
		}
	})
	t.Run("pod reaches the other node", func(t *testing.T) {
		serve(t, nodeB.ns, "198.51.100.2:8081")
		seen, err := dial(a.ns, "198.51.100.2:8081")
		if err != nil {
			t.Fatalf("pod a to node b: %v", err)
		}
		if want := netip.MustParseAddr("198.51.100.1"); seen != want {
			t.Errorf("node b saw %s, want node a's %s (masqueraded: outside the cluster CIDR)", seen, want)
		}
	})
	t.Run("routes are only the peers'", func(t *testing.T) {
		if got, want := podRoutes(t, nodeA), []string{"10.42.1.0/24 via 198.51.100.2"}; !cmp.Equal(got, want) {
			t.Errorf("routes on A = %v, want %v", got, want)
		}
	})
	t.Run("a changed and a removed peer", func(t *testing.T) {
		// Someone else's route must survive.
		foreign := &netlink.Route{Dst: mustIPNet("10.42.9.0/24"), Gw: net.ParseIP("198.51.100.2"), Protocol: 4}
		if err := nodeA.nl.RouteAdd(foreign); err != nil {
			t.Fatal(err)
		}
		moved := []podnet.Peer{{Node: "b", CIDR: netip.MustParsePrefix("10.42.2.0/24"), NodeIP: netip.MustParseAddr("198.51.100.2")}}
		if err := nodeA.net.SyncRoutes(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if got, want := podRoutes(t, nodeA), []string{"10.42.2.0/24 via 198.51.100.2"}; !cmp.Equal(got, want) {
			t.Errorf("routes on A = %v, want %v", got, want)
		}
		if err := nodeA.net.SyncRoutes(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got := podRoutes(t, nodeA); len(got) != 0 {
			t.Errorf("routes on A after removing every peer = %v, want none", got)
		}
		rs, err := nodeA.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: mustIPNet("10.42.9.0/24")}, netlink.RT_FILTER_DST)
		if err != nil || len(rs) != 1 {
			t.Errorf("someone else's route: %v, %v; want it kept", rs, err)
		}
	})
}

func TestSyncRoutes_BadPeersAreReportedAndSkipped(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	other := newNetNS(t)
	connect(t, n.ns, other, "lan0", netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.2/24"))
	good := podnet.Peer{Node: "good", CIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("198.51.100.2")}
	tests := []struct {
		name string
		peer podnet.Peer
		want error // nil: reported, but not with ErrInvalid (a kernel error)
	}{
		{name: "IPv6 CIDR", peer: podnet.Peer{CIDR: netip.MustParsePrefix("fd00::/64"), NodeIP: netip.MustParseAddr("198.51.100.2")}, want: podnet.ErrInvalid},
		{name: "zero CIDR", peer: podnet.Peer{NodeIP: netip.MustParseAddr("198.51.100.2")}, want: podnet.ErrInvalid},
		{name: "CIDR outside the cluster", peer: podnet.Peer{CIDR: netip.MustParsePrefix("192.168.0.0/24"), NodeIP: netip.MustParseAddr("198.51.100.2")}, want: podnet.ErrInvalid},
		{name: "default route", peer: podnet.Peer{CIDR: netip.MustParsePrefix("0.0.0.0/0"), NodeIP: netip.MustParseAddr("198.51.100.2")}, want: podnet.ErrInvalid},
		{name: "CIDR overlapping ours", peer: podnet.Peer{CIDR: netip.MustParsePrefix("10.42.0.0/23"), NodeIP: netip.MustParseAddr("198.51.100.2")}, want: podnet.ErrInvalid},
		{name: "host bits", peer: podnet.Peer{CIDR: netip.MustParsePrefix("10.42.3.1/24"), NodeIP: netip.MustParseAddr("198.51.100.2")}, want: podnet.ErrInvalid},
		{name: "no node IP", peer: podnet.Peer{CIDR: netip.MustParsePrefix("10.42.4.0/24")}, want: podnet.ErrInvalid},
		{name: "node IP inside the cluster", peer: podnet.Peer{CIDR: netip.MustParsePrefix("10.42.5.0/24"), NodeIP: netip.MustParseAddr("10.42.7.1")}, want: podnet.ErrInvalid},
		{name: "second node IP for a CIDR", peer: podnet.Peer{CIDR: good.CIDR, NodeIP: netip.MustParseAddr("198.51.100.3")}, want: podnet.ErrInvalid},
		{name: "unreachable node IP", peer: podnet.Peer{CIDR: netip.MustParsePrefix("10.42.6.0/24"), NodeIP: netip.MustParseAddr("192.0.2.50")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := n.net.SyncRoutes(context.Background(), []podnet.Peer{good, tt.peer})
			if err == nil {
				t.Fatal("SyncRoutes accepted a bad peer")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			t.Logf("error: %v", err)
			if got, want := podRoutes(t, n), []string{"10.42.1.0/24 via 198.51.100.2"}; !cmp.Equal(got, want) {
				t.Errorf("routes = %v, want only the good peer's %v", got, want)
			}
		})
	}
}

// podRoutes lists the routes SyncRoutes made on a node as "cidr via ip".
func podRoutes(t testing.TB, n *node) []string {
	t.Helper()
	rs, err := n.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: 115}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Dst.String()+" via "+r.Gw.String())
	}
	return sortedStrings(out)
}

func mustIPNet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestSetup_ConcurrentPodsGetDistinctAddresses(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24")
	const pods = 16
	paths := make([]string, pods)
	for i := range paths {
		paths[i] = newNetNS(t)
	}
	ctx := context.Background()
	results := make([]podnet.Result, pods)
	errs := make(chan error, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			res, err := n.net.Setup(ctx, podnet.PodRef{SandboxID: fmt.Sprintf("pod-%d", i)}, paths[i])
			results[i] = res
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[netip.Addr]int{}
	for i, r := range results {
		if j, dup := seen[r.IPs[0].Addr()]; dup {
			t.Errorf("pods %d and %d both got %s", i, j, r.IPs[0])
		}
		seen[r.IPs[0].Addr()] = i
	}
	if err := ping(paths[0], results[pods-1].IPs[0].Addr()); err != nil {
		t.Error(err)
	}

	errs = make(chan error, pods)
	for i := range pods {
		wg.Go(func() { errs <- n.net.Teardown(ctx, fmt.Sprintf("pod-%d", i), paths[i]) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := links(t, n.nl), []string{"lo", podnet.DefaultBridge}; !cmp.Equal(got, want) {
		t.Errorf("host links after teardown = %v, want %v", got, want)
	}
	if got := stateFiles(t, n.stateDir); len(got) != 0 {
		t.Errorf("allocations after teardown = %v", got)
	}
}

func TestSetPodCIDRs_LateAndChangingPodCIDR(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.0.0/24", func(c *podnet.Config) { c.PodCIDR = netip.Prefix{} })
	ctx := context.Background()
	if got := links(t, n.nl); !cmp.Equal(got, []string{"lo"}) {
		t.Errorf("host links before a pod CIDR = %v, want only lo", got)
	}
	other := newNetNS(t)
	connect(t, n.ns, other, "lan0", netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("198.51.100.2/24"))
	peers := []podnet.Peer{
		{Node: "self", CIDR: netip.MustParsePrefix("10.42.0.0/24"), NodeIP: netip.MustParseAddr("198.51.100.1")},
		{Node: "other", CIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("198.51.100.2")},
	}

	t.Run("before a pod CIDR", func(t *testing.T) {
		if _, err := n.net.Setup(ctx, podnet.PodRef{SandboxID: "early"}, newNetNS(t)); !errors.Is(err, podnet.ErrNoPodCIDR) {
			t.Errorf("Setup error = %v, want ErrNoPodCIDR", err)
		}
		if err := n.net.Teardown(ctx, "early", ""); err != nil {
			t.Errorf("Teardown: %v", err)
		}
		if err := n.net.SyncRoutes(ctx, peers); err != nil {
			t.Errorf("SyncRoutes: %v", err)
		}
		if got := podRoutes(t, n); len(got) != 0 {
			t.Errorf("routes before a pod CIDR = %v, want none yet", got)
		}
	})

	bad := []struct {
		name  string
		cidrs []string
	}{
		{"none", nil},
		{"not a CIDR", []string{"bogus"}},
		{"IPv6 only", []string{"fd00:42::/64"}},
		{"two IPv4", []string{"10.42.0.0/24", "10.42.1.0/24"}},
		{"outside the cluster", []string{"10.99.0.0/24"}},
		{"host bits", []string{"10.42.0.1/24"}},
	}
	for _, tt := range bad {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			err := n.net.SetPodCIDRs(ctx, tt.cidrs)
			if !errors.Is(err, podnet.ErrInvalid) {
				t.Fatalf("SetPodCIDRs(%q) = %v, want ErrInvalid", tt.cidrs, err)
			}
			t.Logf("error: %v", err)
			if got := links(t, n.nl); slices.Contains(got, podnet.DefaultBridge) {
				t.Errorf("a rejected CIDR made the bridge")
			}
		})
	}

	t.Run("first pod CIDR sets up the node and the routes", func(t *testing.T) {
		if err := n.net.SetPodCIDRs(ctx, []string{"fd00:42::/64", "10.42.0.0/24"}); err != nil {
			t.Fatal(err)
		}
		if err := n.net.SetPodCIDRs(ctx, []string{"10.42.0.0/24"}); err != nil {
			t.Fatalf("same CIDR again: %v", err)
		}
		if got, want := podRoutes(t, n), []string{"10.42.1.0/24 via 198.51.100.2"}; !cmp.Equal(got, want) {
			t.Errorf("routes = %v, want %v", got, want)
		}
		p := n.newPod(t, "a")
		if err := ping(p.ns, p.res.Gateway); err != nil {
			t.Error(err)
		}
	})

	t.Run("changed pod CIDR moves the gateway, rules and routes", func(t *testing.T) {
		if err := n.net.SetPodCIDRs(ctx, []string{"10.42.1.0/24"}); err != nil {
			t.Fatal(err)
		}
		br, err := n.nl.LinkByName(podnet.DefaultBridge)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := n.nl.AddrList(br, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.42.1.1/24" {
			t.Errorf("bridge addresses = %v, want only 10.42.1.1/24", addrs)
		}
		// The peers still show this node with its old CIDR (its Node
		// not updated yet): skipped by its address. The other peer's
		// CIDR is now this node's: skipped too.
		if got := podRoutes(t, n); len(got) != 0 {
			t.Errorf("routes = %v, want none", got)
		}
		if rules := dumpRules(t, n.ns); !strings.Contains(rules, "cmp eq reg 1 0x0a2a0100") {
			t.Errorf("rules do not match the new pod CIDR:\n%s", rules)
		}
		p := n.newPod(t, "b")
		if !netip.MustParsePrefix("10.42.1.0/24").Contains(p.ip()) {
			t.Errorf("new pod got %s, want an address of 10.42.1.0/24", p.ip())
		}
		if err := ping(p.ns, p.res.Gateway); err != nil {
			t.Error(err)
		}
	})
}
