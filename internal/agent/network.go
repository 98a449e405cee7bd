package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/network/podnet"
)

// errNoPodCIDR: a sandbox was set up before the node had a pod CIDR.
var errNoPodCIDR = errors.New("the node has no pod CIDR yet")

// podNetwork adapts podnet to the kubelet's Network: the podnet.Network
// is made when the kubelet first learns the node's pod CIDR.
type podNetwork struct {
	cfg Config
	rt  runtimeapi.RuntimeServiceClient
	log *slog.Logger

	mu   sync.Mutex // guards net and cidr
	net  *podnet.Network
	cidr netip.Prefix
	// changed is closed and replaced when net is made, so that the route
	// syncer learns it can start.
	changed chan struct{}
}

var (
	_ kubelet.Network       = (*podNetwork)(nil)
	_ kubelet.PodCIDRSetter = (*podNetwork)(nil)
)

func newPodNetwork(cfg Config, rt runtimeapi.RuntimeServiceClient, log *slog.Logger) *podNetwork {
	return &podNetwork{cfg: cfg, rt: rt, log: log, changed: make(chan struct{})}
}

// SetPodCIDRs makes the node's network for the first IPv4 CIDR. A later
// change of CIDR is refused: the pods running have addresses from the
// old one (restart the agent after draining the node).
func (p *podNetwork) SetPodCIDRs(ctx context.Context, cidrs []string) error {
	var cidr netip.Prefix
	for _, c := range cidrs {
		pf, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("pod CIDR %q: %w", c, err)
		}
		if pf.Addr().Is4() {
			cidr = pf
			break
		}
	}
	if !cidr.IsValid() {
		return fmt.Errorf("pod CIDRs %v: no IPv4 CIDR (IPv6 pod networks are not supported)", cidrs)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.net != nil {
		if p.cidr == cidr {
			return nil
		}
		return fmt.Errorf("pod CIDR changed from %s to %s: drain the node and restart the agent", p.cidr, cidr)
	}
	cluster, err := netip.ParsePrefix(p.cfg.ClusterCIDR)
	if err != nil {
		return err
	}
	n, err := podnet.New(podnet.Config{
		Bridge: p.cfg.PodNetworkBridge, PodCIDR: cidr, ClusterCIDR: cluster,
		StateDir: filepath.Join(p.cfg.RootDir, "podnet"), HostNetNS: p.cfg.PodNetworkNetNS,
		Logger: p.log,
	})
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	// Free the addresses of sandboxes that went away while the agent was
	// down.
	if resp, err := p.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
		var live []string
		for _, sb := range resp.GetItems() {
			live = append(live, sb.GetId())
		}
		if freed, err := n.Reconcile(ctx, live); err != nil {
			p.log.Warn("reconciling pod IPs", "err", err)
		} else if len(freed) > 0 {
			p.log.Info("freed pod IPs of gone sandboxes", "sandboxes", freed)
		}
	}
	p.net, p.cidr = n, cidr
	close(p.changed)
	p.changed = make(chan struct{})
	p.log.Info("pod network ready", "podCIDR", cidr.String())
	return nil
}

func (p *podNetwork) network() (*podnet.Network, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.net, p.changed
}

// SetUp gives the sandbox its veth and IP.
func (p *podNetwork) SetUp(ctx context.Context, sb kubelet.Sandbox) ([]net.IP, error) {
	n, _ := p.network()
	if n == nil {
		return nil, errNoPodCIDR
	}
	res, err := n.Setup(ctx, podnet.PodRef{Namespace: sb.Namespace, Name: sb.Name, UID: string(sb.UID), SandboxID: sb.ID}, sb.NetNS)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(res.IPs))
	for _, ip := range res.IPs {
		ips = append(ips, net.IP(ip.Addr().AsSlice()))
	}
	return ips, nil
}

// TearDown frees the sandbox's IP and veth.
func (p *podNetwork) TearDown(ctx context.Context, sb kubelet.Sandbox) error {
	n, _ := p.network()
	if n == nil {
		return nil
	}
	return n.Teardown(ctx, sb.ID, sb.NetNS)
}

func (p *podNetwork) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.net != nil {
		p.net.Close()
	}
}

// syncRoutes keeps a route to every other node's pod CIDR, through its
// InternalIP, from a Node informer. It returns when ctx ends.
func (p *podNetwork) syncRoutes(ctx context.Context, client kubernetes.Interface, self string) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	var last []podnet.Peer
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		n, changed := p.network()
		if n != nil {
			list, err := nodes.Lister().List(labels.Everything())
			if err == nil {
				peers := peersOf(list, self)
				if !equalPeers(peers, last) {
					if err := n.SyncRoutes(ctx, peers); err != nil {
						p.log.Warn("syncing routes to other nodes", "err", err)
						retry.Reset(5 * time.Second)
					} else {
						last = peers
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-changed:
		case <-retry.C:
		}
	}
}

// peersOf lists the other nodes with a pod CIDR and an InternalIP.
func peersOf(nodes []*corev1.Node, self string) []podnet.Peer {
	var out []podnet.Peer
	for _, node := range nodes {
		if node.Name == self || node.Spec.PodCIDR == "" {
			continue
		}
		cidr, err := netip.ParsePrefix(node.Spec.PodCIDR)
		if err != nil || !cidr.Addr().Is4() {
			continue
		}
		for _, a := range node.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err == nil && ip.Is4() {
				out = append(out, podnet.Peer{Node: node.Name, CIDR: cidr, NodeIP: ip})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func equalPeers(a, b []podnet.Peer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
