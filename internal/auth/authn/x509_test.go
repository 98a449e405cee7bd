package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time { return c.now }

// cluster is a real PKI in a temporary directory, made with the clock at
// issued.
type cluster struct {
	bundle *pki.Bundle
	caKey  any // for hand-made certificates
}

func newCluster(t testing.TB, issued time.Time) *cluster {
	t.Helper()
	dir := t.TempDir()
	b, err := pki.Ensure(pki.Config{Dir: dir, Clock: fixedClock{issued}})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{bundle: b, caKey: ca.PrivateKey}
}

// handMade signs tmpl with the cluster CA for the admin key.
func (c *cluster) handMade(t testing.TB, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.bundle.CA.Certificate(), c.bundle.Admin.Key.Public(), c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestX509_AuthenticatesClientCertificates(t *testing.T) {
	now := time.Now()
	c := newCluster(t, now)
	other := newCluster(t, now)
	a, err := NewX509(X509Config{Roots: c.bundle.CA.Pool(), Clock: fixedClock{now}})
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.bundle.CA.IssueClient("system:node:node-a", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	noCN := c.handMade(t, &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{Organization: []string{"devs"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	credID := func(cert *x509.Certificate) map[string][]string {
		sum := sha256.Sum256(cert.Raw)
		return map[string][]string{CredentialIDKey: {"X509SHA256=" + hex.EncodeToString(sum[:])}}
	}

	tests := []struct {
		name    string
		tls     *tls.ConnectionState // nil: plain HTTP
		clock   time.Time            // zero: now
		want    *User
		wantErr error
	}{
		{name: "plain HTTP is not ours"},
		{name: "TLS without a certificate is not ours", tls: &tls.ConnectionState{}},
		{
			name: "admin certificate is skiff-admin in system:masters",
			tls:  &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.bundle.Admin.Cert}},
			want: &User{Name: "skiff-admin", Groups: []string{"system:masters", GroupAuthenticated}, Extra: credID(c.bundle.Admin.Cert)},
		},
		{
			name: "node certificate maps CN and O",
			tls:  &tls.ConnectionState{PeerCertificates: []*x509.Certificate{node.Cert}},
			want: &User{Name: "system:node:node-a", Groups: []string{"system:nodes", GroupAuthenticated}, Extra: credID(node.Cert)},
		},
		{
			name:    "certificate of another CA is invalid",
			tls:     &tls.ConnectionState{PeerCertificates: []*x509.Certificate{other.bundle.Admin.Cert}},
			wantErr: ErrInvalidCertificate,
		},
		{
			name:    "expired certificate is invalid",
			tls:     &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.bundle.Admin.Cert}},
			clock:   now.Add(pki.LeafValidity + time.Hour),
			wantErr: ErrInvalidCertificate,
		},
		{
			name:    "serving certificate cannot authenticate a client",
			tls:     &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.bundle.Serving.Cert}},
			wantErr: ErrInvalidCertificate,
		},
		{
			name: "certificate without a CN is not ours",
			tls:  &tls.ConnectionState{PeerCertificates: []*x509.Certificate{noCN}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := a
			if !tt.clock.IsZero() {
				auth, _ = NewX509(X509Config{Roots: c.bundle.CA.Pool(), Clock: fixedClock{tt.clock}})
			}
			r := httptest.NewRequest("GET", "/api", nil)
			r.TLS = tt.tls
			u, ok, err := auth.AuthenticateRequest(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if ok != (tt.want != nil) {
				t.Fatalf("ok = %v", ok)
			}
			if diff := cmp.Diff(tt.want, u); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}

func TestX509_RemembersVerifiedCertificatesOnlyWhileValid(t *testing.T) {
	now := time.Now()
	c := newCluster(t, now)
	clock := &fixedClock{now}
	a, err := NewX509(X509Config{Roots: c.bundle.CA.Pool(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.bundle.Admin.Cert}}

	steps := []struct {
		name    string
		at      time.Time
		wantErr error
	}{
		{name: "first request verifies", at: now},
		{name: "second request is remembered", at: now.Add(time.Minute)},
		{name: "after expiry the remembered certificate fails", at: c.bundle.Admin.Cert.NotAfter.Add(time.Second), wantErr: ErrInvalidCertificate},
		{name: "before NotBefore it fails too", at: c.bundle.Admin.Cert.NotBefore.Add(-time.Second), wantErr: ErrInvalidCertificate},
		{name: "back in the window it passes", at: now.Add(time.Hour)},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.now = st.at
			_, ok, err := a.AuthenticateRequest(r)
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil && (err != nil || !ok)) {
				t.Errorf("ok=%v err=%v, want %v", ok, err, st.wantErr)
			}
		})
	}
	t.Run("a certificate of another CA is never remembered as good", func(t *testing.T) {
		other := newCluster(t, now)
		r := httptest.NewRequest("GET", "/api", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{other.bundle.Admin.Cert}}
		for range 2 {
			if _, _, err := a.AuthenticateRequest(r); !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("error = %v", err)
			}
		}
	})
}

func TestNewX509_RejectsMissingRoots(t *testing.T) {
	if _, err := NewX509(X509Config{}); err == nil {
		t.Fatal("NewX509 without roots succeeded")
	}
}
