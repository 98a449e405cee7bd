package nodelifecycle

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Upstream's defaults, but GracePeriod: upstream moved to 50s in 1.32;
// skiff keeps the long-standing 40s.
const (
	DefaultMonitorPeriod          = 5 * time.Second
	DefaultGracePeriod            = 40 * time.Second
	DefaultStartupGracePeriod     = 60 * time.Second
	DefaultEvictionRate           = 0.1
	DefaultSecondaryEvictionRate  = 0.01
	DefaultLargeClusterThreshold  = 50
	DefaultUnhealthyZoneThreshold = 0.55
	defaultWorkers                = 8
	// taintPassPeriod is how often the rate-limited taint queues are
	// worked (upstream's nodeEvictionPeriod).
	taintPassPeriod = 100 * time.Millisecond
)

// EventRecorder records events; record.EventRecorder satisfies it.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures the controller. Client and Informers are required;
// every other zero value is a documented default.
type Config struct {
	// Client updates Nodes and pods and records events.
	Client kubernetes.Interface
	// Informers is the shared informer factory; the caller starts it after
	// New. The controller watches Nodes, Pods and node Leases.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the controller's only source of time. Nil is the real clock.
	Clock clock.WithTicker
	// Recorder records events. Nil sends them to the API server through
	// Client while Run runs.
	Recorder EventRecorder

	// MonitorPeriod is how often node health is checked
	// (--node-monitor-period). Zero means 5s.
	MonitorPeriod time.Duration
	// GracePeriod is how long a node may go without renewing its Lease or
	// posting status before it is marked Unknown
	// (--node-monitor-grace-period). Zero means 40s. It must exceed
	// MonitorPeriod.
	GracePeriod time.Duration
	// StartupGracePeriod replaces GracePeriod for a node that never posted
	// a Ready condition. Zero means 60s.
	StartupGracePeriod time.Duration

	// EvictionRate is how many nodes per second get NoExecute taints in a
	// healthy zone (--node-eviction-rate). Zero means 0.1.
	EvictionRate float64
	// SecondaryEvictionRate replaces it in a partially disrupted zone of
	// a large cluster (--secondary-node-eviction-rate). Zero means 0.01.
	SecondaryEvictionRate float64
	// LargeClusterThreshold is the zone size above which a partially
	// disrupted zone still taints at the secondary rate; smaller zones
	// stop (--large-cluster-size-threshold). Zero means 50.
	LargeClusterThreshold int
	// UnhealthyZoneThreshold is the fraction of not-Ready nodes (with at
	// least three) that makes a zone partially disrupted
	// (--unhealthy-zone-threshold). Zero means 0.55.
	UnhealthyZoneThreshold float64

	// Workers is how many pods are handled at once. Zero means 8.
	Workers int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MonitorPeriod, DefaultMonitorPeriod)
	def(&c.GracePeriod, DefaultGracePeriod)
	def(&c.StartupGracePeriod, DefaultStartupGracePeriod)
	if c.EvictionRate == 0 {
		c.EvictionRate = DefaultEvictionRate
	}
	if c.SecondaryEvictionRate == 0 {
		c.SecondaryEvictionRate = DefaultSecondaryEvictionRate
	}
	if c.LargeClusterThreshold == 0 {
		c.LargeClusterThreshold = DefaultLargeClusterThreshold
	}
	if c.UnhealthyZoneThreshold == 0 {
		c.UnhealthyZoneThreshold = DefaultUnhealthyZoneThreshold
	}
	if c.Workers == 0 {
		c.Workers = defaultWorkers
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("client is required")
	case c.Informers == nil:
		return errors.New("informer factory is required")
	case c.MonitorPeriod < 0 || c.GracePeriod < 0 || c.StartupGracePeriod < 0:
		return errors.New("periods must not be negative")
	case c.GracePeriod <= c.MonitorPeriod:
		return fmt.Errorf("grace period %v must exceed the monitor period %v", c.GracePeriod, c.MonitorPeriod)
	case c.StartupGracePeriod < c.GracePeriod:
		return fmt.Errorf("startup grace period %v is shorter than the grace period %v", c.StartupGracePeriod, c.GracePeriod)
	case c.EvictionRate < 0 || c.SecondaryEvictionRate < 0:
		return errors.New("eviction rates must not be negative")
	case c.LargeClusterThreshold < 0:
		return fmt.Errorf("large cluster threshold %d is negative", c.LargeClusterThreshold)
	case c.UnhealthyZoneThreshold < 0 || c.UnhealthyZoneThreshold > 1:
		return fmt.Errorf("unhealthy zone threshold %v is not a fraction", c.UnhealthyZoneThreshold)
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	}
	return nil
}
