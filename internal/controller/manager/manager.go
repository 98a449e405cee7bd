package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Config configures a Manager. Only REST is required; every other zero
// value means the documented default.
type Config struct {
	// REST reaches the API server with the rights of the controllers
	// (an admin config for now). The manager copies it; when its QPS is
	// zero it uses 100 queries per second with bursts of 200.
	REST *rest.Config
	// Logger receives the manager's logs; each controller logs under a
	// group of its name. Nil discards logs.
	Logger *slog.Logger
	// Clock is the time source handed to controllers. Nil is the real clock.
	Clock clock.WithTicker
	// ResyncPeriod is how often the shared informers replay their caches to
	// the controllers. Zero is 12 hours.
	ResyncPeriod time.Duration
	// Disabled names controllers (entries of builtins) not to run.
	Disabled []string
	// ClusterCIDRs are where node IPAM cuts pod CIDRs from; nil is its
	// default (10.42.0.0/16).
	ClusterCIDRs []netip.Prefix
	// NodeMonitorGracePeriod is how long a node may go silent before the
	// node lifecycle controller marks it Unknown; 0 is its default (40s).
	NodeMonitorGracePeriod time.Duration
	// LeaderElection configures the Lease that makes one manager of many
	// active.
	LeaderElection LeaderElection
}

// LeaderElection configures the Lease the managers of a cluster compete
// for. The defaults are upstream's.
type LeaderElection struct {
	// Disabled runs the controllers without a Lease; only safe when one
	// manager runs against the cluster (tests, single servers by choice).
	Disabled bool
	// Namespace and Name locate the Lease. Defaults: kube-system,
	// skiff-controller-manager.
	Namespace, Name string
	// Identity names this manager in the Lease. Default: the host name and
	// a random suffix, unique per Manager.
	Identity string
	// LeaseDuration is how long others wait after the last renewal before
	// they take the Lease over. Default 15s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps retrying a renewal before
	// it gives up leading. Default 10s. Must be below LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to acquire or renew.
	// Default 2s. Must be below RenewDeadline/1.2.
	RetryPeriod time.Duration
}

// withDefaults returns c with zero values replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.ResyncPeriod == 0 {
		c.ResyncPeriod = 12 * time.Hour
	}
	le := &c.LeaderElection
	if le.Namespace == "" {
		le.Namespace = "kube-system"
	}
	if le.Name == "" {
		le.Name = "skiff-controller-manager"
	}
	if le.Identity == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "skiff"
		}
		le.Identity = host + "_" + string(uuid.NewUUID())
	}
	if le.LeaseDuration == 0 {
		le.LeaseDuration = 15 * time.Second
	}
	if le.RenewDeadline == 0 {
		le.RenewDeadline = 10 * time.Second
	}
	if le.RetryPeriod == 0 {
		le.RetryPeriod = 2 * time.Second
	}
	return c
}

// validate checks a Config after withDefaults against the known controllers.
func (c Config) validate(known []Controller) error {
	if c.REST == nil {
		return errors.New("REST config is required")
	}
	if c.ResyncPeriod < 0 {
		return fmt.Errorf("resync period %v is negative", c.ResyncPeriod)
	}
	for _, name := range c.Disabled {
		if !slices.ContainsFunc(known, func(k Controller) bool { return k.Name == name }) {
			return fmt.Errorf("disabled controller %q: no such controller", name)
		}
	}
	le := c.LeaderElection
	if le.Disabled {
		return nil
	}
	switch {
	case le.LeaseDuration < 0 || le.RenewDeadline < 0 || le.RetryPeriod < 0:
		return errors.New("leader election: durations must not be negative")
	case le.LeaseDuration <= le.RenewDeadline:
		return fmt.Errorf("leader election: lease duration %v must exceed renew deadline %v", le.LeaseDuration, le.RenewDeadline)
	case float64(le.RenewDeadline) <= leaderelection.JitterFactor*float64(le.RetryPeriod):
		return fmt.Errorf("leader election: renew deadline %v must exceed %v × retry period %v", le.RenewDeadline, leaderelection.JitterFactor, le.RetryPeriod)
	}
	return nil
}

// Runner is a constructed controller.
type Runner interface {
	// Run waits for the controller's informer caches to sync, then works
	// until ctx is done and returns nil. An error means the controller
	// could not run; the manager then stops every controller and Run
	// returns it.
	Run(ctx context.Context) error
}

// Controller is one entry of the registration list (see builtins).
type Controller struct {
	// Name is short and lower case, unique, used in logs and Config.Disabled.
	Name string
	// New builds the controller. It registers informers and handlers on the
	// factories in d, and must not start them or call the API.
	New func(d Deps) (Runner, error)
}

// Deps is what the manager hands each controller's constructor. A new
// Deps, with new clients and informer factories, is made for every term
// of leadership.
type Deps struct {
	// Config is the manager's Config, with defaults applied, for settings
	// of particular controllers.
	Config Config
	// REST is a copy of the manager's client config, with a user agent
	// naming the controller; a controller may build other clients from it.
	REST *rest.Config
	// Client is a typed client whose user agent names the controller.
	Client kubernetes.Interface
	// Metadata reads and watches any resource as PartialObjectMetadata.
	Metadata metadata.Interface
	// Discovery is a cached discovery client shared by the controllers;
	// call Invalidate before a lookup that must see new resources.
	Discovery discovery.CachedDiscoveryInterface
	// Informers is the shared typed informer factory.
	Informers informers.SharedInformerFactory
	// MetadataInformers is the shared metadata informer factory. The
	// manager starts it after the constructors; a controller that adds
	// informers later (as discovery finds resources) calls Start again.
	MetadataInformers metadatainformer.SharedInformerFactory
	// Logger is the manager's logger in a group named after the controller.
	Logger *slog.Logger
	// Clock is the manager's clock.
	Clock clock.WithTicker
}

// Manager runs the registered controllers while it holds the Lease.
type Manager struct {
	cfg         Config
	controllers []Controller
	log         *slog.Logger

	// mu guards leading.
	mu      sync.Mutex
	leading bool
}

// New checks cfg and returns a Manager. It does not contact the API server.
func New(cfg Config) (*Manager, error) {
	return newManager(cfg, builtins())
}

func newManager(cfg Config, controllers []Controller) (*Manager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(controllers); err != nil {
		return nil, fmt.Errorf("controller manager config: %w", err)
	}
	rc := rest.CopyConfig(cfg.REST)
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 100, 200
	}
	cfg.REST = rc
	var enabled []Controller
	for _, c := range controllers {
		if !slices.Contains(cfg.Disabled, c.Name) {
			enabled = append(enabled, c)
		}
	}
	return &Manager{cfg: cfg, controllers: enabled, log: cfg.Logger.WithGroup("controller-manager")}, nil
}

// IsLeader reports whether this manager holds the Lease and runs its
// controllers now (always true while Run runs with leader election
// disabled).
func (m *Manager) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leading
}

func (m *Manager) setLeading(v bool) {
	m.mu.Lock()
	m.leading = v
	m.mu.Unlock()
}

// Run campaigns for the Lease and runs the controllers while it holds it,
// campaigning again whenever it loses it, until ctx is done. Then it stops
// the controllers, waits for them, releases the Lease and returns nil. It
// returns an error when a controller cannot be built or run. Run may be
// called once.
func (m *Manager) Run(ctx context.Context) error {
	// client-go's leader election and informers log through klog; give
	// them ours.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(m.log.Handler()))
	if m.cfg.LeaderElection.Disabled {
		m.log.Info("running controllers without leader election", "controllers", len(m.controllers))
		return m.lead(ctx)
	}
	for {
		err := m.campaign(ctx)
		if err != nil || ctx.Err() != nil {
			return err
		}
		m.log.Warn("lost the lease; campaigning again", "lease", m.cfg.LeaderElection.Namespace+"/"+m.cfg.LeaderElection.Name)
	}
}

// campaign runs one leader election: it waits for the Lease, leads while
// it holds it, and returns when it has lost it or ctx is done, with every
// controller stopped.
func (m *Manager) campaign(ctx context.Context) error {
	le := m.cfg.LeaderElection
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(m.cfg.REST), "skiff-controller-manager/leader-election"))
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", le.Namespace, le.Name, err)
	}

	// The election runs on its own context so that, when ctx ends, the
	// Lease is released only after every controller has stopped: release
	// earlier and another manager could act beside ours.
	electCtx, cancelElect := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElect()
	// A term goes waiting → leading → over, or waiting → over.
	const (
		waiting = iota
		leading
		over
	)
	var (
		mu      sync.Mutex // guards state
		state   = waiting
		leadErr error // set before done is closed
		done    = make(chan struct{})
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if state == waiting {
			cancelElect()
		}
	})
	defer stop()

	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            le.Name,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				// The elector calls this in a goroutine of its own, which
				// may start late: after ctx ended, or after the elector
				// gave up the term. Then there is nothing to lead.
				mu.Lock()
				if state != waiting || ctx.Err() != nil || lctx.Err() != nil {
					mu.Unlock()
					cancelElect()
					return
				}
				state = leading
				mu.Unlock()
				defer close(done)
				m.log.Info("acquired the lease; starting controllers", "identity", le.Identity)
				runCtx, cancel := context.WithCancel(lctx)
				stopRun := context.AfterFunc(ctx, cancel)
				leadErr = m.lead(runCtx)
				stopRun()
				cancel()
				// Lost the Lease (the elector is already giving up), or
				// ctx is done, or a controller failed: with every
				// controller stopped, the Lease may go.
				cancelElect()
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(identity string) {
				if identity != le.Identity {
					m.log.Info("another manager leads", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	elector.Run(electCtx)
	mu.Lock()
	wasLeading := state == leading
	state = over
	mu.Unlock()
	if wasLeading {
		<-done
	}
	return leadErr
}

// lead builds and runs every enabled controller until ctx is done or one
// of them fails, and returns once all have stopped.
func (m *Manager) lead(ctx context.Context) error {
	m.setLeading(true)
	defer m.setLeading(false)

	shared, err := kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(m.cfg.REST), "skiff-controller-manager/shared-informers"))
	if err != nil {
		return fmt.Errorf("informer client: %w", err)
	}
	metaClient, err := metadata.NewForConfig(rest.AddUserAgent(rest.CopyConfig(m.cfg.REST), "skiff-controller-manager/metadata"))
	if err != nil {
		return fmt.Errorf("metadata client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(rest.AddUserAgent(rest.CopyConfig(m.cfg.REST), "skiff-controller-manager/discovery"))
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	factory := informers.NewSharedInformerFactory(shared, m.cfg.ResyncPeriod)
	metaFactory := metadatainformer.NewSharedInformerFactory(metaClient, m.cfg.ResyncPeriod)
	cachedDisco := memory.NewMemCacheClient(disco)

	type running struct {
		name string
		r    Runner
	}
	var runners []running
	for _, c := range m.controllers {
		rc := rest.AddUserAgent(rest.CopyConfig(m.cfg.REST), "skiff-controller-manager/"+c.Name)
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("controller %s: client: %w", c.Name, err)
		}
		r, err := c.New(Deps{
			Config:            m.cfg,
			REST:              rc,
			Client:            client,
			Metadata:          metaClient,
			Discovery:         cachedDisco,
			Informers:         factory,
			MetadataInformers: metaFactory,
			Logger:            m.cfg.Logger.WithGroup(c.Name),
			Clock:             m.cfg.Clock,
		})
		if err != nil {
			return fmt.Errorf("controller %s: %w", c.Name, err)
		}
		runners = append(runners, running{c.Name, r})
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	factory.Start(ctx.Done())
	metaFactory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Go(func() {
			if err := r.r.Run(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("controller %s: %w", r.name, err))
			}
		})
	}
	m.log.Info("controllers started", "count", len(runners))
	wg.Wait()
	factory.Shutdown()
	metaFactory.Shutdown()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
