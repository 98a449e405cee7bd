package core

import (
	"cmp"
	"context"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Limits of an EndpointSlice, as upstream.
const (
	maxSliceEndpoints      = 1000
	maxEndpointAddresses   = 100
	maxSlicePorts          = 20000
	maxTopologyLabels      = 16
	maxEndpointZoneOrNodes = 8
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}

func (b *builder) endpoints() *registry.Resource {
	return &registry.Resource{
		GroupVersion:        corev1.SchemeGroupVersion,
		Resource:            "endpoints",
		Kind:                "Endpoints",
		ListKind:            "EndpointsList",
		SingularName:        "endpoints",
		ShortNames:          []string{"ep"},
		Namespaced:          true,
		New:                 func() runtime.Object { return &corev1.Endpoints{} },
		NewList:             func() runtime.Object { return &corev1.EndpointsList{} },
		AllowCreateOnUpdate: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateEndpointSubsets(obj.(*corev1.Endpoints).Subsets, nil)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			return validateEndpointSubsets(obj.(*corev1.Endpoints).Subsets, old.(*corev1.Endpoints).Subsets)
		},
		// Upstream canonicalizes subsets after validation.
		BeforeCreate: func(_ context.Context, obj runtime.Object) error {
			ep := obj.(*corev1.Endpoints)
			ep.Subsets = RepackSubsets(ep.Subsets)
			return nil
		},
		BeforeUpdate: func(_ context.Context, obj, _ runtime.Object) error {
			ep := obj.(*corev1.Endpoints)
			ep.Subsets = RepackSubsets(ep.Subsets)
			return nil
		},
	}
}

func validateEndpointSubsets(subsets, old []corev1.EndpointSubset) field.ErrorList {
	var allErrs field.ErrorList
	var oldIPs []string
	for _, ss := range old {
		for _, a := range append(slices.Clone(ss.Addresses), ss.NotReadyAddresses...) {
			oldIPs = append(oldIPs, a.IP)
		}
	}
	fldPath := field.NewPath("subsets")
	for i := range subsets {
		ss := &subsets[i]
		p := fldPath.Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			allErrs = append(allErrs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.Addresses[j], oldIPs, p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			allErrs = append(allErrs, validateEndpointAddress(&ss.NotReadyAddresses[j], oldIPs, p.Child("notReadyAddresses").Index(j))...)
		}
		names := map[string]bool{}
		for j := range ss.Ports {
			pp := p.Child("ports").Index(j)
			port := &ss.Ports[j]
			switch {
			case len(ss.Ports) > 1 && port.Name == "":
				allErrs = append(allErrs, field.Required(pp.Child("name"), ""))
			case port.Name != "":
				allErrs = append(allErrs, invalidMsgs(pp.Child("name"), port.Name, validation.IsDNS1123Label(port.Name))...)
				if names[port.Name] {
					allErrs = append(allErrs, field.Duplicate(pp.Child("name"), port.Name))
				}
				names[port.Name] = true
			}
			allErrs = append(allErrs, invalidMsgs(pp.Child("port"), port.Port, validation.IsValidPortNum(int(port.Port)))...)
			allErrs = append(allErrs, validateProtocol(port.Protocol, pp.Child("protocol"))...)
			if port.AppProtocol != nil {
				allErrs = append(allErrs, invalidMsgs(pp.Child("appProtocol"), *port.AppProtocol, validation.IsQualifiedName(*port.AppProtocol))...)
			}
		}
	}
	return allErrs
}

func validateEndpointAddress(a *corev1.EndpointAddress, oldIPs []string, fldPath *field.Path) field.ErrorList {
	allErrs := validation.IsValidIPForLegacyField(fldPath.Child("ip"), a.IP, true, oldIPs)
	if a.Hostname != "" {
		allErrs = append(allErrs, invalidMsgs(fldPath.Child("hostname"), a.Hostname, validation.IsDNS1123Label(a.Hostname))...)
	}
	if a.NodeName != nil {
		allErrs = append(allErrs, invalidMsgs(fldPath.Child("nodeName"), *a.NodeName, validation.IsDNS1123Subdomain(*a.NodeName))...)
	}
	return append(allErrs, validateNonSpecialIP(a.IP, fldPath.Child("ip"))...)
}

// RepackSubsets rewrites endpoint subsets into their canonical form, as
// upstream stores them: addresses that serve the same set of ports share
// one subset, an address not ready on any port of a set is not ready in
// it, and addresses, ports and subsets are sorted. The order of subsets
// (by their first address) is skiff's; upstream orders them by a hash.
func RepackSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	type addrKey struct {
		ip  string
		uid types.UID
	}
	noPorts := corev1.EndpointPort{Port: -1} // marks subsets without ports
	addrs := map[addrKey]*corev1.EndpointAddress{}
	// ready[port][address] is false when the address is not ready there.
	ready := map[corev1.EndpointPort]map[*corev1.EndpointAddress]bool{}
	add := func(a *corev1.EndpointAddress, port corev1.EndpointPort, isReady bool) {
		k := addrKey{ip: a.IP}
		if a.TargetRef != nil {
			k.uid = a.TargetRef.UID
		}
		stored := addrs[k]
		if stored == nil {
			c := a.DeepCopy()
			addrs[k] = c
			stored = c
		}
		if ready[port] == nil {
			ready[port] = map[*corev1.EndpointAddress]bool{}
		}
		if was, seen := ready[port][stored]; !seen || was {
			ready[port][stored] = isReady
		}
	}
	for i := range subsets {
		ss := &subsets[i]
		ports := ss.Ports
		if len(ports) == 0 {
			ports = []corev1.EndpointPort{noPorts}
		}
		for _, port := range ports {
			for j := range ss.Addresses {
				add(&ss.Addresses[j], port, true)
			}
			for j := range ss.NotReadyAddresses {
				add(&ss.NotReadyAddresses[j], port, false)
			}
		}
	}
	if len(ready) == 0 {
		return nil
	}

	// Group ports by the exact set of (address, readiness) they map to.
	type group struct {
		set   map[*corev1.EndpointAddress]bool
		ports []corev1.EndpointPort
	}
	var groups []*group
	same := func(a, b map[*corev1.EndpointAddress]bool) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	portsSorted := make([]corev1.EndpointPort, 0, len(ready))
	for p := range ready {
		portsSorted = append(portsSorted, p)
	}
	slices.SortFunc(portsSorted, compareEndpointPorts)
	for _, p := range portsSorted {
		var g *group
		for _, x := range groups {
			if same(x.set, ready[p]) {
				g = x
				break
			}
		}
		if g == nil {
			g = &group{set: ready[p]}
			groups = append(groups, g)
		}
		if p != noPorts {
			g.ports = append(g.ports, p)
		}
	}
	out := make([]corev1.EndpointSubset, 0, len(groups))
	for _, g := range groups {
		var ss corev1.EndpointSubset
		for a, isReady := range g.set {
			if isReady {
				ss.Addresses = append(ss.Addresses, *a)
			} else {
				ss.NotReadyAddresses = append(ss.NotReadyAddresses, *a)
			}
		}
		slices.SortFunc(ss.Addresses, compareEndpointAddresses)
		slices.SortFunc(ss.NotReadyAddresses, compareEndpointAddresses)
		ss.Ports = g.ports
		out = append(out, ss)
	}
	first := func(ss corev1.EndpointSubset) corev1.EndpointAddress {
		if len(ss.Addresses) > 0 {
			return ss.Addresses[0]
		}
		return ss.NotReadyAddresses[0]
	}
	slices.SortStableFunc(out, func(a, b corev1.EndpointSubset) int {
		if c := compareEndpointAddresses(first(a), first(b)); c != 0 {
			return c
		}
		return cmp.Compare(len(a.Ports), len(b.Ports))
	})
	return out
}

func compareEndpointAddresses(a, b corev1.EndpointAddress) int {
	if c := compareIPStrings(a.IP, b.IP); c != 0 {
		return c
	}
	var ua, ub types.UID
	if a.TargetRef != nil {
		ua = a.TargetRef.UID
	}
	if b.TargetRef != nil {
		ub = b.TargetRef.UID
	}
	return cmp.Compare(ua, ub)
}

func compareIPStrings(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	if errA == nil && errB == nil {
		return x.Compare(y)
	}
	return cmp.Compare(a, b)
}

func compareEndpointPorts(a, b corev1.EndpointPort) int {
	return cmp.Or(
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Protocol, b.Protocol),
		cmp.Compare(deref(a.AppProtocol), deref(b.AppProtocol)),
	)
}

func (b *builder) endpointSlices() *registry.Resource {
	return &registry.Resource{
		GroupVersion: discoveryv1.SchemeGroupVersion,
		Resource:     "endpointslices",
		Kind:         "EndpointSlice",
		ListKind:     "EndpointSliceList",
		SingularName: "endpointslice",
		Namespaced:   true,
		New:          func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList:      func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		// Upstream bumps metadata.generation when endpoints, ports or the
		// address type change.
		HasGeneration: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateEndpointSlice(obj.(*discoveryv1.EndpointSlice), nil)
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			s, o := obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice)
			return append(validateEndpointSlice(s, o), validateImmutable(s.AddressType, o.AddressType, field.NewPath("addressType"))...)
		},
	}
}

// validateEndpointSlice is upstream's ValidateEndpointSlice without the
// object metadata.
func validateEndpointSlice(s, old *discoveryv1.EndpointSlice) field.ErrorList {
	var allErrs field.ErrorList
	switch {
	case s.AddressType == "":
		allErrs = append(allErrs, field.Required(field.NewPath("addressType"), ""))
	case !slices.Contains(addressTypes, s.AddressType):
		allErrs = append(allErrs, field.NotSupported(field.NewPath("addressType"), s.AddressType, addressTypes))
	}
	var oldAddrs []string
	if old != nil {
		for _, e := range old.Endpoints {
			oldAddrs = append(oldAddrs, e.Addresses...)
		}
	}
	allErrs = append(allErrs, validateSliceEndpoints(s.Endpoints, s.AddressType, oldAddrs, field.NewPath("endpoints"))...)
	return append(allErrs, validateSlicePorts(s.Ports, field.NewPath("ports"))...)
}

func validateSliceEndpoints(endpoints []discoveryv1.Endpoint, addrType discoveryv1.AddressType, oldAddrs []string, fldPath *field.Path) field.ErrorList {
	if len(endpoints) > maxSliceEndpoints {
		return field.ErrorList{field.TooMany(fldPath, len(endpoints), maxSliceEndpoints)}
	}
	var allErrs field.ErrorList
	for i := range endpoints {
		e := &endpoints[i]
		p := fldPath.Index(i)
		ap := p.Child("addresses")
		switch {
		case len(e.Addresses) == 0:
			allErrs = append(allErrs, field.Required(ap, "must contain at least 1 address"))
		case len(e.Addresses) > maxEndpointAddresses:
			allErrs = append(allErrs, field.TooMany(ap, len(e.Addresses), maxEndpointAddresses))
		}
		for j, a := range e.Addresses {
			allErrs = append(allErrs, validateSliceAddress(a, addrType, oldAddrs, ap.Index(j))...)
		}
		if e.NodeName != nil {
			allErrs = append(allErrs, invalidMsgs(p.Child("nodeName"), *e.NodeName, validation.IsDNS1123Subdomain(*e.NodeName))...)
		}
		tp := p.Child("deprecatedTopology")
		if len(e.DeprecatedTopology) > maxTopologyLabels {
			allErrs = append(allErrs, field.TooMany(tp, len(e.DeprecatedTopology), maxTopologyLabels))
		}
		allErrs = append(allErrs, metav1validation.ValidateLabels(e.DeprecatedTopology, tp)...)
		if e.Hostname != nil {
			allErrs = append(allErrs, invalidMsgs(p.Child("hostname"), *e.Hostname, validation.IsDNS1123Label(*e.Hostname))...)
		}
		if e.Hints != nil {
			allErrs = append(allErrs, validateSliceHints(e.Hints, p.Child("hints"))...)
		}
	}
	return allErrs
}

// validateSliceAddress checks an address against the slice's type:
// unknown types are not checked, as upstream.
func validateSliceAddress(a string, addrType discoveryv1.AddressType, oldAddrs []string, fldPath *field.Path) field.ErrorList {
	switch addrType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if errs := validation.IsValidIPForLegacyField(fldPath, a, true, oldAddrs); len(errs) != 0 {
			return errs
		}
		f, ok := familyOf(a)
		if ok && string(f) != string(addrType) {
			return field.ErrorList{field.Invalid(fldPath, a, "must be a valid "+string(addrType)+" address")}
		}
		return validateNonSpecialIP(a, fldPath)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(fldPath, a)
	}
	return nil
}

func validateSliceHints(h *discoveryv1.EndpointHints, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	zp := fldPath.Child("forZones")
	if len(h.ForZones) > maxEndpointZoneOrNodes {
		return field.ErrorList{field.TooMany(zp, len(h.ForZones), maxEndpointZoneOrNodes)}
	}
	zones := map[string]bool{}
	for i, z := range h.ForZones {
		p := zp.Index(i).Child("name")
		if zones[z.Name] {
			allErrs = append(allErrs, field.Duplicate(p, z.Name))
		}
		zones[z.Name] = true
		allErrs = append(allErrs, invalidMsgs(p, z.Name, validation.IsValidLabelValue(z.Name))...)
	}
	np := fldPath.Child("forNodes")
	if len(h.ForNodes) > maxEndpointZoneOrNodes {
		return append(allErrs, field.TooMany(np, len(h.ForNodes), maxEndpointZoneOrNodes))
	}
	nodes := map[string]bool{}
	for i, n := range h.ForNodes {
		p := np.Index(i).Child("name")
		if nodes[n.Name] {
			allErrs = append(allErrs, field.Duplicate(p, n.Name))
		}
		nodes[n.Name] = true
		allErrs = append(allErrs, invalidMsgs(p, n.Name, validation.IsDNS1123Subdomain(n.Name))...)
	}
	return allErrs
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, fldPath *field.Path) field.ErrorList {
	if len(ports) > maxSlicePorts {
		return field.ErrorList{field.TooMany(fldPath, len(ports), maxSlicePorts)}
	}
	var allErrs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		p := fldPath.Index(i)
		name := deref(port.Name)
		if name != "" {
			allErrs = append(allErrs, invalidMsgs(p.Child("name"), name, validation.IsDNS1123Label(name))...)
		}
		if names[name] {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), name))
		}
		names[name] = true
		if port.Protocol == nil {
			allErrs = append(allErrs, field.Required(p.Child("protocol"), ""))
		} else if !slices.Contains(portProtocols, *port.Protocol) {
			allErrs = append(allErrs, field.NotSupported(p.Child("protocol"), *port.Protocol, portProtocols))
		}
		if port.AppProtocol != nil {
			allErrs = append(allErrs, invalidMsgs(p.Child("appProtocol"), *port.AppProtocol, validation.IsQualifiedName(*port.AppProtocol))...)
		}
	}
	return allErrs
}
