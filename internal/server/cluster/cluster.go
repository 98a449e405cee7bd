// Package cluster assembles a whole skiff server: the control plane of
// package server plus the parts that reach it over HTTPS like any client —
// the scheduler, the controller manager and the node agent of this host.
// (They live here, not in package server, so that their own tests can run
// a bare API server from package server without an import cycle.)
package cluster

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/controller/manager"
	"github.com/skiff-sh/skiff/internal/scheduler"
	"github.com/skiff-sh/skiff/internal/server"
)

// Config says which parts run beside the API server.
type Config struct {
	// Server configures the control plane. Its Extend is set by New.
	Server server.Config
	// DisableAgent runs no node agent on this host (a control plane
	// only); DisableScheduler and DisableControllers leave those out.
	DisableAgent       bool
	DisableScheduler   bool
	DisableControllers bool
	// KubeletPort is the local agent's kubelet API port; 0 means 10250.
	KubeletPort int
	// AgentNodeIP is the IP the local agent reports; nil picks the
	// advertise address when it is not loopback, else the agent's
	// default.
	AgentNodeIP net.IP
	// NodeMonitorGracePeriod is how long a node may go silent before it
	// is marked Unknown; 0 means the node lifecycle controller's 40s.
	NodeMonitorGracePeriod time.Duration
	// AgentCNIConfDir and AgentCNIBinDirs make the local agent's pod
	// network with third-party CNI plugins (agent.Config's CNIConfDir
	// and CNIBinDirs); empty means the built-in pod network.
	AgentCNIConfDir string
	AgentCNIBinDirs []string
}

// New returns the control plane of cfg with its parts attached.
func New(cfg Config) (*server.Server, error) {
	sc := cfg.Server
	sc.Extend = func(env server.Env) ([]server.Part, error) { return parts(cfg, env) }
	return server.New(sc)
}

func parts(cfg Config, env server.Env) ([]server.Part, error) {
	var out []server.Part
	if !cfg.DisableScheduler {
		rc := rest.CopyConfig(env.Admin)
		rc.UserAgent = "skiff-scheduler"
		sched, err := scheduler.New(scheduler.Config{RESTConfig: rc, Logger: env.Logger.WithGroup("scheduler")})
		if err != nil {
			return nil, err
		}
		out = append(out, server.Part{Name: "scheduler", Run: sched.Run})
	}
	if !cfg.DisableControllers {
		rc := rest.CopyConfig(env.Admin)
		rc.UserAgent = "skiff-controller-manager"
		cidr, err := netip.ParsePrefix(env.ClusterCIDR)
		if err != nil {
			return nil, fmt.Errorf("cluster CIDR: %w", err)
		}
		mgr, err := manager.New(manager.Config{
			REST:                   rc,
			Logger:                 env.Logger.WithGroup("controllers"),
			ClusterCIDRs:           []netip.Prefix{cidr.Masked()},
			NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, server.Part{Name: "controller manager", Run: mgr.Run})
	}
	if !cfg.DisableAgent {
		nodeIP := cfg.AgentNodeIP
		if nodeIP == nil && !env.AdvertiseAddress.IsLoopback() {
			nodeIP = env.AdvertiseAddress
		}
		acfg, err := agent.Local(agent.LocalOptions{
			DataDir:      env.DataDir,
			Bundle:       env.Bundle,
			APIServerURL: env.URL,
			NodeIP:       nodeIP,
			ClusterCIDR:  env.ClusterCIDR,
			Logger:       env.Logger.WithGroup("agent"),
		})
		if err != nil {
			return nil, err
		}
		if cfg.KubeletPort != 0 {
			acfg.KubeletPort = cfg.KubeletPort
		}
		acfg.CNIConfDir, acfg.CNIBinDirs = cfg.AgentCNIConfDir, cfg.AgentCNIBinDirs
		a, err := agent.New(acfg)
		if err != nil {
			return nil, err
		}
		out = append(out, server.Part{Name: "agent", Run: a.Run})
	}
	return out, nil
}
