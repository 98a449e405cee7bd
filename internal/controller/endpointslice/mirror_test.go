package endpointslice

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// mirrorHarness runs a Mirror on the harness's fake API and caches.
type mirrorHarness struct {
	*harness
	m *Mirror
}

func newMirrorHarness(t *testing.T, objs ...runtime.Object) *mirrorHarness {
	t.Helper()
	h := newHarness(t, Config{}, objs...)
	m, err := NewMirror(Config{Client: h.client, Informers: h.c.cfg.Informers, Recorder: h.recorder, Clock: h.c.cfg.Clock})
	if err != nil {
		t.Fatal(err)
	}
	return &mirrorHarness{harness: h, m: m}
}

func (h *mirrorHarness) sync(key string) {
	err := h.m.sync(context.Background(), key)
	h.tr.step("mirror %s", key)
	h.tr.actions(h.client.Actions())
	h.tr.events(h.recorder)
	if err != nil {
		h.tr.note("error: %v", err)
	}
	h.refresh()
}

func manualService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("svc-uid-" + name)},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.20", Ports: []corev1.ServicePort{{Name: "db", Port: 5432}}},
	}
}

func manualEndpoints(name string, subsets ...corev1.EndpointSubset) *corev1.Endpoints {
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: name, UID: types.UID("ep-uid-" + name),
			Labels:      map[string]string{"team": "data"},
			Annotations: map[string]string{"note": "external database", corev1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z"},
		},
		Subsets: subsets,
	}
}

func TestMirror(t *testing.T) {
	db := corev1.EndpointSubset{
		Addresses:         []corev1.EndpointAddress{{IP: "192.0.2.10", Hostname: "primary"}, {IP: "2001:db8::10"}},
		NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.0.2.11", NodeName: new("node-1")}},
		Ports:             []corev1.EndpointPort{{Name: "db", Port: 5432, Protocol: corev1.ProtocolTCP}},
	}
	metrics := corev1.EndpointSubset{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}, {IP: "not-an-ip"}},
		Ports:     []corev1.EndpointPort{{Name: "metrics", Port: 9187, Protocol: corev1.ProtocolTCP}},
	}
	tests := []struct {
		name string
		objs []runtime.Object
		run  func(h *mirrorHarness)
	}{
		{
			name: "MirrorsEndpointsOfASelectorlessService",
			objs: []runtime.Object{manualService("db"), manualEndpoints("db", db, metrics)},
			run: func(h *mirrorHarness) {
				h.sync("default/db")
				h.sync("default/db") // nothing changed
				h.tr.note("-- the standby goes ready")
				ep, _ := h.client.CoreV1().Endpoints("default").Get(context.Background(), "db", metav1.GetOptions{})
				ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, ep.Subsets[0].NotReadyAddresses...)
				ep.Subsets[0].NotReadyAddresses = nil
				h.client.CoreV1().Endpoints("default").Update(context.Background(), ep, metav1.UpdateOptions{})
				h.refresh()
				h.sync("default/db")
				h.tr.note("-- the Endpoints go")
				h.client.CoreV1().Endpoints("default").Delete(context.Background(), "db", metav1.DeleteOptions{})
				h.refresh()
				h.sync("default/db")
			},
		},
		{
			name: "LeavesServicesWithSelectorsToTheController",
			objs: []runtime.Object{service(), manualEndpoints("web", db)},
			run:  func(h *mirrorHarness) { h.sync("default/web") },
		},
		{
			name: "HonoursSkipMirrorAndNeedsAService",
			objs: []runtime.Object{
				manualService("kubernetes"),
				func() *corev1.Endpoints {
					ep := manualEndpoints("kubernetes", db)
					ep.Labels[discoveryv1.LabelSkipMirror] = "true"
					return ep
				}(),
				manualEndpoints("orphan", db),
			},
			run: func(h *mirrorHarness) {
				h.sync("default/kubernetes")
				h.sync("default/orphan")
			},
		},
		{
			name: "StopsMirroringWhenTheServiceGetsASelector",
			objs: []runtime.Object{manualService("db"), manualEndpoints("db", db)},
			run: func(h *mirrorHarness) {
				h.sync("default/db")
				h.tr.note("-- the Service gets a selector")
				svc, _ := h.client.CoreV1().Services("default").Get(context.Background(), "db", metav1.GetOptions{})
				svc.Spec.Selector = map[string]string{"app": "db"}
				h.client.CoreV1().Services("default").Update(context.Background(), svc, metav1.UpdateOptions{})
				h.refresh()
				h.sync("default/db")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newMirrorHarness(t, tt.objs...)
			tt.run(h)
			checkGolden(t, "Mirror_"+goldenName(t), h.tr.b.String())
		})
	}
}

func TestMirror_TruncatesBigSubsets(t *testing.T) {
	var ss corev1.EndpointSubset
	ss.Ports = []corev1.EndpointPort{{Name: "db", Port: 5432, Protocol: corev1.ProtocolTCP}}
	for i := range MaxMirroredPerSubset + 5 {
		a := corev1.EndpointAddress{IP: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)}
		if i < 3 {
			ss.NotReadyAddresses = append(ss.NotReadyAddresses, a)
		} else {
			ss.Addresses = append(ss.Addresses, a)
		}
	}
	want, dropped := mirrorDesired(manualEndpoints("db", ss))
	if dropped != 5 {
		t.Errorf("dropped %d addresses, want 5", dropped)
	}
	ready, notReady := 0, 0
	for _, g := range want[discoveryv1.AddressTypeIPv4] {
		for _, e := range g.endpoints {
			if *e.Conditions.Ready {
				ready++
			} else {
				notReady++
			}
		}
	}
	// 1002 ready and 3 not ready: the first 1000 ready ones are mirrored.
	if ready != MaxMirroredPerSubset || notReady != 0 {
		t.Errorf("mirrored %d ready and %d not ready, want %d and 0", ready, notReady, MaxMirroredPerSubset)
	}

	h := newMirrorHarness(t, manualService("db"), manualEndpoints("db", ss))
	h.sync("default/db")
	if !strings.Contains(h.tr.b.String(), "event Warning "+ReasonMirroringTruncated) {
		t.Errorf("no %s event:\n%s", ReasonMirroringTruncated, h.tr.b.String())
	}
}
