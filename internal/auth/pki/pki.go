package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Errors that Ensure returns, wrapped with the file concerned. Check them
// with errors.Is.
var (
	// ErrCorrupt: a file cannot be parsed, or is not what its name says
	// (ca.crt that is not a CA certificate, an unsupported key type).
	ErrCorrupt = errors.New("corrupt file")
	// ErrMismatch: files that belong together do not: a key that does not
	// match its certificate, a certificate not signed by the cluster CA, a
	// sa.pub that does not match sa.key, or one half of the CA or of the
	// service-account key pair missing.
	ErrMismatch = errors.New("files do not match")
	// ErrExpired: the cluster CA has expired. Every certificate it issued
	// is invalid; this package never replaces a CA on its own.
	ErrExpired = errors.New("certificate authority expired")
)

// File names in Config.Dir.
const (
	CACertFile                  = "ca.crt"
	CAKeyFile                   = "ca.key"
	ServingCertFile             = "server.crt"
	ServingKeyFile              = "server.key"
	AdminCertFile               = "admin.crt"
	AdminKeyFile                = "admin.key"
	ServiceAccountKeyFile       = "sa.key"
	ServiceAccountPublicKeyFile = "sa.pub"
)

// Identities in the certificates Ensure issues.
const (
	// AdminUser is the CN of the admin client certificate.
	AdminUser = "skiff-admin"
	// AdminGroup is the admin certificate's O. Kubernetes' RBAC binds
	// system:masters to cluster-admin and never lets it be denied.
	AdminGroup = "system:masters"
	// ServingCommonName is the CN of the API server's serving certificate.
	ServingCommonName = "skiff-apiserver"
)

// Defaults for zero Config fields.
const (
	DefaultClusterDomain = "cluster.local"
	DefaultRenewBefore   = 90 * 24 * time.Hour
)

// Config says where the files live and what the serving certificate must
// cover. Only Dir is required.
type Config struct {
	// Dir holds the files, usually <data-dir>/tls. It is created (mode
	// 0700) when missing.
	Dir string

	// DNSNames and IPs are the serving certificate's subject alternative
	// names besides the built-in ones (localhost, 127.0.0.1, kubernetes,
	// kubernetes.default, kubernetes.default.svc and
	// kubernetes.default.svc.<ClusterDomain>). Pass the hostname, the host's
	// IPs and the service cluster IP (the first IP of the service CIDR).
	// A DNS name that is an IP address counts as an IP; names are compared
	// case-insensitively.
	DNSNames []string
	IPs      []net.IP

	// ClusterDomain is the cluster's DNS domain; "" means "cluster.local".
	ClusterDomain string

	// RenewBefore: a serving or admin certificate that expires within this
	// long is re-issued. 0 means DefaultRenewBefore (90 days).
	RenewBefore time.Duration

	// Clock gives the time for issuing and for expiry checks; nil means the
	// real clock.
	Clock Clock

	// Logger receives a line for every file created or re-issued; nil
	// discards.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return errors.New("pki config: Dir is empty")
	}
	if c.RenewBefore < 0 {
		return fmt.Errorf("pki config: RenewBefore %v is negative", c.RenewBefore)
	}
	if c.RenewBefore >= LeafValidity {
		return fmt.Errorf("pki config: RenewBefore %v is not shorter than a certificate's validity %v", c.RenewBefore, LeafValidity)
	}
	if c.ClusterDomain != "" {
		if errs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(errs) > 0 {
			return fmt.Errorf("pki config: cluster domain %q: %s", c.ClusterDomain, strings.Join(errs, "; "))
		}
	}
	return nil
}

// Bundle is what Ensure returns: the CA, the issued certificates and the
// service-account key. It is immutable and safe for concurrent use.
type Bundle struct {
	// Dir is Config.Dir.
	Dir string
	// CA is the cluster CA.
	CA *CA
	// Serving is the API server's serving certificate.
	Serving *KeyPair
	// Admin is the admin client certificate (CN=AdminUser, O=AdminGroup).
	Admin *KeyPair
	// ServiceAccountKey signs service-account tokens; its Public() verifies
	// them. It is ECDSA P-256 unless the operator brought another key.
	ServiceAccountKey crypto.Signer
}

// Path returns the path of one of the files (CACertFile, ...) in the
// bundle's directory, for components that take file names.
func (b *Bundle) Path(name string) string { return filepath.Join(b.Dir, name) }

// ServerTLSConfig returns a tls.Config for the API server: see
// ServerTLSConfig.
func (b *Bundle) ServerTLSConfig() *tls.Config {
	return ServerTLSConfig(b.Serving, b.CA.Pool())
}

// AdminKubeconfig describes a kubeconfig for the admin user that reaches
// the API server at server (https://127.0.0.1:6443).
func (b *Bundle) AdminKubeconfig(server string) Kubeconfig {
	return Kubeconfig{
		Server:        server,
		CAPEM:         b.CA.CertPEM(),
		User:          DefaultKubeconfigUser,
		ClientCertPEM: b.Admin.CertPEM,
		ClientKeyPEM:  b.Admin.KeyPEM,
	}
}

// Ensure makes sure Dir holds a valid cluster CA, service-account key pair,
// serving certificate and admin certificate, creating or re-issuing what is
// missing or stale as the package documentation describes, and returns
// them. It is idempotent: a second call with the same Config changes
// nothing. Errors wrap ErrCorrupt, ErrMismatch or ErrExpired when one
// applies, and name the file.
func Ensure(cfg Config) (*Bundle, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = DefaultClusterDomain
	}
	if cfg.RenewBefore == 0 {
		cfg.RenewBefore = DefaultRenewBefore
	}
	dnsNames, ips, err := normalizeSANs(
		append(builtinDNSNames(cfg.ClusterDomain), cfg.DNSNames...),
		append([]net.IP{net.IPv4(127, 0, 0, 1)}, cfg.IPs...),
	)
	if err != nil {
		return nil, fmt.Errorf("pki config: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("pki directory: %w", err)
	}
	e := &ensurer{cfg: cfg, log: cfg.Logger.WithGroup("pki")}

	ca, err := e.ensureCA()
	if err != nil {
		return nil, err
	}
	saKey, err := e.ensureServiceAccountKey()
	if err != nil {
		return nil, err
	}
	serving, err := e.ensureLeaf(ca, leafSpec{
		what:     "serving certificate",
		certFile: ServingCertFile,
		keyFile:  ServingKeyFile,
		template: func() *x509.Certificate { return servingTemplate(ServingCommonName, dnsNames, ips) },
		stale: func(cert *x509.Certificate) string {
			if missing := missingSANs(cert, dnsNames, ips); len(missing) > 0 {
				return "lacks " + strings.Join(missing, ", ")
			}
			return ""
		},
	})
	if err != nil {
		return nil, err
	}
	admin, err := e.ensureLeaf(ca, leafSpec{
		what:     "admin certificate",
		certFile: AdminCertFile,
		keyFile:  AdminKeyFile,
		template: func() *x509.Certificate {
			tmpl, _ := clientTemplate(AdminUser, []string{AdminGroup}) // constant, valid input
			return tmpl
		},
		stale: func(cert *x509.Certificate) string {
			if cert.Subject.CommonName != AdminUser || !slices.Equal(cert.Subject.Organization, []string{AdminGroup}) {
				return fmt.Sprintf("subject is %q, want CN=%s,O=%s", cert.Subject.String(), AdminUser, AdminGroup)
			}
			return ""
		},
	})
	if err != nil {
		return nil, err
	}
	return &Bundle{Dir: cfg.Dir, CA: ca, Serving: serving, Admin: admin, ServiceAccountKey: saKey}, nil
}

// ensurer carries one Ensure call's settings.
type ensurer struct {
	cfg Config
	log *slog.Logger
}

func (e *ensurer) path(name string) string { return filepath.Join(e.cfg.Dir, name) }

// loadKey parses a private key file, tightening its mode if others
// can read it.
func (e *ensurer) loadKey(path string, data []byte) (crypto.Signer, error) {
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	changed, err := tightenKeyMode(path)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if changed {
		e.log.Warn("private key was readable by others; made it owner-only", "path", path)
	}
	return key, nil
}

func (e *ensurer) ensureCA() (*CA, error) {
	certPath, keyPath := e.path(CACertFile), e.path(CAKeyFile)
	certData, haveCert, err := readOptional(certPath)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	keyData, haveKey, err := readOptional(keyPath)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	switch {
	case !haveCert && !haveKey:
		ca, kp, err := newCA(e.cfg.Clock)
		if err != nil {
			return nil, err
		}
		// The key goes first: a crash in between leaves a key without a
		// certificate, which the next start reports instead of guessing.
		if err := writeFileAtomic(keyPath, kp.KeyPEM, keyMode); err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
		if err := writeFileAtomic(certPath, kp.CertPEM, certMode); err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
		e.log.Info("created cluster CA", "path", certPath, "subject", kp.Cert.Subject.String(), "notAfter", kp.Cert.NotAfter)
		return ca, nil
	case !haveCert:
		return nil, fmt.Errorf("cluster CA: %s exists but %s does not: restore %s, or remove %s to create a new CA (every certificate and kubeconfig of the old one stops working): %w",
			keyPath, certPath, certPath, keyPath, ErrMismatch)
	case !haveKey:
		return nil, fmt.Errorf("cluster CA: %s exists but %s does not: restore %s, or remove %s to create a new CA (every certificate and kubeconfig of the old one stops working): %w",
			certPath, keyPath, keyPath, certPath, ErrMismatch)
	}

	cert, err := parseCert(certData)
	if err != nil {
		return nil, fmt.Errorf("cluster CA %s: %w", certPath, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("cluster CA %s: not a CA certificate (needs basic constraints CA:TRUE and the certSign key usage): %w", certPath, ErrCorrupt)
	}
	key, err := e.loadKey(keyPath, keyData)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	if !samePublicKey(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("cluster CA: %s is not the key of %s: %w", keyPath, certPath, ErrMismatch)
	}
	now := e.cfg.Clock.Now()
	if !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("cluster CA %s: expired at %s: %w", certPath, cert.NotAfter.Format(time.RFC3339), ErrExpired)
	}
	if cert.NotAfter.Sub(now) < e.cfg.RenewBefore {
		e.log.Warn("cluster CA expires soon; certificates issued now end with it", "path", certPath, "notAfter", cert.NotAfter)
	}
	return &CA{cert: cert, key: key, certPEM: encodeCert(cert.Raw), clock: e.cfg.Clock}, nil
}

func (e *ensurer) ensureServiceAccountKey() (crypto.Signer, error) {
	keyPath, pubPath := e.path(ServiceAccountKeyFile), e.path(ServiceAccountPublicKeyFile)
	keyData, haveKey, err := readOptional(keyPath)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	pubData, havePub, err := readOptional(pubPath)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	if !haveKey {
		if havePub {
			return nil, fmt.Errorf("service-account key: %s exists but %s does not: restore %s, or remove %s to create a new key pair (every service-account token signed so far stops working): %w",
				pubPath, keyPath, keyPath, pubPath, ErrMismatch)
		}
		key, err := newKey()
		if err != nil {
			return nil, fmt.Errorf("service-account key: %w", err)
		}
		keyPEM, err := encodeKey(key)
		if err != nil {
			return nil, fmt.Errorf("service-account key: encode: %w", err)
		}
		if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
			return nil, fmt.Errorf("service-account key: %w", err)
		}
		if err := e.writePublicKey(pubPath, key.Public()); err != nil {
			return nil, err
		}
		e.log.Info("created service-account signing key", "path", keyPath)
		return key, nil
	}

	key, err := e.loadKey(keyPath, keyData)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	if err := checkServiceAccountKey(key); err != nil {
		return nil, fmt.Errorf("service-account key %s: %w", keyPath, err)
	}
	if !havePub {
		if err := e.writePublicKey(pubPath, key.Public()); err != nil {
			return nil, err
		}
		e.log.Warn("service-account public key was missing; derived it from the private key", "path", pubPath)
		return key, nil
	}
	pub, err := parsePublicKey(pubData)
	if err != nil {
		return nil, fmt.Errorf("service-account public key %s: %w", pubPath, err)
	}
	if !samePublicKey(key.Public(), pub) {
		return nil, fmt.Errorf("service-account key: %s is not the public key of %s: %w", pubPath, keyPath, ErrMismatch)
	}
	return key, nil
}

func (e *ensurer) writePublicKey(path string, pub crypto.PublicKey) error {
	data, err := encodePublicKey(pub)
	if err != nil {
		return fmt.Errorf("service-account public key: encode: %w", err)
	}
	if err := writeFileAtomic(path, data, certMode); err != nil {
		return fmt.Errorf("service-account public key: %w", err)
	}
	return nil
}

// checkServiceAccountKey accepts the keys Kubernetes can sign
// service-account tokens with: ECDSA on P-256, P-384 or P-521 and RSA of at
// least 2048 bits.
func checkServiceAccountKey(key crypto.Signer) error {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA curve %s cannot sign tokens: %w", k.Curve.Params().Name, ErrCorrupt)
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short, need 2048: %w", k.N.BitLen(), ErrCorrupt)
		}
		return nil
	}
	return fmt.Errorf("key type %T cannot sign tokens: %w", key, ErrCorrupt)
}

// leafSpec describes one certificate Ensure keeps.
type leafSpec struct {
	what              string // "serving certificate", for messages
	certFile, keyFile string
	// template returns a fresh template for the certificate.
	template func() *x509.Certificate
	// stale returns why an otherwise valid certificate must be re-issued,
	// or "".
	stale func(*x509.Certificate) string
}

func (e *ensurer) ensureLeaf(ca *CA, spec leafSpec) (*KeyPair, error) {
	certPath, keyPath := e.path(spec.certFile), e.path(spec.keyFile)
	certData, haveCert, err := readOptional(certPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.what, err)
	}
	keyData, haveKey, err := readOptional(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.what, err)
	}

	if !haveKey {
		if haveCert {
			e.log.Warn("certificate without its key; issuing a new pair", "what", spec.what, "path", certPath)
		}
		kp, err := ca.issue(spec.template(), nil)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(keyPath, kp.KeyPEM, keyMode); err != nil {
			return nil, fmt.Errorf("%s: %w", spec.what, err)
		}
		if err := writeFileAtomic(certPath, kp.CertPEM, certMode); err != nil {
			return nil, fmt.Errorf("%s: %w", spec.what, err)
		}
		e.log.Info("issued certificate", "what", spec.what, "path", certPath, "notAfter", kp.Cert.NotAfter)
		return kp, nil
	}

	key, err := e.loadKey(keyPath, keyData)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.what, err)
	}
	reason := "certificate file was missing"
	if haveCert {
		cert, err := parseCert(certData)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", spec.what, certPath, err)
		}
		if !samePublicKey(key.Public(), cert.PublicKey) {
			return nil, fmt.Errorf("%s: %s is not the key of %s (remove both to issue a new pair): %w", spec.what, keyPath, certPath, ErrMismatch)
		}
		if err := cert.CheckSignatureFrom(ca.cert); err != nil {
			return nil, fmt.Errorf("%s: %s is not signed by the cluster CA (remove it and %s to issue a new pair): %w", spec.what, certPath, keyPath, ErrMismatch)
		}
		reason = e.expiry(cert)
		if reason == "" {
			reason = spec.stale(cert)
		}
		if reason == "" {
			return &KeyPair{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw), KeyPEM: keyData}, nil
		}
	}
	kp, err := ca.issue(spec.template(), key)
	if err != nil {
		return nil, err
	}
	kp.KeyPEM = keyData // keep the key file as it is
	if err := writeFileAtomic(certPath, kp.CertPEM, certMode); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.what, err)
	}
	e.log.Info("re-issued certificate", "what", spec.what, "path", certPath, "reason", reason, "notAfter", kp.Cert.NotAfter)
	return kp, nil
}

// expiry returns why cert's validity calls for a new one, or "".
func (e *ensurer) expiry(cert *x509.Certificate) string {
	now := e.cfg.Clock.Now()
	switch {
	case now.Before(cert.NotBefore):
		return "not valid before " + cert.NotBefore.Format(time.RFC3339)
	case !now.Before(cert.NotAfter):
		return "expired at " + cert.NotAfter.Format(time.RFC3339)
	case cert.NotAfter.Sub(now) < e.cfg.RenewBefore:
		return fmt.Sprintf("expires at %s, within %v", cert.NotAfter.Format(time.RFC3339), e.cfg.RenewBefore)
	}
	return ""
}

// builtinDNSNames are the names every API server serving certificate has.
func builtinDNSNames(clusterDomain string) []string {
	return []string{
		"localhost",
		"kubernetes",
		"kubernetes.default",
		"kubernetes.default.svc",
		"kubernetes.default.svc." + clusterDomain,
	}
}

// normalizeSANs validates and cleans subject alternative names: DNS names
// are lower-cased and lose a trailing dot, names that are IP addresses move
// to the IPs, IPv4 addresses take their 4-byte form, and duplicates go.
// Order is kept otherwise.
func normalizeSANs(dnsNames []string, ips []net.IP) ([]string, []net.IP, error) {
	var (
		outNames []string
		outIPs   []net.IP
		seenIPs  = map[netip.Addr]bool{}
	)
	addIP := func(addr netip.Addr) {
		addr = addr.Unmap()
		if !seenIPs[addr] {
			seenIPs[addr] = true
			outIPs = append(outIPs, net.IP(addr.AsSlice()))
		}
	}
	for _, ip := range ips {
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			return nil, nil, fmt.Errorf("invalid IP address %v (%d bytes)", []byte(ip), len(ip))
		}
		addIP(addr)
	}
	for _, name := range dnsNames {
		clean := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
		if addr, err := netip.ParseAddr(clean); err == nil {
			if addr.Zone() != "" {
				return nil, nil, fmt.Errorf("IP address %q: zones cannot appear in a certificate", name)
			}
			addIP(addr)
			continue
		}
		var errs []string
		if strings.HasPrefix(clean, "*.") {
			errs = validation.IsWildcardDNS1123Subdomain(clean)
		} else {
			// Underscores are not DNS-1123, but real hostnames have them
			// and TLS clients (Go's among them) accept them.
			errs = validation.IsDNS1123SubdomainWithUnderscore(clean)
		}
		if len(errs) > 0 {
			return nil, nil, fmt.Errorf("DNS name %q: %s", name, strings.Join(errs, "; "))
		}
		if !slices.Contains(outNames, clean) {
			outNames = append(outNames, clean)
		}
	}
	return outNames, outIPs, nil
}

// missingSANs lists the names and IPs cert does not cover.
func missingSANs(cert *x509.Certificate, dnsNames []string, ips []net.IP) []string {
	var missing []string
	for _, name := range dnsNames {
		if !slices.ContainsFunc(cert.DNSNames, func(have string) bool { return strings.EqualFold(have, name) }) {
			missing = append(missing, name)
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			missing = append(missing, ip.String())
		}
	}
	return missing
}
