package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Scheduler places pending pods on nodes. Make it with New and run it
// with Run.
type Scheduler struct {
	cfg Config
	log *slog.Logger
	// client schedules (bindings, status patches, preemption deletes);
	// events records events; lease renews the lease.
	client, events, lease kubernetes.Interface
}

// New checks cfg, fills in its defaults and builds the clients. It does
// not contact the API server.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{cfg: cfg, log: cfg.Logger}
	if cfg.RESTConfig == nil {
		s.client, s.events, s.lease = cfg.Client, cfg.Client, cfg.Client
		return s, nil
	}
	var err error
	if s.client, err = newClient(cfg.RESTConfig, cfg.QPS, cfg.Burst, "scheduler"); err != nil {
		return nil, err
	}
	// Each binding writes its Scheduled event: the events client needs
	// the binding client's rate, or it paces the bindings.
	if s.events, err = newClient(cfg.RESTConfig, cfg.QPS, cfg.Burst, "events"); err != nil {
		return nil, err
	}
	if s.lease, err = newClient(cfg.RESTConfig, 20, 40, "leader-election"); err != nil {
		return nil, err
	}
	return s, nil
}

// newClient makes a clientset that speaks protobuf (smaller and faster to
// decode than JSON) with its own rate limit.
func newClient(base *rest.Config, qps float32, burst int, purpose string) (kubernetes.Interface, error) {
	c := rest.CopyConfig(base)
	c.QPS, c.Burst = qps, burst
	c.RateLimiter = nil
	c.ContentType = "application/vnd.kubernetes.protobuf"
	c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	c.UserAgent += "/" + purpose
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %s client: %w", purpose, err)
	}
	return cs, nil
}

// Name is the scheduler name it serves.
func (s *Scheduler) Name() string { return s.cfg.SchedulerName }

// Run schedules until ctx is done, and returns nil then. With leader
// election, it campaigns for the lease and schedules only while it holds
// it; when it loses the lease it stops scheduling, drops everything it
// knew, and campaigns again. It returns an error only when the lease
// cannot be set up.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.cfg.LeaderElection.Disabled {
		return s.lead(ctx)
	}
	le := s.cfg.LeaderElection
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name,
		s.lease.CoreV1(), s.lease.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("scheduler: lease %s/%s: %w", le.Namespace, le.Name, err)
	}
	for ctx.Err() == nil {
		wl := &watchedLock{Interface: lock}
		done := make(chan struct{})
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            wl,
			LeaseDuration:   le.LeaseDuration,
			RenewDeadline:   le.RenewDeadline,
			RetryPeriod:     le.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            s.cfg.SchedulerName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					defer close(done)
					s.log.Info("leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
					if err := s.lead(ctx); err != nil {
						s.log.Error("scheduling stopped", "err", err)
					}
				},
				OnStoppedLeading: func() {},
				OnNewLeader: func(id string) {
					if id != le.Identity {
						s.log.Info("another scheduler leads", "leader", id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("scheduler: leader election: %w", err)
		}
		// Run returns when the lease is lost or ctx is done. Once it has
		// written the lease it has started OnStartedLeading in a
		// goroutine, without waiting for it: wait here, so that a new
		// term never overlaps the old one.
		elector.Run(ctx)
		if wl.wrote.Load() {
			<-done
			if ctx.Err() == nil {
				s.log.Warn("lost the lease; campaigning again", "lease", le.Namespace+"/"+le.Name)
			}
		}
	}
	return nil
}

// watchedLock notes whether this candidate ever wrote the lease, which
// it does only when it acquires or holds it.
type watchedLock struct {
	resourcelock.Interface
	wrote atomic.Bool
}

func (l *watchedLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, r)
	if err == nil {
		l.wrote.Store(true)
	}
	return err
}

func (l *watchedLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, r)
	if err == nil {
		l.wrote.Store(true)
	}
	return err
}

// lead runs one term of scheduling: fresh informers, cache and queue,
// until ctx is done.
func (s *Scheduler) lead(ctx context.Context) error {
	inst, err := s.newInstance()
	if err != nil {
		return err
	}
	err = inst.run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
