package cri

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"
)

// metrics are the CRI server's Prometheus collectors.
type metrics struct {
	ops     *prometheus.CounterVec
	errs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	pulls   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "skiff", Subsystem: "cri", Name: "operations_total",
			Help: "CRI calls served, by method and gRPC code.",
		}, []string{"method", "code"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "skiff", Subsystem: "cri", Name: "operation_errors_total",
			Help: "CRI calls that failed, by method.",
		}, []string{"method"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "skiff", Subsystem: "cri", Name: "operation_duration_seconds",
			Help:    "Time to serve a CRI call, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"method"}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "skiff", Subsystem: "cri", Name: "image_pulls_total",
			Help: "Image pulls, by result (success or failure).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.ops, m.errs, m.latency, m.pulls)
	}
	return m
}

// observe records one call. fullMethod is "/runtime.v1.RuntimeService/Version".
func (m *metrics) observe(fullMethod string, err error, d time.Duration) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	code := status.Code(err).String()
	m.ops.WithLabelValues(method, code).Inc()
	if err != nil {
		m.errs.WithLabelValues(method).Inc()
	}
	m.latency.WithLabelValues(method).Observe(d.Seconds())
}
