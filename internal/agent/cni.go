package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/network/cni"
)

// cniNetwork adapts package cni to the kubelet's Network: the pod
// network of third-party CNI plugins, instead of podnet.
type cniNetwork struct {
	net *cni.Network
}

var _ kubelet.Network = (*cniNetwork)(nil)

// newCNINetwork loads the CNI settings and deletes the attachments of
// sandboxes that went away while the agent was down.
func newCNINetwork(ctx context.Context, cfg Config, rt runtimeapi.RuntimeServiceClient, log *slog.Logger) (*cniNetwork, error) {
	n, err := cni.New(cni.Config{
		BinDirs: cfg.CNIBinDirs, ConfDir: cfg.CNIConfDir,
		CacheDir: filepath.Join(cfg.RootDir, "cni"), HostNetNS: cfg.PodNetworkNetNS,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	live, err := liveSandboxes(ctx, rt)
	if err != nil {
		return nil, err
	}
	if gone, err := n.Reconcile(ctx, live); err != nil {
		log.Warn("reconciling CNI attachments", "err", err)
	} else if len(gone) > 0 {
		log.Info("deleted the CNI attachments of gone sandboxes", "sandboxes", gone)
	}
	return &cniNetwork{net: n}, nil
}

// SetUp runs CNI ADD for the sandbox, with its hostPorts.
func (c *cniNetwork) SetUp(ctx context.Context, sb kubelet.Sandbox) ([]net.IP, error) {
	res, err := c.net.Setup(ctx, cni.Pod{
		Namespace: sb.Namespace, Name: sb.Name, UID: string(sb.UID),
		SandboxID: sb.ID, NetNS: sb.NetNS, Ports: cniPorts(sb.PortMappings),
	})
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(res.IPs))
	for _, p := range res.IPs {
		ips = append(ips, net.IP(p.Addr().AsSlice()))
	}
	return ips, nil
}

// TearDown runs CNI DEL for the sandbox.
func (c *cniNetwork) TearDown(ctx context.Context, sb kubelet.Sandbox) error {
	return c.net.Teardown(ctx, sb.ID, sb.NetNS)
}

// cniPorts converts CRI port mappings to the portMappings capability's.
func cniPorts(in []*runtimeapi.PortMapping) []cni.PortMapping {
	out := make([]cni.PortMapping, 0, len(in))
	for _, m := range in {
		proto := "tcp"
		switch m.GetProtocol() {
		case runtimeapi.Protocol_UDP:
			proto = "udp"
		case runtimeapi.Protocol_SCTP:
			proto = "sctp"
		}
		out = append(out, cni.PortMapping{HostPort: m.GetHostPort(), ContainerPort: m.GetContainerPort(), Protocol: proto, HostIP: m.GetHostIp()})
	}
	return out
}
