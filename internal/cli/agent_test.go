package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

func TestAgentFlags_RESTConfig(t *testing.T) {
	dir := t.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "node.kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, bundle.AdminKubeconfig("https://10.0.0.5:6443")); err != nil {
		t.Fatal(err)
	}
	ca := bundle.Path(pki.CACertFile)
	tests := []struct {
		name      string
		flags     agentFlags
		wantHost  string
		wantToken string
		wantErr   string
	}{
		{name: "kubeconfig", flags: agentFlags{kubeconfig: kubeconfig}, wantHost: "https://10.0.0.5:6443"},
		{name: "server overrides the kubeconfig's", flags: agentFlags{kubeconfig: kubeconfig, server: "https://10.0.0.9:7443"}, wantHost: "https://10.0.0.9:7443"},
		{name: "token with the kubeconfig", flags: agentFlags{kubeconfig: kubeconfig, token: "abc"}, wantHost: "https://10.0.0.5:6443", wantToken: "abc"},
		{name: "server, token and CA", flags: agentFlags{server: "https://10.0.0.5:6443", token: "abc", caFile: ca}, wantHost: "https://10.0.0.5:6443", wantToken: "abc"},
		{name: "nothing", flags: agentFlags{}, wantErr: "give --kubeconfig"},
		{name: "server alone", flags: agentFlags{server: "https://10.0.0.5:6443"}, wantErr: "give --kubeconfig"},
		{name: "token without CA", flags: agentFlags{server: "https://10.0.0.5:6443", token: "abc"}, wantErr: "--certificate-authority"},
		{name: "missing CA file", flags: agentFlags{server: "https://10.0.0.5:6443", token: "abc", caFile: filepath.Join(dir, "nope")}, wantErr: "--certificate-authority"},
		{name: "missing kubeconfig", flags: agentFlags{kubeconfig: filepath.Join(dir, "nope")}, wantErr: "--kubeconfig"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := tc.flags.restConfig()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != tc.wantHost || rc.BearerToken != tc.wantToken {
				t.Errorf("host %q token %q, want %q %q", rc.Host, rc.BearerToken, tc.wantHost, tc.wantToken)
			}
		})
	}
}

func TestAgentCommand_RejectsBadFlags(t *testing.T) {
	dir := t.TempDir()
	bundle, err := pki.Ensure(pki.Config{Dir: filepath.Join(dir, "tls")})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "node.kubeconfig")
	if err := pki.WriteKubeconfig(kubeconfig, bundle.AdminKubeconfig("https://127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad node IP", []string{"--kubeconfig", kubeconfig, "--node-ip", "nope"}, "--node-ip"},
		{"bad pod CIDR", []string{"--kubeconfig", kubeconfig, "--pod-cidr", "10.99.0.0/24"}, "cluster CIDR"},
		{"bad log level", []string{"--kubeconfig", kubeconfig, "--log-level", "loud"}, "--log-level"},
		{"bad runtime endpoint", []string{"--kubeconfig", kubeconfig, "--container-runtime-endpoint", "tcp://x"}, "unix://"},
		{"bad node name", []string{"--kubeconfig", kubeconfig, "--node-name", "Bad_Name"}, "node name"},
		{"positional argument", []string{"--kubeconfig", kubeconfig, "extra"}, "unknown command"},
		{"missing registry config", []string{"--kubeconfig", kubeconfig, "--registry-config", filepath.Join(dir, "nope")}, "--registry-config"},
		{"CNI conf dir without a bin dir", []string{"--kubeconfig", kubeconfig, "--cni-conf-dir", dir}, "both a configuration dir and a plugin dir"},
		{"CNI with an external runtime", []string{"--kubeconfig", kubeconfig, "--cni-conf-dir", dir, "--cni-bin-dir", dir, "--container-runtime-endpoint", "unix:///run/x.sock"}, "runs its own CNI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newAgentCommand()
			cmd.SetArgs(append(tc.args, "--root-dir", t.TempDir()))
			cmd.SetOut(os.Stderr)
			cmd.SetErr(os.Stderr)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
