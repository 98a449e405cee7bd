package pki

import (
	"crypto/tls"
	"crypto/x509"
)

// ServerTLSConfig returns a tls.Config for an API server that serves with
// serving and accepts client certificates issued by clientCAs:
//
//   - ClientAuth is tls.RequestClientCert: the handshake asks for a client
//     certificate (naming clientCAs as acceptable issuers) but neither
//     requires nor verifies one. The authenticator verifies it against the
//     CA on each request (authn.X509), as kube-apiserver does, so that a
//     bad or expired certificate gets an HTTP 401 with a Status body rather
//     than a failed handshake, and requests with a bearer token and no
//     certificate go through.
//   - MinVersion is TLS 1.2; NextProtos offers HTTP/2 and HTTP/1.1.
//
// Each call returns a new tls.Config that the caller owns.
func ServerTLSConfig(serving *KeyPair, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{serving.TLSCertificate()},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}
