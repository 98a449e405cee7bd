package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names inside the kubeconfigs this package writes.
const (
	KubeconfigCluster     = "skiff"
	KubeconfigContext     = "skiff"
	DefaultKubeconfigUser = "admin"
)

// Kubeconfig describes a kubeconfig with one cluster, one user and one
// context, all with the certificate data embedded. The user authenticates
// with a client certificate, a bearer token, or both.
type Kubeconfig struct {
	// Server is the API server's URL: https://host:port.
	Server string
	// CAPEM holds the certificates that the server's certificate must chain
	// to (the cluster CA).
	CAPEM []byte
	// User names the user entry; "" means DefaultKubeconfigUser ("admin").
	// It is only a name in the file: the API server takes the user's
	// identity from the certificate or token.
	User string
	// ClientCertPEM and ClientKeyPEM are the client certificate and its key.
	ClientCertPEM []byte
	ClientKeyPEM  []byte
	// Token is a bearer token (a node bootstrap token, a static token).
	Token string
}

// Build validates k and returns it as a client-go kubeconfig: cluster
// KubeconfigCluster, context KubeconfigContext (the current one) and user
// k.User.
func (k Kubeconfig) Build() (*clientcmdapi.Config, error) {
	u, err := url.Parse(k.Server)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: server URL %q: %w", k.Server, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("kubeconfig: server URL %q: want https://host:port", k.Server)
	}
	if len(k.CAPEM) == 0 {
		return nil, errors.New("kubeconfig: no CA certificate")
	}
	if !x509.NewCertPool().AppendCertsFromPEM(k.CAPEM) {
		return nil, errors.New("kubeconfig: CA data holds no PEM certificate")
	}
	haveCert := len(k.ClientCertPEM) > 0 || len(k.ClientKeyPEM) > 0
	if haveCert {
		if _, err := tls.X509KeyPair(k.ClientCertPEM, k.ClientKeyPEM); err != nil {
			return nil, fmt.Errorf("kubeconfig: client certificate and key: %w", err)
		}
	}
	if !haveCert && k.Token == "" {
		return nil, errors.New("kubeconfig: no client certificate and no token: the user could not authenticate")
	}
	user := k.User
	if user == "" {
		user = DefaultKubeconfigUser
	}

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[KubeconfigCluster] = &clientcmdapi.Cluster{
		Server:                   k.Server,
		CertificateAuthorityData: k.CAPEM,
	}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{
		ClientCertificateData: k.ClientCertPEM,
		ClientKeyData:         k.ClientKeyPEM,
		Token:                 k.Token,
	}
	cfg.Contexts[KubeconfigContext] = &clientcmdapi.Context{
		Cluster:  KubeconfigCluster,
		AuthInfo: user,
	}
	cfg.CurrentContext = KubeconfigContext
	return cfg, nil
}

// WriteKubeconfig writes k to path with mode 0600, atomically (temporary
// file and rename), creating the parent directory (0700) if needed. When
// path already holds exactly these bytes only its mode is corrected, so
// calling it on every start is cheap and keeps the file's modification
// time. It overwrites whatever else path holds.
func WriteKubeconfig(path string, k Kubeconfig) error {
	cfg, err := k.Build()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: encode: %w", path, err)
	}
	old, exists, err := readOptional(path)
	if err == nil && exists && bytes.Equal(old, data) {
		if err := os.Chmod(path, keyMode); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	if err := writeFileAtomic(path, data, keyMode); err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return nil
}
