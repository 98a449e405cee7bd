package kubelet

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes/fake"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNew_RejectsBadConfig(t *testing.T) {
	valid := func() Config {
		return Config{
			NodeName: "node-1", Client: fake.NewClientset(),
			Runtime: runtimeapi.NewRuntimeServiceClient(nil), Images: runtimeapi.NewImageServiceClient(nil),
		}
	}
	tests := []struct {
		name    string
		tweak   func(*Config)
		wantErr string
	}{
		{"NoNodeName", func(c *Config) { c.NodeName = "" }, "NodeName is required"},
		{"UpperCaseNodeName", func(c *Config) { c.NodeName = "Node_1" }, `node name "Node_1"`},
		{"NoClient", func(c *Config) { c.Client = nil }, "Client, Config.Runtime and Config.Images are required"},
		{"NoRuntime", func(c *Config) { c.Runtime = nil }, "are required"},
		{"BadPodCIDR", func(c *Config) { c.PodCIDR = "10.42.0.0/33" }, `pod CIDR "10.42.0.0/33"`},
		{"NegativeMaxPods", func(c *Config) { c.MaxPods = -1 }, "negative Config.MaxPods"},
		{"NegativeInterval", func(c *Config) { c.ResyncInterval = -1 }, "negative interval"},
		{"RelativeRootDir", func(c *Config) { c.RootDir = "state" }, "must be absolute"},
		{"ClusterDNSNotAnIP", func(c *Config) { c.ClusterDNS = []string{"dns.local"} }, `cluster DNS address "dns.local"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.tweak(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("ZeroValuesGetDefaults", func(t *testing.T) {
		k, err := New(valid())
		if err != nil {
			t.Fatal(err)
		}
		c := k.cfg
		if c.MaxPods != 110 || c.Port != 10250 || c.ClusterDomain != "cluster.local" || c.RootDir != DefaultRootDir ||
			c.PodLogsDir != DefaultPodLogsDir || c.EvictionMemoryAvailable.Cmp(resource.MustParse("100Mi")) != 0 ||
			c.HeartbeatInterval != DefaultHeartbeatInterval || c.Machine == nil || c.Clock == nil || c.Logger == nil {
			t.Errorf("defaults not applied: %+v", c)
		}
	})
}
