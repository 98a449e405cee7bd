package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/server/cluster"
)

type serverFlags struct {
	dataDir          string
	bindAddress      string
	httpsPort        int
	advertiseAddress string
	tlsSANs          []string
	etcdServers      []string
	etcdCAFile       string
	etcdCertFile     string
	etcdKeyFile      string
	serviceCIDR      string
	nodePortRange    string
	tokenAuthFile    string
	clusterCIDR      string
	nodeIP           string
	cniConfDir       string
	cniBinDirs       []string
	disableAgent     bool
	kubeletPort      int
	nodeGrace        time.Duration
	log              logFlags
}

func newServerCommand() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a cluster: control plane, and a node agent on this host",
		Long: `Run a skiff server on this host: the API server on an embedded etcd (or an
external etcd cluster) with its certificates and an admin kubeconfig in the
data dir, the scheduler, the controllers, and (unless --disable-agent) a
node agent that runs this host's pods with skiff's own container runtime.
Stop it with SIGINT or SIGTERM; a restart keeps all data.`,
		Example: `  skiff server
  skiff server --data-dir /tmp/skiff --https-port 7443
  skiff server --etcd-servers https://10.0.0.5:2379 --etcd-cafile ca.crt --etcd-certfile c.crt --etcd-keyfile c.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := f.log.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg := cluster.Config{Server: server.Config{
				DataDir:       f.dataDir,
				BindAddress:   f.bindAddress,
				HTTPSPort:     f.httpsPort,
				ExtraSANs:     f.tlsSANs,
				EtcdServers:   f.etcdServers,
				ServiceCIDR:   f.serviceCIDR,
				NodePortRange: f.nodePortRange,
				TokenAuthFile: f.tokenAuthFile,
				ClusterCIDR:   f.clusterCIDR,
				Logger:        logger,
			},
				DisableAgent:           f.disableAgent,
				KubeletPort:            f.kubeletPort,
				AgentCNIConfDir:        f.cniConfDir,
				AgentCNIBinDirs:        f.cniBinDirs,
				NodeMonitorGracePeriod: f.nodeGrace,
			}
			if f.nodeGrace <= 0 {
				return fmt.Errorf("--node-monitor-grace-period must be positive, not %s", f.nodeGrace)
			}
			if f.nodeIP != "" {
				if cfg.AgentNodeIP = net.ParseIP(f.nodeIP); cfg.AgentNodeIP == nil {
					return fmt.Errorf("--node-ip %q is not an IP address", f.nodeIP)
				}
			}
			if f.advertiseAddress != "" {
				cfg.Server.AdvertiseAddress = net.ParseIP(f.advertiseAddress)
				if cfg.Server.AdvertiseAddress == nil {
					return fmt.Errorf("--advertise-address %q is not an IP address", f.advertiseAddress)
				}
			}
			if len(f.etcdServers) > 0 && (f.etcdCAFile != "" || f.etcdCertFile != "") {
				tc, err := etcdTLS(f.etcdCAFile, f.etcdCertFile, f.etcdKeyFile)
				if err != nil {
					return err
				}
				cfg.Server.EtcdTLS = tc
			}
			s, err := cluster.New(cfg)
			if err != nil {
				return err
			}
			go func() {
				<-s.Ready()
				fmt.Fprintf(cmd.OutOrStdout(), "skiff server is ready at %s\nkubeconfig: %s (try: skiff kubectl get namespaces)\n", s.URL(), s.KubeconfigPath())
			}()
			return s.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dataDir, "data-dir", DefaultDataDir, "Directory for etcd data, certificates and the admin kubeconfig")
	fs.StringVar(&f.bindAddress, "bind-address", "", "Address the API server listens on (empty: all addresses)")
	fs.IntVar(&f.httpsPort, "https-port", 6443, "Port of the API server (HTTPS)")
	fs.StringVar(&f.advertiseAddress, "advertise-address", "", "IP address other machines reach this server at (default: the host's first non-loopback IPv4 address)")
	fs.StringSliceVar(&f.tlsSANs, "tls-san", nil, "Additional DNS names or IPs for the serving certificate (repeatable)")
	fs.StringSliceVar(&f.etcdServers, "etcd-servers", nil, "Use this external etcd cluster (comma-separated client URLs) instead of the embedded etcd")
	fs.StringVar(&f.etcdCAFile, "etcd-cafile", "", "CA bundle to verify the external etcd's certificates")
	fs.StringVar(&f.etcdCertFile, "etcd-certfile", "", "Client certificate for the external etcd")
	fs.StringVar(&f.etcdKeyFile, "etcd-keyfile", "", "Client key for the external etcd")
	fs.StringVar(&f.serviceCIDR, "service-cidr", "10.43.0.0/16", "Range Service cluster IPs are allocated from; its first address is the kubernetes Service's")
	fs.StringVar(&f.nodePortRange, "service-node-port-range", "30000-32767", "Port range for NodePort Services")
	fs.StringVar(&f.tokenAuthFile, "token-auth-file", "", "Static bearer tokens, one per line: token,user,uid,\"group1,group2\"")
	fs.StringVar(&f.clusterCIDR, "cluster-cidr", "10.42.0.0/16", "Range pod IPs are allocated from (a /24 per node)")
	fs.BoolVar(&f.disableAgent, "disable-agent", false, "Run no node agent on this host (a control plane only)")
	fs.IntVar(&f.kubeletPort, "kubelet-port", 10250, "Port of the local node agent's kubelet API")
	fs.StringVar(&f.nodeIP, "node-ip", "", "IP address the local node agent reports for this node (default: the advertise address)")
	cniFlags(cmd, &f.cniConfDir, &f.cniBinDirs)
	fs.DurationVar(&f.nodeGrace, "node-monitor-grace-period", 40*time.Second, "How long a node may go without renewing its Lease before it is marked NotReady (Unknown) and its pods not ready")
	f.log.register(cmd)
	return cmd
}

// etcdTLS builds the client TLS config for an external etcd.
func etcdTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cafile %s: no certificates found", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-certfile/--etcd-keyfile: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
