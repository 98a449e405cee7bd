package image

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadRegistries(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o644); err != nil {
		t.Fatal(err)
	}
	good := `
mirrors:
  docker.io:
    endpoint: ["https://mirror.test:5000", "http://127.0.0.1:5001"]
configs:
  "mirror.test:5000":
    auth: {username: u, password: p}
    tls: {ca_file: ` + ca + `, insecure_skip_verify: true}
  "plain.test":
    plain_http: true
`
	tests := []struct {
		name, yaml string
		wantErr    bool
	}{
		{name: "K3sStyleFileLoads", yaml: good},
		{name: "UnknownFieldIsAnError", yaml: "mirrors:\n  docker.io:\n    endpoints: [\"https://x\"]\n", wantErr: true},
		{name: "EndpointWithoutSchemeIsAnError", yaml: "mirrors:\n  docker.io:\n    endpoint: [\"mirror:5000\"]\n", wantErr: true},
		{name: "EndpointWithPathIsAnError", yaml: "mirrors:\n  docker.io:\n    endpoint: [\"https://m/prefix\"]\n", wantErr: true},
		{name: "MissingCAFileIsAnError", yaml: "configs:\n  x:\n    tls: {ca_file: /nonexistent/ca.pem}\n", wantErr: true},
		{name: "CertWithoutKeyIsAnError", yaml: "configs:\n  x:\n    tls: {cert_file: a.pem}\n", wantErr: true},
		{name: "NotYAMLIsAnError", yaml: "mirrors: [", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "registries.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadRegistries(p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("LoadRegistries() error = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
	if _, err := LoadRegistries(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestRegistries_Endpoints(t *testing.T) {
	r := Registries{
		Mirrors: map[string]Mirror{
			"docker.io":  {Endpoints: []string{"https://m1:5000", "http://m2"}},
			"self.test":  {Endpoints: []string{"http://self.test"}},
			"*":          {Endpoints: []string{"https://any"}},
			"other.test": {},
		},
		Configs: map[string]HostConfig{"plain.test": {PlainHTTP: true}},
	}
	tests := []struct {
		domain string
		want   []endpoint
	}{
		{"docker.io", []endpoint{{"m1:5000", false, true}, {"m2", true, true}, {"docker.io", false, false}}},
		{"self.test", []endpoint{{"self.test", true, false}}},
		{"quay.io", []endpoint{{"any", false, true}, {"quay.io", false, false}}},
		{"other.test", []endpoint{{"other.test", false, false}}},
		{"plain.test", []endpoint{{"any", false, true}, {"plain.test", true, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, r.endpoints(tc.domain), cmp.AllowUnexported(endpoint{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"NoRoot":            {},
		"NegativeDownloads": {Root: "/x", MaxConcurrentDownloads: -1},
		"BadMirror":         {Root: "/x", Registries: Registries{Mirrors: map[string]Mirror{"a": {Endpoints: []string{"ftp://x"}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// selfSignedPEM returns a fresh self-signed CA certificate as PEM.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
