package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
)

// allocation is one pod IP handed out, as kept in its file.
type allocation struct {
	IP        netip.Addr `json:"ip"`
	SandboxID string     `json:"sandboxID"`
	Namespace string     `json:"namespace,omitempty"`
	Name      string     `json:"name,omitempty"`
	UID       string     `json:"uid,omitempty"`
	// Ports are the sandbox's port mappings (normalized), so that a
	// restarted agent makes their rules again.
	Ports []PortMapping `json:"ports,omitempty"`
}

// allocator is a host-local IPAM: it hands out the addresses of one pod
// CIDR, skipping the network address, the gateway (the first address)
// and the broadcast address, and keeps each allocation as a file named by
// the IP in dir. Files are not fsynced: after a power loss every sandbox
// is gone too, and Reconcile frees them all.
//
// Addresses are handed out round-robin from the last one given, so a
// released address is not reused at once (connections to a deleted pod
// do not reach its successor). The last address is kept in memory only;
// after a restart allocation resumes after the highest address in use.
//
// An allocator is not safe for concurrent use; Network.mu guards it.
type allocator struct {
	dir  string
	cidr netip.Prefix
	log  *slog.Logger

	byIP      map[netip.Addr]allocation
	bySandbox map[string]netip.Addr
	last      netip.Addr
}

// openAllocator loads the allocations in dir, creating dir if needed.
// Allocations outside cidr (left from an earlier pod CIDR) are kept, so
// their sandboxes can still be torn down, but never handed out again. A
// file that cannot be read as an allocation keeps its IP reserved for an
// unknown sandbox, which the next Reconcile frees.
func openAllocator(dir string, cidr netip.Prefix, log *slog.Logger) (*allocator, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("IP allocations: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("IP allocations: %w", err)
	}
	a := &allocator{
		dir:       dir,
		cidr:      cidr,
		log:       log,
		byIP:      map[netip.Addr]allocation{},
		bySandbox: map[string]netip.Addr{},
	}
	for _, e := range entries {
		name := e.Name()
		ip, err := netip.ParseAddr(name)
		if err != nil || !e.Type().IsRegular() {
			log.Warn("ignoring unexpected file in IP allocations", "file", filepath.Join(dir, name))
			continue
		}
		rec, err := readAllocation(filepath.Join(dir, name))
		if err != nil || rec.IP != ip {
			log.Warn("unreadable IP allocation; keeping the IP reserved until the next reconcile", "ip", ip, "err", err)
			rec = allocation{IP: ip}
		}
		if prev, dup := a.bySandbox[rec.SandboxID]; dup && rec.SandboxID != "" {
			log.Warn("sandbox has two IP allocations; dropping one", "sandbox", rec.SandboxID, "kept", prev, "dropped", ip)
			os.Remove(filepath.Join(dir, name))
			continue
		}
		a.byIP[ip] = rec
		if rec.SandboxID != "" {
			a.bySandbox[rec.SandboxID] = ip
		}
	}
	a.setCIDR(cidr)
	return a, nil
}

// setCIDR makes the allocator hand out addresses of cidr, resuming after
// the highest address in use there. Allocations outside it are kept.
func (a *allocator) setCIDR(cidr netip.Prefix) {
	a.cidr = cidr
	a.last = gatewayOf(cidr)
	for ip := range a.byIP {
		if cidr.Contains(ip) && a.last.Less(ip) {
			a.last = ip
		}
	}
}

func readAllocation(file string) (allocation, error) {
	var rec allocation
	b, err := os.ReadFile(file)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, err
	}
	if err := validSandboxID(rec.SandboxID); err != nil {
		return rec, err
	}
	return rec, nil
}

// gatewayOf returns the first address of cidr.
func gatewayOf(cidr netip.Prefix) netip.Addr {
	return cidr.Masked().Addr().Next()
}

// broadcastOf returns the last address of an IPv4 cidr.
func broadcastOf(cidr netip.Prefix) netip.Addr {
	b := cidr.Masked().Addr().As4()
	host := uint32(1)<<(32-cidr.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// get returns the allocation of a sandbox.
func (a *allocator) get(sandboxID string) (allocation, bool) {
	ip, ok := a.bySandbox[sandboxID]
	if !ok {
		return allocation{}, false
	}
	return a.byIP[ip], true
}

// len returns the number of allocations.
func (a *allocator) len() int { return len(a.byIP) }

// all returns every allocation, ordered by IP. The caller owns the slice.
func (a *allocator) all() []allocation {
	out := make([]allocation, 0, len(a.byIP))
	for _, rec := range a.byIP {
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// allocate gives pod the next free address and records it. It returns
// ErrExhausted when every address is taken, and ErrNoPodCIDR when the
// allocator has no CIDR.
func (a *allocator) allocate(pod PodRef) (allocation, error) {
	if !a.cidr.IsValid() {
		return allocation{}, fmt.Errorf("allocate IP: %w", ErrNoPodCIDR)
	}
	first := gatewayOf(a.cidr).Next()
	bcast := broadcastOf(a.cidr)
	usable := 1<<(32-a.cidr.Bits()) - 3 // all but network, gateway, broadcast
	ip, found := a.last, false
	for range usable {
		ip = ip.Next()
		if ip.Less(first) || !ip.Less(bcast) {
			ip = first
		}
		if _, taken := a.byIP[ip]; !taken {
			found = true
			break
		}
	}
	if !found {
		return allocation{}, fmt.Errorf("allocate IP: all %d addresses of %s are in use: %w", usable, a.cidr, ErrExhausted)
	}
	rec := allocation{IP: ip, SandboxID: pod.SandboxID, Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, Ports: pod.Ports}
	if err := a.write(rec); err != nil {
		return allocation{}, fmt.Errorf("allocate IP %s: %w", ip, err)
	}
	a.byIP[ip] = rec
	a.bySandbox[pod.SandboxID] = ip
	a.last = ip
	return rec, nil
}

// setPorts replaces the port mappings of the allocation of ip and records
// them. The caller owns ports; the allocator keeps it.
func (a *allocator) setPorts(ip netip.Addr, ports []PortMapping) error {
	rec, ok := a.byIP[ip]
	if !ok {
		return nil
	}
	rec.Ports = ports
	if err := a.write(rec); err != nil {
		return fmt.Errorf("record port mappings of IP %s: %w", ip, err)
	}
	a.byIP[ip] = rec
	return nil
}

// write records rec in its file. The file is written in place: a crash
// in the middle leaves a short file, which openAllocator reads as an IP
// reserved for an unknown sandbox (freed by the next Reconcile). That is
// cheaper than a temporary file and a rename on every pod start.
func (a *allocator) write(rec allocation) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(a.dir, rec.IP.String()), append(b, '\n'), 0o600)
}

// release frees ip. Releasing a free address is not an error.
func (a *allocator) release(ip netip.Addr) error {
	rec, ok := a.byIP[ip]
	if err := os.Remove(filepath.Join(a.dir, ip.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release IP %s: %w", ip, err)
	}
	if !ok {
		return nil
	}
	delete(a.byIP, ip)
	if a.bySandbox[rec.SandboxID] == ip {
		delete(a.bySandbox, rec.SandboxID)
	}
	return nil
}
