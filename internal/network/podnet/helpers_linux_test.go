package podnet_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/network/podnet"
	"github.com/skiff-sh/skiff/internal/sys/nft"
	"github.com/skiff-sh/skiff/internal/sys/ns"
	"github.com/skiff-sh/skiff/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// ioTimeout bounds each network exchange of the tests, so a broken
// network fails a test instead of hanging it. It is not an assertion on
// speed.
const ioTimeout = 10 * time.Second

// newNetNS makes a network namespace with loopback up, pinned in a
// temporary directory, and removes it when the test ends. Everything
// made inside it (links, routes, rules) goes with it.
func newNetNS(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := ns.Pin(dir, []ns.Type{ns.Net}, ns.LoopbackUp)
	if err != nil {
		t.Fatalf("make network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Unpin(paths[ns.Net]); err != nil {
			t.Errorf("remove network namespace: %v", err)
		}
	})
	return paths[ns.Net]
}

// handleIn returns an rtnetlink handle in the namespace at path, closed
// when the test ends.
func handleIn(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in %s: %v", path, err)
	}
	t.Cleanup(h.Close)
	return h
}

// node is a test "host": a network namespace and the pod network in it.
type node struct {
	ns       string
	stateDir string
	cfg      podnet.Config
	net      *podnet.Network
	nl       *netlink.Handle
}

// newNode makes a host namespace and a Network in it for podCIDR.
func newNode(t testing.TB, podCIDR string, edit ...func(*podnet.Config)) *node {
	t.Helper()
	testutil.RequireRoot(t)
	n := &node{ns: newNetNS(t), stateDir: t.TempDir()}
	n.nl = handleIn(t, n.ns)
	n.cfg = podnet.Config{
		PodCIDR:   netip.MustParsePrefix(podCIDR),
		StateDir:  n.stateDir,
		HostNetNS: n.ns,
		Logger:    testLogger(t),
	}
	for _, e := range edit {
		e(&n.cfg)
	}
	n.start(t)
	return n
}

// start opens the node's Network (again), closing it when the test ends.
func (n *node) start(t testing.TB) {
	t.Helper()
	pn, err := podnet.New(n.cfg)
	if err != nil {
		t.Fatalf("podnet.New: %v", err)
	}
	t.Cleanup(func() { pn.Close() })
	n.net = pn
}

// pod is a test pod: a sandbox namespace and the network Setup gave it.
type pod struct {
	ref podnet.PodRef
	ns  string
	res podnet.Result
}

func (p *pod) ip() netip.Addr { return p.res.IPs[0].Addr() }

// newPod makes a sandbox namespace and sets up its network on n, with
// the given hostPorts.
func (n *node) newPod(t testing.TB, name string, ports ...podnet.PortMapping) *pod {
	t.Helper()
	p := &pod{ref: podnet.PodRef{Namespace: "default", Name: name, UID: "uid-" + name, SandboxID: "sandbox-" + name, Ports: ports}, ns: newNetNS(t)}
	res, err := n.net.Setup(context.Background(), p.ref, p.ns)
	if err != nil {
		t.Fatalf("Setup %s: %v", name, err)
	}
	p.res = res
	return p
}

// links returns the names of the links in a namespace, sorted.
func links(t testing.TB, h *netlink.Handle) []string {
	t.Helper()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	return sortedStrings(names)
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// stateFiles returns the names of the files in a state directory.
func stateFiles(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// serve starts a TCP server at addr inside the namespace at path. Each
// connection gets back the remote address the server saw, then is closed.
func serve(t testing.TB, path, addr string) {
	t.Helper()
	var l net.Listener
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, path, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(ioTimeout))
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// dial connects from inside the namespace at path to addr and returns
// the client address the server reported.
func dial(path, addr string) (netip.Addr, error) {
	var seen netip.Addr
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		d := net.Dialer{Timeout: ioTimeout}
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read from %s: %w", addr, err)
		}
		seen, err = netip.ParseAddr(strings.TrimSpace(line))
		return err
	})
	return seen, err
}

// ping sends an ICMP echo request from inside the namespace at path to
// dst and waits for the reply.
func ping(path string, dst netip.Addr) error {
	return ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		id := os.Getpid() & 0xffff
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("skiff podnet test")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("ping %s: %w", dst, err)
		}
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("ping %s: %w", dst, err)
			}
			reply, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if echo, ok := reply.Body.(*icmp.Echo); ok && echo.ID == id && from.String() == dst.String() {
				return nil
			}
		}
	})
}

// connect joins two namespaces with a veth pair (both ends called name)
// and gives the ends addresses a and b.
func connect(t testing.TB, nsA, nsB, name string, a, b netip.Prefix) {
	t.Helper()
	ha, hb := handleIn(t, nsA), handleIn(t, nsB)
	fb, err := os.Open(nsB)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name, PeerNamespace: netlink.NsFd(fb.Fd())}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s: %v", name, err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		addr netip.Prefix
	}{{ha, a}, {hb, b}} {
		l, err := side.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		ipn := &net.IPNet{IP: side.addr.Addr().AsSlice(), Mask: net.CIDRMask(side.addr.Bits(), 32)}
		if err := side.h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpRules returns the node's nftables table as the kernel holds it.
func dumpRules(t testing.TB, nsPath string) string {
	t.Helper()
	f, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	s, err := nft.Dump(c, nftables.TableFamilyINet, podnet.TableName)
	if err != nil {
		t.Fatalf("dump rules: %v", err)
	}
	return s
}

// sysctl reads a sysctl inside the namespace at path.
func sysctl(t testing.TB, path, name string) string {
	t.Helper()
	var v string
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testLogger logs through t, so lines show only for failed tests.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// isNotFound reports whether err says a link is missing.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
