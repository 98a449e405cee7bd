package authn

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// CredentialIDKey is the User.Extra key that identifies the credential a
// request used, as Kubernetes sets it: "X509SHA256=<hex>" for a client
// certificate.
const CredentialIDKey = "authentication.kubernetes.io/credential-id"

// X509Config configures an X509 authenticator.
type X509Config struct {
	// Roots are the CAs whose client certificates are accepted: the
	// cluster CA. Required.
	Roots *x509.CertPool
	// Clock gives the time certificates are checked against; nil means
	// the real clock.
	Clock Clock
}

func (c *X509Config) validate() error {
	if c.Roots == nil {
		return errors.New("x509 authenticator: no root CAs")
	}
	return nil
}

// X509 authenticates requests by the client certificate of their TLS
// connection. The server's tls.Config must request certificates without
// verifying them (pki.ServerTLSConfig does): X509 verifies them here, so a
// bad certificate gets a 401 instead of a failed handshake.
//
// The user is the certificate's CN, the groups its O values plus
// system:authenticated, and Extra[CredentialIDKey] the certificate's
// SHA-256. A certificate without a CN, like a request without one, is not
// X509's business: it returns (nil, false, nil).
//
// Chain verification costs about 100µs, and a client sends the same
// certificate with every request, so X509 remembers the certificates it
// verified (by SHA-256, up to maxVerified of them) with the time window in
// which their chain is valid, and only checks the clock for those.
type X509 struct {
	roots *x509.CertPool
	clock Clock

	mu       sync.Mutex // guards verified
	verified map[[sha256.Size]byte]window
}

// window is when a verified chain is valid.
type window struct{ notBefore, notAfter time.Time }

// maxVerified bounds X509's memory of verified certificates: one per node
// and controller of a large cluster. When full it starts over.
const maxVerified = 4096

var _ Authenticator = (*X509)(nil)

// NewX509 returns an X509 authenticator, or an error if cfg is invalid.
func NewX509(cfg X509Config) (*X509, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	return &X509{roots: cfg.Roots, clock: cfg.Clock, verified: map[[sha256.Size]byte]window{}}, nil
}

// AuthenticateRequest verifies the request's client certificate chain
// against the roots, for client authentication, at the clock's time. An
// invalid certificate gives an error wrapping ErrInvalidCertificate.
func (a *X509) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	leaf := r.TLS.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	if err := a.verify(sum, r.TLS.PeerCertificates); err != nil {
		return nil, false, fmt.Errorf("%w %q (serial %s): %w", ErrInvalidCertificate, leaf.Subject.CommonName, leaf.SerialNumber.Text(16), err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, false, nil
	}
	return &User{
		Name:   leaf.Subject.CommonName,
		Groups: withAuthenticated(leaf.Subject.Organization),
		Extra:  map[string][]string{CredentialIDKey: {"X509SHA256=" + hex.EncodeToString(sum[:])}},
	}, true, nil
}

// verify checks that certs[0], whose SHA-256 is sum, chains to the roots
// through certs[1:] and is valid now for client authentication.
func (a *X509) verify(sum [sha256.Size]byte, certs []*x509.Certificate) error {
	now := a.clock.Now()
	a.mu.Lock()
	w, known := a.verified[sum]
	a.mu.Unlock()
	if known && !now.Before(w.notBefore) && !now.After(w.notAfter) {
		return nil
	}

	opts := x509.VerifyOptions{
		Roots:       a.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return err
	}
	w = window{notBefore: chains[0][0].NotBefore, notAfter: chains[0][0].NotAfter}
	for _, c := range chains[0][1:] {
		if c.NotBefore.After(w.notBefore) {
			w.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(w.notAfter) {
			w.notAfter = c.NotAfter
		}
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerified {
		clear(a.verified)
	}
	a.verified[sum] = w
	a.mu.Unlock()
	return nil
}
