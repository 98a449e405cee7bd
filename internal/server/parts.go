package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

// Env is what parts attached with Config.Extend get to know about the
// running control plane.
type Env struct {
	// URL is the API server's loopback URL; Admin an admin client config
	// for it.
	URL   string
	Admin *rest.Config
	// Bundle is the cluster's PKI (to issue node and kubelet
	// certificates).
	Bundle *pki.Bundle
	// DataDir, AdvertiseAddress and ClusterCIDR are the server's.
	DataDir          string
	AdvertiseAddress net.IP
	ClusterCIDR      string
	Logger           *slog.Logger
}

// Part is something that runs beside the API server until its context
// ends.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// parts runs Parts and reports the first that fails.
type parts struct {
	wg     sync.WaitGroup
	failed chan error
}

func (p *parts) wait() { p.wg.Wait() }

func (s *Server) startParts(ctx context.Context) (*parts, error) {
	p := &parts{failed: make(chan error, 1)}
	if s.cfg.Extend == nil {
		return p, nil
	}
	list, err := s.cfg.Extend(Env{
		URL:              s.url,
		Admin:            s.adminRESTConfig(),
		Bundle:           s.bundle,
		DataDir:          s.cfg.DataDir,
		AdvertiseAddress: s.cfg.AdvertiseAddress,
		ClusterCIDR:      s.cfg.ClusterCIDR,
		Logger:           s.log,
	})
	if err != nil {
		return nil, err
	}
	for _, part := range list {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := part.Run(ctx); err != nil && ctx.Err() == nil {
				select {
				case p.failed <- fmt.Errorf("%s: %w", part.Name, err):
				default:
				}
			}
		}()
	}
	return p, nil
}

// adminRESTConfig is a loopback admin client config.
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
