package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
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

// podNetwork adapts podnet to the kubelet's Network and PodCIDRSetter.
type podNetwork struct {
	net *podnet.Network
	log *slog.Logger
}

var (
	_ kubelet.Network       = (*podNetwork)(nil)
	_ kubelet.PodCIDRSetter = (*podNetwork)(nil)
)

// newPodNetwork makes the node's pod network (its CIDR comes later, from
// the kubelet) and frees the addresses of sandboxes that went away while
// the agent was down.
func newPodNetwork(ctx context.Context, cfg Config, rt runtimeapi.RuntimeServiceClient, log *slog.Logger) (*podNetwork, error) {
	cluster, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("agent: cluster CIDR: %w", err)
	}
	n, err := podnet.New(podnet.Config{
		Bridge: cfg.PodNetworkBridge, ClusterCIDR: cluster,
		StateDir: filepath.Join(cfg.RootDir, "podnet"), HostNetNS: cfg.PodNetworkNetNS,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: pod network: %w", err)
	}
	live, err := liveSandboxes(ctx, rt)
	if err != nil {
		n.Close()
		return nil, err
	}
	if freed, err := n.Reconcile(ctx, live); err != nil {
		log.Warn("reconciling pod IPs", "err", err)
	} else if len(freed) > 0 {
		log.Info("freed the pod IPs of gone sandboxes", "sandboxes", freed)
	}
	return &podNetwork{net: n, log: log}, nil
}

// liveSandboxes lists the IDs of the runtime's sandboxes.
func liveSandboxes(ctx context.Context, rt runtimeapi.RuntimeServiceClient) ([]string, error) {
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("agent: list sandboxes: %w", err)
	}
	live := make([]string, 0, len(resp.GetItems()))
	for _, sb := range resp.GetItems() {
		live = append(live, sb.GetId())
	}
	return live, nil
}

// SetPodCIDRs passes the node's pod CIDRs on.
func (p *podNetwork) SetPodCIDRs(ctx context.Context, cidrs []string) error {
	return p.net.SetPodCIDRs(ctx, cidrs)
}

// SetUp gives the sandbox its veth and IP, and its hostPorts.
func (p *podNetwork) SetUp(ctx context.Context, sb kubelet.Sandbox) ([]net.IP, error) {
	ports, err := podnetPorts(sb.PortMappings)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", sb.Namespace, sb.Name, err)
	}
	res, err := p.net.Setup(ctx, podnet.PodRef{Namespace: sb.Namespace, Name: sb.Name, UID: string(sb.UID), SandboxID: sb.ID, Ports: ports}, sb.NetNS)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(res.IPs))
	for _, ip := range res.IPs {
		ips = append(ips, net.IP(ip.Addr().AsSlice()))
	}
	return ips, nil
}

// podnetPorts converts CRI port mappings to podnet's. Ports outside
// 1..65535 and host IPs that do not parse are podnet.ErrInvalid.
func podnetPorts(in []*runtimeapi.PortMapping) ([]podnet.PortMapping, error) {
	out := make([]podnet.PortMapping, 0, len(in))
	for _, m := range in {
		pm := podnet.PortMapping{Protocol: podnet.TCP}
		switch m.GetProtocol() {
		case runtimeapi.Protocol_UDP:
			pm.Protocol = podnet.UDP
		case runtimeapi.Protocol_SCTP:
			pm.Protocol = podnet.SCTP
		}
		if m.GetHostPort() < 1 || m.GetHostPort() > 65535 || m.GetContainerPort() < 1 || m.GetContainerPort() > 65535 {
			return nil, fmt.Errorf("port mapping %d->%d: ports must be 1 to 65535: %w", m.GetHostPort(), m.GetContainerPort(), podnet.ErrInvalid)
		}
		pm.HostPort, pm.ContainerPort = uint16(m.GetHostPort()), uint16(m.GetContainerPort())
		if h := m.GetHostIp(); h != "" {
			ip, err := netip.ParseAddr(h)
			if err != nil {
				return nil, fmt.Errorf("port mapping %d->%d: host IP %q: %w", m.GetHostPort(), m.GetContainerPort(), h, podnet.ErrInvalid)
			}
			pm.HostIP = ip
		}
		out = append(out, pm)
	}
	return out, nil
}

// TearDown frees the sandbox's IP and veth.
func (p *podNetwork) TearDown(ctx context.Context, sb kubelet.Sandbox) error {
	return p.net.Teardown(ctx, sb.ID, sb.NetNS)
}

func (p *podNetwork) close() { p.net.Close() }

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
		list, err := nodes.Lister().List(labels.Everything())
		if err == nil {
			peers := peersOf(list, self)
			if !equalPeers(peers, last) {
				if err := p.net.SyncRoutes(ctx, peers); err != nil {
					p.log.Warn("syncing routes to other nodes", "err", err)
					retry.Reset(5 * time.Second)
				} else {
					last = peers
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
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
