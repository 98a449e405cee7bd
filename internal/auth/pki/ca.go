package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Lifetimes of what this package issues.
const (
	// CAValidity is how long a new cluster CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long an issued certificate is valid, at most:
	// never past the CA's own expiry.
	LeafValidity = 365 * 24 * time.Hour
	// backdate moves NotBefore into the past so that a peer whose clock is
	// a little behind still accepts a certificate issued just now.
	backdate = 5 * time.Minute
)

// Clock tells the time. Tests pass a fixed clock; nil means the real one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// KeyPair is a certificate and its private key, parsed and in PEM. It is
// immutable: callers must not modify its fields or the slices they hold.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// TLSCertificate returns the pair in the form crypto/tls uses, for a
// tls.Config's Certificates (server) or a client's certificate.
func (kp *KeyPair) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{kp.Cert.Raw},
		PrivateKey:  kp.Key,
		Leaf:        kp.Cert,
	}
}

// CA is a certificate authority that can issue certificates. Get one from
// Ensure. It is immutable and safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	clock   Clock
}

// Certificate returns the CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM, as written to ca.crt and into
// kubeconfigs. The caller must not modify the slice.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Pool returns a new pool holding only the CA certificate, for verifying
// peers (a tls.Config's ClientCAs or RootCAs).
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// IssueClient creates a new ECDSA P-256 key and a client certificate for
// it, signed by the CA, with Subject CN=cn and O=orgs. The API server maps
// CN to the user name and O to the groups. cn must not be empty.
func (ca *CA) IssueClient(cn string, orgs []string) (*KeyPair, error) {
	tmpl, err := clientTemplate(cn, orgs)
	if err != nil {
		return nil, err
	}
	return ca.issue(tmpl, nil)
}

// IssueServing creates a new ECDSA P-256 key and a serving certificate for
// it, signed by the CA, valid for dnsNames and ips. A DNS name that is an
// IP address counts as an IP. At least one name or IP is needed; the
// subject's CN is the first DNS name, or else the first IP.
func (ca *CA) IssueServing(dnsNames []string, ips []net.IP) (*KeyPair, error) {
	dnsNames, ips, err := normalizeSANs(dnsNames, ips)
	if err != nil {
		return nil, err
	}
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, errors.New("serving certificate: no DNS names and no IPs")
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	} else {
		cn = ips[0].String()
	}
	return ca.issue(servingTemplate(cn, dnsNames, ips), nil)
}

func clientTemplate(cn string, orgs []string) (*x509.Certificate, error) {
	if strings.TrimSpace(cn) == "" {
		return nil, errors.New("client certificate: empty common name")
	}
	for _, o := range orgs {
		if strings.TrimSpace(o) == "" {
			return nil, fmt.Errorf("client certificate %q: empty organization", cn)
		}
	}
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: orgs},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, nil
}

func servingTemplate(cn string, dnsNames []string, ips []net.IP) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// issue signs tmpl for key, or for a new ECDSA P-256 key when key is nil.
func (ca *CA) issue(tmpl *x509.Certificate, key crypto.Signer) (*KeyPair, error) {
	if key == nil {
		var err error
		if key, err = newKey(); err != nil {
			return nil, fmt.Errorf("certificate %q: %w", tmpl.Subject.CommonName, err)
		}
	}
	cert, der, err := ca.sign(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("certificate %q: encode key: %w", tmpl.Subject.CommonName, err)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// sign creates a certificate from tmpl for pub, signed by the CA. It fills
// in the serial number and the validity (LeafValidity, cut at the CA's own
// expiry) and leaves the rest of tmpl as given. tmpl is modified.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, []byte, error) {
	now := ca.clock.Now()
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate).UTC()
	tmpl.NotAfter = now.Add(LeafValidity).UTC()
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %q: sign: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %q: parse: %w", tmpl.Subject.CommonName, err)
	}
	return cert, der, nil
}

// newCA creates a self-signed CA with a new key.
func newCA(clock Clock) (*CA, *KeyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA: %w", err)
	}
	now := clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The time in the name tells CAs of successive clusters apart.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("skiff-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(CAValidity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA: parse: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA: encode key: %w", err)
	}
	kp := &KeyPair{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}
	return &CA{cert: cert, key: key, certPEM: kp.CertPEM, clock: clock}, kp, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return key, nil
}

// newSerial returns a random, positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	serial, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	if serial.Sign() == 0 {
		serial.SetInt64(1)
	}
	return serial, nil
}
