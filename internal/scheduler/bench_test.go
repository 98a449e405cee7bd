package scheduler

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

// benchPod is a pod of bench/scheduler's workloads.
func benchPod(i int, spread bool) *v1.Pod {
	app := fmt.Sprintf("app-%d", i%50)
	b := schedtest.Pod(fmt.Sprintf("pod-%05d", i)).Label("app", app).Req("cpu", "100m", "memory", "128Mi")
	if spread {
		b = b.Spread(1, zone, v1.DoNotSchedule, "app", app).PreferredPodAntiAffinity(10, schedtest.Term(hostname, "app", app))
	}
	return b.Obj()
}

// BenchmarkSchedulingCycle measures the scheduling cycle alone (snapshot
// update, filters, scores, assume), without the API: 1,000 nodes in 10
// zones already holding 5,000 pods, as bench/scheduler's cluster at the
// end of its run. Each op places one more pod.
func BenchmarkSchedulingCycle(b *testing.B) {
	for _, workload := range []string{"basic", "spread"} {
		b.Run(workload, func(b *testing.B) {
			spread := workload == "spread"
			var sc scenario
			for i := 0; i < 1000; i++ {
				sc.nodes = append(sc.nodes, schedtest.Node(fmt.Sprintf("node-%04d", i)).
					Cap("cpu", "32", "memory", "128Gi", "pods", "110").Label(zone, fmt.Sprintf("zone-%d", i%10)).Obj())
			}
			for i := 0; i < 5000; i++ {
				p := benchPod(i, spread)
				p.Spec.NodeName = fmt.Sprintf("node-%04d", i%1000)
				sc.existing = append(sc.existing, p)
			}
			d := newDecider(b, sc)
			d.in.cfg.Parallelism = framework.DefaultParallelism
			d.in.fw.Handle().Parallelizer = framework.Parallelizer{Parallelism: framework.DefaultParallelism}
			d.in.cfg.PercentageOfNodesToScore = 0
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pod := benchPod(5000+i, spread)
				if err := d.in.cache.UpdateSnapshot(d.in.snapshot); err != nil {
					b.Fatal(err)
				}
				pi := framework.MustPodInfo(pod)
				dec, err := d.in.schedulePod(ctx, framework.NewCycleState(), pi)
				if err != nil {
					b.Fatal(err)
				}
				assumed := *pi
				assumed.Pod = pod
				pod.Spec.NodeName = dec.Node
				if err := d.in.cache.AssumePod(&assumed); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
		})
	}
}
