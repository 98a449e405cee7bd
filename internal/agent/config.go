package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/kubelet"
)

// Defaults for Config's zero values.
const (
	DefaultRootDir     = "/var/lib/skiff/agent"
	DefaultPodLogsDir  = kubelet.DefaultPodLogsDir
	DefaultClusterCIDR = "10.42.0.0/16"
	DefaultKubeletPort = kubelet.DefaultPort
	// DefaultCgroupParent is the cgroup the built-in runtime and the
	// kubelet put pods under.
	DefaultCgroupParent = "skiff"
	// DefaultClientQPS and DefaultClientBurst limit a Client that sets no
	// limit of its own, as upstream's kubelet does by default: requests
	// per second and bursts, for the API and, separately, for events.
	DefaultClientQPS   = 50
	DefaultClientBurst = 100
)

// Config configures an Agent. Client is required; every other zero value
// means the documented default.
type Config struct {
	// NodeName is the Node's name (default: the host name, lower case).
	NodeName string
	// Client reaches the API server with the node's credentials.
	// Required. With no QPS (and no RateLimiter) it gets
	// DefaultClientQPS and DefaultClientBurst; a negative QPS means no
	// client-side limit.
	Client *rest.Config

	// RootDir holds the agent's state (default DefaultRootDir):
	//
	//	pods/<uid>/...    the kubelet's and the volume manager's pod dirs
	//	cri.sock          the built-in runtime's CRI socket
	//	cri/runtime/      the built-in runtime's sandboxes and containers
	//	cri/images/       the built-in runtime's image store
	//	podnet/           pod IP allocations
	//	cni/              libcni's cache (with CNIConfDir)
	RootDir string
	// PodLogsDir holds container logs (default DefaultPodLogsDir).
	PodLogsDir string

	// RuntimeEndpoint is a CRI endpoint ("unix:///run/containerd/containerd.sock")
	// to use instead of the built-in runtime. With one, the runtime's
	// CNI makes the pod network and the kubelet makes no cgroups.
	RuntimeEndpoint string
	// CgroupParent is the cgroup pods go under with the built-in runtime
	// (default DefaultCgroupParent).
	CgroupParent string
	// Registries configures image pulls of the built-in runtime
	// (mirrors, TLS, credentials).
	Registries image.Registries

	// PodCIDR is used while the Node has no spec.podCIDR.
	PodCIDR string
	// ClusterCIDR holds every node's pod CIDR (default
	// DefaultClusterCIDR); pod traffic leaving it is masqueraded.
	ClusterCIDR string
	// PodNetworkNetNS is the network namespace the pod network's bridge
	// and routes live in (default: the agent's own). Tests and several
	// agents on one host point it at a namespace of their own.
	PodNetworkNetNS string
	// PodNetworkBridge names the bridge (default podnet's).
	PodNetworkBridge string
	// CNIConfDir and CNIBinDirs make the pod network with third-party
	// CNI plugins instead of the built-in one: the first configuration
	// file of CNIConfDir, its plugins found in CNIBinDirs (package cni).
	// Both or neither; not with RuntimeEndpoint, whose runtime runs its
	// own CNI.
	CNIConfDir string
	CNIBinDirs []string

	// NodeIP is the Node's InternalIP (default: the host's first global
	// unicast address).
	NodeIP net.IP
	// KubeletAddress is the host the kubelet API listens on (default:
	// every address); KubeletPort its port (default 10250).
	KubeletAddress string
	KubeletPort    int
	// ServingCertificate is the kubelet API's certificate. Nil: a
	// self-signed one for NodeName and NodeIP, made at every start.
	ServingCertificate *tls.Certificate
	// ClientCA verifies the certificates of the kubelet API's callers.
	// Nil: the CA that Client trusts for the API server (the cluster CA).
	ClientCA *x509.CertPool
	// KubeletAPIUsers may use the kubelet API besides system:masters
	// (default: the API server's kubelet client identity).
	KubeletAPIUsers []string

	// ClusterDNS and ClusterDomain are the pods' DNS settings.
	ClusterDNS    []string
	ClusterDomain string
	// MaxPods is the node's pod capacity (default 110).
	MaxPods int

	// Logger gets every component's logs, in groups (default:
	// discarded).
	Logger *slog.Logger
	// Metrics gets every component's collectors (default: not
	// registered).
	Metrics prometheus.Registerer
}

func (c *Config) validate() error {
	if c.Client == nil {
		return errors.New("agent: Config.Client is required")
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent: node name: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if errs := validation.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		return fmt.Errorf("agent: node name %q: %s", c.NodeName, errs[0])
	}
	if c.RootDir == "" {
		c.RootDir = DefaultRootDir
	}
	if c.PodLogsDir == "" {
		c.PodLogsDir = DefaultPodLogsDir
	}
	for _, d := range []*string{&c.RootDir, &c.PodLogsDir} {
		abs, err := filepath.Abs(*d)
		if err != nil {
			return fmt.Errorf("agent: %s: %w", *d, err)
		}
		*d = abs
	}
	if c.CgroupParent == "" {
		c.CgroupParent = DefaultCgroupParent
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = DefaultClusterCIDR
	}
	cluster, err := netip.ParsePrefix(c.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("agent: cluster CIDR %q: %w", c.ClusterCIDR, err)
	}
	if c.PodCIDR != "" {
		p, err := netip.ParsePrefix(c.PodCIDR)
		if err != nil {
			return fmt.Errorf("agent: pod CIDR %q: %w", c.PodCIDR, err)
		}
		if !cluster.Contains(p.Addr()) || p.Bits() < cluster.Bits() {
			return fmt.Errorf("agent: pod CIDR %s is not inside the cluster CIDR %s", p, cluster)
		}
	}
	if c.RuntimeEndpoint != "" && !strings.HasPrefix(c.RuntimeEndpoint, "unix://") {
		return fmt.Errorf("agent: runtime endpoint %q: want unix:///path/to/socket", c.RuntimeEndpoint)
	}
	if err := c.validateCNI(); err != nil {
		return err
	}
	if c.NodeIP == nil {
		c.NodeIP = hostIP()
	}
	if c.KubeletPort == 0 {
		c.KubeletPort = DefaultKubeletPort
	}
	if c.KubeletPort < 0 || c.KubeletPort > 65535 {
		return fmt.Errorf("agent: kubelet port %d out of range", c.KubeletPort)
	}
	if c.ClientCA == nil {
		pool, err := caFromRESTConfig(c.Client)
		if err != nil {
			return err
		}
		c.ClientCA = pool
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// validateCNI checks the CNI settings and makes their paths absolute.
func (c *Config) validateCNI() error {
	if c.CNIConfDir == "" && len(c.CNIBinDirs) == 0 {
		return nil
	}
	if c.CNIConfDir == "" || len(c.CNIBinDirs) == 0 {
		return errors.New("agent: CNI plugins need both a configuration dir and a plugin dir")
	}
	if c.RuntimeEndpoint != "" {
		return errors.New("agent: CNI plugins are for the built-in runtime; an external CRI runtime runs its own CNI")
	}
	dirs := append([]string{c.CNIConfDir}, c.CNIBinDirs...)
	for i, d := range dirs {
		if d == "" {
			return errors.New("agent: empty CNI plugin dir")
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("agent: %s: %w", d, err)
		}
		dirs[i] = abs
	}
	c.CNIConfDir, c.CNIBinDirs = dirs[0], dirs[1:]
	return nil
}

// caFromRESTConfig reads the CA the client trusts for the API server.
func caFromRESTConfig(rc *rest.Config) (*x509.CertPool, error) {
	data := rc.TLSClientConfig.CAData
	if len(data) == 0 && rc.TLSClientConfig.CAFile != "" {
		b, err := os.ReadFile(rc.TLSClientConfig.CAFile)
		if err != nil {
			return nil, fmt.Errorf("agent: cluster CA: %w", err)
		}
		data = b
	}
	if len(data) == 0 {
		return nil, errors.New("agent: no cluster CA: the client config has none and Config.ClientCA is nil (the kubelet API could not verify the API server)")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("agent: cluster CA: no PEM certificate")
	}
	return pool, nil
}

// hostIP is the host's first global unicast IPv4 address, else its first
// IPv6 one, else 127.0.0.1.
func hostIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return net.IPv4(127, 0, 0, 1)
	}
	var v6 net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.To4()
		}
		if v6 == nil {
			v6 = ipn.IP
		}
	}
	if v6 != nil {
		return v6
	}
	return net.IPv4(127, 0, 0, 1)
}

// limited returns a copy of c with the default rate limit when it sets
// none.
func limited(c *rest.Config) *rest.Config {
	c = rest.CopyConfig(c)
	if c.QPS == 0 && c.RateLimiter == nil {
		c.QPS, c.Burst = DefaultClientQPS, DefaultClientBurst
	}
	return c
}
