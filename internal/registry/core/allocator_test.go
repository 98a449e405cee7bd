package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/registry/core"
	"github.com/skiff-sh/skiff/internal/registry/core/reservationstest"
)

// services drives the services resource as the REST layer does, over a
// map instead of etcd.
type services struct {
	r      *registry.Resource
	mem    *reservationstest.Memory
	stored map[string]*corev1.Service
}

func newServices(t *testing.T, cfg core.Config) *services {
	t.Helper()
	mem := reservationstest.NewMemory()
	if cfg.Reservations == nil {
		cfg.Reservations = mem
	}
	return &services{r: lookupIn(t, cfg, "/services"), mem: mem, stored: map[string]*corev1.Service{}}
}

// create runs the create path; with dryRun or failWrite it rolls back
// instead of storing.
func (s *services) create(t *testing.T, svc *corev1.Service, dryRun, failWrite bool) (*corev1.Service, error) {
	t.Helper()
	ctx := context.Background()
	svc = svc.DeepCopy()
	if svc.UID == "" {
		svc.UID = newUID()
	}
	if errs := create(t, s.r, svc); len(errs) != 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
	}
	if err := s.r.BeforeCreate(ctx, svc); err != nil {
		return nil, err
	}
	if dryRun || failWrite {
		s.r.Rollback(ctx, svc)
		return svc, nil
	}
	svc.ResourceVersion = "1"
	s.stored[svc.Name] = svc.DeepCopy()
	return svc, nil
}

// update runs the update path on a copy of the stored object changed by
// mutate; with dryRun it rolls back instead of storing.
func (s *services) update(t *testing.T, name string, mutate func(*corev1.Service), dryRun bool) (*corev1.Service, error) {
	t.Helper()
	ctx := context.Background()
	old := s.stored[name]
	svc := old.DeepCopy()
	mutate(svc)
	if errs := update(t, s.r, svc, old); len(errs) != 0 {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), name, errs)
	}
	if err := s.r.BeforeUpdate(ctx, svc, old); err != nil {
		return nil, err
	}
	if dryRun {
		s.r.Rollback(ctx, svc)
		return svc, nil
	}
	s.stored[name] = svc.DeepCopy()
	return svc, nil
}

func (s *services) delete(t *testing.T, name string) {
	t.Helper()
	if err := s.r.AfterDelete(context.Background(), s.stored[name]); err != nil {
		t.Fatalf("AfterDelete: %v", err)
	}
	delete(s.stored, name)
}

func (s *services) mustCreate(t *testing.T, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := s.create(t, svc, false, false)
	if err != nil {
		t.Fatalf("create %s: %v", svc.Name, err)
	}
	return out
}

func (s *services) mustUpdate(t *testing.T, name string, mutate func(*corev1.Service)) *corev1.Service {
	t.Helper()
	out, err := s.update(t, name, mutate, false)
	if err != nil {
		t.Fatalf("update %s: %v", name, err)
	}
	return out
}

// claims returns the keys held, with owners shortened to the service name.
func (s *services) claims() map[string]string {
	out := map[string]string{}
	for k, o := range s.mem.Claims() {
		parts := strings.Split(o, "/")
		out[k] = parts[1]
	}
	return out
}

func namedService(name string, mutate func(*corev1.Service)) *corev1.Service {
	svc := basicService()
	svc.Name = name
	svc.UID = ""
	if mutate != nil {
		mutate(svc)
	}
	return svc
}

func nodePortService(name string, ports ...int32) *corev1.Service {
	return namedService(name, func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports = nil
		for i, p := range ports {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + strconv.Itoa(i), Port: 80 + int32(i), NodePort: p})
		}
	})
}

func ipKey(ip string) string    { return core.ServiceIPPrefix + ip }
func portKey(port int32) string { return core.ServiceNodePortPrefix + strconv.Itoa(int(port)) }
func inRange(p netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && p.Contains(a)
}

func TestAllocator_ClusterIP(t *testing.T) {
	cidr := netip.MustParsePrefix("10.43.0.0/16")
	t.Run("AllocatesFreeIPInUpperBand", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("web", nil))
		ip := svc.Spec.ClusterIP
		if !inRange(cidr, ip) {
			t.Fatalf("clusterIP %q outside %s", ip, cidr)
		}
		// The first 256 addresses are kept for requests.
		if a := netip.MustParseAddr(ip); a.Less(netip.MustParseAddr("10.43.1.1")) {
			t.Errorf("clusterIP %s is in the static band", ip)
		}
		if diff := cmp.Diff([]string{ip}, svc.Spec.ClusterIPs); diff != "" {
			t.Errorf("clusterIPs (-want +got):\n%s", diff)
		}
		owner := s.mem.Claims()[ipKey(ip)]
		if want := "default/web/" + string(svc.UID); owner != want {
			t.Errorf("owner = %q, want %q", owner, want)
		}
	})
	t.Run("DistinctIPsNeverTheFirstAddress", func(t *testing.T) {
		s := newServices(t, core.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/27")})
		seen := map[string]bool{}
		// 30 usable addresses; .1 is never handed out.
		for i := range 29 {
			svc := s.mustCreate(t, namedService(fmt.Sprintf("s%d", i), nil))
			ip := svc.Spec.ClusterIP
			if seen[ip] || ip == "10.96.0.1" || ip == "10.96.0.0" || ip == "10.96.0.31" {
				t.Fatalf("service %d got %s (seen before: %v)", i, ip, seen[ip])
			}
			seen[ip] = true
		}
		_, err := s.create(t, namedService("full", nil), false, false)
		wantStatus(t, err, 500, "failed to allocate a serviceIP: range is full")
		// The first address is still there for the kubernetes service.
		s.mustCreate(t, namedService("kubernetes", func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.1" }))
	})
	t.Run("HonoursRequestedIP", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("kubernetes", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.1" }))
		if svc.Spec.ClusterIP != "10.43.0.1" {
			t.Errorf("clusterIP = %q", svc.Spec.ClusterIP)
		}
		if diff := cmp.Diff(map[string]string{ipKey("10.43.0.1"): "kubernetes"}, s.claims()); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	})
	t.Run("RefusesTakenIP", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, namedService("a", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }))
		_, err := s.create(t, namedService("b", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }), false, false)
		wantStatus(t, err, 422, "failed to allocate IP 10.43.0.10: provided IP is already allocated")
		if c := statusCauses(t, err); len(c) != 1 || c[0].Field != "spec.clusterIPs" {
			t.Errorf("causes = %v", c)
		}
	})
	for _, ip := range []string{"10.44.0.10", "10.43.0.0", "10.43.255.255", "fd00::10"} {
		t.Run("RefusesOutOfRange/"+ip, func(t *testing.T) {
			s := newServices(t, core.Config{})
			_, err := s.create(t, namedService("a", func(s *corev1.Service) {
				s.Spec.ClusterIP = ip
				s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
			}), false, false)
			if ip == "fd00::10" {
				wantStatus(t, err, 422, "expected an IPv4 value")
				return
			}
			wantStatus(t, err, 422, "the provided IP ("+ip+") is not in the valid range. The range of valid IPs is 10.43.0.0/16")
			if len(s.claims()) != 0 {
				t.Errorf("claims left: %v", s.claims())
			}
		})
	}
	t.Run("HeadlessGetsNone", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("db", func(s *corev1.Service) { s.Spec.ClusterIP = "None" }))
		if svc.Spec.ClusterIP != "None" || len(s.claims()) != 0 {
			t.Errorf("clusterIP %q, claims %v", svc.Spec.ClusterIP, s.claims())
		}
	})
	t.Run("ExternalNameGetsNothing", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("db", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.Ports = nil
		}))
		if svc.Spec.ClusterIP != "" || len(s.claims()) != 0 {
			t.Errorf("clusterIP %q, claims %v", svc.Spec.ClusterIP, s.claims())
		}
	})
	t.Run("IPv6Range", func(t *testing.T) {
		s := newServices(t, core.Config{ServiceCIDR: netip.MustParsePrefix("fd00:43::/112")})
		svc := s.mustCreate(t, namedService("web", nil))
		if !inRange(netip.MustParsePrefix("fd00:43::/112"), svc.Spec.ClusterIP) || svc.Spec.IPFamilies[0] != corev1.IPv6Protocol {
			t.Errorf("clusterIP %q families %v", svc.Spec.ClusterIP, svc.Spec.IPFamilies)
		}
	})
}

func TestAllocator_NodePorts(t *testing.T) {
	t.Run("AllocatesDistinctPortsInRange", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, nodePortService("web", 0, 0, 0))
		seen := map[int32]bool{}
		for _, p := range svc.Spec.Ports {
			if p.NodePort < 30000 || p.NodePort > 32767 || seen[p.NodePort] {
				t.Errorf("nodePort %d out of range or repeated", p.NodePort)
			}
			seen[p.NodePort] = true
			if s.claims()[portKey(p.NodePort)] != "web" {
				t.Errorf("nodePort %d not claimed", p.NodePort)
			}
		}
	})
	t.Run("HonoursRequestedPort", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, nodePortService("web", 30080))
		if svc.Spec.Ports[0].NodePort != 30080 || s.claims()[portKey(30080)] != "web" {
			t.Errorf("nodePort %d, claims %v", svc.Spec.Ports[0].NodePort, s.claims())
		}
	})
	t.Run("RefusesTakenPort", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, nodePortService("a", 30080))
		_, err := s.create(t, nodePortService("b", 0, 30080), false, false)
		wantStatus(t, err, 422, "provided port is already allocated")
		if c := statusCauses(t, err); len(c) != 1 || c[0].Field != "spec.ports[1].nodePort" {
			t.Errorf("causes = %v", c)
		}
		for k, owner := range s.claims() {
			if owner != "a" {
				t.Errorf("the failed create left claim %s", k)
			}
		}
	})
	t.Run("RefusesOutOfRangePort", func(t *testing.T) {
		s := newServices(t, core.Config{})
		_, err := s.create(t, nodePortService("a", 8080), false, false)
		wantStatus(t, err, 422, "provided port is not in the valid range. The range of valid ports is 30000-32767")
	})
	t.Run("SharesPortBetweenProtocols", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("dns", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53}, {Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP}}
		}))
		if a, b := svc.Spec.Ports[0].NodePort, svc.Spec.Ports[1].NodePort; a == 0 || a != b {
			t.Errorf("nodePorts %d and %d, want one shared port", a, b)
		}
		if n := len(s.claims()); n != 2 { // the IP and one port
			t.Errorf("claims = %v", s.claims())
		}
	})
	t.Run("LoadBalancerWithoutNodePorts", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("lb", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.AllocateLoadBalancerNodePorts = ptrTo(false)
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}))
		if svc.Spec.Ports[0].NodePort != 0 {
			t.Errorf("nodePort %d allocated with allocateLoadBalancerNodePorts=false", svc.Spec.Ports[0].NodePort)
		}
		hc := svc.Spec.HealthCheckNodePort
		if hc < 30000 || hc > 32767 || s.claims()[portKey(hc)] != "lb" {
			t.Errorf("healthCheckNodePort %d, claims %v", hc, s.claims())
		}
	})
	t.Run("RefusesHealthCheckPortUsedAsNodePort", func(t *testing.T) {
		s := newServices(t, core.Config{})
		_, err := s.create(t, namedService("lb", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.Ports[0].NodePort = 30100
			s.Spec.HealthCheckNodePort = 30100
		}), false, false)
		wantStatus(t, err, 422, "failed to allocate requested HealthCheck NodePort 30100: provided port is already allocated")
		if len(s.claims()) != 0 {
			t.Errorf("claims left: %v", s.claims())
		}
	})
	t.Run("RangeFull", func(t *testing.T) {
		s := newServices(t, core.Config{NodePortRange: core.PortRange{First: 30000, Last: 30002}})
		s.mustCreate(t, nodePortService("a", 0, 0, 0))
		_, err := s.create(t, nodePortService("b", 0), false, false)
		wantStatus(t, err, 500, "failed to allocate a nodePort: range is full")
		if n := len(s.claims()); n != 4 { // a's IP and three ports; nothing of b
			t.Errorf("claims = %v", s.claims())
		}
	})
}

func TestAllocator_Release(t *testing.T) {
	t.Run("OnDelete", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("lb", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}))
		if n := len(s.claims()); n != 3 {
			t.Fatalf("claims = %v, want IP, node port, health check port", s.claims())
		}
		s.delete(t, "lb")
		if len(s.claims()) != 0 {
			t.Errorf("claims after delete: %v", s.claims())
		}
		// The values are free again.
		s.mustCreate(t, namedService("again", func(s *corev1.Service) { s.Spec.ClusterIP = svc.Spec.ClusterIP }))
	})
	t.Run("DeleteKeepsOtherOwnersClaims", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, namedService("a", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }))
		// A stale copy of a recreated service must not release the new one's claims.
		stale := s.stored["a"].DeepCopy()
		s.delete(t, "a")
		s.mustCreate(t, namedService("a", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }))
		if err := s.r.AfterDelete(context.Background(), stale); err != nil {
			t.Fatal(err)
		}
		if s.claims()[ipKey("10.43.0.10")] != "a" {
			t.Errorf("claims = %v", s.claims())
		}
	})
	t.Run("NodePortToClusterIP", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, nodePortService("web", 30080, 0))
		ip := svc.Spec.ClusterIP
		s.mustUpdate(t, "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
		})
		if diff := cmp.Diff(map[string]string{ipKey(ip): "web"}, s.claims()); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	})
	t.Run("ClusterIPToExternalNameAndBack", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, namedService("web", nil))
		svc := s.mustUpdate(t, "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "web.example.com"
		})
		if svc.Spec.ClusterIP != "" || len(s.claims()) != 0 {
			t.Fatalf("clusterIP %q, claims %v", svc.Spec.ClusterIP, s.claims())
		}
		svc = s.mustUpdate(t, "web", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.ExternalName = ""
		})
		if svc.Spec.ClusterIP == "" || s.claims()[ipKey(svc.Spec.ClusterIP)] != "web" {
			t.Errorf("clusterIP %q, claims %v", svc.Spec.ClusterIP, s.claims())
		}
	})
	t.Run("ClusterIPToNodePortAllocates", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, namedService("web", nil))
		svc := s.mustUpdate(t, "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		if np := svc.Spec.Ports[0].NodePort; np == 0 || s.claims()[portKey(np)] != "web" {
			t.Errorf("nodePort %d, claims %v", np, s.claims())
		}
	})
	t.Run("ChangedNodePortReleasesOldOne", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, nodePortService("web", 30080))
		s.mustUpdate(t, "web", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30081 })
		if _, ok := s.claims()[portKey(30080)]; ok || s.claims()[portKey(30081)] != "web" {
			t.Errorf("claims = %v", s.claims())
		}
	})
	t.Run("HealthCheckPortOnPolicyChange", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, namedService("lb", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }))
		svc := s.mustUpdate(t, "lb", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal })
		hc := svc.Spec.HealthCheckNodePort
		if hc == 0 || s.claims()[portKey(hc)] != "lb" {
			t.Fatalf("healthCheckNodePort %d, claims %v", hc, s.claims())
		}
		svc = s.mustUpdate(t, "lb", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster })
		if _, ok := s.claims()[portKey(hc)]; ok || svc.Spec.HealthCheckNodePort != 0 {
			t.Errorf("health check port %d kept: %v", svc.Spec.HealthCheckNodePort, s.claims())
		}
	})
}

func TestAllocator_Rollback(t *testing.T) {
	t.Run("FailedCreateReleasesEverything", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc, err := s.create(t, nodePortService("web", 0, 30080), false, true)
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP == "" || svc.Spec.Ports[0].NodePort == 0 {
			t.Errorf("nothing was allocated: %+v", svc.Spec)
		}
		if len(s.claims()) != 0 {
			t.Errorf("claims after rollback: %v", s.claims())
		}
	})
	t.Run("DryRunCreateShowsValuesClaimsNothing", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc, err := s.create(t, namedService("web", nil), true, false)
		if err != nil || svc.Spec.ClusterIP == "" {
			t.Fatalf("dry run: %v, clusterIP %q", err, svc.Spec.ClusterIP)
		}
		if len(s.claims()) != 0 {
			t.Errorf("claims after dry run: %v", s.claims())
		}
	})
	t.Run("DryRunUpdateAddingPortsKeepsStoredClaims", func(t *testing.T) {
		s := newServices(t, core.Config{})
		svc := s.mustCreate(t, namedService("web", nil))
		before := s.claims()
		out, err := s.update(t, "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }, true)
		if err != nil || out.Spec.Ports[0].NodePort == 0 {
			t.Fatalf("dry run: %v", err)
		}
		if diff := cmp.Diff(before, s.claims()); diff != "" {
			t.Errorf("claims changed (-before +after):\n%s", diff)
		}
		if s.claims()[ipKey(svc.Spec.ClusterIP)] != "web" {
			t.Error("the stored IP was released")
		}
	})
	t.Run("DryRunUpdateDroppingPortsReclaimsThem", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, nodePortService("web", 30080))
		before := s.claims()
		if _, err := s.update(t, "web", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }, true); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, s.claims()); diff != "" {
			t.Errorf("claims changed (-before +after):\n%s", diff)
		}
	})
	t.Run("RollbackWithoutAllocationIsNoop", func(t *testing.T) {
		s := newServices(t, core.Config{})
		s.mustCreate(t, namedService("web", nil))
		before := s.claims()
		s.r.Rollback(context.Background(), s.stored["web"].DeepCopy())
		if diff := cmp.Diff(before, s.claims()); diff != "" {
			t.Errorf("claims changed (-before +after):\n%s", diff)
		}
	})
}

// TestAllocator_RetriedUpdateReusesClaims replays what the store does on
// a conflict: BeforeUpdate runs again on a fresh copy, and must land on
// the port of the first try instead of claiming a second one.
func TestAllocator_RetriedUpdateReusesClaims(t *testing.T) {
	s := newServices(t, core.Config{})
	s.mustCreate(t, namedService("web", nil))
	old := s.stored["web"]
	var ports []int32
	for range 3 {
		svc := old.DeepCopy()
		svc.Spec.Type = corev1.ServiceTypeNodePort
		if errs := update(t, s.r, svc, old); len(errs) != 0 {
			t.Fatal(errs)
		}
		if err := s.r.BeforeUpdate(context.Background(), svc, old); err != nil {
			t.Fatal(err)
		}
		ports = append(ports, svc.Spec.Ports[0].NodePort)
	}
	if ports[0] != ports[1] || ports[1] != ports[2] {
		t.Errorf("retries got ports %v, want one port", ports)
	}
	if n := len(s.claims()); n != 2 {
		t.Errorf("claims = %v, want the IP and one port", s.claims())
	}
}

// TestAllocator_ConcurrentServersNeverShareAnIP creates services through
// two API servers' resources sharing one Reservations, from many
// goroutines, in a range small enough to crowd. Run with -race.
func TestAllocator_ConcurrentServersNeverShareAnIP(t *testing.T) {
	mem := reservationstest.NewMemory()
	cfg := core.Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/24"), Reservations: mem}
	servers := []*registry.Resource{lookupIn(t, cfg, "/services"), lookupIn(t, cfg, "/services")}
	const n = 240 // of 253 allocatable addresses
	ips := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := servers[i%2]
			svc := namedService(fmt.Sprintf("s%d", i), nil)
			svc.UID = newUID()
			r.PrepareForCreate(context.Background(), svc)
			r.Default(svc)
			if err := r.BeforeCreate(context.Background(), svc); err != nil {
				errs <- err
				return
			}
			ips[i] = svc.Spec.ClusterIP
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, ip := range ips {
		if j, dup := seen[ip]; dup {
			t.Fatalf("services %d and %d both got %s", j, i, ip)
		}
		seen[ip] = i
	}
	if len(mem.Claims()) != n {
		t.Errorf("%d claims for %d services", len(mem.Claims()), n)
	}
}

func TestAllocator_Disabled(t *testing.T) {
	r := lookup(t, "/services")
	ctx := context.Background()
	t.Run("NoValuesAssigned", func(t *testing.T) {
		svc := nodePortService("web", 0)
		svc.UID = newUID()
		create(t, r, svc)
		if err := r.BeforeCreate(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != "" || svc.Spec.Ports[0].NodePort != 0 {
			t.Errorf("values assigned without Reservations: %+v", svc.Spec)
		}
	})
	t.Run("RequestedValuesStillChecked", func(t *testing.T) {
		svc := nodePortService("web", 80)
		svc.Spec.ClusterIP = "192.168.0.1"
		svc.UID = newUID()
		create(t, r, svc)
		wantStatus(t, r.BeforeCreate(ctx, svc), 422, "is not in the valid range")
	})
}

// failing is a Reservations whose storage is down.
type failing struct{}

func (failing) Reserve(context.Context, string, string) (bool, error) {
	return false, errors.New("etcd unavailable")
}
func (failing) Release(context.Context, string, string) error { return errors.New("etcd unavailable") }
func (failing) List(context.Context, string) (map[string]string, error) {
	return nil, errors.New("etcd unavailable")
}

func TestAllocator_StorageErrors(t *testing.T) {
	r := lookupIn(t, core.Config{Reservations: failing{}}, "/services")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Service)
	}{
		{"RandomIP", func(*corev1.Service) {}},
		{"RequestedIP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := namedService("web", tc.mutate)
			svc.UID = newUID()
			create(t, r, svc)
			err := r.BeforeCreate(ctx, svc)
			if !apierrors.IsInternalError(err) || !strings.Contains(err.Error(), "etcd unavailable") {
				t.Errorf("err = %v, want an internal error naming the cause", err)
			}
		})
	}
	t.Run("AfterDeleteReportsError", func(t *testing.T) {
		svc := namedService("web", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10"; s.Spec.ClusterIPs = []string{"10.43.0.10"} })
		if err := r.AfterDelete(ctx, svc); err == nil || !strings.Contains(err.Error(), "default/web") {
			t.Errorf("AfterDelete = %v, want an error naming the service", err)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		r := lookupIn(t, core.Config{Reservations: reservationstest.NewMemory()}, "/services")
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		svc := namedService("web", nil)
		svc.UID = newUID()
		create(t, r, svc)
		if err := r.BeforeCreate(ctx, svc); !apierrors.IsInternalError(err) {
			t.Errorf("err = %v, want an internal error", err)
		}
	})
}

func TestLeakedClaims(t *testing.T) {
	ctx := context.Background()
	s := newServices(t, core.Config{})
	live := s.mustCreate(t, nodePortService("live", 30080))
	gone := s.mustCreate(t, nodePortService("gone", 30081))
	// A delete whose release failed, and a claim by a stale owner of a
	// live key.
	delete(s.stored, "gone")
	if _, err := s.mem.Reserve(ctx, portKey(30099), "default/live/old-uid"); err != nil {
		t.Fatal(err)
	}
	var stored []*corev1.Service
	for _, svc := range s.stored {
		stored = append(stored, svc)
	}
	got, err := core.LeakedClaims(ctx, s.mem, stored)
	if err != nil {
		t.Fatal(err)
	}
	goneOwner := "default/gone/" + string(gone.UID)
	want := map[string]string{
		ipKey(gone.Spec.ClusterIP): goneOwner,
		portKey(30081):             goneOwner,
		portKey(30099):             "default/live/old-uid",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("leaked (-want +got):\n%s", diff)
	}
	if _, ok := got[ipKey(live.Spec.ClusterIP)]; ok {
		t.Error("a live claim is reported leaked")
	}
	if _, err := core.LeakedClaims(ctx, failing{}, stored); err == nil {
		t.Error("a storage error was swallowed")
	}
}
