package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixedClock is a Clock that says what it is told.
type fixedClock struct{ now time.Time }

func (c *fixedClock) Now() time.Time { return c.now }

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testConfig returns a Config on a fresh directory, with a clock at start.
func testConfig(t *testing.T) (Config, *fixedClock) {
	t.Helper()
	clock := &fixedClock{now: start}
	return Config{
		Dir:      filepath.Join(t.TempDir(), "tls"),
		DNSNames: []string{"node-a"},
		IPs:      []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("10.43.0.1")},
		Clock:    clock,
	}, clock
}

func mustEnsure(t *testing.T, cfg Config) *Bundle {
	t.Helper()
	b, err := Ensure(cfg)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return b
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns the contents of every file in dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		files[e.Name()] = string(readFile(t, filepath.Join(dir, e.Name())))
	}
	return files
}

// noDebris fails t if dir holds temporary files.
func noDebris(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestEnsure_FirstRunCreatesEverything(t *testing.T) {
	cfg, _ := testConfig(t)
	b := mustEnsure(t, cfg)

	wantModes := map[string]fs.FileMode{
		CACertFile: 0o644, CAKeyFile: 0o600,
		ServingCertFile: 0o644, ServingKeyFile: 0o600,
		AdminCertFile: 0o644, AdminKeyFile: 0o600,
		ServiceAccountKeyFile: 0o600, ServiceAccountPublicKeyFile: 0o644,
	}
	gotModes := map[string]fs.FileMode{}
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		gotModes[e.Name()] = info.Mode().Perm()
	}
	if diff := cmp.Diff(wantModes, gotModes); diff != "" {
		t.Errorf("files and modes (-want +got):\n%s", diff)
	}
	if info, err := os.Stat(cfg.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("directory mode: %v, %v; want 0700", info.Mode().Perm(), err)
	}

	ca := b.CA.Certificate()
	t.Run("CA is a 10-year ECDSA P-256 CA", func(t *testing.T) {
		if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("CA flags: IsCA=%v KeyUsage=%v", ca.IsCA, ca.KeyUsage)
		}
		if got := ca.NotAfter.Sub(start); got != CAValidity {
			t.Errorf("CA validity from now = %v, want %v", got, CAValidity)
		}
		checkP256(t, ca)
		if !slices.Equal(readFile(t, filepath.Join(cfg.Dir, CACertFile)), b.CA.CertPEM()) {
			t.Error("ca.crt differs from CA.CertPEM")
		}
	})
	t.Run("serving certificate covers built-in and requested names", func(t *testing.T) {
		cert := b.Serving.Cert
		wantDNS := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "node-a"}
		if diff := cmp.Diff(wantDNS, cert.DNSNames); diff != "" {
			t.Errorf("DNS names (-want +got):\n%s", diff)
		}
		var gotIPs []string
		for _, ip := range cert.IPAddresses {
			gotIPs = append(gotIPs, ip.String())
		}
		if diff := cmp.Diff([]string{"127.0.0.1", "192.0.2.10", "10.43.0.1"}, gotIPs); diff != "" {
			t.Errorf("IPs (-want +got):\n%s", diff)
		}
		for _, name := range append(wantDNS, "127.0.0.1", "10.43.0.1") {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: b.CA.Pool(), CurrentTime: start, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("verify for %s: %v", name, err)
			}
		}
		checkLeaf(t, cert)
	})
	t.Run("admin certificate is CN=skiff-admin O=system:masters", func(t *testing.T) {
		cert := b.Admin.Cert
		if cert.Subject.CommonName != "skiff-admin" || !slices.Equal(cert.Subject.Organization, []string{"system:masters"}) {
			t.Errorf("subject = %s", cert.Subject)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: b.CA.Pool(), CurrentTime: start, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("verify as client certificate: %v", err)
		}
		checkLeaf(t, cert)
	})
	t.Run("service-account key is ECDSA P-256 and sa.pub matches", func(t *testing.T) {
		key, ok := b.ServiceAccountKey.(*ecdsa.PrivateKey)
		if !ok || key.Curve != elliptic.P256() {
			t.Fatalf("service-account key is %T", b.ServiceAccountKey)
		}
		pub, err := parsePublicKey(readFile(t, filepath.Join(cfg.Dir, ServiceAccountPublicKeyFile)))
		if err != nil {
			t.Fatal(err)
		}
		if !key.PublicKey.Equal(pub) {
			t.Error("sa.pub is not the public half of sa.key")
		}
	})
	t.Run("serial numbers are random and distinct", func(t *testing.T) {
		serials := []*big.Int{ca.SerialNumber, b.Serving.Cert.SerialNumber, b.Admin.Cert.SerialNumber}
		for i, s := range serials {
			if s.Sign() <= 0 || s.BitLen() > 128 || s.BitLen() < 64 {
				t.Errorf("serial %d = %v (%d bits)", i, s, s.BitLen())
			}
			for _, o := range serials[:i] {
				if s.Cmp(o) == 0 {
					t.Errorf("serial %v repeats", s)
				}
			}
		}
	})
	noDebris(t, cfg.Dir)
}

func checkP256(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("%s: key is %T, want ECDSA P-256", cert.Subject, cert.PublicKey)
	}
}

func checkLeaf(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	checkP256(t, cert)
	if cert.IsCA {
		t.Errorf("%s: leaf is a CA", cert.Subject)
	}
	if got := cert.NotAfter.Sub(start); got != LeafValidity {
		t.Errorf("%s: validity from now = %v, want %v", cert.Subject, got, LeafValidity)
	}
	if !cert.NotBefore.Before(start) {
		t.Errorf("%s: NotBefore %v is not backdated", cert.Subject, cert.NotBefore)
	}
}

func TestEnsure_SecondRunReusesEverything(t *testing.T) {
	cfg, clock := testConfig(t)
	first := mustEnsure(t, cfg)
	before := snapshot(t, cfg.Dir)

	clock.now = start.Add(200 * 24 * time.Hour) // well before renewal
	second := mustEnsure(t, cfg)

	if diff := cmp.Diff(before, snapshot(t, cfg.Dir)); diff != "" {
		t.Errorf("files changed on the second run (-first +second):\n%s", diff)
	}
	for _, pair := range []struct {
		name string
		a, b []byte
	}{
		{"CA", first.CA.Certificate().Raw, second.CA.Certificate().Raw},
		{"serving", first.Serving.Cert.Raw, second.Serving.Cert.Raw},
		{"admin", first.Admin.Cert.Raw, second.Admin.Cert.Raw},
		{"admin key", first.Admin.KeyPEM, second.Admin.KeyPEM},
	} {
		if !slices.Equal(pair.a, pair.b) {
			t.Errorf("%s differs between runs", pair.name)
		}
	}
	if !first.ServiceAccountKey.Public().(*ecdsa.PublicKey).Equal(second.ServiceAccountKey.Public()) {
		t.Error("service-account key differs between runs")
	}
}

func TestEnsure_ReissuesStaleCertificates(t *testing.T) {
	tests := []struct {
		name string
		// change alters the config (and clock) of the second run.
		change      func(cfg *Config, clock *fixedClock)
		wantServing bool // serving certificate re-issued
		wantAdmin   bool // admin certificate re-issued
	}{
		{
			name:        "new host IP re-issues the serving certificate",
			change:      func(cfg *Config, _ *fixedClock) { cfg.IPs = append(cfg.IPs, net.ParseIP("2001:db8::7")) },
			wantServing: true,
		},
		{
			name:        "new DNS name re-issues the serving certificate",
			change:      func(cfg *Config, _ *fixedClock) { cfg.DNSNames = append(cfg.DNSNames, "api.example.com") },
			wantServing: true,
		},
		{
			name:        "new cluster domain re-issues the serving certificate",
			change:      func(cfg *Config, _ *fixedClock) { cfg.ClusterDomain = "corp.internal" },
			wantServing: true,
		},
		{
			name:   "dropped IP keeps the serving certificate",
			change: func(cfg *Config, _ *fixedClock) { cfg.IPs = cfg.IPs[:1] },
		},
		{
			name:   "name in other case and with a trailing dot keeps the serving certificate",
			change: func(cfg *Config, _ *fixedClock) { cfg.DNSNames = []string{"NODE-A."} },
		},
		{
			name: "IPv4 in 16-byte form keeps the serving certificate",
			change: func(cfg *Config, _ *fixedClock) {
				cfg.IPs = []net.IP{net.ParseIP("192.0.2.10").To16(), net.ParseIP("10.43.0.1")}
			},
		},
		{
			name:   "274 days later keeps both",
			change: func(_ *Config, clock *fixedClock) { clock.now = start.Add(274 * 24 * time.Hour) },
		},
		{
			name:        "expiry within 90 days re-issues both",
			change:      func(_ *Config, clock *fixedClock) { clock.now = start.Add(276 * 24 * time.Hour) },
			wantServing: true,
			wantAdmin:   true,
		},
		{
			name:        "expired certificates are re-issued",
			change:      func(_ *Config, clock *fixedClock) { clock.now = start.Add(2 * 365 * 24 * time.Hour) },
			wantServing: true,
			wantAdmin:   true,
		},
		{
			name:        "clock before NotBefore re-issues both",
			change:      func(_ *Config, clock *fixedClock) { clock.now = start.Add(-time.Hour) },
			wantServing: true,
			wantAdmin:   true,
		},
		{
			name: "shorter renewal window set by the caller is honoured",
			change: func(cfg *Config, clock *fixedClock) {
				cfg.RenewBefore = time.Hour
				clock.now = start.Add(364 * 24 * time.Hour)
			},
			wantServing: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, clock := testConfig(t)
			first := mustEnsure(t, cfg)
			before := snapshot(t, cfg.Dir)

			tt.change(&cfg, clock)
			second := mustEnsure(t, cfg)
			after := snapshot(t, cfg.Dir)

			for _, f := range []string{CACertFile, CAKeyFile, ServiceAccountKeyFile, ServiceAccountPublicKeyFile, ServingKeyFile, AdminKeyFile} {
				if before[f] != after[f] {
					t.Errorf("%s changed", f)
				}
			}
			if got := before[ServingCertFile] != after[ServingCertFile]; got != tt.wantServing {
				t.Errorf("serving certificate re-issued = %v, want %v", got, tt.wantServing)
			}
			if got := before[AdminCertFile] != after[AdminCertFile]; got != tt.wantAdmin {
				t.Errorf("admin certificate re-issued = %v, want %v", got, tt.wantAdmin)
			}
			// Whatever was re-issued is signed by the same CA, uses the
			// same key, and covers what the second run asked for.
			for _, kp := range []*KeyPair{second.Serving, second.Admin} {
				if err := kp.Cert.CheckSignatureFrom(first.CA.Certificate()); err != nil {
					t.Errorf("%s: not signed by the original CA: %v", kp.Cert.Subject, err)
				}
				if !samePublicKey(kp.Key.Public(), kp.Cert.PublicKey) {
					t.Errorf("%s: key does not match", kp.Cert.Subject)
				}
			}
			if got := string(second.Serving.CertPEM); got != after[ServingCertFile] {
				t.Error("Bundle.Serving differs from server.crt")
			}
			for _, ip := range cfg.IPs {
				if !slices.ContainsFunc(second.Serving.Cert.IPAddresses, ip.Equal) {
					t.Errorf("serving certificate lacks %s", ip)
				}
			}
			noDebris(t, cfg.Dir)

			// A third run with the same config changes nothing more.
			mustEnsure(t, cfg)
			if diff := cmp.Diff(after, snapshot(t, cfg.Dir)); diff != "" {
				t.Errorf("third run changed files (-second +third):\n%s", diff)
			}
		})
	}
}

func TestEnsure_ReissuesAdminCertificateWithAnotherSubject(t *testing.T) {
	cfg, _ := testConfig(t)
	b := mustEnsure(t, cfg)
	other, err := b.CA.IssueClient("someone", []string{"devs"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg.Dir, AdminCertFile), other.CertPEM)
	writeFile(t, filepath.Join(cfg.Dir, AdminKeyFile), other.KeyPEM)

	b = mustEnsure(t, cfg)
	if got := b.Admin.Cert.Subject.String(); got != "CN=skiff-admin,O=system:masters" {
		t.Errorf("admin subject = %s", got)
	}
	if !samePublicKey(other.Key.Public(), b.Admin.Cert.PublicKey) {
		t.Error("re-issued admin certificate does not keep the key on disk")
	}
}

func TestEnsure_CompletesMissingHalves(t *testing.T) {
	tests := []struct {
		name       string
		remove     string
		keepsKeyOf string // the key file whose content must survive, if any
	}{
		{name: "missing serving certificate is issued for the existing key", remove: ServingCertFile, keepsKeyOf: ServingKeyFile},
		{name: "missing admin certificate is issued for the existing key", remove: AdminCertFile, keepsKeyOf: AdminKeyFile},
		{name: "missing serving key gives a new pair", remove: ServingKeyFile},
		{name: "missing admin key gives a new pair", remove: AdminKeyFile},
		{name: "missing sa.pub is derived from sa.key", remove: ServiceAccountPublicKeyFile, keepsKeyOf: ServiceAccountKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			mustEnsure(t, cfg)
			before := snapshot(t, cfg.Dir)
			if err := os.Remove(filepath.Join(cfg.Dir, tt.remove)); err != nil {
				t.Fatal(err)
			}
			b := mustEnsure(t, cfg)
			after := snapshot(t, cfg.Dir)
			if _, ok := after[tt.remove]; !ok {
				t.Fatalf("%s was not recreated", tt.remove)
			}
			if tt.keepsKeyOf != "" && before[tt.keepsKeyOf] != after[tt.keepsKeyOf] {
				t.Errorf("%s changed", tt.keepsKeyOf)
			}
			if tt.remove == ServiceAccountPublicKeyFile && before[tt.remove] != after[tt.remove] {
				t.Error("derived sa.pub differs from the original")
			}
			for _, f := range []string{CACertFile, CAKeyFile} {
				if before[f] != after[f] {
					t.Errorf("%s changed", f)
				}
			}
			for _, kp := range []*KeyPair{b.Serving, b.Admin} {
				if !samePublicKey(kp.Key.Public(), kp.Cert.PublicKey) {
					t.Errorf("%s: key does not match", kp.Cert.Subject)
				}
			}
		})
	}
}

func TestEnsure_RejectsBadFiles(t *testing.T) {
	// other is a second, unrelated cluster's directory.
	otherCfg, _ := testConfig(t)
	mustEnsure(t, otherCfg)
	otherFile := func(name string) []byte { return readFile(t, filepath.Join(otherCfg.Dir, name)) }

	tests := []struct {
		name     string
		mutate   func(t *testing.T, dir string)
		want     error
		wantText string // the file the error must name
	}{
		{
			name: "garbage ca.crt is corrupt",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, CACertFile), []byte("not a certificate\n"))
			},
			want:     ErrCorrupt,
			wantText: CACertFile,
		},
		{
			name: "truncated ca.key is corrupt",
			mutate: func(t *testing.T, dir string) {
				data := readFile(t, filepath.Join(dir, CAKeyFile))
				writeFile(t, filepath.Join(dir, CAKeyFile), data[:len(data)/2])
			},
			want:     ErrCorrupt,
			wantText: CAKeyFile,
		},
		{
			name: "PEM with a damaged body is corrupt",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, CACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
			},
			want:     ErrCorrupt,
			wantText: CACertFile,
		},
		{
			name: "leaf certificate as ca.crt is not a CA",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, CACertFile), readFile(t, filepath.Join(dir, ServingCertFile)))
			},
			want:     ErrCorrupt,
			wantText: CACertFile,
		},
		{
			name:     "ca.key of another cluster is a mismatch",
			mutate:   func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, CAKeyFile), otherFile(CAKeyFile)) },
			want:     ErrMismatch,
			wantText: CAKeyFile,
		},
		{
			name:     "missing ca.crt is never replaced",
			mutate:   func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, CACertFile)) },
			want:     ErrMismatch,
			wantText: CACertFile,
		},
		{
			name:     "missing ca.key is never replaced",
			mutate:   func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, CAKeyFile)) },
			want:     ErrMismatch,
			wantText: CAKeyFile,
		},
		{
			name: "oversized ca.crt is corrupt",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, CACertFile), make([]byte, maxFileSize+1))
			},
			want:     ErrCorrupt,
			wantText: CACertFile,
		},
		{
			name: "garbage server.crt is corrupt",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, ServingCertFile), []byte("-----BEGIN CERTIFICATE-----\n"))
			},
			want:     ErrCorrupt,
			wantText: ServingCertFile,
		},
		{
			name:     "garbage admin.key is corrupt",
			mutate:   func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, AdminKeyFile), []byte("key")) },
			want:     ErrCorrupt,
			wantText: AdminKeyFile,
		},
		{
			name: "server.key of another cluster is a mismatch",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, ServingKeyFile), otherFile(ServingKeyFile))
			},
			want:     ErrMismatch,
			wantText: ServingKeyFile,
		},
		{
			name: "admin pair of another cluster is not signed by this CA",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, AdminCertFile), otherFile(AdminCertFile))
				writeFile(t, filepath.Join(dir, AdminKeyFile), otherFile(AdminKeyFile))
			},
			want:     ErrMismatch,
			wantText: AdminCertFile,
		},
		{
			name: "sa.pub of another cluster is a mismatch",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, ServiceAccountPublicKeyFile), otherFile(ServiceAccountPublicKeyFile))
			},
			want:     ErrMismatch,
			wantText: ServiceAccountPublicKeyFile,
		},
		{
			name:     "missing sa.key is never replaced",
			mutate:   func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ServiceAccountKeyFile)) },
			want:     ErrMismatch,
			wantText: ServiceAccountKeyFile,
		},
		{
			name: "garbage sa.pub is corrupt",
			mutate: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, ServiceAccountPublicKeyFile), []byte("pub"))
			},
			want:     ErrCorrupt,
			wantText: ServiceAccountPublicKeyFile,
		},
		{
			name: "short RSA sa.key cannot sign tokens",
			mutate: func(t *testing.T, dir string) {
				key, err := rsa.GenerateKey(rand.Reader, 1024)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, ServiceAccountKeyFile), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
			},
			want:     ErrCorrupt,
			wantText: ServiceAccountKeyFile,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			mustEnsure(t, cfg)
			tt.mutate(t, cfg.Dir)
			before := snapshot(t, cfg.Dir)

			_, err := Ensure(cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Ensure error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), filepath.Join(cfg.Dir, tt.wantText)) {
				t.Errorf("error %q does not name %s", err, tt.wantText)
			}
			if diff := cmp.Diff(before, snapshot(t, cfg.Dir)); diff != "" {
				t.Errorf("a failed Ensure changed files (-before +after):\n%s", diff)
			}
			noDebris(t, cfg.Dir)
		})
	}
}

func TestEnsure_ExpiredCAIsAnError(t *testing.T) {
	cfg, clock := testConfig(t)
	mustEnsure(t, cfg)
	before := snapshot(t, cfg.Dir)

	clock.now = start.Add(CAValidity + time.Hour)
	_, err := Ensure(cfg)
	if !errors.Is(err, ErrExpired) {
		t.Fatalf("Ensure error = %v, want ErrExpired", err)
	}
	if diff := cmp.Diff(before, snapshot(t, cfg.Dir)); diff != "" {
		t.Errorf("files changed (-before +after):\n%s", diff)
	}
}

func TestEnsure_LeafNeverOutlivesCA(t *testing.T) {
	cfg, clock := testConfig(t)
	mustEnsure(t, cfg)
	clock.now = start.Add(CAValidity - 30*24*time.Hour)
	b := mustEnsure(t, cfg)
	for _, cert := range []*x509.Certificate{b.Serving.Cert, b.Admin.Cert} {
		if !cert.NotAfter.Equal(b.CA.Certificate().NotAfter) {
			t.Errorf("%s: NotAfter %v, want the CA's %v", cert.Subject, cert.NotAfter, b.CA.Certificate().NotAfter)
		}
	}
}

func TestEnsure_TightensKeyModes(t *testing.T) {
	cfg, _ := testConfig(t)
	mustEnsure(t, cfg)
	keys := []string{CAKeyFile, ServingKeyFile, AdminKeyFile, ServiceAccountKeyFile}
	for _, k := range keys {
		if err := os.Chmod(filepath.Join(cfg.Dir, k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustEnsure(t, cfg)
	for _, k := range keys {
		info, err := os.Stat(filepath.Join(cfg.Dir, k))
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %v, want 0600", k, got)
		}
	}
}

func TestEnsure_UsesOperatorRSACA(t *testing.T) {
	cfg, _ := testConfig(t)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "operator-ca"},
		NotBefore:             start.Add(-time.Hour),
		NotAfter:              start.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cfg.Dir, CACertFile), encodeCert(der))
	writeFile(t, filepath.Join(cfg.Dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))

	b := mustEnsure(t, cfg)
	if got := b.CA.Certificate().Subject.CommonName; got != "operator-ca" {
		t.Errorf("CA = %s, want the operator's", got)
	}
	if err := b.Serving.Cert.CheckSignatureFrom(b.CA.Certificate()); err != nil {
		t.Errorf("serving certificate not signed by the operator's CA: %v", err)
	}
}

func TestEnsure_RejectsBadConfig(t *testing.T) {
	fileDir := filepath.Join(t.TempDir(), "file")
	writeFile(t, fileDir, []byte("x"))

	tests := []struct {
		name     string
		cfg      Config
		wantText string
	}{
		{name: "empty Dir", cfg: Config{}, wantText: "Dir is empty"},
		{name: "Dir is a file", cfg: Config{Dir: fileDir}, wantText: "not a directory"},
		{name: "bad DNS name", cfg: Config{Dir: t.TempDir(), DNSNames: []string{"bad name!"}}, wantText: `DNS name "bad name!"`},
		{name: "empty DNS name", cfg: Config{Dir: t.TempDir(), DNSNames: []string{""}}, wantText: `DNS name ""`},
		{name: "IP of three bytes", cfg: Config{Dir: t.TempDir(), IPs: []net.IP{{1, 2, 3}}}, wantText: "invalid IP address"},
		{name: "IP with a zone", cfg: Config{Dir: t.TempDir(), DNSNames: []string{"fe80::1%eth0"}}, wantText: "zones"},
		{name: "negative RenewBefore", cfg: Config{Dir: t.TempDir(), RenewBefore: -time.Hour}, wantText: "negative"},
		{name: "RenewBefore longer than a certificate lives", cfg: Config{Dir: t.TempDir(), RenewBefore: 2 * LeafValidity}, wantText: "not shorter"},
		{name: "bad cluster domain", cfg: Config{Dir: t.TempDir(), ClusterDomain: "Cluster_Local"}, wantText: "cluster domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Ensure(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("Ensure error = %v, want one containing %q", err, tt.wantText)
			}
			if tt.cfg.Dir != "" && tt.cfg.Dir != fileDir {
				if entries, _ := os.ReadDir(tt.cfg.Dir); len(entries) != 0 {
					t.Errorf("a rejected config left files: %v", entries)
				}
			}
		})
	}
}

func TestEnsure_AcceptsIPsWildcardsAndUnderscoresAsNames(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.DNSNames = []string{"node-a", "198.51.100.4", "2001:db8::1", "*.apps.example.com", "Build_Host"}
	b := mustEnsure(t, cfg)
	if slices.Contains(b.Serving.Cert.DNSNames, "198.51.100.4") {
		t.Error("IP address landed among the DNS names")
	}
	for _, want := range []string{"198.51.100.4", "2001:db8::1"} {
		if !slices.ContainsFunc(b.Serving.Cert.IPAddresses, net.ParseIP(want).Equal) {
			t.Errorf("serving certificate lacks IP %s", want)
		}
	}
	for _, want := range []string{"*.apps.example.com", "build_host"} {
		if !slices.Contains(b.Serving.Cert.DNSNames, want) {
			t.Errorf("serving certificate lacks DNS name %s", want)
		}
	}
}

func TestCA_IssueClient(t *testing.T) {
	cfg, _ := testConfig(t)
	ca := mustEnsure(t, cfg).CA

	tests := []struct {
		name     string
		cn       string
		orgs     []string
		wantText string // error text; "" means success
	}{
		{name: "node identity", cn: "system:node:node-a", orgs: []string{"system:nodes"}},
		{name: "no organizations", cn: "alice"},
		{name: "empty common name is refused", cn: " ", wantText: "empty common name"},
		{name: "empty organization is refused", cn: "bob", orgs: []string{"ok", ""}, wantText: "empty organization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ca.IssueClient(tt.cn, tt.orgs)
			if tt.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want %q", err, tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kp.Cert.Subject.CommonName != tt.cn || !slices.Equal(kp.Cert.Subject.Organization, tt.orgs) {
				t.Errorf("subject = %s", kp.Cert.Subject)
			}
			if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: start, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("verify: %v", err)
			}
			if _, err := kp.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: start, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Error("client certificate also verifies for server auth")
			}
			tc := kp.TLSCertificate()
			if tc.Leaf != kp.Cert || tc.PrivateKey != kp.Key {
				t.Error("TLSCertificate does not carry the pair")
			}
			checkLeaf(t, kp.Cert)
		})
	}
}

func TestCA_IssueServing(t *testing.T) {
	cfg, _ := testConfig(t)
	ca := mustEnsure(t, cfg).CA

	tests := []struct {
		name     string
		dnsNames []string
		ips      []net.IP
		wantCN   string
		wantText string
	}{
		{name: "kubelet serving certificate", dnsNames: []string{"node-a"}, ips: []net.IP{net.ParseIP("192.0.2.10")}, wantCN: "node-a"},
		{name: "IP only", ips: []net.IP{net.ParseIP("192.0.2.11")}, wantCN: "192.0.2.11"},
		{name: "IP given as a name", dnsNames: []string{"192.0.2.12"}, wantCN: "192.0.2.12"},
		{name: "nothing to serve is refused", wantText: "no DNS names and no IPs"},
		{name: "bad name is refused", dnsNames: []string{"-bad-"}, wantText: `DNS name "-bad-"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ca.IssueServing(tt.dnsNames, tt.ips)
			if tt.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want %q", err, tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kp.Cert.Subject.CommonName != tt.wantCN {
				t.Errorf("CN = %q, want %q", kp.Cert.Subject.CommonName, tt.wantCN)
			}
			if _, err := kp.Cert.Verify(x509.VerifyOptions{DNSName: tt.wantCN, Roots: ca.Pool(), CurrentTime: start, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("verify for %s: %v", tt.wantCN, err)
			}
			checkLeaf(t, kp.Cert)
		})
	}
}
