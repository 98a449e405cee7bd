package apiserver

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics, named as upstream's.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	watchers *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apiserver_request_total",
			Help: "Counter of apiserver requests broken out for each verb, group, version, resource and HTTP response code.",
		}, []string{"verb", "group", "version", "resource", "subresource", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apiserver_request_duration_seconds",
			Help:    "Response latency distribution in seconds for each verb, group, version, resource and subresource.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"verb", "group", "version", "resource", "subresource"}),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "apiserver_registered_watchers",
			Help: "Number of currently registered watchers for a given resource.",
		}, []string{"group", "version", "resource"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.watchers} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register apiserver metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(info requestInfo, code int, start time.Time) {
	verb := info.Verb
	resource := info.Resource
	if !info.IsResource {
		resource = ""
	}
	m.requests.WithLabelValues(verb, info.Group, info.Version, resource, info.Subresource, strconv.Itoa(code)).Inc()
	if verb != "watch" {
		m.latency.WithLabelValues(verb, info.Group, info.Version, resource, info.Subresource).Observe(time.Since(start).Seconds())
	}
}

// objectCounts reports the objects each watch cache holds, as upstream's
// apiserver_storage_objects.
type objectCounts struct{ s *Server }

var objectsDesc = prometheus.NewDesc("apiserver_storage_objects", "Number of stored objects at the time of last check split by kind.", []string{"resource"}, nil)

func (o objectCounts) Describe(ch chan<- *prometheus.Desc) { ch <- objectsDesc }

func (o objectCounts) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, ep := range o.s.endpoints {
		if seen[ep.prefix] {
			continue
		}
		seen[ep.prefix] = true
		ch <- prometheus.MustNewConstMetric(objectsDesc, prometheus.GaugeValue, float64(ep.cache.Len()), ep.gr.String())
	}
}
