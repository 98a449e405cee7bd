package replicaset

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// BenchmarkPodsToDelete ranks 5000 pods to pick 500 victims; its peer
// sorts the same pods by name, the least any choice must cost.
func BenchmarkPodsToDelete(b *testing.B) {
	rs := newRS("web", 4500)
	pods := make([]*corev1.Pod, 5000)
	for i := range pods {
		mods := []podMod{onNode(fmt.Sprintf("node-%d", i%50)), createdAgo(time.Duration(i) * time.Minute)}
		if i%3 != 0 {
			mods = append(mods, readyFor(time.Duration(i)*time.Second))
		}
		if i%7 == 0 {
			mods = append(mods, withRestarts(int32(i%5)))
		}
		pods[i] = newPod(fmt.Sprintf("web-%05d", i), rs, mods...)
	}
	var rank, sorted time.Duration
	for b.Loop() {
		start := time.Now()
		podsToDelete(pods, pods, 500, t0)
		rank += time.Since(start)
		start = time.Now()
		peer := slices.Clone(pods)
		slices.SortFunc(peer, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
		sorted += time.Since(start)
	}
	b.ReportMetric(float64(rank.Microseconds())/float64(b.N), "rank-µs/op")
	b.ReportMetric(float64(sorted.Microseconds())/float64(b.N), "sort-by-name-µs/op")
	b.ReportMetric(float64(rank)/float64(sorted), "ratio")
}
