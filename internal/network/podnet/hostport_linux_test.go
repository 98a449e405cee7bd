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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/skiff-sh/skiff/internal/network/podnet"
	"github.com/skiff-sh/skiff/internal/sys/ns"
	"github.com/skiff-sh/skiff/internal/testutil"
)

// The test LAN: the node and another machine on it.
var (
	nodeIP  = netip.MustParseAddr("198.51.100.1")
	otherIP = netip.MustParseAddr("198.51.100.2")
)

// newNodeOnLAN makes a node for podCIDR and a second namespace, "another
// machine", joined to it by a veth pair on 198.51.100.0/24.
func newNodeOnLAN(t *testing.T, podCIDR string) (n *node, other string) {
	t.Helper()
	n = newNode(t, podCIDR)
	other = newNetNS(t)
	connect(t, n.ns, other, "lan0", netip.PrefixFrom(nodeIP, 24), netip.PrefixFrom(otherIP, 24))
	return n, other
}

func tcp(hostPort, containerPort uint16) podnet.PortMapping {
	return podnet.PortMapping{Protocol: podnet.TCP, HostPort: hostPort, ContainerPort: containerPort}
}

func udp(hostPort, containerPort uint16) podnet.PortMapping {
	return podnet.PortMapping{Protocol: podnet.UDP, HostPort: hostPort, ContainerPort: containerPort}
}

func addr(ip netip.Addr, port uint16) string { return netip.AddrPortFrom(ip, port).String() }

var localhost = netip.MustParseAddr("127.0.0.1")

func TestHostPort_ReachableFromEverywhere(t *testing.T) {
	testutil.RequireRoot(t)
	// With br_netfilter, a connection DNATed to a pod on the same
	// bridge is bridged to it directly instead of routed: both paths
	// must work.
	for _, mode := range []struct {
		name   string
		bridge string // net.bridge.bridge-nf-call-iptables
	}{
		{"bridged packets through netfilter", "1"},
		{"bridged packets not through netfilter", "0"},
	} {
		t.Run(mode.name, func(t *testing.T) { testHostPortsReachable(t, mode.bridge) })
	}
}

func testHostPortsReachable(t *testing.T, bridgeNF string) {
	n, other := newNodeOnLAN(t, "10.42.0.0/24")
	if !trySysctl(t, n.ns, "net.bridge.bridge-nf-call-iptables", bridgeNF) && bridgeNF == "1" {
		testutil.SkipUnlessRequired(t, "br_netfilter is not loaded on this host")
	}
	a := n.newPod(t, "a", tcp(18080, 8080), udp(18081, 8081))
	onlyLAN := tcp(18082, 8082)
	onlyLAN.HostIP = nodeIP
	c := n.newPod(t, "c", onlyLAN)
	b := n.newPod(t, "b")
	gateway := a.res.Gateway
	serve(t, a.ns, ":8080")
	serveUDP(t, a.ns, ":8081")
	serve(t, c.ns, ":8082")

	tests := []struct {
		name string
		from string
		to   string
		udp  bool
		// seen is the client address the pod sees.
		seen netip.Addr
	}{
		{name: "another machine, with its own address", from: other, to: addr(nodeIP, 18080), seen: otherIP},
		{name: "another machine over UDP", from: other, to: addr(nodeIP, 18081), udp: true, seen: otherIP},
		{name: "the node through its LAN address", from: n.ns, to: addr(nodeIP, 18080), seen: nodeIP},
		{name: "the node through the gateway address", from: n.ns, to: addr(gateway, 18080), seen: gateway},
		{name: "the node through localhost, masqueraded", from: n.ns, to: addr(localhost, 18080), seen: gateway},
		{name: "the node through localhost over UDP", from: n.ns, to: addr(localhost, 18081), udp: true, seen: gateway},
		{name: "another pod, masqueraded (hairpin)", from: b.ns, to: addr(nodeIP, 18080), seen: gateway},
		{name: "another pod through the gateway", from: b.ns, to: addr(gateway, 18080), seen: gateway},
		{name: "the pod itself (hairpin)", from: a.ns, to: addr(nodeIP, 18080), seen: gateway},
		{name: "a host IP mapping on its address", from: other, to: addr(nodeIP, 18082), seen: otherIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialer := dial
			if tt.udp {
				dialer = dialUDP
			}
			seen, err := dialer(tt.from, tt.to)
			if err != nil {
				t.Fatalf("connect to %s: %v\n%s", tt.to, err, dumpRules(t, n.ns))
			}
			if seen != tt.seen {
				t.Errorf("the pod saw the connection from %s, want %s", seen, tt.seen)
			}
		})
	}
	t.Run("a host IP mapping is not on the node's other addresses", func(t *testing.T) {
		if _, err := dial(n.ns, addr(gateway, 18082)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to the gateway address: %v, want connection refused", err)
		}
	})
	t.Run("pods are not reachable on other ports of the node", func(t *testing.T) {
		if _, err := dial(other, addr(nodeIP, 8080)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("connect to the container port on the node: %v, want connection refused", err)
		}
	})
	t.Run("pods cannot reach the node's loopback", func(t *testing.T) {
		// route_localnet is on for the bridge; the input chain keeps
		// pods out of the node's 127.0.0.0/8 all the same. Pod b is
		// made to send to 127.0.0.1 through its gateway.
		serve(t, n.ns, "127.0.0.1:9099")
		ph := handleIn(t, b.ns)
		lo, err := ph.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		los, err := ph.AddrList(lo, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range los {
			if err := ph.AddrDel(lo, &a); err != nil {
				t.Fatal(err)
			}
		}
		eth, err := ph.LinkByName(podnet.PodInterface)
		if err != nil {
			t.Fatal(err)
		}
		route := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: mustIPNet("127.0.0.0/8"), Gw: gateway.AsSlice()}
		if err := ph.RouteAdd(route); err != nil {
			t.Fatal(err)
		}
		setSysctl(t, b.ns, "net.ipv4.conf.eth0.route_localnet", "1")
		if err := dialTimeout(b.ns, "127.0.0.1:9099", time.Second); err == nil {
			t.Error("a pod reached a service on the node's loopback")
		}
	})
}

func TestHostPort_FollowsTheSandbox(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	n, other := newNodeOnLAN(t, "10.42.0.0/24")
	a := n.newPod(t, "a", tcp(18080, 8080))
	serve(t, a.ns, ":8080")
	reach := func(t *testing.T) error {
		t.Helper()
		_, err := dial(other, addr(nodeIP, 18080))
		return err
	}
	if err := reach(t); err != nil {
		t.Fatalf("before: %v", err)
	}
	rules := dumpRules(t, n.ns)
	parent := t
	restart := func(t *testing.T) {
		t.Helper()
		if err := n.net.Close(); err != nil {
			t.Fatal(err)
		}
		pn, err := podnet.New(n.cfg)
		if err != nil {
			t.Fatalf("podnet.New: %v", err)
		}
		parent.Cleanup(func() { pn.Close() })
		n.net = pn
	}

	t.Run("agent restart keeps the rules", func(t *testing.T) {
		restart(t)
		if got := dumpRules(t, n.ns); got != rules {
			t.Errorf("rules changed across the restart:\n%s\nwant:\n%s", got, rules)
		}
		if _, err := n.net.Setup(ctx, a.ref, a.ns); err != nil {
			t.Fatal(err)
		}
		if got := dumpRules(t, n.ns); got != rules {
			t.Errorf("Setup again changed the rules:\n%s\nwant:\n%s", got, rules)
		}
		if err := reach(t); err != nil {
			t.Errorf("after the restart: %v", err)
		}
	})
	t.Run("a restart puts back a table someone deleted", func(t *testing.T) {
		deleteTable(t, n.ns)
		if err := reach(t); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("without the table: %v, want connection refused", err)
		}
		restart(t)
		if got := dumpRules(t, n.ns); got != rules {
			t.Errorf("rules after New:\n%s\nwant:\n%s", got, rules)
		}
		if err := reach(t); err != nil {
			t.Errorf("after the restart: %v", err)
		}
	})
	t.Run("changed mappings of a sandbox replace the old ones", func(t *testing.T) {
		ref := a.ref
		ref.Ports = []podnet.PortMapping{tcp(18090, 8080)}
		if _, err := n.net.Setup(ctx, ref, a.ns); err != nil {
			t.Fatal(err)
		}
		if _, err := dial(other, addr(nodeIP, 18090)); err != nil {
			t.Errorf("new mapping: %v", err)
		}
		if err := reach(t); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("old mapping: %v, want connection refused", err)
		}
		if _, err := n.net.Setup(ctx, a.ref, a.ns); err != nil {
			t.Fatal(err)
		}
		if got := dumpRules(t, n.ns); got != rules {
			t.Errorf("rules after going back:\n%s\nwant:\n%s", got, rules)
		}
	})
	t.Run("teardown removes them", func(t *testing.T) {
		if err := n.net.Teardown(ctx, a.ref.SandboxID, a.ns); err != nil {
			t.Fatal(err)
		}
		if err := reach(t); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("after teardown: %v, want connection refused", err)
		}
		if got := dumpRules(t, n.ns); strings.Contains(got, "dnat") {
			t.Errorf("a DNAT rule is left:\n%s", got)
		}
	})
	t.Run("the freed port goes to the next pod; reconcile removes it with the sandbox", func(t *testing.T) {
		b := n.newPod(t, "b", tcp(18080, 8080))
		serve(t, b.ns, ":8080")
		if err := reach(t); err != nil {
			t.Fatalf("pod b: %v", err)
		}
		collected, err := n.net.Reconcile(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(collected, []string{b.ref.SandboxID}) {
			t.Errorf("collected %v, want pod b's sandbox", collected)
		}
		if err := reach(t); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("after reconcile: %v, want connection refused", err)
		}
	})
}

func TestHostPort_ConflictsAndBadMappings(t *testing.T) {
	testutil.RequireRoot(t)
	ctx := context.Background()
	n, other := newNodeOnLAN(t, "10.42.0.0/24")
	a := n.newPod(t, "a", tcp(18080, 8080))
	hostLinks := links(t, n.nl)
	rules := dumpRules(t, n.ns)
	onLAN := tcp(18080, 8080)
	onLAN.HostIP = nodeIP
	unspecified := tcp(18085, 8080)
	unspecified.HostIP = netip.IPv4Unspecified()

	tests := []struct {
		name    string
		ports   []podnet.PortMapping
		wantErr error
	}{
		{name: "same port of another pod", ports: []podnet.PortMapping{tcp(18080, 9090)}, wantErr: podnet.ErrPortInUse},
		{name: "same port on one address of the node", ports: []podnet.PortMapping{onLAN}, wantErr: podnet.ErrPortInUse},
		{name: "unknown protocol", ports: []podnet.PortMapping{{Protocol: "icmp", HostPort: 1, ContainerPort: 1}}, wantErr: podnet.ErrInvalid},
		{name: "host port 0", ports: []podnet.PortMapping{tcp(0, 80)}, wantErr: podnet.ErrInvalid},
		{name: "container port 0", ports: []podnet.PortMapping{tcp(80, 0)}, wantErr: podnet.ErrInvalid},
		{name: "one port of the node twice in a pod", ports: []podnet.PortMapping{tcp(18081, 80), tcp(18081, 81)}, wantErr: podnet.ErrInvalid},
		{name: "a held port among others (0.0.0.0 is the wildcard)", ports: []podnet.PortMapping{tcp(18086, 80), func() podnet.PortMapping {
			m := tcp(18086, 80)
			m.HostIP = netip.IPv4Unspecified()
			return m
		}(), onLAN}, wantErr: podnet.ErrPortInUse},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := newNetNS(t)
			ref := podnet.PodRef{Namespace: "default", Name: "b", UID: "uid-b", SandboxID: fmt.Sprintf("b-%d", i), Ports: tt.ports}
			_, err := n.net.Setup(ctx, ref, path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Setup error = %v, want %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
			if got := links(t, n.nl); !cmp.Equal(got, hostLinks) {
				t.Errorf("host links = %v, want unchanged %v", got, hostLinks)
			}
			if got := stateFiles(t, n.stateDir); !cmp.Equal(got, []string{a.ip().String()}) {
				t.Errorf("allocations = %v, want only pod a's", got)
			}
			if got := dumpRules(t, n.ns); got != rules {
				t.Errorf("rules changed:\n%s\nwant:\n%s", got, rules)
			}
		})
	}

	t.Run("other protocol, port, duplicates and 0.0.0.0 are fine", func(t *testing.T) {
		b := n.newPod(t, "b", udp(18080, 8080), tcp(18081, 8081), tcp(18081, 8081), unspecified)
		serveUDP(t, b.ns, ":8080")
		if _, err := dialUDP(other, addr(nodeIP, 18080)); err != nil {
			t.Error(err)
		}
		serve(t, b.ns, ":8080")
		if _, err := dial(other, addr(nodeIP, 18085)); err != nil {
			t.Errorf("0.0.0.0 mapping: %v", err)
		}
	})
	t.Run("a new sandbox of the same pod takes the port over", func(t *testing.T) {
		a2 := &pod{ref: a.ref, ns: newNetNS(t)}
		a2.ref.SandboxID = "sandbox-a-2"
		res, err := n.net.Setup(ctx, a2.ref, a2.ns)
		if err != nil {
			t.Fatal(err)
		}
		a2.res = res
		serve(t, a2.ns, ":8080")
		if _, err := dial(other, addr(nodeIP, 18080)); err != nil {
			t.Errorf("new sandbox: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(n.stateDir, a.ip().String()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "18080") {
			t.Errorf("the old sandbox's allocation still has the port: %s", b)
		}
		// The old sandbox goes; the new one keeps the port.
		if err := n.net.Teardown(ctx, a.ref.SandboxID, a.ns); err != nil {
			t.Fatal(err)
		}
		if _, err := dial(other, addr(nodeIP, 18080)); err != nil {
			t.Errorf("after the old sandbox's teardown: %v", err)
		}
	})
}

func TestHostPort_RulesGolden(t *testing.T) {
	testutil.RequireRoot(t)
	n := newNode(t, "10.42.3.0/24")
	onLAN := tcp(443, 8443)
	onLAN.HostIP = nodeIP
	n.newPod(t, "web", tcp(80, 8080), onLAN)
	n.newPod(t, "dns", udp(53, 5353), podnet.PortMapping{Protocol: podnet.SCTP, HostPort: 9, ContainerPort: 9})
	checkGolden(t, "ruleset-hostports.golden", dumpRules(t, n.ns))
}

// serveUDP answers each datagram at addr inside the namespace at path
// with the address of its sender.
func serveUDP(t testing.TB, path, addr string) {
	t.Helper()
	var c net.PacketConn
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		var err error
		c, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on udp %s in %s: %v", addr, path, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from)
		}
	}()
}

// dialUDP sends datagrams from inside the namespace at path to addr until
// one is answered, and returns the sender address the server reported.
func dialUDP(path, addr string) (netip.Addr, error) {
	var seen netip.Addr
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		deadline := time.Now().Add(ioTimeout)
		buf := make([]byte, 1500)
		for time.Now().Before(deadline) {
			if _, err := c.Write([]byte("who am I")); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				continue
			}
			seen, err = netip.ParseAddr(string(buf[:n]))
			return err
		}
		return fmt.Errorf("no answer from udp %s", addr)
	})
	return seen, err
}

// dialTimeout connects from inside the namespace at path to addr,
// giving up after d, and closes the connection.
func dialTimeout(path, addr string, d time.Duration) error {
	return ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		c, err := net.DialTimeout("tcp4", addr, d)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// deleteTable deletes the pod network's nftables table in the namespace
// at path, as an administrator's "nft flush ruleset" would.
func deleteTable(t testing.TB, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: podnet.TableName})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}

// trySysctl writes a sysctl inside the namespace at path, and reports
// false when the sysctl does not exist.
func trySysctl(t testing.TB, path, name, value string) bool {
	t.Helper()
	file := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		return os.WriteFile(file, []byte(value), 0o644)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// setSysctl writes a sysctl inside the namespace at path.
func setSysctl(t testing.TB, path, name, value string) {
	t.Helper()
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkGolden compares got with testdata/name, rewriting the file with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
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
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}
