package core

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"weak"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// allocator gives Services their cluster IPs and node ports, claimed in
// Reservations. The services resource calls it from BeforeCreate,
// BeforeUpdate, Rollback and AfterDelete:
//
//	BeforeCreate  claim the requested or a free cluster IP and node ports
//	BeforeUpdate  claim what the new object adds, release what it drops
//	              (type changes: NodePort → ClusterIP frees the ports,
//	              → ExternalName frees the IP)
//	Rollback      undo the last BeforeCreate/BeforeUpdate of that object
//	AfterDelete   release everything the deleted object held
//
// With nil Reservations nothing is claimed or released; requested values
// are still checked against the ranges.
type allocator struct {
	r      Reservations
	cidr   netip.Prefix
	ports  PortRange
	ipPool *pool
	npPool *pool
	log    *slog.Logger

	// mu guards undo.
	mu sync.Mutex
	// undo remembers, per object passed to BeforeCreate or BeforeUpdate,
	// what the call changed, for Rollback. Rollback receives only the
	// object, and for an update cannot tell the claims it added from the
	// ones the stored object held before. Entries go at Rollback, or when
	// the object is garbage collected after a write that succeeded.
	undo map[weak.Pointer[corev1.Service]]txn
}

// txn is what one BeforeCreate or BeforeUpdate changed.
type txn struct {
	owner    string
	reserved []string // claims made
	released []string // claims dropped
}

func newAllocator(r Reservations, cidr netip.Prefix, ports PortRange, log *slog.Logger) *allocator {
	return &allocator{
		r:      r,
		cidr:   cidr,
		ports:  ports,
		ipPool: ipPool(cidr),
		npPool: portPool(ports),
		log:    log,
		undo:   map[weak.Pointer[corev1.Service]]txn{},
	}
}

// serviceOwner is the owner string of a Service's claims.
func serviceOwner(svc *corev1.Service) string {
	return svc.Namespace + "/" + svc.Name + "/" + string(svc.UID)
}

// family returns the cluster's IP family.
func (a *allocator) family() corev1.IPFamily {
	if a.cidr.Addr().Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}

// serviceKeys returns the claims svc holds: its cluster IPs (but "None"),
// its node ports and its health check node port.
func serviceKeys(svc *corev1.Service) map[string]bool {
	keys := map[string]bool{}
	if svc == nil {
		return keys
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			keys[ipKey(ip)] = true
		}
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			keys[portKey(int(p.NodePort))] = true
		}
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		keys[portKey(int(svc.Spec.HealthCheckNodePort))] = true
	}
	return keys
}

// allocate fills in svc's cluster IP, node ports and health check node
// port, claiming them for svc, and releases what old (the stored object;
// nil on create) held that svc no longer does. On error nothing is left
// claimed and the error is an API status error: 422 for a requested value
// that is taken or out of range, 500 for a full range or a storage
// failure.
func (a *allocator) allocate(ctx context.Context, svc, old *corev1.Service) (txn, error) {
	owner := serviceOwner(svc)
	if old != nil {
		owner = serviceOwner(old)
	}
	t := txn{owner: owner}
	oldKeys := serviceKeys(old)
	used := map[string]bool{} // claims svc holds once this succeeds
	exclude := func() map[string]bool {
		m := make(map[string]bool, len(used)+len(oldKeys))
		for k := range used {
			m[k] = true
		}
		for k := range oldKeys {
			m[k] = true
		}
		return m
	}
	fail := func(err error) (txn, error) {
		a.releaseAll(ctx, t.reserved, owner, "undo failed allocation")
		return txn{}, err
	}
	invalid := func(p *field.Path, v any, msg string) error {
		return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{field.Invalid(p, v, msg)})
	}
	// claim reserves a requested key; it reports false when another owner
	// holds it.
	claim := func(k string) (bool, error) {
		if oldKeys[k] || used[k] || a.r == nil {
			used[k] = true
			return true, nil
		}
		ok, err := a.r.Reserve(ctx, k, owner)
		if err != nil {
			return false, apierrors.NewInternalError(fmt.Errorf("service %s/%s: reserve %s: %w", svc.Namespace, svc.Name, k, err))
		}
		if ok {
			used[k] = true
			t.reserved = append(t.reserved, k)
		}
		return ok, nil
	}

	// Cluster IP.
	if needsClusterIP(svc) && !isHeadless(svc) {
		switch s := svc.Spec.ClusterIP; s {
		case "":
			if a.r == nil {
				break
			}
			k, err := a.ipPool.allocate(ctx, a.r, owner, "clusterIP", exclude())
			if err != nil {
				return fail(apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %w", err)))
			}
			t.reserved = append(t.reserved, k)
			used[k] = true
			ip := k[len(ServiceIPPrefix):]
			svc.Spec.ClusterIP = ip
			svc.Spec.ClusterIPs = append([]string{ip}, svc.Spec.ClusterIPs...)
		default:
			path := field.NewPath("spec", "clusterIPs")
			ip, err := netip.ParseAddr(s)
			if err != nil {
				break // validation reported it
			}
			k := ipKey(ip)
			if !oldKeys[k] {
				if _, in := ipIndex(a.cidr, a.ipPool.size, ip); !in {
					return fail(invalid(path, svc.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s", s, s, a.cidr)))
				}
			}
			ok, err := claim(k)
			if err != nil {
				return fail(err)
			}
			if !ok {
				return fail(invalid(path, svc.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", s)))
			}
		}
	}

	// Node ports. Ports that share a port number (53/TCP and 53/UDP) share
	// a node port, as upstream allocates them.
	if needsNodePorts(svc) {
		byPort := map[int32]int32{}
		allocateAll := shouldAllocateNodePorts(svc)
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort == 0 {
				if np := byPort[p.Port]; np != 0 {
					p.NodePort = np
					continue
				}
				if np := requestedNodePort(p.Port, svc.Spec.Ports); np != 0 {
					p.NodePort = np
				}
			}
			if p.NodePort == 0 && !allocateAll {
				continue // only requested ports are honoured
			}
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			if p.NodePort != 0 {
				k := portKey(int(p.NodePort))
				if err := a.checkPort(k, oldKeys, path, p.NodePort, invalid); err != nil {
					return fail(err)
				}
				ok, err := claim(k)
				if err != nil {
					return fail(err)
				}
				if !ok {
					return fail(invalid(path, p.NodePort, "provided port is already allocated"))
				}
				byPort[p.Port] = p.NodePort
				continue
			}
			if a.r == nil {
				continue
			}
			k, err := a.npPool.allocate(ctx, a.r, owner, "nodePort/"+strconv.Itoa(i), exclude())
			if err != nil {
				return fail(apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err)))
			}
			t.reserved = append(t.reserved, k)
			used[k] = true
			n, _ := strconv.Atoi(k[len(ServiceNodePortPrefix):])
			p.NodePort = int32(n)
			byPort[p.Port] = p.NodePort
		}
	}

	// Health check node port (LoadBalancer with externalTrafficPolicy
	// Local).
	if needsHealthCheck(svc) {
		path := field.NewPath("spec", "healthCheckNodePort")
		if hc := svc.Spec.HealthCheckNodePort; hc != 0 {
			k := portKey(int(hc))
			if used[k] && !oldKeys[k] {
				return fail(invalid(path, hc, fmt.Sprintf("failed to allocate requested HealthCheck NodePort %d: provided port is already allocated", hc)))
			}
			if err := a.checkPort(k, oldKeys, path, hc, invalid); err != nil {
				return fail(err)
			}
			ok, err := claim(k)
			if err != nil {
				return fail(err)
			}
			if !ok {
				return fail(invalid(path, hc, fmt.Sprintf("failed to allocate requested HealthCheck NodePort %d: provided port is already allocated", hc)))
			}
		} else if a.r != nil {
			k, err := a.npPool.allocate(ctx, a.r, owner, "healthCheckNodePort", exclude())
			if err != nil {
				return fail(apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %w", err)))
			}
			t.reserved = append(t.reserved, k)
			used[k] = true
			n, _ := strconv.Atoi(k[len(ServiceNodePortPrefix):])
			svc.Spec.HealthCheckNodePort = int32(n)
		}
	}

	// Release what the stored object held and the new one does not.
	if a.r != nil {
		for k := range oldKeys {
			if used[k] {
				continue
			}
			if err := a.r.Release(ctx, k, owner); err != nil {
				// The new object is valid without the old claim; keep
				// going and let a repair pass collect the leak.
				a.log.Warn("release claim", "key", k, "owner", owner, "err", err)
				continue
			}
			t.released = append(t.released, k)
		}
	}
	return t, nil
}

// checkPort fails a requested node port outside the range, unless the
// stored object already held it (the range may have changed since).
func (a *allocator) checkPort(k string, oldKeys map[string]bool, path *field.Path, port int32, invalid func(*field.Path, any, string) error) error {
	if oldKeys[k] || a.ports.Contains(int(port)) {
		return nil
	}
	return invalid(path, port, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", a.ports))
}

// remember records t as the undo of svc's last allocation.
func (a *allocator) remember(svc *corev1.Service, t txn) {
	if len(t.reserved) == 0 && len(t.released) == 0 {
		return
	}
	wp := weak.Make(svc)
	a.mu.Lock()
	a.undo[wp] = t
	a.mu.Unlock()
	runtime.AddCleanup(svc, func(wp weak.Pointer[corev1.Service]) {
		a.mu.Lock()
		delete(a.undo, wp)
		a.mu.Unlock()
	}, wp)
}

// rollback undoes the last allocate of svc: it releases the claims it
// made and claims again what it released. Failures are logged: a repair
// pass collects what is left.
func (a *allocator) rollback(ctx context.Context, svc *corev1.Service) {
	wp := weak.Make(svc)
	a.mu.Lock()
	t, ok := a.undo[wp]
	delete(a.undo, wp)
	a.mu.Unlock()
	if !ok || a.r == nil {
		return
	}
	a.releaseAll(ctx, t.reserved, t.owner, "rollback")
	for _, k := range t.released {
		ok, err := a.r.Reserve(ctx, k, t.owner)
		if err != nil || !ok {
			a.log.Warn("rollback: reclaim released claim", "key", k, "owner", t.owner, "taken", !ok, "err", err)
		}
	}
}

// release drops every claim svc holds (after a delete).
func (a *allocator) release(ctx context.Context, svc *corev1.Service) error {
	if a.r == nil {
		return nil
	}
	owner := serviceOwner(svc)
	var firstErr error
	for k := range serviceKeys(svc) {
		if err := a.r.Release(ctx, k, owner); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("service %s/%s: release %s: %w", svc.Namespace, svc.Name, k, err)
		}
	}
	return firstErr
}

func (a *allocator) releaseAll(ctx context.Context, keys []string, owner, why string) {
	for _, k := range keys {
		if err := a.r.Release(ctx, k, owner); err != nil {
			a.log.Warn(why+": release claim", "key", k, "owner", owner, "err", err)
		}
	}
}

// requestedNodePort returns the node port a client asked for on any port
// entry with this port number, or 0.
func requestedNodePort(port int32, ports []corev1.ServicePort) int32 {
	for _, p := range ports {
		if p.Port == port && p.NodePort != 0 {
			return p.NodePort
		}
	}
	return 0
}

// LeakedClaims returns the claims in r (key to owner) that no Service in
// services holds: left behind by a delete whose release failed, or by an
// update whose write failed after it claimed. A claim made by a create
// that is still in flight looks leaked too, so a repair loop should
// release (with r.Release and the returned owner) only claims it found
// leaked in two passes some seconds apart, as upstream's repair
// controllers do.
func LeakedClaims(ctx context.Context, r Reservations, services []*corev1.Service) (map[string]string, error) {
	type claim struct{ key, owner string }
	held := map[claim]bool{}
	for _, svc := range services {
		owner := serviceOwner(svc)
		for k := range serviceKeys(svc) {
			held[claim{k, owner}] = true
		}
	}
	leaked := map[string]string{}
	for _, prefix := range []string{ServiceIPPrefix, ServiceNodePortPrefix} {
		claims, err := r.List(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("list %s claims: %w", prefix, err)
		}
		for k, owner := range claims {
			if !held[claim{k, owner}] {
				leaked[k] = owner
			}
		}
	}
	return leaked, nil
}
