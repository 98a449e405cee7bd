package core_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

func basicEndpoints() *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: newUID()},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.42.1.5", NodeName: ptrTo("node-1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-1"}}},
			Ports:     []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		}},
	}
}

func TestEndpointsValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Endpoints)
		want   []fieldErr
	}{
		{"Valid", func(*corev1.Endpoints) {}, nil},
		{"ValidWithoutPorts", func(e *corev1.Endpoints) { e.Subsets[0].Ports = nil }, nil},
		{"RequiresAddresses", func(e *corev1.Endpoints) { e.Subsets[0].Addresses = nil }, []fieldErr{required("subsets[0]")}},
		{"RejectsBadIP", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "10.42.1.500" }, []fieldErr{invalid("subsets[0].addresses[0].ip")}},
		{"RejectsLoopback", func(e *corev1.Endpoints) {
			e.Subsets[0].NotReadyAddresses = []corev1.EndpointAddress{{IP: "127.0.0.1"}}
		},
			[]fieldErr{invalid("subsets[0].notReadyAddresses[0].ip")}},
		{"RejectsLinkLocal", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].IP = "169.254.169.254" },
			[]fieldErr{invalid("subsets[0].addresses[0].ip")}},
		{"RejectsBadHostname", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].Hostname = "Web_1" },
			[]fieldErr{invalid("subsets[0].addresses[0].hostname")}},
		{"RejectsBadNodeName", func(e *corev1.Endpoints) { e.Subsets[0].Addresses[0].NodeName = ptrTo("Node_1") },
			[]fieldErr{invalid("subsets[0].addresses[0].nodeName")}},
		{"RejectsPortZero", func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Port = 0 }, []fieldErr{invalid("subsets[0].ports[0].port")}},
		{"RequiresProtocol", func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Protocol = "" }, []fieldErr{required("subsets[0].ports[0].protocol")}},
		{"RejectsUnknownProtocol", func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].Protocol = "QUIC" },
			[]fieldErr{notSupported("subsets[0].ports[0].protocol")}},
		{"RequiresNamesWhenSeveralPorts", func(e *corev1.Endpoints) {
			e.Subsets[0].Ports = append(e.Subsets[0].Ports, corev1.EndpointPort{Port: 9090, Protocol: corev1.ProtocolTCP})
		}, []fieldErr{required("subsets[0].ports[1].name")}},
		{"RejectsDuplicatePortNames", func(e *corev1.Endpoints) {
			e.Subsets[0].Ports = append(e.Subsets[0].Ports, corev1.EndpointPort{Name: "http", Port: 9090, Protocol: corev1.ProtocolTCP})
		}, []fieldErr{duplicate("subsets[0].ports[1].name")}},
		{"RejectsBadAppProtocol", func(e *corev1.Endpoints) { e.Subsets[0].Ports[0].AppProtocol = ptrTo("a b") },
			[]fieldErr{invalid("subsets[0].ports[0].appProtocol")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := basicEndpoints()
			tc.mutate(e)
			wantErrs(t, create(t, lookup(t, "/endpoints"), e), tc.want...)
		})
	}
}

func TestEndpoints_LegacyIPKeptOnUpdate(t *testing.T) {
	r := lookup(t, "/endpoints")
	old := basicEndpoints()
	old.Subsets[0].Addresses[0].IP = "010.042.001.005" // stored before strict IP validation
	e := old.DeepCopy()
	e.Labels = map[string]string{"a": "b"}
	wantErrs(t, update(t, r, e, old))
	e.Subsets[0].Addresses = append(e.Subsets[0].Addresses, corev1.EndpointAddress{IP: "010.042.001.006"})
	wantErrs(t, update(t, r, e, old), invalid("subsets[0].addresses[1].ip"))
}

func TestRepackSubsets(t *testing.T) {
	a := func(ip string) corev1.EndpointAddress { return corev1.EndpointAddress{IP: ip} }
	http := corev1.EndpointPort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}
	https := corev1.EndpointPort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}
	cases := []struct {
		name string
		in   []corev1.EndpointSubset
		want []corev1.EndpointSubset
	}{
		{"Empty", nil, nil},
		{"MergesAddressesWithSamePorts", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.2")}, Ports: []corev1.EndpointPort{http}},
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{http}},
		}, []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1"), a("10.0.0.2")}, Ports: []corev1.EndpointPort{http}},
		}},
		{"MergesPortsWithSameAddresses", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{https}},
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{http}},
		}, []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{http, https}},
		}},
		{"SplitsByPortSet", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1"), a("10.0.0.2")}, Ports: []corev1.EndpointPort{http}},
			{Addresses: []corev1.EndpointAddress{a("10.0.0.2")}, Ports: []corev1.EndpointPort{https}},
		}, []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1"), a("10.0.0.2")}, Ports: []corev1.EndpointPort{http}},
			{Addresses: []corev1.EndpointAddress{a("10.0.0.2")}, Ports: []corev1.EndpointPort{https}},
		}},
		{"NotReadyWins", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{http}},
			{NotReadyAddresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{http}},
		}, []corev1.EndpointSubset{
			{NotReadyAddresses: []corev1.EndpointAddress{a("10.0.0.1")}, Ports: []corev1.EndpointPort{http}},
		}},
		{"KeepsSubsetsWithoutPorts", []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.9"), a("10.0.0.10")}},
		}, []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{a("10.0.0.9"), a("10.0.0.10")}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := core.RepackSubsets(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RepackSubsets (-want +got):\n%s", diff)
			}
			if again := core.RepackSubsets(got); !cmp.Equal(got, again) {
				t.Errorf("repacking is not idempotent: %v", cmp.Diff(got, again))
			}
		})
	}
}

func TestEndpoints_RepackedBeforeWrite(t *testing.T) {
	r := lookup(t, "/endpoints")
	e := basicEndpoints()
	e.Subsets = append(e.Subsets, corev1.EndpointSubset{
		Addresses: []corev1.EndpointAddress{{IP: "10.42.1.4"}},
		Ports:     e.Subsets[0].Ports,
	})
	if errs := create(t, r, e); len(errs) != 0 {
		t.Fatal(errs)
	}
	if err := r.BeforeCreate(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(e.Subsets) != 1 || len(e.Subsets[0].Addresses) != 2 || e.Subsets[0].Addresses[0].IP != "10.42.1.4" {
		t.Errorf("subsets = %+v", e.Subsets)
	}
}

func basicSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abc12", Namespace: "default", UID: newUID(), Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.42.1.5"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)},
			NodeName:   ptrTo("node-1"),
			Zone:       ptrTo("zone-a"),
			Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "zone-a"}}},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(int32(8080)), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
}

func TestEndpointSliceValidate(t *testing.T) {
	many := func(n int) []discoveryv1.Endpoint {
		out := make([]discoveryv1.Endpoint, n)
		for i := range out {
			out[i] = discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.42.%d.%d", i/250, i%250+1)}}
		}
		return out
	}
	cases := []struct {
		name   string
		mutate func(*discoveryv1.EndpointSlice)
		want   []fieldErr
	}{
		{"Valid", func(*discoveryv1.EndpointSlice) {}, nil},
		{"ValidThousandEndpoints", func(s *discoveryv1.EndpointSlice) { s.Endpoints = many(1000) }, nil},
		{"ValidIPv6", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeIPv6
			s.Endpoints[0].Addresses = []string{"fd00:42::5"}
		}, nil},
		{"ValidFQDN", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"web.example.com"}
		}, nil},
		{"RequiresAddressType", func(s *discoveryv1.EndpointSlice) { s.AddressType = "" }, []fieldErr{required("addressType")}},
		{"RejectsUnknownAddressType", func(s *discoveryv1.EndpointSlice) { s.AddressType = "IP" }, []fieldErr{notSupported("addressType")}},
		{"RejectsTooManyEndpoints", func(s *discoveryv1.EndpointSlice) { s.Endpoints = many(1001) }, []fieldErr{tooMany("endpoints")}},
		{"RequiresAnAddress", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = nil }, []fieldErr{required("endpoints[0].addresses")}},
		{"RejectsIPv6InIPv4Slice", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"fd00::5"} },
			[]fieldErr{invalid("endpoints[0].addresses[0]")}},
		{"RejectsBadIP", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"10.42.1"} },
			[]fieldErr{invalid("endpoints[0].addresses[0]")}},
		{"RejectsUnspecifiedIP", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"0.0.0.0"} },
			[]fieldErr{invalid("endpoints[0].addresses[0]")}},
		{"RejectsBadFQDN", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints[0].Addresses = []string{"web"}
		}, []fieldErr{invalid("endpoints[0].addresses[0]")}},
		{"RejectsBadNodeName", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].NodeName = ptrTo("Node_1") },
			[]fieldErr{invalid("endpoints[0].nodeName")}},
		{"RejectsBadHostname", func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Hostname = ptrTo("a.b") },
			[]fieldErr{invalid("endpoints[0].hostname")}},
		{"RejectsBadTopology", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].DeprecatedTopology = map[string]string{"bad key": "v"}
		},
			[]fieldErr{invalid("endpoints[0].deprecatedTopology")}},
		{"RejectsDuplicateZoneHint", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].Hints.ForZones = append(s.Endpoints[0].Hints.ForZones, discoveryv1.ForZone{Name: "zone-a"})
		}, []fieldErr{duplicate("endpoints[0].hints.forZones[1].name")}},
		{"RejectsBadNodeHint", func(s *discoveryv1.EndpointSlice) {
			s.Endpoints[0].Hints.ForNodes = []discoveryv1.ForNode{{Name: "Node_1"}}
		}, []fieldErr{invalid("endpoints[0].hints.forNodes[0].name")}},
		{"RequiresPortProtocol", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = nil }, []fieldErr{required("ports[0].protocol")}},
		{"RejectsUnknownPortProtocol", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = ptrTo(corev1.Protocol("ICMP")) },
			[]fieldErr{notSupported("ports[0].protocol")}},
		{"RejectsDuplicatePortName", func(s *discoveryv1.EndpointSlice) { s.Ports = append(s.Ports, s.Ports[0]) },
			[]fieldErr{duplicate("ports[1].name")}},
		{"RejectsDuplicateUnnamedPorts", func(s *discoveryv1.EndpointSlice) {
			s.Ports = []discoveryv1.EndpointPort{{Protocol: ptrTo(corev1.ProtocolTCP)}, {Protocol: ptrTo(corev1.ProtocolUDP)}}
		}, []fieldErr{duplicate("ports[1].name")}},
		{"RejectsBadPortName", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Name = ptrTo("HTTP") }, []fieldErr{invalid("ports[0].name")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := basicSlice()
			tc.mutate(s)
			wantErrs(t, create(t, lookup(t, "discovery.k8s.io/endpointslices"), s), tc.want...)
		})
	}
}

func TestEndpointSliceUpdate(t *testing.T) {
	r := lookup(t, "discovery.k8s.io/endpointslices")
	old := basicSlice()
	s := old.DeepCopy()
	s.AddressType = discoveryv1.AddressTypeFQDN
	s.Endpoints[0].Addresses = []string{"web.example.com"}
	wantErrs(t, update(t, r, s, old), invalid("addressType"))
}
