package server

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/controller/manager"
	"github.com/skiff-sh/skiff/internal/scheduler"
)

// components are the parts of the cluster `skiff server` runs beside the
// API server: the scheduler, the controller manager and the local node
// agent.
type components struct {
	wg sync.WaitGroup
	// failed receives the first component that stops with an error
	// while the server runs.
	failed chan error
}

func (c *components) wait() { c.wg.Wait() }

func (c *components) run(ctx context.Context, name string, run func(context.Context) error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := run(ctx); err != nil && ctx.Err() == nil {
			select {
			case c.failed <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

// adminRESTConfig is the loopback admin client config the in-process
// components use until they get identities of their own.
func (s *Server) adminRESTConfig() *rest.Config {
	return &rest.Config{
		Host: s.url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.bundle.CA.CertPEM(),
			CertData: s.bundle.Admin.CertPEM,
			KeyData:  s.bundle.Admin.KeyPEM,
		},
	}
}

func (s *Server) startComponents(ctx context.Context) (*components, error) {
	c := &components{failed: make(chan error, 1)}
	if !s.cfg.DisableScheduler {
		cfg := s.adminRESTConfig()
		cfg.UserAgent = "skiff-scheduler"
		sched, err := scheduler.New(scheduler.Config{RESTConfig: cfg, Logger: s.log.WithGroup("scheduler")})
		if err != nil {
			return nil, err
		}
		c.run(ctx, "scheduler", sched.Run)
	}
	if !s.cfg.DisableControllers {
		cfg := s.adminRESTConfig()
		cfg.UserAgent = "skiff-controller-manager"
		mgr, err := manager.New(manager.Config{REST: cfg, Logger: s.log.WithGroup("controllers")})
		if err != nil {
			return nil, err
		}
		c.run(ctx, "controller manager", mgr.Run)
	}
	if !s.cfg.DisableAgent {
		nodeIP := s.cfg.AgentNodeIP
		if nodeIP == nil && !s.cfg.AdvertiseAddress.IsLoopback() {
			nodeIP = s.cfg.AdvertiseAddress
		}
		acfg, err := agent.Local(agent.LocalOptions{
			DataDir:      s.cfg.DataDir,
			Bundle:       s.bundle,
			APIServerURL: s.url,
			NodeIP:       nodeIP,
			ClusterCIDR:  s.cfg.ClusterCIDR,
			Logger:       s.log.WithGroup("agent"),
		})
		if err != nil {
			return nil, err
		}
		if s.cfg.KubeletPort != 0 {
			acfg.KubeletPort = s.cfg.KubeletPort
		}
		a, err := agent.New(acfg)
		if err != nil {
			return nil, err
		}
		c.run(ctx, "agent", a.Run)
	}
	return c, nil
}
