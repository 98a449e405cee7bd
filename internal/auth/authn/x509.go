package authn

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
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
type X509 struct {
	roots *x509.CertPool
	clock Clock
}

var _ Authenticator = (*X509)(nil)

// NewX509 returns an X509 authenticator, or an error if cfg is invalid.
func NewX509(cfg X509Config) (*X509, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	return &X509{roots: cfg.Roots, clock: cfg.Clock}, nil
}

// AuthenticateRequest verifies the request's client certificate chain
// against the roots, for client authentication, at the clock's time. An
// invalid certificate gives an error wrapping ErrInvalidCertificate.
func (a *X509) AuthenticateRequest(r *http.Request) (*User, bool, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	leaf := r.TLS.PeerCertificates[0]
	opts := x509.VerifyOptions{
		Roots:       a.roots,
		CurrentTime: a.clock.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(r.TLS.PeerCertificates) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range r.TLS.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		return nil, false, fmt.Errorf("%w %q (serial %s): %w", ErrInvalidCertificate, leaf.Subject.CommonName, leaf.SerialNumber.Text(16), err)
	}
	if leaf.Subject.CommonName == "" {
		return nil, false, nil
	}
	sum := sha256.Sum256(leaf.Raw)
	return &User{
		Name:   leaf.Subject.CommonName,
		Groups: withAuthenticated(leaf.Subject.Organization),
		Extra:  map[string][]string{CredentialIDKey: {"X509SHA256=" + hex.EncodeToString(sum[:])}},
	}, true, nil
}
