package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// Config configures a Store. Only Root is required.
type Config struct {
	// Root is the directory that holds the store; it is created if needed.
	// Nothing else may write under it.
	Root string
	// Registries holds mirrors and per-host TLS and credentials, usually
	// loaded with LoadRegistries. The zero value talks to every registry
	// directly, over HTTPS (plain HTTP for localhost and 127.0.0.1).
	Registries Registries
	// Platform is the platform chosen from multi-arch indexes. Zero means
	// the host's: linux and runtime.GOARCH.
	Platform v1.Platform
	// MaxConcurrentDownloads bounds the layers fetched at once by one pull.
	// Zero means 3.
	MaxConcurrentDownloads int
	// StallTimeout cancels a pull when no data arrives from the registry
	// for that long (a hung registry or connection). Zero means one
	// minute; negative disables it.
	StallTimeout time.Duration
	// NoSync skips fsync of blobs and syncfs of unpacked layers. Faster,
	// but a crash can then leave a layer marked complete whose files are
	// empty. For tests and benchmarks only.
	NoSync bool
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when not nil, gets the store's Prometheus collectors.
	Metrics prometheus.Registerer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Transport is the base HTTP transport for registries; nil means a
	// clone of http.DefaultTransport. Per-host TLS settings are applied
	// on top of it.
	Transport *http.Transport
}

func (c *Config) validate() error {
	if c.Root == "" {
		return errors.New("image store: Config.Root is required")
	}
	if c.MaxConcurrentDownloads < 0 {
		return fmt.Errorf("image store: MaxConcurrentDownloads %d is negative", c.MaxConcurrentDownloads)
	}
	return c.Registries.validate()
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Platform.OS == "" {
		out.Platform.OS = "linux"
	}
	if out.Platform.Architecture == "" {
		out.Platform.Architecture = runtime.GOARCH
	}
	if out.MaxConcurrentDownloads == 0 {
		out.MaxConcurrentDownloads = 3
	}
	if out.StallTimeout == 0 {
		out.StallTimeout = time.Minute
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Transport == nil {
		out.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return out
}

// Registries is the registry configuration, in the format of k3s's
// registries.yaml:
//
//	mirrors:
//	  docker.io:
//	    endpoint:
//	      - "https://mirror.internal:5000"
//	      - "http://10.0.0.5:5000"      # plain HTTP
//	  "*":                              # any registry without its own entry
//	    endpoint: ["https://cache.internal"]
//	configs:
//	  "mirror.internal:5000":
//	    auth: {username: u, password: p}   # or auth, identity_token
//	    tls:
//	      ca_file: /etc/skiff/mirror-ca.pem
//	      cert_file: /etc/skiff/client.pem  # client certificate (optional)
//	      key_file: /etc/skiff/client-key.pem
//	      insecure_skip_verify: false
//
// A pull tries the mirror endpoints of the image's registry in order, then
// the registry itself. An endpoint's scheme picks HTTPS or plain HTTP; a
// registry reached directly uses HTTPS unless it has a mirror entry naming
// itself with "http://" (plain_http under configs is a shorthand for that).
type Registries struct {
	Mirrors map[string]Mirror     `json:"mirrors,omitempty"`
	Configs map[string]HostConfig `json:"configs,omitempty"`
}

// Mirror lists the endpoints ("https://host[:port]" or "http://...") to
// try, in order, for one registry.
type Mirror struct {
	Endpoints []string `json:"endpoint,omitempty"`
}

// HostConfig is the credentials and TLS settings of one registry host.
type HostConfig struct {
	Auth *AuthConfig `json:"auth,omitempty"`
	TLS  *TLSConfig  `json:"tls,omitempty"`
	// PlainHTTP talks HTTP instead of HTTPS to this host when reached
	// directly (not through a mirror endpoint, whose URL says).
	PlainHTTP bool `json:"plain_http,omitempty"`
}

// TLSConfig is the TLS settings for one registry host.
type TLSConfig struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// AuthConfig is registry credentials, in the shape of the CRI's
// AuthConfig: Username and Password, or Auth (base64 "user:password"), or
// IdentityToken (an OAuth2 refresh token), or RegistryToken (a bearer token
// sent as is). The zero value is anonymous.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identity_token,omitempty"`
	RegistryToken string `json:"registry_token,omitempty"`
}

func (a *AuthConfig) empty() bool {
	return a == nil || *a == AuthConfig{}
}

// LoadRegistries reads a registries.yaml file. Unknown fields are errors,
// so a typo does not silently disable a mirror.
func LoadRegistries(path string) (Registries, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Registries{}, fmt.Errorf("registries config: %w", err)
	}
	var r Registries
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return Registries{}, fmt.Errorf("registries config %s: %w", path, err)
	}
	if err := r.validate(); err != nil {
		return Registries{}, fmt.Errorf("registries config %s: %w", path, err)
	}
	return r, nil
}

func (r *Registries) validate() error {
	for host, m := range r.Mirrors {
		if host == "" {
			return errors.New("mirror with an empty registry name")
		}
		for _, ep := range m.Endpoints {
			if _, err := parseEndpoint(ep); err != nil {
				return fmt.Errorf("mirror %s: %w", host, err)
			}
		}
	}
	for host, c := range r.Configs {
		if c.TLS == nil {
			continue
		}
		if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			return fmt.Errorf("config %s: tls cert_file and key_file go together", host)
		}
		if _, err := c.TLS.load(); err != nil {
			return fmt.Errorf("config %s: %w", host, err)
		}
	}
	return nil
}

// endpoint is one place to pull from.
type endpoint struct {
	host      string // host[:port]
	plainHTTP bool
	mirror    bool
}

func parseEndpoint(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return endpoint{}, fmt.Errorf("endpoint %q: want scheme://host[:port]", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("endpoint %q: scheme must be http or https", s)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return endpoint{}, fmt.Errorf("endpoint %q: paths are not supported", s)
	}
	return endpoint{host: u.Host, plainHTTP: u.Scheme == "http", mirror: true}, nil
}

// endpoints returns where to pull domain's images from, in order.
func (r *Registries) endpoints(domain string) []endpoint {
	m, ok := r.Mirrors[domain]
	if !ok {
		m = r.Mirrors["*"]
	}
	var out []endpoint
	direct := endpoint{host: domain, plainHTTP: r.Configs[domain].PlainHTTP}
	for _, s := range m.Endpoints {
		ep, err := parseEndpoint(s)
		if err != nil {
			continue // validate() rejects these
		}
		if ep.host == domain || (domain == DockerHub && ep.host == "registry-1.docker.io") {
			// The registry listed as its own mirror: just a scheme choice.
			direct.plainHTTP = ep.plainHTTP
			continue
		}
		out = append(out, ep)
	}
	return append(out, direct)
}

// load reads the files the TLS settings name.
func (c *TLSConfig) load() (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the operator asked for it
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificates", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
