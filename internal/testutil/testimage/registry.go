package testimage

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Auth is how a Registry authenticates clients.
type Auth int

// Registry authentication modes.
const (
	// AuthNone lets anyone pull and push.
	AuthNone Auth = iota
	// AuthBasic wants HTTP basic auth with Username and Password on /v2/.
	AuthBasic
	// AuthBearer runs the registry token flow: /v2/ answers 401 with a
	// Bearer challenge whose realm is the registry's own /token endpoint.
	// /token hands out Token for basic auth with Username and Password
	// (GET), or for an OAuth2 POST with grant_type=password or
	// grant_type=refresh_token and IdentityToken. The registry accepts only
	// "Authorization: Bearer Token".
	AuthBearer
)

// RegistryOptions configures NewRegistry. The zero value is an anonymous
// plain-HTTP registry on 127.0.0.1.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate signed by a fresh CA (see
	// Registry.CAPEM and Registry.CAFile) for the listen IP and "localhost".
	TLS  bool
	Auth Auth
	// IP to listen on; empty means 127.0.0.1. Any 127.0.0.0/8 address
	// works on Linux. go-containerregistry talks plain HTTP to 127.0.0.1
	// and "localhost" without being told; use 127.0.0.2 when a test needs
	// the client to be configured for plain HTTP.
	IP string
}

// Registry is an in-process OCI registry (go-containerregistry's) served by
// an httptest server, closed when the test ends.
type Registry struct {
	// Host is "IP:PORT", the registry part of references.
	Host string
	// URL is "http://Host" or "https://Host".
	URL string
	// CAPEM is the PEM of the CA that signed the HTTPS certificate, and
	// CAFile a file holding it; both empty for plain HTTP.
	CAPEM  []byte
	CAFile string
	// Username and Password are the credentials for AuthBasic and
	// AuthBearer ("skiff" and a random password).
	Username, Password string
	// Token is the bearer token /token issues, usable directly as a
	// registry token; IdentityToken is an OAuth2 refresh token that /token
	// accepts (AuthBearer only).
	Token, IdentityToken string

	opts   RegistryOptions
	server *httptest.Server

	// mu guards the fields below it.
	mu               sync.Mutex
	corruptBlobs     map[string]bool
	corruptManifests map[string]bool
	stallBlobs       map[string]bool
	failNext         int
	blobGets         int
	manifestGets     int
	requests         int
}

// NewRegistry starts a registry and stops it with t.Cleanup.
func NewRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	ip := opts.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("testimage: registry listen: %v", err)
	}
	r := &Registry{
		Host:             ln.Addr().String(),
		opts:             opts,
		Username:         "skiff",
		Password:         randomString(),
		Token:            "tok-" + randomString(),
		IdentityToken:    "refresh-" + randomString(),
		corruptBlobs:     map[string]bool{},
		corruptManifests: map[string]bool{},
		stallBlobs:       map[string]bool{},
	}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	mux := http.NewServeMux()
	mux.HandleFunc("/token", r.serveToken)
	mux.Handle("/", r.authenticate(r.corrupt(inner)))
	r.server = httptest.NewUnstartedServer(r.count(mux))
	r.server.Listener.Close()
	r.server.Listener = ln
	// Clients that fail the TLS handshake on purpose would log here.
	r.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.TLS {
		cert, caPEM, err := newCert(ip)
		if err != nil {
			ln.Close()
			t.Fatalf("testimage: registry certificate: %v", err)
		}
		r.CAPEM = caPEM
		r.CAFile = filepath.Join(t.TempDir(), "registry-ca.pem")
		if err := os.WriteFile(r.CAFile, caPEM, 0o644); err != nil {
			ln.Close()
			t.Fatalf("testimage: registry CA file: %v", err)
		}
		r.server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		r.server.StartTLS()
		r.URL = "https://" + r.Host
	} else {
		r.server.Start()
		r.URL = "http://" + r.Host
	}
	t.Cleanup(r.Close)
	return r
}

// Close stops the registry; later requests are refused. A test may call it
// to take a registry down in the middle of a test. It is idempotent.
func (r *Registry) Close() {
	r.server.CloseClientConnections()
	r.server.Close()
}

// CorruptBlob makes the registry serve blob digest ("sha256:...") with one
// byte changed (same length), so a client that verifies digests fails.
func (r *Registry) CorruptBlob(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corruptBlobs[digest] = true
}

// CorruptManifest makes the registry serve the manifest whose digest is
// digest with a trailing newline added (still valid JSON, another digest)
// while its Docker-Content-Digest header keeps the old digest.
func (r *Registry) CorruptManifest(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corruptManifests[digest] = true
}

// StallBlob makes the registry send the headers and the first half of
// blob digest, then nothing more until the client gives up (or the
// registry is closed): a hung registry, for timeout tests.
func (r *Registry) StallBlob(digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stallBlobs[digest] = true
}

// FailNext makes the next n blob and manifest GETs fail with 503 Service
// Unavailable, for retry tests.
func (r *Registry) FailNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext = n
}

// BlobGets returns how many blob GET requests the registry has answered.
func (r *Registry) BlobGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets
}

// ManifestGets returns how many manifest GET requests it has answered.
func (r *Registry) ManifestGets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifestGets
}

// Requests returns how many HTTP requests it has answered.
func (r *Registry) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Transport returns an HTTP transport that trusts the registry's CA.
func (r *Registry) Transport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.CAPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// Authenticator returns credentials the registry accepts (anonymous for
// AuthNone).
func (r *Registry) Authenticator() authn.Authenticator {
	if r.opts.Auth == AuthNone {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: r.Username, Password: r.Password})
}

// Ref returns the full reference of repoTag in this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

func (r *Registry) ref(t testing.TB, repoTag string) name.Reference {
	t.Helper()
	var nopts []name.Option
	if !r.opts.TLS {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(r.Ref(repoTag), nopts...)
	if err != nil {
		t.Fatalf("testimage: reference %q: %v", repoTag, err)
	}
	return ref
}

func (r *Registry) remoteOptions(t testing.TB) []remote.Option {
	return []remote.Option{
		remote.WithAuth(r.Authenticator()),
		remote.WithTransport(r.Transport()),
		remote.WithContext(t.Context()),
	}
}

func (r *Registry) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests++
		if req.Method == http.MethodGet {
			switch {
			case strings.Contains(req.URL.Path, "/blobs/"):
				r.blobGets++
			case strings.Contains(req.URL.Path, "/manifests/"):
				r.manifestGets++
			}
		}
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

func (r *Registry) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch r.opts.Auth {
		case AuthBasic:
			if u, p, ok := req.BasicAuth(); !ok || u != r.Username || p != r.Password {
				w.Header().Set("WWW-Authenticate", `Basic realm="testimage"`)
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
		case AuthBearer:
			if req.Header.Get("Authorization") != "Bearer "+r.Token {
				scope := ""
				if repo := repoOf(req.URL.Path); repo != "" {
					scope = fmt.Sprintf(`,scope="repository:%s:pull,push"`, repo)
				}
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="testimage"%s`, r.URL, scope))
				writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
				return
			}
		}
		next.ServeHTTP(w, req)
	})
}

// repoOf returns the repository of a /v2/REPO/{blobs,manifests,tags}/ path.
func repoOf(p string) string {
	p = strings.TrimPrefix(p, "/v2/")
	for _, sep := range []string{"/blobs/", "/manifests/", "/tags/"} {
		if i := strings.Index(p, sep); i > 0 {
			return p[:i]
		}
	}
	return ""
}

func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	if r.opts.Auth != AuthBearer {
		http.NotFound(w, req)
		return
	}
	ok := false
	refresh := ""
	switch req.Method {
	case http.MethodGet:
		u, p, has := req.BasicAuth()
		ok = has && u == r.Username && p == r.Password
	case http.MethodPost:
		if err := req.ParseForm(); err == nil {
			switch req.PostForm.Get("grant_type") {
			case "refresh_token":
				ok = req.PostForm.Get("refresh_token") == r.IdentityToken
				refresh = r.IdentityToken
			case "password":
				ok = req.PostForm.Get("username") == r.Username && req.PostForm.Get("password") == r.Password
			}
		}
	}
	if !ok {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{ //nolint:errcheck // the client sees a short body
		"token":         r.Token,
		"access_token":  r.Token,
		"refresh_token": refresh,
		"expires_in":    3600,
	})
}

func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

// corrupt rewrites responses for the blobs and manifests marked corrupt.
func (r *Registry) corrupt(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			next.ServeHTTP(w, req)
			return
		}
		last := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
		r.mu.Lock()
		blob := strings.Contains(req.URL.Path, "/blobs/") && r.corruptBlobs[last]
		manifest := strings.Contains(req.URL.Path, "/manifests/") && len(r.corruptManifests) > 0
		stall := strings.Contains(req.URL.Path, "/blobs/") && r.stallBlobs[last]
		fail := false
		if r.failNext > 0 && (strings.Contains(req.URL.Path, "/blobs/") || strings.Contains(req.URL.Path, "/manifests/")) {
			r.failNext--
			fail = true
		}
		r.mu.Unlock()
		if fail {
			writeRegistryError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "try again")
			return
		}
		if stall {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, req)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body[:len(body)/2]) //nolint:errcheck // the client is meant to hang
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			<-req.Context().Done()
			return
		}
		if !blob && !manifest {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if blob && len(body) > 0 {
				body = bytes.Clone(body)
				body[len(body)/2] ^= 0xff
			}
			if manifest {
				r.mu.Lock()
				bad := r.corruptManifests[rec.Header().Get("Docker-Content-Digest")]
				r.mu.Unlock()
				if bad {
					body = append(bytes.Clone(body), '\n')
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body) //nolint:errcheck // the client notices a short body
	})
}

// DownAddr returns "127.0.0.1:PORT" where nothing listens, for
// registry-down tests: connections to it are refused at once.
func DownAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testimage: listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func randomString() string {
	b := make([]byte, 12)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// newCert makes a CA and a server certificate it signs for ip and
// localhost, valid for a day.
func newCert(ip string) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "skiff testimage CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "skiff testimage registry"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPEM, nil
}
