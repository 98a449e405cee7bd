package nodelifecycle

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkMonitorNodeHealth times one health pass over healthy nodes that
// renew their Leases, at 1000 and 5000 nodes: the per-node cost should
// not grow with the cluster (compare ns/node between the two).
//
//	go test -run '^$' -bench BenchmarkMonitorNodeHealth -benchmem ./internal/controller/nodelifecycle/
func BenchmarkMonitorNodeHealth(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("Nodes%d", n), func(b *testing.B) {
			var objs []runtime.Object
			for i := range n {
				name := fmt.Sprintf("node-%05d", i)
				objs = append(objs, node(name), lease(name, t0))
			}
			h := newHarness(&testing.T{}, Config{}, objs...)
			ctx := context.Background()
			h.c.monitorNodeHealth(ctx) // first sight of every node
			leaseIdx := h.c.cfg.Informers.Coordination().V1().Leases().Informer().GetIndexer()
			step := 0
			for b.Loop() {
				step++
				now := t0.Add(time.Duration(step) * 5 * time.Second)
				h.clock.SetTime(now)
				// Every node renewed its Lease since the last pass.
				b.StopTimer()
				for i := range n {
					if err := leaseIdx.Update(lease(fmt.Sprintf("node-%05d", i), now)); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				h.c.monitorNodeHealth(ctx)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/node")
			if acts := len(h.client.Actions()); acts > 2 { // the harness's own lists
				b.Fatalf("a pass over healthy nodes made %d API calls", acts)
			}
		})
	}
}
