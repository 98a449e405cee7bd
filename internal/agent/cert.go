package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

// selfSignedValidity is how long a self-signed kubelet serving
// certificate is valid; a new one is made at every start.
const selfSignedValidity = 365 * 24 * time.Hour

// selfSigned makes a serving certificate for the kubelet API signed by
// its own key, for the node name, localhost and the node's IP, as the
// kubelet does when it has no certificate from the cluster.
func selfSigned(nodeName string, nodeIP net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: nodeName + "@" + fmt.Sprint(now.Unix())},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{nodeName, "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if nodeIP != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, nodeIP)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("kubelet serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Identities of the node's client certificate, as the Node authorizer
// expects them.
const (
	NodeUserPrefix = "system:node:"
	NodesGroup     = "system:nodes"
)

// LocalOptions describe the agent that `skiff server` runs on its own
// host.
type LocalOptions struct {
	// DataDir is the server's data dir; the agent's root is
	// DataDir/agent.
	DataDir string
	// Bundle is the server's PKI. The agent's client certificate
	// (system:node:<name> in system:nodes) and its kubelet serving
	// certificate are issued from Bundle.CA; the kubelet API trusts
	// Bundle.CA for its callers.
	Bundle *pki.Bundle
	// APIServerURL is where the agent reaches the API server, such as
	// https://127.0.0.1:6443.
	APIServerURL string
	// NodeName, NodeIP, PodCIDR, ClusterCIDR: see Config (defaults
	// apply; PodCIDR defaults to the first /24 of the cluster CIDR, for
	// a single-node cluster without node IPAM).
	NodeName    string
	NodeIP      net.IP
	PodCIDR     string
	ClusterCIDR string
	// Logger gets the agent's logs.
	Logger *slog.Logger
}

// Local returns the Config of the agent of `skiff server`: credentials
// issued from the server's CA (nothing is written to disk; they are made
// again at every start), the API server at APIServerURL, the root dir
// under the server's data dir. The caller may change the Config before
// New (for example PodLogsDir or KubeletPort).
func Local(opts LocalOptions) (Config, error) {
	if opts.Bundle == nil || opts.Bundle.CA == nil {
		return Config{}, errors.New("local agent: no PKI bundle")
	}
	if opts.DataDir == "" || opts.APIServerURL == "" {
		return Config{}, errors.New("local agent: DataDir and APIServerURL are required")
	}
	cfg := Config{
		NodeName: opts.NodeName, NodeIP: opts.NodeIP,
		RootDir: filepath.Join(opts.DataDir, "agent"), PodCIDR: opts.PodCIDR, ClusterCIDR: opts.ClusterCIDR,
		ClientCA: opts.Bundle.CA.Pool(), Logger: opts.Logger,
		// validate needs a client to check; the real one follows.
		Client: &rest.Config{},
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	if cfg.PodCIDR == "" {
		cfg.PodCIDR = firstSubnet(cfg.ClusterCIDR)
	}
	client, err := opts.Bundle.CA.IssueClient(NodeUserPrefix+cfg.NodeName, []string{NodesGroup})
	if err != nil {
		return Config{}, fmt.Errorf("local agent: client certificate: %w", err)
	}
	cfg.Client = &rest.Config{
		Host: opts.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: opts.Bundle.CA.CertPEM(), CertData: client.CertPEM, KeyData: client.KeyPEM,
		},
		// No client-side limit: the agent talks to the API server in
		// its own process over loopback, as the server's own loopback
		// client does.
		QPS: -1,
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	if cfg.NodeIP != nil {
		ips = append(ips, cfg.NodeIP)
	}
	serving, err := opts.Bundle.CA.IssueServing([]string{cfg.NodeName, "localhost"}, ips)
	if err != nil {
		return Config{}, fmt.Errorf("local agent: kubelet serving certificate: %w", err)
	}
	c := serving.TLSCertificate()
	cfg.ServingCertificate = &c
	return cfg, nil
}

// firstSubnet is the first /24 of an IPv4 cluster CIDR ("10.42.0.0/24"),
// or "" when the CIDR is smaller than a /24.
func firstSubnet(cluster string) string {
	_, n, err := net.ParseCIDR(cluster)
	if err != nil || n.IP.To4() == nil {
		return ""
	}
	if ones, _ := n.Mask.Size(); ones > 24 {
		return ""
	}
	return (&net.IPNet{IP: n.IP.To4(), Mask: net.CIDRMask(24, 32)}).String()
}
