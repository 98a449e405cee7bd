package endpointslice

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// TestSameEndpoint_KnowsEveryField guards sameEndpoint, which compares
// fields by hand: a field added to the API must be added there too.
func TestSameEndpoint_KnowsEveryField(t *testing.T) {
	known := map[string]bool{
		"Addresses": true, "Conditions": true, "Hostname": true, "TargetRef": true,
		"DeprecatedTopology": true, "NodeName": true, "Zone": true, "Hints": true,
	}
	typ := reflect.TypeOf(discoveryv1.Endpoint{})
	for i := range typ.NumField() {
		if !known[typ.Field(i).Name] {
			t.Errorf("discoveryv1.Endpoint has a field %s that sameEndpoint does not compare", typ.Field(i).Name)
		}
	}
	if n := reflect.TypeOf(discoveryv1.EndpointConditions{}).NumField(); n != 3 {
		t.Errorf("discoveryv1.EndpointConditions has %d fields; sameEndpoint compares 3", n)
	}
	if n := reflect.TypeOf(discoveryv1.EndpointHints{}).NumField(); n != 2 {
		t.Errorf("discoveryv1.EndpointHints has %d fields; sameEndpoint compares 2", n)
	}
}

func TestSameEndpoint(t *testing.T) {
	base := func() discoveryv1.Endpoint {
		return discoveryv1.Endpoint{
			Addresses:  []string{"10.0.0.1"},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "a", UID: "u"},
			NodeName:   new("n"),
			Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z"}}},
		}
	}
	tests := []struct {
		name   string
		change func(*discoveryv1.Endpoint)
		same   bool
	}{
		{name: "Identical", change: func(*discoveryv1.Endpoint) {}, same: true},
		{name: "TargetRefResourceVersionIgnored", change: func(e *discoveryv1.Endpoint) { e.TargetRef.ResourceVersion = "7" }, same: true},
		{name: "Address", change: func(e *discoveryv1.Endpoint) { e.Addresses = []string{"10.0.0.2"} }},
		{name: "Ready", change: func(e *discoveryv1.Endpoint) { e.Conditions.Ready = new(false) }},
		{name: "ServingUnset", change: func(e *discoveryv1.Endpoint) { e.Conditions.Serving = nil }},
		{name: "Zone", change: func(e *discoveryv1.Endpoint) { e.Zone = new("z") }},
		{name: "Hostname", change: func(e *discoveryv1.Endpoint) { e.Hostname = new("h") }},
		{name: "Hints", change: func(e *discoveryv1.Endpoint) { e.Hints = nil }},
		{name: "HintNodes", change: func(e *discoveryv1.Endpoint) { e.Hints.ForNodes = []discoveryv1.ForNode{{Name: "n"}} }},
		{name: "Topology", change: func(e *discoveryv1.Endpoint) { e.DeprecatedTopology = map[string]string{"a": "b"} }},
		{name: "TargetRefUID", change: func(e *discoveryv1.Endpoint) { e.TargetRef.UID = "v" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.change(&b)
			if got := sameEndpoint(a, b); got != tt.same {
				t.Errorf("sameEndpoint = %v, want %v", got, tt.same)
			}
		})
	}
}
