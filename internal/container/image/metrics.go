package image

import "github.com/prometheus/client_golang/prometheus"

// Pull results, the "result" label of skiff_image_pulls_total.
const (
	resultSuccess        = "success"
	resultNotFound       = "not_found"
	resultUnauthorized   = "unauthorized"
	resultDigestMismatch = "digest_mismatch"
	resultError          = "error"
)

type metrics struct {
	pulls    *prometheus.CounterVec
	bytes    prometheus.Counter
	duration prometheus.Histogram
}

// newMetrics makes the collectors and registers them on reg (nil: none).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_image_pulls_total",
			Help: "Image pulls, by result.",
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_image_pull_bytes_total",
			Help: "Bytes of layer blobs downloaded from registries.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skiff_image_pull_duration_seconds",
			Help:    "Time to pull and unpack an image.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.pulls, m.bytes, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
