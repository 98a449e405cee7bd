package podnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Errors returned (wrapped) by this package; test them with errors.Is.
// A network namespace file that does not exist is reported with the
// operating system's error, so errors.Is(err, fs.ErrNotExist) holds.
var (
	// ErrInvalid marks bad input: a Config, PodRef, namespace path or
	// Peer that cannot be used.
	ErrInvalid = errors.New("invalid pod network input")
	// ErrExhausted means the node's pod CIDR has no free address left.
	ErrExhausted = errors.New("pod CIDR exhausted")
	// ErrNoPodCIDR means the node has no pod CIDR yet (see
	// SetPodCIDRs), so pods cannot be set up.
	ErrNoPodCIDR = errors.New("no pod CIDR yet")
	// ErrUnsupported is returned on platforms other than Linux.
	ErrUnsupported = errors.New("pod network not supported on this platform")
	// ErrPortInUse means a port mapping claims a port of the node that
	// another pod's mapping holds.
	ErrPortInUse = errors.New("host port in use")
)

// Defaults for the zero values of Config.
const (
	DefaultBridge      = "skiff0"
	DefaultClusterCIDR = "10.42.0.0/16"
	// DefaultMTU is used when Config.MTU is 0 and the host has no
	// default route to take the MTU from.
	DefaultMTU = 1500
)

// PodInterface is the name of the pod's end of its veth pair, inside the
// pod's network namespace.
const PodInterface = "eth0"

// TableName is the nftables table (family inet) holding the node's pod
// network rules. New replaces it whole; nothing else should write to it.
const TableName = "skiff-podnet"

// Config configures a Network. The zero value of each field but StateDir
// is useful.
type Config struct {
	// Bridge is the name of the node's bridge, which holds the gateway
	// address and one port per pod. Default DefaultBridge.
	Bridge string
	// PodCIDR is this node's pod range (Node spec.podCIDR): an IPv4
	// prefix without host bits, from /8 to /30, inside ClusterCIDR. Its
	// first address is the gateway, on the bridge. The zero value means
	// it is not known yet: New then makes nothing on the host, and Setup
	// fails with ErrNoPodCIDR until SetPodCIDRs gives one.
	PodCIDR netip.Prefix
	// ClusterCIDR is the range holding every node's pod CIDR. Traffic
	// from pods to addresses outside it is masqueraded; routes are only
	// made for peers inside it. Default DefaultClusterCIDR.
	ClusterCIDR netip.Prefix
	// StateDir holds the IP allocations, one file each, so that a
	// restarted agent keeps them. Required (there is no default, so
	// that nothing is ever written outside the agent's root by mistake).
	StateDir string
	// MTU of the pods' interfaces. 0 takes the MTU of the interface of
	// the host's default route, or DefaultMTU when there is none.
	MTU int
	// HostNetNS is the path of the network namespace that plays the
	// host: the bridge, routes and rules are made there. Empty means the
	// network namespace of this process. Tests and multi-node setups on
	// one machine point it at a namespace of their own.
	HostNetNS string
	// Logger receives the network's log lines. nil discards them.
	Logger *slog.Logger
}

// withDefaults returns cfg with its zero values replaced by defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix(DefaultClusterCIDR)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

// validate checks a Config that has had its defaults applied.
func (cfg Config) validate() error {
	if err := validIfName(cfg.Bridge); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if err := validCIDR(cfg.ClusterCIDR, 0, 30); err != nil {
		return fmt.Errorf("cluster CIDR: %w", err)
	}
	if cfg.PodCIDR != (netip.Prefix{}) {
		if err := cfg.checkPodCIDR(cfg.PodCIDR); err != nil {
			return err
		}
	}
	if cfg.StateDir == "" {
		return fmt.Errorf("state dir is not set: %w", ErrInvalid)
	}
	if cfg.MTU != 0 && (cfg.MTU < 576 || cfg.MTU > 65535) {
		return fmt.Errorf("MTU %d is outside 576..65535: %w", cfg.MTU, ErrInvalid)
	}
	return nil
}

// checkPodCIDR checks a pod CIDR against the cluster CIDR.
func (cfg Config) checkPodCIDR(p netip.Prefix) error {
	if err := validCIDR(p, 8, 30); err != nil {
		return fmt.Errorf("pod CIDR: %w", err)
	}
	if p.Bits() < cfg.ClusterCIDR.Bits() || !cfg.ClusterCIDR.Contains(p.Addr()) {
		return fmt.Errorf("pod CIDR %s is not inside cluster CIDR %s: %w", p, cfg.ClusterCIDR, ErrInvalid)
	}
	return nil
}

// validCIDR checks that p is an IPv4 prefix without host bits and with a
// length between minBits and maxBits.
func validCIDR(p netip.Prefix, minBits, maxBits int) error {
	if !p.IsValid() {
		return fmt.Errorf("%q is not a CIDR: %w", p.String(), ErrInvalid)
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("%s is not IPv4 (IPv6 pod networks are not supported yet): %w", p, ErrInvalid)
	}
	if p.Masked() != p {
		return fmt.Errorf("%s has host bits set (did you mean %s?): %w", p, p.Masked(), ErrInvalid)
	}
	if p.Bits() < minBits || p.Bits() > maxBits {
		return fmt.Errorf("%s: prefix length must be /%d to /%d: %w", p, minBits, maxBits, ErrInvalid)
	}
	return nil
}

// validIfName checks a Linux interface name.
func validIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\x00") {
		return fmt.Errorf("%q is not a valid interface name: %w", name, ErrInvalid)
	}
	return nil
}

// PodRef names the pod a sandbox belongs to. Only SandboxID identifies
// the pod network's state; the rest is recorded for people reading the
// state directory and the log.
type PodRef struct {
	Namespace string
	Name      string
	UID       string
	// SandboxID is the CRI pod sandbox ID. Required; it may not contain
	// '/' or control characters.
	SandboxID string
	// HostNetwork pods use the node's network: Setup does nothing for
	// them and returns an empty Result.
	HostNetwork bool
	// Ports are the pod's hostPorts: ports of the node forwarded to the
	// pod. Setup normalizes them (see PortMapping).
	Ports []PortMapping
}

func (p PodRef) String() string {
	if p.Namespace == "" && p.Name == "" {
		return "sandbox " + p.SandboxID
	}
	return "pod " + p.Namespace + "/" + p.Name
}

// validSandboxID checks a sandbox ID.
func validSandboxID(id string) error {
	if id == "" {
		return fmt.Errorf("sandbox ID is empty: %w", ErrInvalid)
	}
	if len(id) > 256 || strings.ContainsAny(id, "/\\") || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("sandbox ID %q: must be at most 256 characters without slashes or control characters: %w", id, ErrInvalid)
	}
	return nil
}

// hostVethPrefix starts the name of every host-side veth this package
// makes, so that Reconcile can tell them from others' links.
const hostVethPrefix = "skv"

// hostVethName names the host end of a sandbox's veth pair: the prefix and
// 48 bits of a hash of the sandbox ID (15 characters, the kernel's limit),
// so Teardown finds it from the ID alone.
func hostVethName(sandboxID string) string {
	sum := sha256.Sum256([]byte(sandboxID))
	return hostVethPrefix + hex.EncodeToString(sum[:6])
}

// Result is the network a pod got from Setup.
type Result struct {
	// IPs are the pod's addresses with the pod CIDR's prefix length
	// (such as 10.42.0.5/24), for the pod's status.podIPs. One IPv4
	// address today.
	IPs []netip.Prefix
	// Gateway is the pod's default gateway: the bridge's address.
	Gateway netip.Addr
	// Interface is the pod's interface, inside its namespace
	// (PodInterface).
	Interface string
	// HostInterface is the host's end of the pod's veth pair.
	HostInterface string
}

// Peer is another node's pod CIDR and the address its pods are reached
// through: Node spec.podCIDR and the node's InternalIP.
type Peer struct {
	// Node names the peer in errors and log lines; optional.
	Node   string
	CIDR   netip.Prefix
	NodeIP netip.Addr
}

func (p Peer) String() string {
	if p.Node != "" {
		return "node " + p.Node
	}
	return "peer " + p.CIDR.String()
}

// Network is the pod network of one node. Its methods are safe for
// concurrent use; they run one at a time (the kernel serializes link and
// route changes under one lock anyway, so running them in parallel would
// gain little).
type Network struct {
	log *slog.Logger

	// mu guards everything below, and every change to the host's and
	// the pods' network namespaces.
	mu sync.Mutex
	// cfg is the Config given to New; SetPodCIDRs changes its PodCIDR.
	cfg  Config
	ipam *allocator
	sys  *system // platform state (netlink handles)
	// nodeErr is why the node's setup last failed (nil once it
	// succeeded); Setup tries again before giving up.
	nodeErr error
	// peers is the last SyncRoutes input, applied again when the pod
	// CIDR changes.
	peers []Peer
	// rulesStale is set when installing the rules failed after the
	// port mappings changed; the next Setup, Teardown or Reconcile
	// installs them again.
	rulesStale bool
	closed     bool
}

// New sets up the node's side of the pod network and returns it: the
// bridge with the gateway address (created if missing, its address
// replaced if the pod CIDR changed), IP forwarding on, and the nftables
// table TableName (replaced whole) that masquerades pod traffic leaving
// the cluster CIDR and forwards the hostPorts of the allocations kept in
// StateDir, which it loads. New is idempotent: an agent calls it again on every start, and pods set up by
// an earlier process keep running untouched. With no PodCIDR yet, New
// touches nothing on the host; SetPodCIDRs does that later. The caller
// closes the Network with Close, which leaves the node's network in
// place.
func New(cfg Config) (*Network, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pod network config: %w", err)
	}
	n := &Network{cfg: cfg, log: cfg.Logger.WithGroup("podnet")}
	ipam, err := openAllocator(cfg.StateDir, cfg.PodCIDR, n.log)
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	n.ipam = ipam
	sys, err := openSystem(cfg, n.log)
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	n.sys = sys
	if !cfg.PodCIDR.IsValid() {
		n.log.Info("waiting for a pod CIDR", "allocations", ipam.len())
		return n, nil
	}
	if err := sys.setupNode(n.hostPortsLocked("")); err != nil {
		sys.close()
		return nil, fmt.Errorf("pod network: %w", err)
	}
	n.log.Info("node network ready", "bridge", cfg.Bridge, "podCIDR", cfg.PodCIDR, "clusterCIDR", cfg.ClusterCIDR, "mtu", sys.mtu, "allocations", ipam.len())
	return n, nil
}

// SetPodCIDRs gives the node its pod CIDR (Node spec.podCIDRs, or the
// agent's configured CIDR while those are empty): the IPv4 one is used,
// IPv6 ones are ignored (not supported yet). The first call on a Network
// made without a PodCIDR sets up the node as New would; a later call with
// a different CIDR moves the bridge to the new gateway, replaces the
// rules and re-applies the last SyncRoutes peers. Pods set up before keep
// their addresses until they are torn down, but lose their gateway: the
// caller recreates them. Calling it again with the same CIDR does nothing
// (or retries a node setup that failed). It returns ErrInvalid for a list
// with no usable IPv4 CIDR, or one outside the cluster CIDR.
//
// The method matches the kubelet's optional PodCIDRSetter interface.
func (n *Network) SetPodCIDRs(ctx context.Context, cidrs []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("set pod CIDR: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("set pod CIDR: %w", errClosed)
	}
	cidr, err := n.pickPodCIDRLocked(cidrs)
	if err != nil {
		return fmt.Errorf("set pod CIDR: %w", err)
	}
	if cidr == n.cfg.PodCIDR && n.nodeErr == nil {
		return nil
	}
	if old := n.cfg.PodCIDR; old.IsValid() && old != cidr {
		n.log.Warn("pod CIDR changed; pods set up before keep their addresses until recreated", "old", old, "new", cidr)
	}
	n.cfg.PodCIDR = cidr
	n.ipam.setCIDR(cidr)
	n.sys.setPodCIDR(cidr)
	if err := n.setupNodeLocked(); err != nil {
		return fmt.Errorf("set pod CIDR %s: %w", cidr, err)
	}
	n.log.Info("node network ready", "bridge", n.cfg.Bridge, "podCIDR", cidr, "clusterCIDR", n.cfg.ClusterCIDR, "mtu", n.sys.mtu, "allocations", n.ipam.len())
	if err := n.syncRoutesLocked(); err != nil {
		return fmt.Errorf("set pod CIDR %s: %w", cidr, err)
	}
	return nil
}

// pickPodCIDRLocked returns the one IPv4 CIDR of cidrs.
func (n *Network) pickPodCIDRLocked(cidrs []string) (netip.Prefix, error) {
	var v4 []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %w", c, ErrInvalid)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			n.log.Info("ignoring IPv6 pod CIDR (not supported yet)", "cidr", p)
		}
	}
	if len(v4) != 1 {
		return netip.Prefix{}, fmt.Errorf("need exactly one IPv4 pod CIDR, got %q: %w", cidrs, ErrInvalid)
	}
	if err := n.cfg.checkPodCIDR(v4[0]); err != nil {
		return netip.Prefix{}, err
	}
	return v4[0], nil
}

// setupNodeLocked runs the node's setup and records its outcome.
func (n *Network) setupNodeLocked() error {
	n.nodeErr = n.sys.setupNode(n.hostPortsLocked(""))
	if n.nodeErr == nil {
		n.rulesStale = false
	}
	return n.nodeErr
}

// hostPortsLocked lists the port mappings of every allocation but the
// one of sandbox skip, in IP order.
func (n *Network) hostPortsLocked(skip string) []hostPort {
	var out []hostPort
	for _, a := range n.ipam.all() {
		if a.SandboxID == skip && skip != "" {
			continue
		}
		for _, m := range a.Ports {
			out = append(out, hostPort{PortMapping: m, podIP: a.IP, pod: a.Namespace + "/" + a.Name})
		}
	}
	return out
}

// syncRulesLocked installs the rules again for the current allocations
// (but the one of sandbox skip) when force is set or an earlier install
// failed. Before the node has a pod CIDR there are no rules to change:
// SetPodCIDRs installs them.
func (n *Network) syncRulesLocked(skip string, force bool) error {
	if !force && !n.rulesStale {
		return nil
	}
	if !n.cfg.PodCIDR.IsValid() {
		return nil
	}
	if err := n.sys.installRules(n.hostPortsLocked(skip)); err != nil {
		n.rulesStale = true
		return err
	}
	n.rulesStale = false
	return nil
}

var errClosed = errors.New("pod network is closed")

// Setup connects the pod sandbox whose network namespace is the file
// netnsPath (the runtime's pinned namespace) to the node's bridge: it
// allocates an IP from the pod CIDR and records it in StateDir, creates a
// veth pair with the host end on the bridge (hairpin on) and the other end
// in the namespace as PodInterface, with the IP, the MTU and a default
// route via the gateway, and brings loopback up.
//
// With pod.Ports, Setup also forwards those ports of the node to the pod
// (the hostPorts): their rules join the table TableName and the mappings
// are recorded with the allocation, so a restarted agent keeps them.
//
// Setup is idempotent for one SandboxID: a second call returns the same
// Result, repairing the interfaces (with the same IP) if they were
// damaged, and takes the mappings of the latest call. For a HostNetwork
// pod it does nothing and returns an empty Result; netnsPath and the
// ports are then ignored.
//
// Errors: ErrInvalid for a bad PodRef (port mappings included), an empty
// netnsPath, a file that is not a network namespace or the host's own
// namespace; the operating system's not-exist error when netnsPath does
// not exist; ErrExhausted when no IP is free; ErrNoPodCIDR before the node
// has a pod CIDR; ErrPortInUse when a mapping claims a port of the node
// another pod holds (a mapping held by another sandbox of the same pod,
// by UID, is taken over: that sandbox is being replaced). A failed Setup
// of a new sandbox leaves nothing behind: no links, no allocation, no
// rules.
func (n *Network) Setup(ctx context.Context, pod PodRef, netnsPath string) (Result, error) {
	if pod.HostNetwork {
		return Result{}, nil
	}
	if err := validSandboxID(pod.SandboxID); err != nil {
		return Result{}, fmt.Errorf("set up network of %s: %w", pod, err)
	}
	if netnsPath == "" {
		return Result{}, fmt.Errorf("set up network of %s: no network namespace path: %w", pod, ErrInvalid)
	}
	ports, dropped, err := normalizePorts(pod.Ports)
	if err != nil {
		return Result{}, fmt.Errorf("set up network of %s: %w", pod, err)
	}
	if len(dropped) > 0 {
		n.log.Info("ignoring port mappings for IPv6 host addresses (not supported yet)", "pod", pod.String(), "mappings", fmt.Sprint(dropped))
	}
	pod.Ports = ports
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("set up network of %s: %w", pod, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return Result{}, fmt.Errorf("set up network of %s: %w", pod, errClosed)
	}
	if !n.cfg.PodCIDR.IsValid() {
		return Result{}, fmt.Errorf("set up network of %s: %w", pod, ErrNoPodCIDR)
	}
	if n.nodeErr != nil {
		if err := n.setupNodeLocked(); err != nil {
			return Result{}, fmt.Errorf("set up network of %s: node network: %w", pod, err)
		}
	}
	res, err := n.setupLocked(pod, netnsPath)
	if err != nil {
		return Result{}, fmt.Errorf("set up network of %s: %w", pod, err)
	}
	return res, nil
}

// setupLocked does Setup's work with n.mu held; pod.Ports are
// normalized.
func (n *Network) setupLocked(pod PodRef, netnsPath string) (Result, error) {
	podNS, err := n.sys.openPodNS(netnsPath)
	if err != nil {
		return Result{}, err
	}
	defer podNS.close()
	alloc, existed := n.ipam.get(pod.SandboxID)
	portsChanged := !slices.Equal(alloc.Ports, pod.Ports)
	if portsChanged {
		if err := n.claimPortsLocked(pod); err != nil {
			return Result{}, err
		}
	}
	var res Result
	plumbed := false
	if existed {
		if portsChanged {
			if err := n.ipam.setPorts(alloc.IP, pod.Ports); err != nil {
				return Result{}, err
			}
			alloc.Ports = pod.Ports
		}
		if res, plumbed = n.sys.plumbed(podNS, alloc); !plumbed {
			n.log.Info("repairing pod interfaces", "pod", pod.String(), "sandbox", pod.SandboxID, "ip", alloc.IP)
		}
	} else if alloc, err = n.ipam.allocate(pod); err != nil {
		return Result{}, err
	}
	if !plumbed {
		res, err = n.sys.plumb(podNS, alloc)
	}
	if err == nil {
		err = n.syncRulesLocked("", portsChanged)
		if err != nil && existed {
			// A running pod keeps its interfaces; the rules are
			// installed again by the next call (rulesStale).
			return Result{}, err
		}
	}
	if err != nil {
		n.sys.unplumb(pod.SandboxID, podNS)
		if rerr := n.ipam.release(alloc.IP); rerr != nil {
			n.log.Warn("release IP after failed setup", "ip", alloc.IP, "err", rerr)
		}
		if rerr := n.syncRulesLocked("", len(alloc.Ports) > 0); rerr != nil {
			n.log.Warn("remove port mappings after failed setup", "err", rerr)
		}
		return Result{}, err
	}
	if portsChanged {
		n.sys.forgetUDPFlows(alloc.Ports)
	}
	if !existed {
		n.log.Debug("pod network set up", "pod", pod.String(), "sandbox", pod.SandboxID, "ip", alloc.IP, "hostInterface", res.HostInterface, "ports", len(alloc.Ports))
	}
	return res, nil
}

// claimPortsLocked checks pod's mappings against every other sandbox's.
// A mapping that overlaps one of another pod is ErrPortInUse; one that
// overlaps a mapping of another sandbox of the same pod (by UID) takes it
// over: that mapping is removed from the other sandbox's allocation.
func (n *Network) claimPortsLocked(pod PodRef) error {
	type takeover struct {
		a    allocation
		keep []PortMapping
	}
	var takeovers []takeover
	for _, a := range n.ipam.all() {
		if a.SandboxID == pod.SandboxID || len(a.Ports) == 0 {
			continue
		}
		same := pod.UID != "" && a.UID == pod.UID
		var keep []PortMapping
		for _, theirs := range a.Ports {
			i := slices.IndexFunc(pod.Ports, theirs.overlaps)
			switch {
			case i < 0:
				keep = append(keep, theirs)
			case !same:
				return fmt.Errorf("port mapping %s: the node's port is held by pod %s/%s (%s): %w", pod.Ports[i], a.Namespace, a.Name, theirs, ErrPortInUse)
			}
		}
		if len(keep) != len(a.Ports) {
			takeovers = append(takeovers, takeover{a, keep})
		}
	}
	for _, t := range takeovers {
		if err := n.ipam.setPorts(t.a.IP, t.keep); err != nil {
			return err
		}
		n.log.Info("port mappings taken over by a new sandbox of the pod", "pod", pod.String(), "from", t.a.SandboxID, "to", pod.SandboxID)
	}
	return nil
}

// Teardown disconnects a sandbox: it removes the rules of its port
// mappings, deletes its veth pair and releases its IP. It is idempotent: tearing down a sandbox that has no network
// (already torn down, never set up, or a host-network pod) succeeds.
// netnsPath may be empty or name a namespace that is gone; it is only
// used to find the pod's interface when the host's end is missing.
func (n *Network) Teardown(ctx context.Context, sandboxID, netnsPath string) error {
	if err := validSandboxID(sandboxID); err != nil {
		return fmt.Errorf("tear down network: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tear down network of sandbox %s: %w", sandboxID, err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return fmt.Errorf("tear down network of sandbox %s: %w", sandboxID, errClosed)
	}
	alloc, ok := n.ipam.get(sandboxID)
	// The rules go first: a freed IP must not stay a hostPort's target.
	err := n.syncRulesLocked(sandboxID, len(alloc.Ports) > 0)
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("tear down network of sandbox %s: %w", sandboxID, err)
	}
	// Deleting a veth waits for the kernel's RCU grace periods (about
	// 20 ms), mostly outside its own locks: done without n.mu, so that
	// the pods of a node are torn down together rather than one by one.
	// The IP is released only once the veth is gone.
	if err := n.sys.teardown(sandboxID, netnsPath); err != nil {
		return fmt.Errorf("tear down network of sandbox %s: %w", sandboxID, err)
	}
	if !ok {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ipam.release(alloc.IP); err != nil {
		return fmt.Errorf("tear down network of sandbox %s: %w", sandboxID, err)
	}
	return nil
}

// Reconcile garbage-collects the network of sandboxes that are gone: every
// allocation whose sandbox is not in live is released and its veth and
// port mappings deleted; so are veths this package made that no allocation accounts
// for, and allocations whose file was unreadable. The agent calls it on
// start, once it knows the runtime's sandboxes, and may call it again at
// any time. It returns the sandbox IDs it collected.
func (n *Network) Reconcile(ctx context.Context, live []string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reconcile pod network: %w", err)
	}
	keep := make(map[string]bool, len(live))
	for _, id := range live {
		keep[id] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("reconcile pod network: %w", errClosed)
	}
	var collected []string
	var errs []error
	portsGone := false
	for _, a := range n.ipam.all() {
		if a.SandboxID != "" && keep[a.SandboxID] {
			continue
		}
		if a.SandboxID != "" {
			if err := n.sys.teardown(a.SandboxID, ""); err != nil {
				errs = append(errs, fmt.Errorf("sandbox %s: %w", a.SandboxID, err))
				continue
			}
		}
		if err := n.ipam.release(a.IP); err != nil {
			errs = append(errs, err)
			continue
		}
		portsGone = portsGone || len(a.Ports) > 0
		n.log.Info("collected network of a gone sandbox", "sandbox", a.SandboxID, "pod", a.Namespace+"/"+a.Name, "ip", a.IP)
		if a.SandboxID != "" {
			collected = append(collected, a.SandboxID)
		}
	}
	owned := map[string]bool{}
	for _, a := range n.ipam.all() {
		owned[hostVethName(a.SandboxID)] = true
	}
	if err := n.sys.deleteStrayVeths(owned); err != nil {
		errs = append(errs, err)
	}
	if err := n.syncRulesLocked("", portsGone); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return collected, fmt.Errorf("reconcile pod network: %w", err)
	}
	return collected, nil
}

// SyncRoutes makes the host's routes to other nodes' pods match peers:
// one route per peer, to its CIDR via its NodeIP (nodes share one L2
// network: host-gw). Routes this package made earlier for CIDRs no
// longer in peers are deleted; routes of others are never touched. A
// peer whose CIDR is this node's own pod CIDR, or whose NodeIP is one of
// this host's addresses, is skipped, so the caller may pass every Node. The agent calls it with the full list whenever its
// Node informer sees a node's spec.podCIDR or InternalIP change, or a
// node come or go. Before the node has a pod CIDR, the list is kept and
// applied by SetPodCIDRs.
//
// A bad peer (a CIDR outside the cluster CIDR or overlapping this node's,
// a second NodeIP for one CIDR, an invalid address) is reported with
// ErrInvalid and skipped; the other peers' routes are still made. A
// NodeIP the host cannot reach directly fails its route only.
func (n *Network) SyncRoutes(ctx context.Context, peers []Peer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sync pod routes: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("sync pod routes: %w", errClosed)
	}
	n.peers = slices.Clone(peers)
	if !n.cfg.PodCIDR.IsValid() {
		return nil
	}
	if err := n.syncRoutesLocked(); err != nil {
		return fmt.Errorf("sync pod routes: %w", err)
	}
	return nil
}

// syncRoutesLocked applies n.peers.
func (n *Network) syncRoutesLocked() error {
	local, err := n.sys.localAddrs()
	if err != nil {
		return err
	}
	want := map[netip.Prefix]Peer{}
	var errs []error
	for _, p := range n.peers {
		if err := n.checkPeer(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if p.CIDR == n.cfg.PodCIDR || local[p.NodeIP] {
			// This node (its Node object may still show an old CIDR).
			continue
		}
		if other, dup := want[p.CIDR]; dup && other.NodeIP != p.NodeIP {
			errs = append(errs, fmt.Errorf("%s: CIDR %s is also routed via %s (%s): %w", p, p.CIDR, other.NodeIP, other, ErrInvalid))
			continue
		}
		want[p.CIDR] = p
	}
	if err := n.sys.syncRoutes(want); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkPeer validates one peer.
func (n *Network) checkPeer(p Peer) error {
	if err := validCIDR(p.CIDR, 8, 32); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !p.NodeIP.IsValid() || !p.NodeIP.Is4() || p.NodeIP.IsUnspecified() || p.NodeIP.IsMulticast() {
		return fmt.Errorf("%s: node IP %q is not a usable IPv4 address: %w", p, p.NodeIP.String(), ErrInvalid)
	}
	if p.CIDR == n.cfg.PodCIDR {
		return nil
	}
	if p.CIDR.Overlaps(n.cfg.PodCIDR) {
		return fmt.Errorf("%s: CIDR %s overlaps this node's pod CIDR %s: %w", p, p.CIDR, n.cfg.PodCIDR, ErrInvalid)
	}
	if p.CIDR.Bits() < n.cfg.ClusterCIDR.Bits() || !n.cfg.ClusterCIDR.Contains(p.CIDR.Addr()) {
		return fmt.Errorf("%s: CIDR %s is not inside cluster CIDR %s: %w", p, p.CIDR, n.cfg.ClusterCIDR, ErrInvalid)
	}
	if n.cfg.ClusterCIDR.Contains(p.NodeIP) {
		return fmt.Errorf("%s: node IP %s is inside the cluster CIDR %s: %w", p, p.NodeIP, n.cfg.ClusterCIDR, ErrInvalid)
	}
	return nil
}

// Close releases the Network's handles. It does not undo anything: the
// bridge, the pods' interfaces, routes and rules stay, so pods keep their
// network while the agent restarts. Close is idempotent; the other
// methods fail after it.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	n.sys.close()
	return nil
}
