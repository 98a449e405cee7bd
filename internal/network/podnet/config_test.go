package podnet

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestNew_RejectsBadConfig(t *testing.T) {
	good := func() Config {
		return Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/24"), StateDir: t.TempDir()}
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"IPv6 pod CIDR", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("fd00:42::/64") }},
		{"pod CIDR with host bits", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("10.42.0.1/24") }},
		{"pod CIDR too small", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("10.42.0.0/31") }},
		{"pod CIDR outside the cluster", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("10.43.0.0/24") }},
		{"pod CIDR larger than the cluster", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("10.40.0.0/14") }},
		{"cluster CIDR with host bits", func(c *Config) { c.ClusterCIDR = netip.MustParsePrefix("10.42.0.1/16") }},
		{"no state dir", func(c *Config) { c.StateDir = "" }},
		{"bridge name too long", func(c *Config) { c.Bridge = "a-very-long-bridge-name" }},
		{"bridge name with a slash", func(c *Config) { c.Bridge = "br/0" }},
		{"MTU too small", func(c *Config) { c.MTU = 100 }},
		{"MTU too large", func(c *Config) { c.MTU = 70000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.edit(&cfg)
			n, err := New(cfg)
			if err == nil {
				n.Close()
				t.Fatal("New accepted a bad config")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error = %v, want ErrInvalid", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestConfig_Defaults(t *testing.T) {
	cfg := Config{}.withDefaults()
	if cfg.Bridge != DefaultBridge || cfg.ClusterCIDR.String() != DefaultClusterCIDR || cfg.Logger == nil {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestValidSandboxID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"0123abcd", true},
		{"", false},
		{"a/b", false},
		{"..\\x", false},
		{"tab\there", false},
		{strings.Repeat("x", 257), false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := validSandboxID(tt.id)
			if (err == nil) != tt.ok {
				t.Errorf("validSandboxID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
		})
	}
}

func TestHostVethName_FitsTheKernelLimit(t *testing.T) {
	seen := map[string]string{}
	for _, id := range []string{"a", "b", strings.Repeat("f", 64), "sandbox-1", "sandbox-2"} {
		name := hostVethName(id)
		if len(name) != 15 || !strings.HasPrefix(name, hostVethPrefix) {
			t.Errorf("hostVethName(%q) = %q", id, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%q and %q share %s", id, other, name)
		}
		seen[name] = id
	}
}
