package podnet

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Protocol is the transport protocol of a PortMapping.
type Protocol string

// The protocols a PortMapping may forward.
const (
	TCP  Protocol = "tcp"
	UDP  Protocol = "udp"
	SCTP Protocol = "sctp"
)

// PortMapping makes a port of the node reach a port of the pod: a
// container's hostPort. New connections to HostPort on the node's
// addresses (or on HostIP alone) are sent to the pod's IP at
// ContainerPort, whether they come from another machine, from the node
// itself (through any of its addresses, 127.0.0.1 included) or from a
// pod, the target pod included.
type PortMapping struct {
	Protocol      Protocol `json:"protocol"`
	HostPort      uint16   `json:"hostPort"`
	ContainerPort uint16   `json:"containerPort"`
	// HostIP limits the mapping to one address of the node. The zero
	// value and 0.0.0.0 mean every address.
	HostIP netip.Addr `json:"hostIP,omitzero"`
}

func (m PortMapping) String() string {
	host := "*"
	if m.HostIP.IsValid() {
		host = m.HostIP.String()
	}
	return fmt.Sprintf("%s %s:%d->%d", m.Protocol, host, m.HostPort, m.ContainerPort)
}

// overlaps reports whether m and o claim the same port of the node: the
// same protocol and host port, on addresses that overlap.
func (m PortMapping) overlaps(o PortMapping) bool {
	return m.Protocol == o.Protocol && m.HostPort == o.HostPort &&
		(!m.HostIP.IsValid() || !o.HostIP.IsValid() || m.HostIP == o.HostIP)
}

// comparePorts orders mappings for the rules: by host port, protocol,
// host IP and container port.
func comparePorts(a, b PortMapping) int {
	return cmp.Or(
		cmp.Compare(a.HostPort, b.HostPort),
		cmp.Compare(a.Protocol, b.Protocol),
		a.HostIP.Compare(b.HostIP),
		cmp.Compare(a.ContainerPort, b.ContainerPort),
	)
}

// normalizePorts checks a pod's mappings and returns them sorted, without
// duplicates, with 0.0.0.0 as the zero address. Mappings for an IPv6 host
// address are dropped (pods have IPv4 addresses only); dropped reports
// them. Two mappings of one pod that claim the same port of the node are
// ErrInvalid, as are ports of 0 and unknown protocols.
func normalizePorts(in []PortMapping) (out, dropped []PortMapping, err error) {
	for _, m := range in {
		switch m.Protocol {
		case TCP, UDP, SCTP:
		default:
			return nil, nil, fmt.Errorf("port mapping %s: protocol %q is not tcp, udp or sctp: %w", m, m.Protocol, ErrInvalid)
		}
		if m.HostPort == 0 || m.ContainerPort == 0 {
			return nil, nil, fmt.Errorf("port mapping %s: ports must be 1 to 65535: %w", m, ErrInvalid)
		}
		if m.HostIP.IsValid() {
			m.HostIP = m.HostIP.Unmap()
			switch {
			case m.HostIP.Is6():
				dropped = append(dropped, m)
				continue
			case m.HostIP.IsUnspecified():
				m.HostIP = netip.Addr{}
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, comparePorts)
	out = slices.Compact(out)
	for i := 1; i < len(out); i++ {
		for _, o := range out[:i] {
			if out[i].overlaps(o) {
				return nil, nil, fmt.Errorf("port mappings %s and %s claim the same port of the node: %w", o, out[i], ErrInvalid)
			}
		}
	}
	return out, dropped, nil
}

// hostPort is one mapping of one sandbox, as the rules use it.
type hostPort struct {
	PortMapping
	podIP netip.Addr
	// pod names the pod in the rule's comment.
	pod string
}
