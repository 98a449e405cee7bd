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

// setupNode makes the bridge, turns on forwarding and installs the rules.
func (s *system) setupNode() error {
	if _, err := s.ensureBridge(); err != nil {
		return err
	}
	if err := s.enableForwarding(); err != nil {
		return err
	}
	if err := s.installRules(); err != nil {
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

// enableForwarding sets net.ipv4.ip_forward in the host's namespace. The
// sysctl files under /proc/sys/net belong to the namespace of the thread
// that opens them, hence the trip through ns.Do.
func (s *system) enableForwarding() error {
	const file = "/proc/sys/net/ipv4/ip_forward"
	err := ns.Do(map[ns.Type]string{ns.Net: s.hostNSPath}, func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		return os.WriteFile(file, []byte("1\n"), 0o644)
	})
	if err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}

// ruleset returns the node's nftables table, its chains and their rules
// (by chain name), for installRules to send.
func (s *system) ruleset() (*nftables.Table, []*nftables.Chain, map[string][]*nftables.Rule) {
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	post := &nftables.Chain{
		Name:     "postrouting",
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	}
	multicast := netip.MustParsePrefix("224.0.0.0/4")
	var masq []expr.Any
	masq = append(masq, nft.MatchNFProto(nft.NFProtoIPv4)...)
	masq = append(masq, nft.MatchIPv4Prefix(nft.IPv4Saddr, s.cfg.PodCIDR, false)...)
	masq = append(masq, nft.MatchIPv4Prefix(nft.IPv4Daddr, s.cfg.ClusterCIDR, true)...)
	masq = append(masq, nft.MatchIPv4Prefix(nft.IPv4Daddr, multicast, true)...)
	// Fully random source ports, as kube-proxy and flannel use: fewer
	// conntrack collisions when many pods talk to one destination.
	masq = append(masq, &expr.Counter{}, &expr.Masq{FullyRandom: true})
	rules := map[string][]*nftables.Rule{
		post.Name: {{
			Table:    t,
			Chain:    post,
			Exprs:    masq,
			UserData: nft.Comment("masquerade pods leaving the cluster network"),
		}},
	}
	return t, []*nftables.Chain{post}, rules
}

// installRules replaces the table TableName with the node's rules, in one
// transaction: nothing else sees the table half-built.
func (s *system) installRules() error {
	c, err := s.nftConn()
	if err != nil {
		return err
	}
	t, chains, rules := s.ruleset()
	// Adding before deleting makes the delete succeed when the table is
	// missing; the batch is applied atomically.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, ch := range chains {
		c.AddChain(ch)
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
func (s *system) teardown(sandboxID, netnsPath string) error {
	deleted, err := deleteLink(s.nl, hostVethName(sandboxID))
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
