package kubelet

import "github.com/prometheus/client_golang/prometheus"

// metrics are the kubelet's Prometheus collectors, named as upstream's
// where one exists.
type metrics struct {
	syncDuration     prometheus.Histogram
	podStartDuration prometheus.Histogram
	containerStarts  prometheus.Counter
	evictions        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubelet", Name: "pod_worker_duration_seconds",
			Help:    "Duration in seconds to sync a single pod.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		podStartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubelet", Name: "pod_start_duration_seconds",
			Help:    "Duration in seconds from the kubelet seeing a pod for the first time to the pod starting to run.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
		containerStarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubelet", Name: "started_containers_total", Help: "Cumulative number of containers started.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubelet", Name: "evictions", Help: "Cumulative number of pod evictions.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.syncDuration, m.podStartDuration, m.containerStarts, m.evictions} {
			// A second kubelet on one registry (tests) shares nothing;
			// its collectors are simply not exported.
			_ = reg.Register(c)
		}
	}
	return m
}
