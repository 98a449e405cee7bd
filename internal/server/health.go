package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/skiff-sh/skiff/internal/version"
)

type etcdClient = *clientv3.Client

// health serves /healthz, /livez and /readyz the way upstream does: "ok",
// or a list of checks with ?verbose, and /<endpoint>/<check> for one check.
type health struct {
	s    *Server
	etcd etcdClient
}

type check struct {
	name string
	run  func(ctx context.Context) error
}

func (h *health) checks(endpoint string) []check {
	out := []check{
		{"ping", func(context.Context) error { return nil }},
		{"etcd", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := h.etcd.Get(ctx, "health", clientv3.WithCountOnly())
			return err
		}},
	}
	if endpoint == "readyz" {
		out = append(out, check{"bootstrap", func(context.Context) error {
			if !h.s.isReady.Load() {
				return fmt.Errorf("not finished")
			}
			return nil
		}})
	}
	return out
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	endpoint := parts[0]
	checks := h.checks(endpoint)
	if len(parts) == 2 {
		var only []check
		for _, c := range checks {
			if c.name == parts[1] {
				only = append(only, c)
			}
		}
		if len(only) == 0 {
			http.NotFound(w, r)
			return
		}
		checks = only
	}
	var b strings.Builder
	failed := false
	for _, c := range checks {
		if err := c.run(r.Context()); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: reason withheld\n", c.name)
			h.s.log.Debug("health check failed", "endpoint", endpoint, "check", c.name, "err", err)
			continue
		}
		fmt.Fprintf(&b, "[+]%s ok\n", c.name)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if failed {
		fmt.Fprintf(&b, "%s check failed\n", endpoint)
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, b.String())
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(&b, "%s check passed\n", endpoint)
		fmt.Fprint(w, b.String())
		return
	}
	fmt.Fprint(w, "ok")
}

func serveVersion(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(version.Info())
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
