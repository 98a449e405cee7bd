package pki

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestWriteKubeconfig_MatchesGolden(t *testing.T) {
	k := Kubeconfig{
		Server:        "https://127.0.0.1:6443",
		CAPEM:         readFile(t, filepath.Join("testdata", "ca.crt")),
		ClientCertPEM: readFile(t, filepath.Join("testdata", "client.crt")),
		ClientKeyPEM:  readFile(t, filepath.Join("testdata", "client.key")),
	}
	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := WriteKubeconfig(path, k); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, path)
	golden := filepath.Join("testdata", "admin.kubeconfig.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(string(readFile(t, golden)), string(got)); diff != "" {
		t.Errorf("kubeconfig differs from %s (-want +got); rerun with -update if intended:\n%s", golden, diff)
	}
}

// TestWriteKubeconfig_UsableByClientGo loads the written file the way
// kubectl does and talks to a server that insists on a client certificate
// from the cluster CA.
func TestWriteKubeconfig_UsableByClientGo(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.Clock = nil // the TLS stack checks validity against the real time
	b := mustEnsure(t, cfg)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(version.Info{GitVersion: "v1.37.2", Platform: r.TLS.PeerCertificates[0].Subject.CommonName})
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{b.Serving.TLSCertificate()},
		ClientCAs:    b.CA.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	path := filepath.Join(t.TempDir(), "admin.kubeconfig")
	if err := WriteKubeconfig(path, b.AdminKubeconfig(srv.URL)); err != nil {
		t.Fatal(err)
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("GET /version with the kubeconfig: %v", err)
	}
	if diff := cmp.Diff(version.Info{GitVersion: "v1.37.2", Platform: AdminUser}, *info); diff != "" {
		t.Errorf("server saw (-want +got):\n%s", diff)
	}

	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw.CurrentContext != "skiff" || raw.Contexts["skiff"].Cluster != "skiff" || raw.Contexts["skiff"].AuthInfo != "admin" {
		t.Errorf("names: current-context %q, context %+v", raw.CurrentContext, raw.Contexts["skiff"])
	}

	t.Run("token-only kubeconfig carries the token", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bootstrap.kubeconfig")
		if err := WriteKubeconfig(path, Kubeconfig{Server: srv.URL, CAPEM: b.CA.CertPEM(), User: "bootstrap", Token: "abcdef.0123456789abcdef"}); err != nil {
			t.Fatal(err)
		}
		restCfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		if restCfg.BearerToken != "abcdef.0123456789abcdef" || len(restCfg.CertData) != 0 {
			t.Errorf("rest config: token %q, cert data %d bytes", restCfg.BearerToken, len(restCfg.CertData))
		}
		// The server demands a certificate, so the request fails.
		client, err := rest.HTTPClientFor(restCfg)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.Get(srv.URL + "/version"); err == nil {
			resp.Body.Close()
			t.Error("request without a client certificate succeeded against a server that requires one")
		}
	})
}

func TestWriteKubeconfig_Mode0600AndRewrites(t *testing.T) {
	cfg, _ := testConfig(t)
	b := mustEnsure(t, cfg)
	path := filepath.Join(t.TempDir(), "nested", "admin.kubeconfig")
	k := b.AdminKubeconfig("https://127.0.0.1:6443")

	if err := WriteKubeconfig(path, k); err != nil {
		t.Fatal(err)
	}
	checkMode := func(want os.FileMode) {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("mode = %v, want %v", got, want)
		}
	}
	checkMode(0o600)

	t.Run("same content keeps the file and fixes its mode", func(t *testing.T) {
		old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteKubeconfig(path, k); err != nil {
			t.Fatal(err)
		}
		checkMode(0o600)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime().Equal(old) {
			t.Errorf("unchanged kubeconfig was rewritten (mtime %v)", info.ModTime())
		}
	})
	t.Run("new content replaces the file", func(t *testing.T) {
		k2 := k
		k2.Server = "https://10.0.0.1:6443"
		if err := WriteKubeconfig(path, k2); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readFile(t, path)), "https://10.0.0.1:6443") {
			t.Error("server not updated")
		}
		checkMode(0o600)
		noDebris(t, filepath.Dir(path))
	})
}

func TestWriteKubeconfig_RejectsBadInput(t *testing.T) {
	cfg, _ := testConfig(t)
	b := mustEnsure(t, cfg)
	other, err := b.CA.IssueClient("other", nil)
	if err != nil {
		t.Fatal(err)
	}
	good := b.AdminKubeconfig("https://127.0.0.1:6443")

	tests := []struct {
		name     string
		change   func(k *Kubeconfig)
		wantText string
	}{
		{name: "plain HTTP server", change: func(k *Kubeconfig) { k.Server = "http://127.0.0.1:6443" }, wantText: "want https"},
		{name: "empty server", change: func(k *Kubeconfig) { k.Server = "" }, wantText: "want https"},
		{name: "unparseable server", change: func(k *Kubeconfig) { k.Server = "https://[::1" }, wantText: "server URL"},
		{name: "no CA", change: func(k *Kubeconfig) { k.CAPEM = nil }, wantText: "no CA certificate"},
		{name: "CA is not PEM", change: func(k *Kubeconfig) { k.CAPEM = []byte("ca") }, wantText: "no PEM certificate"},
		{name: "key of another certificate", change: func(k *Kubeconfig) { k.ClientKeyPEM = other.KeyPEM }, wantText: "client certificate and key"},
		{name: "certificate without key", change: func(k *Kubeconfig) { k.ClientKeyPEM = nil }, wantText: "client certificate and key"},
		{name: "no credentials", change: func(k *Kubeconfig) { k.ClientCertPEM, k.ClientKeyPEM = nil, nil }, wantText: "no client certificate and no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := good
			tt.change(&k)
			dir := t.TempDir()
			path := filepath.Join(dir, "admin.kubeconfig")
			err := WriteKubeconfig(path, k)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantText)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("rejected kubeconfig left files: %v", entries)
			}
		})
	}
}

func TestServerTLSConfig_Handshakes(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.Clock = nil // the TLS stack checks validity against the real time
	b := mustEnsure(t, cfg)
	other, _ := testConfig(t)
	other.Clock = nil
	foreign := mustEnsure(t, other).Admin

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := "-"
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s %s", r.Proto, cn)
	}))
	srv.TLS = b.ServerTLSConfig()
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		clientCert *KeyPair
		serverName string
		want       string
	}{
		{name: "admin certificate reaches the handler over HTTP/2", clientCert: b.Admin, want: "HTTP/2.0 skiff-admin"},
		{name: "no certificate still connects", want: "HTTP/2.0 -"},
		{name: "certificate of another CA is passed on for the authenticator to reject", clientCert: foreign, want: "HTTP/2.0 skiff-admin"},
		{name: "in-cluster name verifies", serverName: "kubernetes.default.svc.cluster.local", want: "HTTP/2.0 -"},
		{name: "service cluster IP verifies", serverName: "10.43.0.1", want: "HTTP/2.0 -"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsCfg := &tls.Config{RootCAs: b.CA.Pool(), ServerName: tt.serverName}
			if tt.clientCert != nil {
				// Sent whatever CAs the server names, as a misconfigured
				// client might.
				tc := tt.clientCert.TLSCertificate()
				tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc, nil }
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
			t.Cleanup(client.CloseIdleConnections)
			resp, err := client.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if got := string(body); got != tt.want {
				t.Errorf("server saw %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: b.CA.Pool(), MaxVersion: tls.VersionTLS11}}}
		t.Cleanup(client.CloseIdleConnections)
		if resp, err := client.Get(srv.URL); err == nil {
			resp.Body.Close()
			t.Error("TLS 1.1 handshake succeeded")
		}
	})
}
