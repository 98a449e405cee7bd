package endpointslice

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ManagedBy is the value of discoveryv1.LabelManagedBy on the slices this
// controller owns; upstream's controller uses the same one.
const ManagedBy = "endpointslice-controller.k8s.io"

// plan is what a sync writes, in order: creates, updates, deletes. The
// slices in creates and updates are new objects the caller may send; the
// ones in deletes come from the cache and must not be modified.
type plan struct {
	creates, updates, deletes []*discoveryv1.EndpointSlice
}

// owner describes the slices of one object (a Service, or the Endpoints
// mirrored): what they must look like besides their endpoints.
type owner struct {
	namespace string
	// name is the Service's name: the slices' name prefix and their
	// kubernetes.io/service-name label.
	name        string
	labels      map[string]string // all of them
	annotations map[string]string // all of them; nil for none
	ref         metav1.OwnerReference
	// placeholder keeps one empty slice when there are no endpoints.
	placeholder bool
}

// serviceOwner describes the slices this controller keeps for svc.
func serviceOwner(svc *corev1.Service) owner {
	return owner{
		namespace: svc.Namespace, name: svc.Name,
		labels: sliceLabels(svc), placeholder: true,
		ref: metav1.OwnerReference{
			APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
			Controller: new(true), BlockOwnerDeletion: new(true),
		},
	}
}

// owns reports whether s belongs to this incarnation of the owner.
func (o owner) owns(s *discoveryv1.EndpointSlice) bool {
	for _, r := range s.OwnerReferences {
		if r.UID == o.ref.UID && r.Kind == o.ref.Kind && r.APIVersion == o.ref.APIVersion {
			return true
		}
	}
	return false
}

// current reports whether s carries the owner's labels, annotations and
// reference.
func (o owner) current(s *discoveryv1.EndpointSlice) bool {
	return maps.Equal(s.Labels, o.labels) && maps.Equal(s.Annotations, o.annotations) && o.owns(s)
}

// dress sets the owner's labels, annotations and reference on s.
func (o owner) dress(s *discoveryv1.EndpointSlice) {
	s.Labels = maps.Clone(o.labels)
	s.Annotations = maps.Clone(o.annotations)
	s.OwnerReferences = []metav1.OwnerReference{o.ref}
}

// reconcile plans the writes that turn existing (the owner's managed
// slices, from the cache) into want. existing is not modified.
func reconcile(o owner, want desiredSet, existing []*discoveryv1.EndpointSlice, maxPerSlice int) plan {
	var p plan
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if _, ok := want[s.AddressType]; !ok {
			p.deletes = append(p.deletes, s) // an address type the Service dropped
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	for _, at := range slices.Sorted(maps.Keys(want)) {
		t := reconcileType(o, at, want[at], byType[at], maxPerSlice)
		p.creates = append(p.creates, t.creates...)
		p.updates = append(p.updates, t.updates...)
		p.deletes = append(p.deletes, t.deletes...)
	}
	return p
}

// reconcileType plans the slices of one address type.
func reconcileType(o owner, at discoveryv1.AddressType, want map[string]*portGroup, existing []*discoveryv1.EndpointSlice, maxPerSlice int) plan {
	var p plan
	// updating holds, per ports key, the slices this sync rewrites anyway;
	// unchanged the ones it leaves as they are. placed records the
	// endpoints (by ports key and endpoint key: mirrored Endpoints may
	// list an address under several port sets) already in a slice.
	updating := map[string][]*discoveryv1.EndpointSlice{}
	unchanged := map[string][]*discoveryv1.EndpointSlice{}
	placed := map[string]bool{}

	// Sort for a stable plan: the cache lists in map order.
	existing = slices.Clone(existing)
	slices.SortFunc(existing, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	for _, s := range existing {
		pk := portsKey(s.Ports)
		g := want[pk]
		if g == nil {
			p.deletes = append(p.deletes, s)
			continue
		}
		changed := !o.current(s)
		var keep []discoveryv1.Endpoint
		for _, ep := range s.Endpoints {
			k := endpointKey(ep)
			d, ok := g.endpoints[k]
			if !ok || placed[pk+"\x00"+k] {
				changed = true // gone, or a duplicate
				continue
			}
			placed[pk+"\x00"+k] = true
			if !sameEndpoint(ep, d) {
				changed = true
			}
			keep = append(keep, d)
		}
		switch {
		case !changed:
			unchanged[pk] = append(unchanged[pk], s)
		case len(keep) == 0:
			p.deletes = append(p.deletes, s)
		default:
			u := s.DeepCopy()
			u.Endpoints = keep
			o.dress(u)
			updating[pk] = append(updating[pk], u)
		}
	}

	for _, pk := range slices.Sorted(maps.Keys(want)) {
		g := want[pk]
		var rest []discoveryv1.Endpoint
		for k, ep := range g.endpoints {
			if !placed[pk+"\x00"+k] {
				rest = append(rest, ep)
			}
		}
		slices.SortFunc(rest, compareEndpoints)
		// First, the slices being rewritten anyway, fullest first.
		up := updating[pk]
		slices.SortStableFunc(up, func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(len(b.Endpoints), len(a.Endpoints)) })
		for _, s := range up {
			n := min(maxPerSlice-len(s.Endpoints), len(rest))
			if n > 0 {
				s.Endpoints = append(s.Endpoints, rest[:n]...)
				rest = rest[n:]
			}
		}
		// Then one unchanged slice that takes all the rest, the one left
		// fullest.
		if len(rest) > 0 && len(rest) < maxPerSlice {
			if s := sliceToFill(unchanged[pk], len(rest), maxPerSlice); s != nil {
				u := s.DeepCopy()
				u.Endpoints = append(u.Endpoints, rest...)
				up = append(up, u)
				rest = nil
			}
		}
		// Then new slices.
		for len(rest) > 0 {
			n := min(maxPerSlice, len(rest))
			s := newSlice(o, at, g.ports)
			s.Endpoints = rest[:n:n]
			rest = rest[n:]
			p.creates = append(p.creates, s)
		}
		p.updates = append(p.updates, up...)
	}

	// A Service without endpoints of this type keeps one empty slice, so
	// that readers can tell "no endpoints" from "not synced yet".
	if o.placeholder && len(p.creates) == 0 && len(p.updates) == 0 && len(unchangedAll(unchanged)) == 0 {
		if i := slices.IndexFunc(p.deletes, func(s *discoveryv1.EndpointSlice) bool { return isPlaceholder(s, o) }); i >= 0 {
			p.deletes = slices.Delete(p.deletes, i, i+1)
		} else {
			p.creates = append(p.creates, newSlice(o, at, []discoveryv1.EndpointPort{}))
		}
	}

	// Turn delete + create into an update: fewer objects change hands.
	for len(p.creates) > 0 && len(p.deletes) > 0 {
		c, d := p.creates[0], p.deletes[0]
		p.creates, p.deletes = p.creates[1:], p.deletes[1:]
		u := d.DeepCopy()
		u.Ports, u.Endpoints = c.Ports, c.Endpoints
		o.dress(u)
		p.updates = append(p.updates, u)
	}
	return p
}

func unchangedAll(m map[string][]*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, pk := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[pk]...)
	}
	return out
}

// sliceToFill returns the slice of candidates that would be fullest after
// taking n more endpoints, or nil if none has room.
func sliceToFill(candidates []*discoveryv1.EndpointSlice, n, maxPerSlice int) *discoveryv1.EndpointSlice {
	var best *discoveryv1.EndpointSlice
	bestRoom := maxPerSlice + 1
	for _, s := range candidates {
		room := maxPerSlice - len(s.Endpoints) - n
		if room >= 0 && room < bestRoom {
			best, bestRoom = s, room
		}
	}
	return best
}

// isPlaceholder reports whether s is the empty slice a Service without
// endpoints keeps, in its current form.
func isPlaceholder(s *discoveryv1.EndpointSlice, o owner) bool {
	return len(s.Endpoints) == 0 && len(s.Ports) == 0 && o.current(s)
}

// sameEndpoint compares two endpoints field by field (reflection costs a
// sync of a big Service most of its time), ignoring the resourceVersion
// in their target references. TestSameEndpoint_KnowsEveryField fails when
// the API grows a field this does not compare.
func sameEndpoint(a, b discoveryv1.Endpoint) bool {
	return slices.Equal(a.Addresses, b.Addresses) &&
		eqPtr(a.Conditions.Ready, b.Conditions.Ready) &&
		eqPtr(a.Conditions.Serving, b.Conditions.Serving) &&
		eqPtr(a.Conditions.Terminating, b.Conditions.Terminating) &&
		eqPtr(a.Hostname, b.Hostname) &&
		sameRef(a.TargetRef, b.TargetRef) &&
		maps.Equal(a.DeprecatedTopology, b.DeprecatedTopology) &&
		eqPtr(a.NodeName, b.NodeName) &&
		eqPtr(a.Zone, b.Zone) &&
		sameHints(a.Hints, b.Hints)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameRef(a, b *corev1.ObjectReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.ResourceVersion, y.ResourceVersion = "", ""
	return x == y
}

func sameHints(a, b *discoveryv1.EndpointHints) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.ForZones, b.ForZones) && slices.Equal(a.ForNodes, b.ForNodes)
}

// compareEndpoints orders endpoints by their first address, then key.
func compareEndpoints(a, b discoveryv1.Endpoint) int {
	if len(a.Addresses) > 0 && len(b.Addresses) > 0 {
		x, errX := netip.ParseAddr(a.Addresses[0])
		y, errY := netip.ParseAddr(b.Addresses[0])
		if errX == nil && errY == nil {
			if c := x.Compare(y); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(endpointKey(a), endpointKey(b))
}

// sliceLabels are the Service's labels (but the reserved ones) plus the
// labels that tie a slice to the Service and to this controller.
func sliceLabels(svc *corev1.Service) map[string]string {
	out := map[string]string{}
	for k, v := range svc.Labels {
		switch k {
		case discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy, corev1.IsHeadlessService:
		default:
			out[k] = v
		}
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		out[corev1.IsHeadlessService] = ""
	}
	out[discoveryv1.LabelServiceName] = svc.Name
	out[discoveryv1.LabelManagedBy] = ManagedBy
	return out
}

func newSlice(o owner, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	prefix := o.name + "-"
	if len(apimachineryvalidation.NameIsDNSSubdomain(prefix, true)) != 0 {
		prefix = o.name
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{GenerateName: prefix, Namespace: o.namespace},
		AddressType: at,
		Ports:       ports,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	o.dress(s)
	return s
}
