package cli

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/container/image"
)

type agentFlags struct {
	kubeconfig      string
	server          string
	token           string
	caFile          string
	nodeName        string
	rootDir         string
	podLogsDir      string
	runtimeEndpoint string
	registryConfig  string
	podCIDR         string
	clusterCIDR     string
	cniBinDirs      []string
	cniConfDir      string
	nodeIP          string
	kubeletAddress  string
	kubeletPort     int
	cgroupParent    string
	clusterDNS      []string
	clusterDomain   string
	maxPods         int
	log             logFlags
}

func newAgentCommand() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node: kubelet, container runtime and pod network, joined to a skiff server",
		Long: `Run a skiff node on this host and join it to a cluster: the kubelet
registers a Node and runs the pods bound to it with the built-in container
runtime (or a CRI runtime given with --container-runtime-endpoint), gives
them IPs from the node's pod CIDR (or through the CNI plugins of
--cni-conf-dir and --cni-bin-dir), forwards their hostPorts, and serves
the kubelet API (logs, exec, attach, port-forward, stats) on
--kubelet-port.

The agent reaches the API server with a kubeconfig (--kubeconfig), or with
--server, --token and --certificate-authority. Stop it with SIGINT or
SIGTERM; containers keep running and a restarted agent adopts them.`,
		Example: `  skiff agent --kubeconfig node.kubeconfig
  skiff agent --kubeconfig node.kubeconfig --server https://10.0.0.5:6443 --pod-cidr 10.42.1.0/24
  skiff agent --server https://10.0.0.5:6443 --token <token> --certificate-authority ca.crt
  skiff agent --kubeconfig node.kubeconfig --cni-conf-dir /etc/cni/net.d --cni-bin-dir /opt/cni/bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := f.log.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			rc, err := f.restConfig()
			if err != nil {
				return err
			}
			cfg := agent.Config{
				NodeName: f.nodeName, Client: rc, RootDir: f.rootDir, PodLogsDir: f.podLogsDir,
				RuntimeEndpoint: f.runtimeEndpoint, PodCIDR: f.podCIDR, ClusterCIDR: f.clusterCIDR,
				CNIConfDir: f.cniConfDir, CNIBinDirs: f.cniBinDirs,
				KubeletAddress: f.kubeletAddress, KubeletPort: f.kubeletPort, CgroupParent: f.cgroupParent,
				ClusterDNS: f.clusterDNS, ClusterDomain: f.clusterDomain, MaxPods: f.maxPods, Logger: logger,
			}
			if f.nodeIP != "" {
				if cfg.NodeIP = net.ParseIP(f.nodeIP); cfg.NodeIP == nil {
					return fmt.Errorf("--node-ip %q is not an IP address", f.nodeIP)
				}
			}
			if f.registryConfig != "" {
				if cfg.Registries, err = image.LoadRegistries(f.registryConfig); err != nil {
					return fmt.Errorf("--registry-config: %w", err)
				}
			}
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			go func() {
				select {
				case <-a.Ready():
					fmt.Fprintf(cmd.OutOrStdout(), "skiff agent: node %s is registered; kubelet API on %s\n", a.NodeName(), a.KubeletAddr())
				case <-cmd.Context().Done():
				}
			}()
			return a.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Kubeconfig with the node's credentials for the API server")
	fs.StringVar(&f.server, "server", "", "API server URL (https://host:port); overrides the kubeconfig's")
	fs.StringVar(&f.token, "token", "", "Bearer token for the API server (with --server and --certificate-authority, instead of a kubeconfig)")
	fs.StringVar(&f.caFile, "certificate-authority", "", "Cluster CA certificate file (with --token)")
	fs.StringVar(&f.nodeName, "node-name", "", "Name of the Node (default: the host name)")
	fs.StringVar(&f.rootDir, "root-dir", agent.DefaultRootDir, "Directory for the agent's state: pods, volumes, the built-in runtime's images and containers")
	fs.StringVar(&f.podLogsDir, "pod-logs-dir", agent.DefaultPodLogsDir, "Directory for container logs")
	fs.StringVar(&f.runtimeEndpoint, "container-runtime-endpoint", "", "CRI endpoint (unix:///run/containerd/containerd.sock) to use instead of the built-in runtime")
	fs.StringVar(&f.registryConfig, "registry-config", "", "Registries file (mirrors, TLS, credentials) for the built-in runtime's image pulls")
	fs.StringVar(&f.podCIDR, "pod-cidr", "", "Pod CIDR of this node while its Node has no spec.podCIDR (such as 10.42.1.0/24)")
	fs.StringVar(&f.clusterCIDR, "cluster-cidr", agent.DefaultClusterCIDR, "CIDR holding every node's pod CIDR; pod traffic leaving it is masqueraded")
	cniFlags(cmd, &f.cniConfDir, &f.cniBinDirs)
	fs.StringVar(&f.nodeIP, "node-ip", "", "InternalIP of the Node (default: the host's first global address)")
	fs.StringVar(&f.kubeletAddress, "kubelet-address", "", "Address the kubelet API listens on (empty: all addresses)")
	fs.IntVar(&f.kubeletPort, "kubelet-port", agent.DefaultKubeletPort, "Port of the kubelet API (HTTPS)")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", agent.DefaultCgroupParent, "Cgroup the built-in runtime puts pods under")
	fs.StringSliceVar(&f.clusterDNS, "cluster-dns", nil, "Nameserver IPs for pods with dnsPolicy ClusterFirst (empty: the host's resolv.conf)")
	fs.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "The cluster's DNS domain")
	fs.IntVar(&f.maxPods, "max-pods", 110, "Pods this node may run")
	f.log.register(cmd)
	return cmd
}

// cniFlags registers --cni-conf-dir and --cni-bin-dir, which the agent
// and the server share.
func cniFlags(cmd *cobra.Command, confDir *string, binDirs *[]string) {
	fs := cmd.Flags()
	fs.StringVar(confDir, "cni-conf-dir", "", "Make the pod network with third-party CNI plugins instead of the built-in one: the first .conflist, .conf or .json file here by name is the network (needs --cni-bin-dir)")
	fs.StringSliceVar(binDirs, "cni-bin-dir", nil, "Directories (comma-separated) holding the CNI plugins' binaries, with --cni-conf-dir (such as /opt/cni/bin)")
}

// restConfig builds the agent's API client from the flags.
func (f *agentFlags) restConfig() (*rest.Config, error) {
	switch {
	case f.kubeconfig != "":
		rc, err := clientcmd.BuildConfigFromFlags(f.server, f.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", f.kubeconfig, err)
		}
		if f.token != "" {
			rc.BearerToken = f.token
		}
		return rc, nil
	case f.server != "" && f.token != "":
		if f.caFile == "" {
			return nil, errors.New("--token needs --certificate-authority to verify the API server")
		}
		if _, err := os.Stat(f.caFile); err != nil {
			return nil, fmt.Errorf("--certificate-authority: %w", err)
		}
		return &rest.Config{Host: f.server, BearerToken: f.token, TLSClientConfig: rest.TLSClientConfig{CAFile: f.caFile}}, nil
	}
	return nil, errors.New("give --kubeconfig, or --server with --token and --certificate-authority")
}
