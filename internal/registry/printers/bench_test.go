package printers

import (
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// podList returns n pods cycling through the pod fixtures' states.
func podList(n int) *corev1.PodList {
	fixtures := podFixtures()
	list := &corev1.PodList{Items: make([]corev1.Pod, n)}
	for i := range list.Items {
		p := fixtures[i%len(fixtures)].(*corev1.Pod).DeepCopy()
		p.Name = fmt.Sprintf("%s-%d", p.Name, i)
		list.Items[i] = *p
	}
	return list
}

// BenchmarkPodTable measures turning a LIST of 5,000 pods into a Table
// ("table"), and as its peer encoding the same list to JSON ("json"), what
// the server does anyway for a plain LIST. The json sub-benchmark reports
// the ratio of the two as table/json.
func BenchmarkPodTable(b *testing.B) {
	list := podList(5000)
	table := For(schema.GroupResource{Resource: "pods"}, Options{Now: fixedNow})
	var tableNs float64
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := table.Convert(list, false); err != nil {
				b.Fatal(err)
			}
		}
		tableNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(tableNs/1e6, "ms/5000pods")
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(list); err != nil {
				b.Fatal(err)
			}
		}
		jsonNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(jsonNs/1e6, "ms/5000pods")
		if tableNs > 0 {
			b.ReportMetric(tableNs/jsonNs, "table/json")
		}
	})
}

// BenchmarkPodRow measures one pod row.
func BenchmarkPodRow(b *testing.B) {
	pods := podList(len(podFixtures()))
	table := For(schema.GroupResource{Resource: "pods"}, Options{Now: fixedNow})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := table.Row(&pods.Items[i%len(pods.Items)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
