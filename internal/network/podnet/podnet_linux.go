package podnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/nft"
	"github.com/skiff-sh/skiff/internal/sys/ns"
)

// routeProtocol marks the routes to other nodes' pod CIDRs that
// SyncRoutes makes (the rtm_protocol field; `ip route show proto 115`),
// so it finds and deletes its own routes and never others'. 115 is not
// assigned in iproute2's rt_protos.
const routeProtocol netlink.RouteProtocol = 115

// system is the Linux side of a Network: handles on the host's network
// namespace. Network.mu guards it.
type system struct {
	cfg Config
	log *slog.Logger
	// hostNS is the namespace file the host's side lives in, kept open.
	hostNS     *os.File
	hostNSPath string
	// nl talks rtnetlink in the host's namespace.
	nl      *netlink.Handle
	gateway netip.Addr
	mtu     int
	// bridgeIndex caches the bridge's interface index (looking a
	// bridge up costs more than a quarter of a Setup); plumb checks it
	// again when making the veth fails.
	bridgeIndex int
}

// openSystem opens handles on the host's network namespace and works out
// the MTU.
func openSystem(cfg Config, log *slog.Logger) (*system, error) {
	s := &system{cfg: cfg, log: log, hostNSPath: cfg.HostNetNS}
	s.setPodCIDR(cfg.PodCIDR)
	if s.hostNSPath == "" {
		// The thread group leader's namespace: the process's, whatever
		// namespace the calling thread may be in.
		s.hostNSPath = "/proc/self/ns/net"
	}
	f, err := openNetNSFile(s.hostNSPath)
	if err != nil {
		return nil, fmt.Errorf("host network namespace: %w", err)
	}
	s.hostNS = f
	s.nl, err = netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netlink in host network namespace %s: %w", s.hostNSPath, err)
	}
	s.mtu = cfg.MTU
	if s.mtu == 0 {
		s.mtu = s.defaultRouteMTU()
	}
	return s, nil
}

// setPodCIDR changes the pod CIDR the next setupNode and plumb use.
func (s *system) setPodCIDR(cidr netip.Prefix) {
	s.cfg.PodCIDR = cidr
	s.gateway = gatewayOf(cidr)
}

func (s *system) close() {
	s.nl.Close()
	s.hostNS.Close()
}

// openNetNSFile opens a network namespace file, checking that it is one.
func openNetNSFile(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		// *fs.PathError, so errors.Is(err, fs.ErrNotExist) works.
		return nil, err
	}
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNET {
		f.Close()
		return nil, fmt.Errorf("%s is not a network namespace: %w", path, ErrInvalid)
	}
	return f, nil
}

// defaultRouteMTU returns the MTU of the interface of the host's IPv4
// default route, or DefaultMTU.
func (s *system) defaultRouteMTU() int {
	routes, err := s.nl.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		s.log.Warn("cannot list routes to find the MTU; using the default", "mtu", DefaultMTU, "err", err)
		return DefaultMTU
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		idx := r.LinkIndex
		if idx == 0 && len(r.MultiPath) > 0 {
			idx = r.MultiPath[0].LinkIndex
		}
		l, err := s.nl.LinkByIndex(idx)
		if err != nil || l.Attrs().Name == s.cfg.Bridge {
			continue
		}
		return l.Attrs().MTU
	}
	return DefaultMTU
}

// macOf derives an interface's MAC address from its IPv4 address, as CNI's
// bridge plugin does (0a:58 and the address): locally administered,
// unicast, and the same for a reused IP, so peers' ARP caches stay right.
func macOf(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, a[0], a[1], a[2], a[3]}
}

// setupNode makes the bridge, turns on forwarding and installs the rules
// with the given port mappings.
func (s *system) setupNode(ports []hostPort) error {
	if _, err := s.ensureBridge(); err != nil {
		return err
	}
	if err := s.enableForwarding(); err != nil {
		return err
	}
	if err := s.installRules(ports); err != nil {
		return err
	}
	return nil
}

// ensureBridge returns the bridge, creating it when missing, and makes
// sure it is up with the gateway address as its only IPv4 address and a
// fixed MAC (a bridge otherwise takes its ports' lowest MAC, which changes
// as pods come and go).
func (s *system) ensureBridge() (netlink.Link, error) {
	name := s.cfg.Bridge
	mac := macOf(s.gateway)
	l, err := s.nl.LinkByName(name)
	if isLinkNotFound(err) {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: s.mtu, HardwareAddr: mac, TxQLen: -1}}
		if err := s.nl.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		s.log.Info("created bridge", "bridge", name)
		l, err = s.nl.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if l.Type() != "bridge" {
		return nil, fmt.Errorf("link %s exists and is a %s, not a bridge: %w", name, l.Type(), ErrInvalid)
	}
	if l.Attrs().HardwareAddr.String() != mac.String() {
		if err := s.nl.LinkSetHardwareAddr(l, mac); err != nil {
			return nil, fmt.Errorf("bridge %s: set MAC address: %w", name, err)
		}
	}
	addrs, err := s.nl.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: list addresses: %w", name, err)
	}
	want := netip.PrefixFrom(s.gateway, s.cfg.PodCIDR.Bits())
	have := false
	for _, a := range addrs {
		if prefixOf(a.IPNet) == want {
			have = true
			continue
		}
		if err := s.nl.AddrDel(l, &a); err != nil {
			return nil, fmt.Errorf("bridge %s: delete old address %s: %w", name, a.IPNet, err)
		}
		s.log.Info("deleted old bridge address", "bridge", name, "addr", a.IPNet.String())
	}
	if !have {
		if err := s.nl.AddrAdd(l, &netlink.Addr{IPNet: ipNet(want)}); err != nil {
			return nil, fmt.Errorf("bridge %s: add gateway address %s: %w", name, want, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := s.nl.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("bridge %s: set up: %w", name, err)
		}
	}
	s.bridgeIndex = l.Attrs().Index
	return l, nil
}

// bridgeGone reports whether the cached bridge index no longer names
// the bridge, in which case the caller runs ensureBridge.
func (s *system) bridgeGone() bool {
	l, err := s.nl.LinkByIndex(s.bridgeIndex)
	return err != nil || l.Attrs().Name != s.cfg.Bridge || l.Type() != "bridge"
}

// enableForwarding sets net.ipv4.ip_forward in the host's namespace, and
// route_localnet on the bridge: a connection from the node to
// 127.0.0.1:<hostPort> keeps its loopback source until it is
// masqueraded on its way out of the bridge, which the kernel only routes
// with route_localnet (the table's input chain drops what else this would
// let in). The sysctl files under /proc/sys/net belong to the namespace of
// the thread that opens them, hence the trip through ns.Do.
func (s *system) enableForwarding() error {
	files := []string{
		"/proc/sys/net/ipv4/ip_forward",
		"/proc/sys/net/ipv4/conf/" + s.cfg.Bridge + "/route_localnet",
	}
	err := ns.Do(map[ns.Type]string{ns.Net: s.hostNSPath}, func() error {
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == "1" {
				continue
			}
			if err := os.WriteFile(file, []byte("1\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}

// ruleset returns the node's nftables table, its chains and their rules
// (by chain name), for installRules to send.
func (s *system) ruleset(ports []hostPort) (*nftables.Table, []*nftables.Chain, map[string][]*nftables.Rule) {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	nat := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: hook, Priority: prio}
	}
	pre := nat("prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := nat("output", nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	hostports := &nftables.Chain{Name: "hostports", Table: t}
	post := nat("postrouting", nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	input := &nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter}
	rules := map[string][]*nftables.Rule{}
	add := func(ch *nftables.Chain, comment string, parts ...[]expr.Any) {
		var exprs []expr.Any
		for _, p := range parts {
			exprs = append(exprs, p...)
		}
		rules[ch.Name] = append(rules[ch.Name], &nftables.Rule{Table: t, Chain: ch, Exprs: exprs, UserData: nft.Comment(comment)})
	}
	ipv4 := nft.MatchNFProto(nft.NFProtoIPv4)
	counter := []expr.Any{&expr.Counter{}}

	// hostPorts: new connections to one of the node's addresses, from
	// outside (prerouting) or from the node itself (output).
	toHostPorts := []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: hostports.Name}}
	add(pre, "hostPorts of connections to the node", ipv4, nft.MatchLocalDaddr(), toHostPorts)
	add(out, "hostPorts of connections from the node to itself", ipv4, nft.MatchLocalDaddr(), toHostPorts)
	for _, p := range ports {
		proto, ok := protoNumber(p.Protocol)
		if !ok {
			continue
		}
		var daddr []expr.Any
		if p.HostIP.IsValid() {
			daddr = nft.MatchIPv4Prefix(nft.IPv4Daddr, netip.PrefixFrom(p.HostIP, 32), false)
		}
		add(hostports, truncate("pod "+p.pod+" "+p.String(), 120), daddr,
			nft.MatchL4Proto(proto), nft.MatchDPort(p.HostPort), counter,
			nft.DNAT(netip.AddrPortFrom(p.podIP, p.ContainerPort)))
	}

	// Pods leaving the cluster network.
	multicast := netip.MustParsePrefix("224.0.0.0/4")
	// Fully random source ports, as kube-proxy and flannel use: fewer
	// conntrack collisions when many pods talk to one destination.
	add(post, "masquerade pods leaving the cluster network", ipv4,
		nft.MatchIPv4Prefix(nft.IPv4Saddr, s.cfg.PodCIDR, false),
		nft.MatchIPv4Prefix(nft.IPv4Daddr, s.cfg.ClusterCIDR, true),
		nft.MatchIPv4Prefix(nft.IPv4Daddr, multicast, true),
		counter, []expr.Any{&expr.Masq{FullyRandom: true}})
	// A pod reaching a hostPort (its own or another pod's on this
	// node): without masquerading, the target would answer the client
	// straight across the bridge (or to itself), and the answer would
	// skip the conntrack entry that undoes the DNAT. The output
	// interface is the bridge whether the kernel routes the packet back
	// into it or, with br_netfilter, bridges it there directly (the
	// input interface is then unknown: it is not matched).
	add(post, "masquerade DNATed connections from pods back into the bridge (hairpin)", ipv4,
		nft.MatchIPv4Prefix(nft.IPv4Saddr, s.cfg.PodCIDR, false), nft.MatchOIFName(s.cfg.Bridge), nft.MatchCtDNAT(false),
		counter, []expr.Any{&expr.Masq{}})
	// The node reaching a hostPort through 127.0.0.1: a loopback source
	// cannot leave the host.
	add(post, "masquerade DNATed connections from the node's loopback into the bridge", ipv4,
		nft.MatchIPv4Prefix(nft.IPv4Saddr, loopback, false), nft.MatchOIFName(s.cfg.Bridge), nft.MatchCtDNAT(false),
		counter, []expr.Any{&expr.Masq{}})
	// route_localnet on the bridge lets the answers to those in; it
	// must not let pods reach the node's loopback services.
	add(input, "drop packets from pods to loopback addresses, but answers to the node's hostPort connections", ipv4,
		nft.MatchIIFName(s.cfg.Bridge), nft.MatchIPv4Prefix(nft.IPv4Daddr, loopback, false), nft.MatchCtDNAT(true),
		counter, []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
	return t, []*nftables.Chain{pre, out, hostports, post, input}, rules
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// protoNumber returns the IP protocol number of a Protocol.
func protoNumber(p Protocol) (byte, bool) {
	switch p {
	case TCP:
		return nft.ProtoTCP, true
	case UDP:
		return nft.ProtoUDP, true
	case SCTP:
		return nft.ProtoSCTP, true
	}
	return 0, false
}

// truncate cuts s to at most n bytes (a rule's comment is limited).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// forgetUDPFlows deletes the conntrack entries of UDP flows to the host
// ports of new mappings, as CNI's portmap plugin does: a client that kept
// sending to the port before the mapping existed has an entry without
// the DNAT, which would hold its datagrams away from the pod for as long
// as it keeps sending. Failures are only logged (conntrack may not be
// reachable over netlink).
func (s *system) forgetUDPFlows(ports []PortMapping) {
	var filters []netlink.CustomConntrackFilter
	for _, p := range ports {
		if p.Protocol != UDP {
			continue
		}
		f := &netlink.ConntrackFilter{}
		if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
			s.log.Debug("conntrack filter", "err", err)
			return
		}
		if err := f.AddPort(netlink.ConntrackOrigDstPort, p.HostPort); err != nil {
			s.log.Debug("conntrack filter", "err", err)
			return
		}
		filters = append(filters, f)
	}
	if len(filters) == 0 {
		return
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(s.hostNS.Fd()), unix.NETLINK_NETFILTER)
	if err != nil {
		s.log.Debug("cannot reach conntrack to delete stale UDP entries", "err", err)
		return
	}
	defer h.Close()
	if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...); err != nil {
		s.log.Debug("cannot delete stale UDP conntrack entries", "err", err)
	}
}

// installRules replaces the table TableName with the node's rules, in one
// transaction: nothing else sees the table half-built.
func (s *system) installRules(ports []hostPort) error {
	c, err := s.nftConn()
	if err != nil {
		return err
	}
	t, chains, rules := s.ruleset(ports)
	// Adding before deleting makes the delete succeed when the table is
	// missing; the batch is applied atomically.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, ch := range chains {
		c.AddChain(ch)
	}
	// Rules after every chain: a jump needs its target to exist.
	for _, ch := range chains {
		for _, r := range rules[ch.Name] {
			c.AddRule(r)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("install nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// nftConn returns an nftables connection to the host's namespace.
func (s *system) nftConn() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(s.hostNS.Fd())))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// podNS is an open pod network namespace.
type podNS struct {
	path string
	file *os.File
	nl   *netlink.Handle // opened on first use
}

// openPodNS opens a pod's network namespace file, refusing the host's own.
func (s *system) openPodNS(path string) (*podNS, error) {
	f, err := openNetNSFile(path)
	if err != nil {
		return nil, fmt.Errorf("pod network namespace: %w", err)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err == nil && unix.Fstat(int(s.hostNS.Fd()), &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
		f.Close()
		return nil, fmt.Errorf("pod network namespace %s is the host's (set PodRef.HostNetwork for host-network pods): %w", path, ErrInvalid)
	}
	return &podNS{path: path, file: f}, nil
}

// handle returns an rtnetlink handle in the pod's namespace.
func (p *podNS) handle() (*netlink.Handle, error) {
	if p.nl != nil {
		return p.nl, nil
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(p.file.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in pod network namespace %s: %w", p.path, err)
	}
	p.nl = h
	return h, nil
}

func (p *podNS) close() {
	if p.nl != nil {
		p.nl.Close()
	}
	p.file.Close()
}

// result returns the Result for an allocation.
func (s *system) result(a allocation) Result {
	return Result{
		IPs:           []netip.Prefix{netip.PrefixFrom(a.IP, s.cfg.PodCIDR.Bits())},
		Gateway:       s.gateway,
		Interface:     PodInterface,
		HostInterface: hostVethName(a.SandboxID),
	}
}

// plumbed reports whether a sandbox's interfaces are all in place: the
// host end on the bridge and up, the pod end with its address and the
// default route.
func (s *system) plumbed(p *podNS, a allocation) (Result, bool) {
	br, err := s.nl.LinkByName(s.cfg.Bridge)
	if err != nil {
		return Result{}, false
	}
	host, err := s.nl.LinkByName(hostVethName(a.SandboxID))
	if err != nil || host.Type() != "veth" || host.Attrs().MasterIndex != br.Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 {
		return Result{}, false
	}
	h, err := p.handle()
	if err != nil {
		return Result{}, false
	}
	eth, err := h.LinkByName(PodInterface)
	if err != nil || eth.Attrs().Flags&net.FlagUp == 0 {
		return Result{}, false
	}
	addrs, err := h.AddrList(eth, netlink.FAMILY_V4)
	if err != nil || !slices.ContainsFunc(addrs, func(x netlink.Addr) bool {
		return prefixOf(x.IPNet) == netip.PrefixFrom(a.IP, s.cfg.PodCIDR.Bits())
	}) {
		return Result{}, false
	}
	routes, err := h.RouteList(eth, netlink.FAMILY_V4)
	if err != nil || !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return isDefault(r.Dst) && addrOf(r.Gw) == s.gateway
	}) {
		return Result{}, false
	}
	return s.result(a), true
}

// plumb makes a sandbox's interfaces for allocation a, replacing any
// left from an earlier attempt. On error the caller calls unplumb.
func (s *system) plumb(p *podNS, a allocation) (Result, error) {
	hostName := hostVethName(a.SandboxID)
	h, err := p.handle()
	if err != nil {
		return Result{}, err
	}
	if _, err := deleteLink(s.nl, hostName); err != nil {
		return Result{}, err
	}
	if _, err := deleteLink(h, PodInterface); err != nil {
		return Result{}, fmt.Errorf("pod network namespace %s: %w", p.path, err)
	}
	// The peer is made directly in the pod's namespace under its final
	// name, with its MAC and MTU: one message, nothing to rename or move.
	newVeth := func() *netlink.Veth {
		return &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{
				Name:        hostName,
				MTU:         s.mtu,
				MasterIndex: s.bridgeIndex,
				Flags:       net.FlagUp,
				TxQLen:      -1,
			},
			PeerName:         PodInterface,
			PeerMTU:          uint32(s.mtu),
			PeerHardwareAddr: macOf(a.IP),
			PeerNamespace:    netlink.NsFd(p.file.Fd()),
			PeerTxQLen:       -1,
		}
	}
	veth := newVeth()
	err = s.nl.LinkAdd(veth)
	if err != nil && s.bridgeGone() {
		s.log.Warn("bridge is gone; setting it up again", "bridge", s.cfg.Bridge)
		if _, berr := s.ensureBridge(); berr != nil {
			return Result{}, berr
		}
		// A new bridge has route_localnet off (localhost hostPorts).
		if ferr := s.enableForwarding(); ferr != nil {
			s.log.Warn("bridge made again", "err", ferr)
		}
		// The failed attempt may have left the pair behind (the kernel
		// makes the links before it looks at the master).
		s.unplumb(a.SandboxID, p)
		veth = newVeth()
		err = s.nl.LinkAdd(veth)
	}
	if err != nil {
		return Result{}, fmt.Errorf("create veth pair %s/%s: %w", hostName, PodInterface, err)
	}
	// Hairpin lets a pod's packets come back out of its own port: a pod
	// reaching itself through a service address.
	if err := s.nl.LinkSetHairpin(veth, true); err != nil {
		return Result{}, fmt.Errorf("veth %s: set hairpin: %w", hostName, err)
	}
	eth, err := h.LinkByName(PodInterface)
	if err != nil {
		return Result{}, fmt.Errorf("pod interface %s: %w", PodInterface, err)
	}
	addr := netip.PrefixFrom(a.IP, s.cfg.PodCIDR.Bits())
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return Result{}, fmt.Errorf("pod interface %s: add address %s: %w", PodInterface, addr, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return Result{}, fmt.Errorf("pod interface %s: set up: %w", PodInterface, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return Result{}, fmt.Errorf("pod loopback: %w", err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(lo); err != nil {
			return Result{}, fmt.Errorf("pod loopback: set up: %w", err)
		}
	}
	route := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: s.gateway.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
	if err := h.RouteReplace(route); err != nil {
		return Result{}, fmt.Errorf("pod default route via %s: %w", s.gateway, err)
	}
	return s.result(a), nil
}

// unplumb deletes what plumb made, as far as it got. It logs instead of
// failing: it runs on the way out of a failed Setup.
func (s *system) unplumb(sandboxID string, p *podNS) {
	if _, err := deleteLink(s.nl, hostVethName(sandboxID)); err != nil {
		s.log.Warn("clean up after failed setup", "sandbox", sandboxID, "err", err)
	}
	if h, err := p.handle(); err == nil {
		if _, err := deleteLink(h, PodInterface); err != nil {
			s.log.Warn("clean up after failed setup", "sandbox", sandboxID, "err", err)
		}
	}
}

// teardown deletes a sandbox's veth pair, from the host's end (which
// takes the pod's with it), or else from the pod's end when netnsPath
// still names its namespace.
//
// It is safe without Network.mu: it talks on a netlink socket of its own
// (requests on a shared one wait for each other's replies).
func (s *system) teardown(sandboxID, netnsPath string) error {
	nl, err := netlink.NewHandleAt(netns.NsHandle(s.hostNS.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in the host's namespace: %w", err)
	}
	defer nl.Close()
	deleted, err := deleteLink(nl, hostVethName(sandboxID))
	if err != nil || deleted || netnsPath == "" {
		return err
	}
	p, err := s.openPodNS(netnsPath)
	if err != nil {
		// Gone, or not a namespace we may touch: nothing of ours is there.
		return nil
	}
	defer p.close()
	h, err := p.handle()
	if err != nil {
		return err
	}
	eth, err := h.LinkByName(PodInterface)
	if err != nil || eth.Type() != "veth" {
		return nil
	}
	if err := h.LinkDel(eth); err != nil && !isLinkNotFound(err) {
		return fmt.Errorf("delete pod interface %s in %s: %w", PodInterface, netnsPath, err)
	}
	return nil
}

// deleteStrayVeths deletes host veths this package made (by their name)
// that are not in owned: left by a sandbox whose allocation is gone.
func (s *system) deleteStrayVeths(owned map[string]bool) error {
	links, err := s.nl.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "veth" || !isHostVethName(name) || owned[name] {
			continue
		}
		if err := s.nl.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("delete stray veth %s: %w", name, err))
			continue
		}
		s.log.Info("deleted stray veth", "veth", name)
	}
	return errors.Join(errs...)
}

// isHostVethName reports whether name is one hostVethName makes.
func isHostVethName(name string) bool {
	rest, ok := strings.CutPrefix(name, hostVethPrefix)
	if !ok || len(rest) != 12 {
		return false
	}
	return strings.Trim(rest, "0123456789abcdef") == ""
}

// localAddrs returns the host's IPv4 addresses.
func (s *system) localAddrs() (map[netip.Addr]bool, error) {
	addrs, err := s.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	out := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		out[addrOf(a.IP)] = true
	}
	return out, nil
}

// syncRoutes makes the routes of this package match want.
func (s *system) syncRoutes(want map[netip.Prefix]Peer) error {
	routes, err := s.nl.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list routes: %w", err)
	}
	var errs []error
	have := map[netip.Prefix]bool{}
	for _, r := range routes {
		dst := prefixOf(r.Dst)
		if p, ok := want[dst]; ok && addrOf(r.Gw) == p.NodeIP && !have[dst] {
			have[dst] = true
			continue
		}
		if err := s.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s via %s: %w", dst, addrOf(r.Gw), err))
			continue
		}
		s.log.Info("deleted pod route", "cidr", dst, "via", addrOf(r.Gw))
	}
	cidrs := make([]netip.Prefix, 0, len(want))
	for c := range want {
		cidrs = append(cidrs, c)
	}
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	for _, c := range cidrs {
		if have[c] {
			continue
		}
		p := want[c]
		r := &netlink.Route{Dst: ipNet(c), Gw: p.NodeIP.AsSlice(), Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN}
		if err := s.nl.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: route %s via %s: %w", p, c, p.NodeIP, err))
			continue
		}
		s.log.Info("added pod route", "node", p.Node, "cidr", c, "via", p.NodeIP)
	}
	return errors.Join(errs...)
}

// deleteLink deletes the link called name through h. It reports whether
// there was one; a missing link is not an error.
func deleteLink(h *netlink.Handle, name string) (bool, error) {
	l, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find link %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil {
		if isLinkNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("delete link %s: %w", name, err)
	}
	return true, nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func isDefault(n *net.IPNet) bool {
	if n == nil {
		return true
	}
	ones, _ := n.Mask.Size()
	return ones == 0
}
