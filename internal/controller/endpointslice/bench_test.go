package endpointslice

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// BenchmarkSync compares, for one Service selecting 5000 pods, a sync that
// builds every slice from scratch with the common case: one pod's
// readiness flipped since the last sync. It reports the slices written
// per sync; the ratio of ns/op between the two is the point.
//
//	go test -run '^$' -bench BenchmarkSync -benchmem ./internal/controller/endpointslice/
func BenchmarkSync(b *testing.B) {
	const pods = 5000
	objs := []runtime.Object{service(), node("node-1", "zone-a")}
	for i := range pods {
		objs = append(objs, pod(fmt.Sprintf("p%05d", i), fmt.Sprintf("10.42.%d.%d", i/250, i%250+1)))
	}
	ctx := context.Background()

	b.Run("FromScratch", func(b *testing.B) {
		h := newHarness(&testing.T{}, Config{}, objs...)
		writes := 0
		for b.Loop() {
			h.c.tracker = newTracker()
			p := h.plan(ctx)
			writes += len(p.creates) + len(p.updates) + len(p.deletes)
		}
		b.ReportMetric(float64(writes)/float64(b.N), "slices-written/op")
	})
	b.Run("OnePodFlipped", func(b *testing.B) {
		h := newHarness(&testing.T{}, Config{}, objs...)
		if err := h.c.sync(ctx, "default/web"); err != nil {
			b.Fatal(err)
		}
		h.refresh()
		podInf := h.c.cfg.Informers.Core().V1().Pods().Informer()
		victim := objs[2+pods/2].(*corev1.Pod).DeepCopy()
		writes, i := 0, 0
		for b.Loop() {
			i++
			if i%2 == 0 {
				victim.Status.Conditions[0].Status = corev1.ConditionTrue
			} else {
				victim.Status.Conditions[0].Status = corev1.ConditionFalse
			}
			if err := podInf.GetIndexer().Update(victim.DeepCopy()); err != nil {
				b.Fatal(err)
			}
			p := h.plan(ctx)
			writes += len(p.creates) + len(p.updates) + len(p.deletes)
			// Apply the plan to the cache, as the informer would.
			for _, s := range p.updates {
				if err := h.c.cfg.Informers.Discovery().V1().EndpointSlices().Informer().GetIndexer().Update(s); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(writes)/float64(b.N), "slices-written/op")
	})
}

// plan computes what a sync of default/web would write, from the caches,
// without writing it.
func (h *harness) plan(ctx context.Context) plan {
	svc, err := h.c.services.Services("default").Get("web")
	if err != nil {
		panic(err)
	}
	pods, _ := h.c.pods.Pods("default").List(selectorOf(svc))
	existing, _ := h.c.slices.EndpointSlices("default").List(managedSelector("web"))
	return reconcile(serviceOwner(svc), desired(svc, pods, h.c.zoneOf), existing, h.c.cfg.MaxEndpointsPerSlice)
}

func selectorOf(svc *corev1.Service) labelsSelector {
	return labelsFromSet(svc.Spec.Selector)
}

func managedSelector(name string) labelsSelector {
	return labelsFromSet(map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ManagedBy})
}

type labelsSelector = labels.Selector

func labelsFromSet(m map[string]string) labels.Selector { return labels.SelectorFromSet(m) }
