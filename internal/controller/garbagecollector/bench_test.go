package garbagecollector

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkGraph_Build adds 10,000 pods owned by 100 ReplicaSets to an
// empty graph, as the monitors' first lists do; its peer stores the same
// objects in a plain map by UID, the least any index must cost.
//
//	go test ./internal/controller/garbagecollector -run '^$' -bench Graph
func BenchmarkGraph_Build(b *testing.B) {
	var events []event
	for i := range 100 {
		events = append(events, event{typ: addEvent, obj: obj("apps/v1/ReplicaSet", fmt.Sprintf("ns/rs-%d", i)), gvk: obj("apps/v1/ReplicaSet", "ns/x").GroupVersionKind()})
	}
	for i := range 10000 {
		owner := obj("apps/v1/ReplicaSet", fmt.Sprintf("ns/rs-%d", i%100))
		p := obj("v1/Pod", fmt.Sprintf("ns/pod-%d", i), ownedBy(owner, true))
		events = append(events, event{typ: addEvent, obj: p, gvk: p.GroupVersionKind()})
	}
	var graphTime, mapTime time.Duration
	for b.Loop() {
		start := time.Now()
		g := newGraph()
		for _, e := range events {
			g.apply(e)
		}
		graphTime += time.Since(start)

		start = time.Now()
		m := map[types.UID]*metav1.PartialObjectMetadata{}
		for _, e := range events {
			m[e.obj.UID] = e.obj
		}
		mapTime += time.Since(start)
	}
	b.ReportMetric(float64(graphTime.Microseconds())/float64(b.N), "graph-µs/op")
	b.ReportMetric(float64(mapTime.Microseconds())/float64(b.N), "map-µs/op")
	b.ReportMetric(float64(graphTime)/float64(mapTime), "ratio")
}
