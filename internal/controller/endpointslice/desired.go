package endpointslice

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// desiredSet is what a Service's slices should hold: endpoints grouped by
// address type, then by the key of their port list.
type desiredSet map[discoveryv1.AddressType]map[string]*portGroup

// portGroup is the endpoints that share one port list.
type portGroup struct {
	ports     []discoveryv1.EndpointPort
	endpoints map[string]discoveryv1.Endpoint // by endpointKey
}

// addressTypes returns the address types of svc's slices, from its IP
// families (or its cluster IP, or both for a headless Service that has
// neither, as upstream does).
func addressTypes(svc *corev1.Service) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			out = append(out, discoveryv1.AddressTypeIPv4)
		case corev1.IPv6Protocol:
			out = append(out, discoveryv1.AddressTypeIPv6)
		}
	}
	if len(out) > 0 {
		return out
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		if isIPv6(ip) {
			return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
		}
		return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	}
	return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Unmap().Is6()
}

// desired computes the endpoints svc's slices should hold. zoneOf returns
// the zone of a node ("" when unknown).
func desired(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(node string) string) desiredSet {
	out := desiredSet{}
	types := addressTypes(svc)
	for _, at := range types {
		out[at] = map[string]*portGroup{}
	}
	for _, pod := range pods {
		if !inSlices(pod) {
			continue
		}
		ports := endpointPorts(svc, pod)
		pk := portsKey(ports)
		for _, at := range types {
			ep, ok := podEndpoint(svc, pod, at, zoneOf)
			if !ok {
				continue
			}
			g := out[at][pk]
			if g == nil {
				g = &portGroup{ports: ports, endpoints: map[string]discoveryv1.Endpoint{}}
				out[at][pk] = g
			}
			g.endpoints[endpointKey(ep)] = ep
		}
	}
	return out
}

// inSlices reports whether pod takes part in slices at all: it has an IP
// and has not finished. Terminating pods take part.
func inSlices(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	return pod.Status.PodIP != "" || len(pod.Status.PodIPs) > 0
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podEndpoint builds pod's endpoint of address type at; ok is false when
// the pod has no IP of that family.
func podEndpoint(svc *corev1.Service, pod *corev1.Pod, at discoveryv1.AddressType, zoneOf func(string) string) (discoveryv1.Endpoint, bool) {
	ips := pod.Status.PodIPs
	if len(ips) == 0 {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	var addrs []string
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if a.Is6() == (at == discoveryv1.AddressTypeIPv6) {
			addrs = append(addrs, a.String())
		}
	}
	if len(addrs) == 0 {
		return discoveryv1.Endpoint{}, false
	}
	serving := podReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  addrs,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if n := pod.Spec.NodeName; n != "" {
		ep.NodeName = new(n)
		if z := zoneOf(n); z != "" {
			ep.Zone = new(z)
		}
	}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		ep.Hostname = new(pod.Spec.Hostname)
	}
	if ready {
		ep.Hints = hints(svc, ep)
	}
	return ep, true
}

// hints returns the topology hints of a ready endpoint under svc's
// trafficDistribution, or nil.
func hints(svc *corev1.Service, ep discoveryv1.Endpoint) *discoveryv1.EndpointHints {
	td := svc.Spec.TrafficDistribution
	if td == nil {
		return nil
	}
	var h discoveryv1.EndpointHints
	switch *td {
	case corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameZone:
	case corev1.ServiceTrafficDistributionPreferSameNode:
		if ep.NodeName != nil {
			h.ForNodes = []discoveryv1.ForNode{{Name: *ep.NodeName}}
		}
	default:
		return nil
	}
	if ep.Zone != nil {
		h.ForZones = []discoveryv1.ForZone{{Name: *ep.Zone}}
	}
	if h.ForZones == nil && h.ForNodes == nil {
		return nil
	}
	return &h
}

// endpointPorts resolves svc's ports on pod. Ports the pod cannot serve
// (a named targetPort it lacks) are left out. The list is never nil, so
// that it serializes as [] like upstream's.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	out := []discoveryv1.EndpointPort{}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		num, ok := findPort(pod, sp)
		if !ok {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{Name: new(sp.Name), Port: new(num), Protocol: new(sp.Protocol), AppProtocol: sp.AppProtocol})
	}
	return out
}

// findPort resolves a Service port's targetPort on pod: a number as is, a
// name through the ports of the pod's containers and sidecars (init
// containers that keep running), matching the protocol too.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return sp.Port, true // upstream defaults targetPort to port
		}
		return tp.IntVal, true
	}
	proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
	match := func(cs []corev1.Container, sidecarsOnly bool) (int32, bool) {
		for i := range cs {
			if sidecarsOnly && (cs[i].RestartPolicy == nil || *cs[i].RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, p := range cs[i].Ports {
				if p.Name == tp.StrVal && cmp.Or(p.Protocol, corev1.ProtocolTCP) == proto {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	}
	if n, ok := match(pod.Spec.Containers, false); ok {
		return n, true
	}
	return match(pod.Spec.InitContainers, true)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// portsKey identifies a port list regardless of its order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = deref(p.Name) + "/" + strconv.Itoa(int(deref(p.Port))) + "/" + string(deref(p.Protocol)) + "/" + deref(p.AppProtocol)
	}
	slices.Sort(keys)
	return strings.Join(keys, ";")
}

// endpointKey identifies an endpoint: the pod it stands for and its
// addresses.
func endpointKey(ep discoveryv1.Endpoint) string {
	uid := ""
	if ep.TargetRef != nil {
		uid = string(ep.TargetRef.UID) + "|" + ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
	}
	return uid + "|" + strings.Join(ep.Addresses, ",")
}
