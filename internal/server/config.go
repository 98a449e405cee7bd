package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Config configures a control plane. The zero value, after validate, is a
// single server on embedded etcd in /var/lib/skiff.
type Config struct {
	// DataDir holds etcd's data, the PKI and the admin kubeconfig.
	DataDir string
	// BindAddress is where the API server listens; "" means all
	// addresses.
	BindAddress string
	// HTTPSPort is the API server's port; 0 means 6443.
	HTTPSPort int
	// AdvertiseAddress is the address other machines reach this server
	// at (the kubernetes Service's endpoint). Nil picks the host's
	// first non-loopback address, else 127.0.0.1.
	AdvertiseAddress net.IP
	// ExtraSANs are more names for the serving certificate.
	ExtraSANs []string

	// EtcdServers, when set, use an external etcd cluster instead of the
	// embedded one; EtcdTLS configures its client TLS.
	EtcdServers []string
	EtcdTLS     *tls.Config

	// ServiceCIDR is where Service cluster IPs come from; its first
	// address is the kubernetes Service's. "" means 10.43.0.0/16.
	ServiceCIDR string
	// NodePortRange is "min-max"; "" means 30000-32767.
	NodePortRange string

	// ClusterCIDR is where pod IPs come from (a /24 per node); "" means
	// 10.42.0.0/16.
	ClusterCIDR string

	// Extend, when set, adds parts that run once the API server is ready
	// (the scheduler, controllers, a node agent: see package cluster).
	// They are stopped, and waited for, before the API server stops; one
	// that fails stops the server.
	Extend func(env Env) ([]Part, error)

	// TokenAuthFile is an optional static token file (upstream's
	// --token-auth-file format).
	TokenAuthFile string

	// CompactionInterval is how often etcd's history is compacted; 0
	// means 5 minutes (upstream's default), negative disables it.
	CompactionInterval time.Duration

	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		c.DataDir = "/var/lib/skiff"
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	c.DataDir = abs
	if c.HTTPSPort == 0 {
		c.HTTPSPort = 6443
	}
	if c.HTTPSPort < 0 || c.HTTPSPort > 65535 {
		return fmt.Errorf("https port %d out of range", c.HTTPSPort)
	}
	if c.ServiceCIDR == "" {
		c.ServiceCIDR = "10.43.0.0/16"
	}
	if _, _, err := net.ParseCIDR(c.ServiceCIDR); err != nil {
		return fmt.Errorf("service CIDR %q: %w", c.ServiceCIDR, err)
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = "10.42.0.0/16"
	}
	if _, _, err := net.ParseCIDR(c.ClusterCIDR); err != nil {
		return fmt.Errorf("cluster CIDR %q: %w", c.ClusterCIDR, err)
	}
	if c.NodePortRange == "" {
		c.NodePortRange = "30000-32767"
	}
	if c.CompactionInterval == 0 {
		c.CompactionInterval = 5 * time.Minute
	}
	if c.AdvertiseAddress == nil {
		c.AdvertiseAddress = firstHostIP()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TokenAuthFile != "" {
		if _, err := os.Stat(c.TokenAuthFile); err != nil {
			return fmt.Errorf("token auth file: %w", err)
		}
	}
	if len(c.EtcdServers) == 0 && c.EtcdTLS != nil {
		return errors.New("etcd TLS given without etcd servers")
	}
	return nil
}

// firstServiceIP is the first usable address of the service CIDR: the
// kubernetes Service's cluster IP.
func firstServiceIP(cidr string) net.IP {
	_, n, _ := net.ParseCIDR(cidr)
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	ip[len(ip)-1]++
	return ip
}

// hostIPs returns the host's non-loopback unicast addresses.
func hostIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ipn.IP)
	}
	return out
}

func firstHostIP() net.IP {
	for _, ip := range hostIPs() {
		if ip.To4() != nil {
			return ip
		}
	}
	return net.IPv4(127, 0, 0, 1)
}
