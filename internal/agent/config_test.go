package agent

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/auth/pki"
	"github.com/skiff-sh/skiff/internal/network/podnet"
)

func TestConfig_Validate(t *testing.T) {
	bundle, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	client := &rest.Config{Host: "https://127.0.0.1:6443", TLSClientConfig: rest.TLSClientConfig{CAData: bundle.CA.CertPEM()}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Client: client, NodeName: "n1"}, ""},
		{"no client", Config{NodeName: "n1"}, "Client is required"},
		{"bad node name", Config{Client: client, NodeName: "Not_A_Name"}, "node name"},
		{"pod CIDR outside the cluster CIDR", Config{Client: client, NodeName: "n1", PodCIDR: "192.168.0.0/24"}, "not inside the cluster CIDR"},
		{"bad pod CIDR", Config{Client: client, NodeName: "n1", PodCIDR: "10.42.0.0/99"}, "pod CIDR"},
		{"tcp runtime endpoint", Config{Client: client, NodeName: "n1", RuntimeEndpoint: "tcp://1.2.3.4:5"}, "unix://"},
		{"port out of range", Config{Client: client, NodeName: "n1", KubeletPort: 70000}, "out of range"},
		{"client without a CA", Config{Client: &rest.Config{Host: "https://x"}, NodeName: "n1"}, "no cluster CA"},
		{"client with a bad CA", Config{Client: &rest.Config{Host: "https://x", TLSClientConfig: rest.TLSClientConfig{CAData: []byte("nope")}}, NodeName: "n1"}, "no PEM"},
		{"CNI plugins", Config{Client: client, NodeName: "n1", CNIConfDir: "/etc/cni/net.d", CNIBinDirs: []string{"/opt/cni/bin"}}, ""},
		{"CNI conf dir alone", Config{Client: client, NodeName: "n1", CNIConfDir: "/etc/cni/net.d"}, "both a configuration dir and a plugin dir"},
		{"CNI bin dir alone", Config{Client: client, NodeName: "n1", CNIBinDirs: []string{"/opt/cni/bin"}}, "both a configuration dir and a plugin dir"},
		{"CNI with an external runtime", Config{Client: client, NodeName: "n1", RuntimeEndpoint: "unix:///run/containerd/containerd.sock", CNIConfDir: "/etc/cni/net.d", CNIBinDirs: []string{"/opt/cni/bin"}}, "runs its own CNI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			err := cfg.validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.RootDir != DefaultRootDir || cfg.PodLogsDir != DefaultPodLogsDir || cfg.KubeletPort != DefaultKubeletPort || cfg.ClientCA == nil || cfg.NodeIP == nil {
					t.Errorf("defaults not applied: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLocal_IssuesNodeCredentials(t *testing.T) {
	bundle, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, err := Local(LocalOptions{DataDir: dir, Bundle: bundle, APIServerURL: "https://127.0.0.1:6443", NodeName: "box", NodeIP: net.ParseIP("192.0.2.7")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootDir != dir+"/agent" || cfg.PodCIDR != "10.42.0.0/24" || cfg.Client.Host != "https://127.0.0.1:6443" {
		t.Errorf("config: root %q pod CIDR %q host %q", cfg.RootDir, cfg.PodCIDR, cfg.Client.Host)
	}
	client, err := pkiCert(cfg.Client.TLSClientConfig.CertData)
	if err != nil {
		t.Fatal(err)
	}
	if client.Subject.CommonName != "system:node:box" || !cmp.Equal(client.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("client certificate subject %v", client.Subject)
	}
	serving := cfg.ServingCertificate.Leaf
	if _, err := serving.Verify(x509.VerifyOptions{Roots: bundle.CA.Pool(), DNSName: "box"}); err != nil {
		t.Errorf("serving certificate: %v", err)
	}
	if err := serving.VerifyHostname("192.0.2.7"); err != nil {
		t.Errorf("serving certificate lacks the node IP: %v", err)
	}
	// The in-process API server is not rate-limited client-side; a
	// joining agent's client without a limit gets the kubelet's.
	if got := limited(cfg.Client); got.QPS >= 0 {
		t.Errorf("local agent client QPS %v, want no limit", got.QPS)
	}
	if got := limited(&rest.Config{Host: "https://x"}); got.QPS != DefaultClientQPS || got.Burst != DefaultClientBurst {
		t.Errorf("joining agent client QPS %v burst %d, want %d and %d", got.QPS, got.Burst, DefaultClientQPS, DefaultClientBurst)
	}
	if _, err := Local(LocalOptions{DataDir: dir, APIServerURL: "https://x"}); err == nil {
		t.Error("Local without a bundle succeeded")
	}
}

func pkiCert(pemData []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func TestSelfSigned(t *testing.T) {
	c, err := selfSigned("node-1", net.ParseIP("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"node-1", "localhost", "127.0.0.1", "192.0.2.1"} {
		if err := c.Leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf)
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node-1"}); err != nil {
		t.Errorf("does not verify against itself: %v", err)
	}
}

func TestPeersOf(t *testing.T) {
	node := func(name, cidr string, addrs ...corev1.NodeAddress) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}, Status: corev1.NodeStatus{Addresses: addrs}}
	}
	internal := func(ip string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
	}
	nodes := []*corev1.Node{
		node("self", "10.42.0.0/24", internal("192.0.2.1")),
		node("b", "10.42.2.0/24", corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b"}, internal("fd00::2"), internal("192.0.2.2")),
		node("a", "10.42.1.0/24", internal("192.0.2.3")),
		node("no-cidr", "", internal("192.0.2.4")),
		node("no-ip", "10.42.3.0/24"),
		node("bad-cidr", "nonsense", internal("192.0.2.5")),
	}
	want := []podnet.Peer{
		{Node: "a", CIDR: netip.MustParsePrefix("10.42.1.0/24"), NodeIP: netip.MustParseAddr("192.0.2.3")},
		{Node: "b", CIDR: netip.MustParsePrefix("10.42.2.0/24"), NodeIP: netip.MustParseAddr("192.0.2.2")},
	}
	got := peersOf(nodes, "self")
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	if !equalPeers(got, want) || equalPeers(got, want[:1]) {
		t.Error("equalPeers")
	}
}

func TestFirstSubnet(t *testing.T) {
	for in, want := range map[string]string{"10.42.0.0/16": "10.42.0.0/24", "10.0.0.0/8": "10.0.0.0/24", "10.42.0.0/26": "", "fd00::/48": "", "bad": ""} {
		if got := firstSubnet(in); got != want {
			t.Errorf("firstSubnet(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLockRoot_RefusesASecondAgent(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockRoot(dir); err == nil || !strings.Contains(err.Error(), "in use by another agent") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	again, err := lockRoot(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
}
