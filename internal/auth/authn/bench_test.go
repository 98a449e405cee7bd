package authn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkAuthenticate measures one request's authentication by each
// means. "x509-verify-only" is the peer for "x509": the bare chain
// verification from crypto/x509 that the authenticator does once per
// certificate and then remembers; "x509" is a repeated request with the
// same certificate, as every request after a client's first is.
func BenchmarkAuthenticate(b *testing.B) {
	c := newCluster(b, time.Now())
	x509Auth, err := NewX509(X509Config{Roots: c.bundle.CA.Pool()})
	if err != nil {
		b.Fatal(err)
	}
	var file strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&file, "token-%06d,user-%d,%d,\"devs,ops\"\n", i, i, i)
	}
	tokens, err := ParseTokenFile(strings.NewReader(file.String()))
	if err != nil {
		b.Fatal(err)
	}
	bearer := BearerToken(tokens)
	union := Union(x509Auth, bearer)
	h, err := Middleware(union, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), MiddlewareConfig{})
	if err != nil {
		b.Fatal(err)
	}

	certReq := httptest.NewRequest("GET", "/api", nil)
	certReq.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.bundle.Admin.Cert}}
	tokenReq := func() *http.Request {
		r := httptest.NewRequest("GET", "/api", nil)
		r.Header.Set("Authorization", "Bearer token-004242")
		r.TLS = &tls.ConnectionState{}
		return r
	}

	b.Run("x509-verify-only", func(b *testing.B) {
		pool := c.bundle.CA.Pool()
		for b.Loop() {
			if _, err := c.bundle.Admin.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("x509", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := x509Auth.AuthenticateRequest(certReq); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("token-file-10k", func(b *testing.B) {
		r := tokenReq()
		for b.Loop() {
			if _, ok, err := bearer.AuthenticateRequest(r); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("middleware-token", func(b *testing.B) {
		w := httptest.NewRecorder()
		r := tokenReq()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	b.Run("middleware-x509", func(b *testing.B) {
		w := httptest.NewRecorder()
		for b.Loop() {
			h.ServeHTTP(w, certReq)
		}
	})
}
