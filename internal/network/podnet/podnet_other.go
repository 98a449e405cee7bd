//go:build !linux

package podnet

import (
	"log/slog"
	"net/netip"
)

// system is the platform side of a Network; there is none here, so New
// fails with ErrUnsupported and the methods below are never reached.
type system struct{ mtu int }

type podNS struct{}

func (p *podNS) close() {}

func openSystem(Config, *slog.Logger) (*system, error) { return nil, ErrUnsupported }

func (s *system) close()                                    {}
func (s *system) setPodCIDR(netip.Prefix)                   {}
func (s *system) setupNode([]hostPort) error                { return ErrUnsupported }
func (s *system) installRules([]hostPort) error             { return ErrUnsupported }
func (s *system) forgetUDPFlows([]PortMapping)              {}
func (s *system) openPodNS(string) (*podNS, error)          { return nil, ErrUnsupported }
func (s *system) plumbed(*podNS, allocation) (Result, bool) { return Result{}, false }
func (s *system) plumb(*podNS, allocation) (Result, error)  { return Result{}, ErrUnsupported }
func (s *system) unplumb(string, *podNS)                    {}
func (s *system) teardown(string, string) error             { return ErrUnsupported }
func (s *system) deleteStrayVeths(map[string]bool) error    { return ErrUnsupported }
func (s *system) syncRoutes(map[netip.Prefix]Peer) error    { return ErrUnsupported }
func (s *system) localAddrs() (map[netip.Addr]bool, error)  { return nil, ErrUnsupported }
