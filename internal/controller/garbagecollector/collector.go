package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Discovery lists the resources the API serves, in their preferred
// versions, as discovery.DiscoveryInterface does. When it also has
// Invalidate (as cached discovery clients do), the collector calls it
// before each rediscovery.
type Discovery interface {
	ServerPreferredResources() ([]*metav1.APIResourceList, error)
}

// invalidator is the optional part of Discovery.
type invalidator interface{ Invalidate() }

// EventRecorder records events about objects; record.EventRecorder is one.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Config configures a Collector. Metadata and Discovery are required.
type Config struct {
	// Metadata reads, watches, patches and deletes objects of any kind.
	Metadata metadata.Interface
	// Discovery finds the resources to watch.
	Discovery Discovery
	// Client, when set, carries events while Run runs (unless Events is
	// set). With neither, events are dropped.
	Client kubernetes.Interface
	// Events receives events (invalid owner references).
	Events EventRecorder
	// Logger receives the collector's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Workers is how many objects are examined at once, for deletion and
	// for orphaning each. Zero is 20, as upstream.
	Workers int
	// ResyncPeriod is how often discovery is read again to watch new
	// resources (custom resources, aggregated APIs). Zero is 30s.
	ResyncPeriod time.Duration
	// SyncTimeout bounds the wait for the monitors' first lists before
	// the collector starts working anyway. Zero is 30s.
	SyncTimeout time.Duration
	// Ignored resources are not watched. Nil ignores events (core and
	// events.k8s.io), as upstream.
	Ignored []schema.GroupResource
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Workers == 0 {
		c.Workers = 20
	}
	if c.ResyncPeriod == 0 {
		c.ResyncPeriod = 30 * time.Second
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = 30 * time.Second
	}
	if c.Ignored == nil {
		c.Ignored = []schema.GroupResource{{Resource: "events"}, {Group: "events.k8s.io", Resource: "events"}}
	}
}

func (c *Config) validate() error {
	switch {
	case c.Metadata == nil:
		return errors.New("metadata client is required")
	case c.Discovery == nil:
		return errors.New("discovery is required")
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	case c.ResyncPeriod < 0:
		return fmt.Errorf("resync period %v is negative", c.ResyncPeriod)
	case c.SyncTimeout < 0:
		return fmt.Errorf("sync timeout %v is negative", c.SyncTimeout)
	}
	return nil
}

// Collector is the garbage collector.
type Collector struct {
	cfg   Config
	log   *slog.Logger
	clock clock.WithTicker

	graph   *graph
	catalog catalog
	absent  *absentCache

	graphChanges    workqueue.TypedInterface[*event]
	attemptToDelete workqueue.TypedRateLimitingInterface[*node]
	attemptToOrphan workqueue.TypedRateLimitingInterface[*node]

	// monitorsMu guards monitors and started.
	monitorsMu sync.Mutex
	monitors   map[schema.GroupVersionResource]*monitor
	started    bool

	// events is set by New from Config.Events, or by Run.
	events EventRecorder
}

// New builds a Collector. It does not call the API.
func New(cfg Config) (*Collector, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("garbage collector config: %w", err)
	}
	c := &Collector{
		cfg:          cfg,
		log:          cfg.Logger,
		clock:        cfg.Clock,
		graph:        newGraph(),
		absent:       newAbsentCache(500),
		graphChanges: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[*event]{Name: "garbage_collector_graph_changes", Clock: cfg.Clock}),
		attemptToDelete: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[*node](),
			workqueue.TypedRateLimitingQueueConfig[*node]{Name: "garbage_collector_attempt_to_delete", Clock: cfg.Clock}),
		attemptToOrphan: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[*node](),
			workqueue.TypedRateLimitingQueueConfig[*node]{Name: "garbage_collector_attempt_to_orphan", Clock: cfg.Clock}),
		monitors: map[schema.GroupVersionResource]*monitor{},
		events:   cfg.Events,
	}
	if c.events == nil && cfg.Client == nil {
		c.events = discardEvents{}
	}
	return c, nil
}

type discardEvents struct{}

func (discardEvents) Eventf(runtime.Object, string, string, string, ...any) {}

// Run discovers the resources (retrying until discovery answers), watches
// them, waits (at most Config.SyncTimeout) for the first lists, then
// collects garbage until ctx is done, rediscovering every
// Config.ResyncPeriod. It returns nil once everything has stopped. Run may
// be called once.
func (c *Collector) Run(ctx context.Context) error {
	defer c.shutdown()
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(c.log.Handler()))
	if c.events == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.cfg.Client.CoreV1().Events("")})
		defer b.Shutdown()
		c.events = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "garbage-collector-controller"})
	}
	// Without a first discovery there is nothing to watch: keep trying.
	for delay := time.Second; ; delay = min(2*delay, c.cfg.ResyncPeriod) {
		err := c.rediscover()
		if err == nil {
			break
		}
		c.log.Warn("discovery failed; retrying", "err", err, "after", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(delay):
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for c.processGraphChange() {
		}
	})
	c.startMonitors()

	timeout := c.clock.NewTimer(c.cfg.SyncTimeout)
	synced := c.waitSynced(ctx, timeout.C())
	timeout.Stop()
	if ctx.Err() != nil {
		c.shutdown()
		wg.Wait()
		return nil
	}
	if !synced {
		c.log.Warn("not every monitor synced in time; collecting anyway", "timeout", c.cfg.SyncTimeout)
	}
	c.log.Info("started", "workers", c.cfg.Workers)
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processAttemptToDelete(ctx) {
			}
		})
		wg.Go(func() {
			for c.processAttemptToOrphan(ctx) {
			}
		})
	}
	ticker := c.clock.NewTicker(c.cfg.ResyncPeriod)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			wg.Wait()
			return nil
		case <-ticker.C():
			if err := c.rediscover(); err != nil {
				c.log.Warn("rediscovery failed; keeping the current monitors", "err", err)
			}
		}
	}
}

// shutdown stops the monitors and the queues; it is idempotent.
func (c *Collector) shutdown() {
	c.stopMonitors()
	c.graphChanges.ShutDown()
	c.attemptToDelete.ShutDown()
	c.attemptToOrphan.ShutDown()
}

// waitSynced polls the monitors until they have synced, ctx is done or
// timeout fires.
func (c *Collector) waitSynced(ctx context.Context, timeout <-chan time.Time) bool {
	poll := c.clock.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		if c.monitorsSynced() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-timeout:
			return false
		case <-poll.C():
		}
	}
}

// rediscover reads discovery again and adjusts the monitors.
func (c *Collector) rediscover() error {
	if inv, ok := c.cfg.Discovery.(invalidator); ok {
		inv.Invalidate()
	}
	byKind, deletable, partial, err := discover(c.cfg.Discovery, c.cfg.Ignored)
	if err != nil {
		return err
	}
	if partial {
		// Keep what we know of the groups that did not answer.
		c.catalog.mu.RLock()
		for gk, r := range c.catalog.byKind {
			if _, ok := byKind[gk]; !ok {
				byKind[gk] = r
			}
		}
		c.catalog.mu.RUnlock()
	}
	c.catalog.set(byKind, deletable)
	return c.syncMonitors(deletable, partial)
}

func (c *Collector) processGraphChange() bool {
	e, quit := c.graphChanges.Get()
	if quit {
		return false
	}
	defer c.graphChanges.Done(e)
	out := c.graph.apply(*e)
	for _, n := range out.attemptToDelete {
		c.attemptToDelete.Add(n)
	}
	for _, n := range out.attemptToOrphan {
		c.attemptToOrphan.Add(n)
	}
	return true
}

func (c *Collector) processAttemptToDelete(ctx context.Context) bool {
	n, quit := c.attemptToDelete.Get()
	if quit {
		return false
	}
	defer c.attemptToDelete.Done(n)
	if err := c.attemptDelete(ctx, n); err != nil {
		c.log.Info("could not collect; retrying", "object", c.graph.snapshot(n).id.String(), "err", err)
		c.attemptToDelete.AddRateLimited(n)
		return true
	}
	c.attemptToDelete.Forget(n)
	return true
}

func (c *Collector) processAttemptToOrphan(ctx context.Context) bool {
	n, quit := c.attemptToOrphan.Get()
	if quit {
		return false
	}
	defer c.attemptToOrphan.Done(n)
	if err := c.orphanDependents(ctx, n); err != nil {
		c.log.Info("could not orphan dependents; retrying", "object", c.graph.snapshot(n).id.String(), "err", err)
		c.attemptToOrphan.AddRateLimited(n)
		return true
	}
	c.attemptToOrphan.Forget(n)
	return true
}

// absentCache remembers owners found not to exist, so that many
// dependents of one deleted owner cost one lookup. It is bounded: when
// full it starts over.
type absentCache struct {
	// mu guards m.
	mu  sync.Mutex
	m   map[identity]struct{}
	cap int
}

func newAbsentCache(n int) *absentCache { return &absentCache{m: map[identity]struct{}{}, cap: n} }

func (a *absentCache) has(id identity) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.m[id]
	return ok
}

func (a *absentCache) add(id identity) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) >= a.cap {
		a.m = map[identity]struct{}{}
	}
	a.m[id] = struct{}{}
}
