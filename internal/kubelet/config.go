package kubelet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Defaults for Config's zero values.
const (
	DefaultPort                     = 10250
	DefaultMaxPods                  = 110
	DefaultRootDir                  = "/var/lib/skiff/kubelet"
	DefaultPodLogsDir               = "/var/log/pods"
	DefaultClusterDomain            = "cluster.local"
	DefaultLeaseDuration            = 40 * time.Second
	DefaultHeartbeatInterval        = 10 * time.Second
	DefaultNodeStatusUpdateInterval = 10 * time.Second
	DefaultNodeStatusReportInterval = 5 * time.Minute
	DefaultRelistInterval           = 5 * time.Minute
	DefaultResyncInterval           = time.Minute
	DefaultEvictionInterval         = 10 * time.Second
)

// DefaultEvictionMemoryAvailable is the hard eviction threshold on
// memory.available used when Config.EvictionMemoryAvailable is zero
// (upstream's default).
var DefaultEvictionMemoryAvailable = resource.MustParse("100Mi")

// Config configures a Kubelet. NodeName, Client, Runtime and Images are
// required; every other zero value means the documented default.
type Config struct {
	// NodeName is the name of this node's Node object: a lower-case DNS
	// subdomain. Required.
	NodeName string
	// Client talks to the API server with the node's credentials.
	// Required.
	Client kubernetes.Interface
	// EventClient records events. Upstream's kubelet gives events a
	// client and rate limit of their own, so that a burst of them (100
	// pods started or deleted at once) does not hold status updates back.
	// Nil: Client.
	EventClient kubernetes.Interface
	// Runtime and Images are the CRI services of the container runtime.
	// Required. The kubelet consumes the runtime's container events
	// (GetContainerEvents); a runtime without them is relisted every
	// second instead.
	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	// Volumes sets up pod volumes. Nil: containers that mount volumes fail
	// with CreateContainerConfigError.
	Volumes Volumes
	// Network connects sandboxes to the pod network. Nil: the runtime does
	// it, and pod IPs come from PodSandboxStatus.
	Network Network
	// Cgroups is the pod cgroup hierarchy (kubepods, QoS classes, pods).
	// Nil: the kubelet makes no cgroups of its own and gives sandboxes no
	// cgroup parent; container requests and limits still apply.
	Cgroups Cgroups
	// CgroupRoot is the name the runtime knows the Cgroups manager's
	// parent by: the kubelet passes CgroupRoot + "/kubepods/.../pod<uid>"
	// as a sandbox's cgroup parent. Empty is right when the runtime's
	// cgroup manager has the same parent as Cgroups (the built-in
	// runtime); with containerd's cgroupfs driver it is the parent as an
	// absolute path, such as "/skiff".
	CgroupRoot string
	// Machine describes the host (default HostMachine(RootDir)).
	Machine Machine

	// NodeIP is the node's InternalIP (default: the host's first global
	// unicast address).
	NodeIP net.IP
	// Port is the kubelet API's port, reported in the Node's
	// daemonEndpoints (default DefaultPort).
	Port int32
	// PodCIDR is the node's pod CIDR while Node spec.podCIDR is empty;
	// it is also written into spec.podCIDR when the kubelet creates its
	// Node. Empty: wait for the node IPAM controller.
	PodCIDR string
	// Labels are added to the Node's at registration, beside the
	// well-known kubernetes.io/hostname, os and arch labels.
	Labels map[string]string
	// Taints are the Node's taints at registration.
	Taints []corev1.Taint
	// MaxPods is the node's pod capacity (default DefaultMaxPods).
	MaxPods int
	// Reserved is subtracted from capacity to give allocatable (system and
	// kube reserved together).
	Reserved corev1.ResourceList
	// EvictionMemoryAvailable is the hard eviction threshold on
	// memory.available: below it, pods are evicted (zero:
	// DefaultEvictionMemoryAvailable; negative: no eviction). It is also
	// subtracted from allocatable memory.
	EvictionMemoryAvailable resource.Quantity
	// ClusterDNS are the nameservers of pods with dnsPolicy ClusterFirst;
	// empty gives them the host's resolv.conf, as upstream does.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain (default
	// DefaultClusterDomain).
	ClusterDomain string

	// RootDir holds the kubelet's state: pods/<uid>/containers/<name>/
	// <attempt> termination message files (default DefaultRootDir).
	RootDir string
	// PodLogsDir holds container logs as <ns>_<pod>_<uid>/<container>/
	// <restartCount>.log (default DefaultPodLogsDir).
	PodLogsDir string

	// LeaseDuration is the node Lease's leaseDurationSeconds;
	// HeartbeatInterval is how often the Lease is renewed.
	LeaseDuration     time.Duration
	HeartbeatInterval time.Duration
	// NodeStatusUpdateInterval is how often the node status is computed;
	// it is written when it changed or NodeStatusReportInterval passed.
	NodeStatusUpdateInterval time.Duration
	NodeStatusReportInterval time.Duration
	// RelistInterval is how often every pod is compared with the runtime
	// as a safety net under the runtime's events.
	RelistInterval time.Duration
	// ResyncInterval is how often each pod is synced with no event.
	ResyncInterval time.Duration
	// EvictionInterval is how often node pressure is checked.
	EvictionInterval time.Duration

	// Clock is the kubelet's time (default: the real clock).
	Clock clock.WithTicker
	// Logger gets the kubelet's logs (default: discarded).
	Logger *slog.Logger
	// Metrics gets the kubelet's collectors (default: not registered).
	Metrics prometheus.Registerer
}

func (c *Config) validate() error {
	if c.NodeName == "" {
		return errors.New("kubelet: Config.NodeName is required")
	}
	if errs := validation.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		return fmt.Errorf("kubelet: node name %q: %s", c.NodeName, errs[0])
	}
	if c.Client == nil || c.Runtime == nil || c.Images == nil {
		return errors.New("kubelet: Config.Client, Config.Runtime and Config.Images are required")
	}
	if c.PodCIDR != "" {
		if _, _, err := net.ParseCIDR(c.PodCIDR); err != nil {
			return fmt.Errorf("kubelet: pod CIDR %q: %w", c.PodCIDR, err)
		}
	}
	if c.MaxPods < 0 || c.Port < 0 {
		return errors.New("kubelet: negative Config.MaxPods or Config.Port")
	}
	for _, d := range []time.Duration{c.LeaseDuration, c.HeartbeatInterval, c.NodeStatusUpdateInterval, c.NodeStatusReportInterval, c.RelistInterval, c.ResyncInterval, c.EvictionInterval} {
		if d < 0 {
			return errors.New("kubelet: negative interval in Config")
		}
	}
	if c.MaxPods == 0 {
		c.MaxPods = DefaultMaxPods
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	for _, s := range c.ClusterDNS {
		if net.ParseIP(s) == nil {
			return fmt.Errorf("kubelet: cluster DNS address %q is not an IP", s)
		}
	}
	if c.RootDir == "" {
		c.RootDir = DefaultRootDir
	}
	if c.PodLogsDir == "" {
		c.PodLogsDir = DefaultPodLogsDir
	}
	if !filepath.IsAbs(c.RootDir) || !filepath.IsAbs(c.PodLogsDir) {
		return fmt.Errorf("kubelet: RootDir %q and PodLogsDir %q must be absolute", c.RootDir, c.PodLogsDir)
	}
	if c.EvictionMemoryAvailable.IsZero() {
		c.EvictionMemoryAvailable = DefaultEvictionMemoryAvailable.DeepCopy()
	}
	setDefault(&c.LeaseDuration, DefaultLeaseDuration)
	setDefault(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	setDefault(&c.NodeStatusUpdateInterval, DefaultNodeStatusUpdateInterval)
	setDefault(&c.NodeStatusReportInterval, DefaultNodeStatusReportInterval)
	setDefault(&c.RelistInterval, DefaultRelistInterval)
	setDefault(&c.ResyncInterval, DefaultResyncInterval)
	setDefault(&c.EvictionInterval, DefaultEvictionInterval)
	if c.Machine == nil {
		c.Machine = HostMachine(c.RootDir)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
