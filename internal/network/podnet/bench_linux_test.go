package podnet_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/skiff-sh/skiff/internal/network/podnet"
	"github.com/skiff-sh/skiff/internal/testutil"
)

// BenchmarkSetupTeardown measures a pod's Setup and its Teardown against
// the peer of creating and deleting a bare veth pair with netlink,
// interleaved in the same run, and reports medians, p99s and the ratios
// of the medians:
//
//	go test -run '^$' -bench SetupTeardown -benchtime 300x ./internal/network/podnet/
//
// Deleting any network device waits for the kernel's RCU grace periods,
// so teardown and the peer's delete dominate the totals; the setup ratio
// is the cost of what Setup does beyond making the veth.
func BenchmarkSetupTeardown(b *testing.B) {
	testutil.RequireRoot(b)
	n := newNode(b, "10.42.0.0/24", func(c *podnet.Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	path := newNetNS(b)
	ctx := context.Background()
	ref := podnet.PodRef{Namespace: "default", Name: "bench", SandboxID: "bench"}
	var setup, teardown, create, del []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := n.net.Setup(ctx, ref, path); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := n.net.Teardown(ctx, ref.SandboxID, path); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bench0"}, PeerName: "bench1"}
		if err := n.nl.LinkAdd(veth); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if err := n.nl.LinkDel(veth); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		setup = append(setup, t1.Sub(t0))
		teardown = append(teardown, t2.Sub(t1))
		create = append(create, t3.Sub(t2))
		del = append(del, t4.Sub(t3))
	}
	b.StopTimer()
	total := func(a, b []time.Duration) []time.Duration {
		out := make([]time.Duration, len(a))
		for i := range a {
			out[i] = a[i] + b[i]
		}
		return out
	}
	sm, s99 := quantiles(setup)
	tm, t99 := quantiles(teardown)
	cm, c99 := quantiles(create)
	dm, d99 := quantiles(del)
	pm, p99 := quantiles(total(setup, teardown))
	vm, v99 := quantiles(total(create, del))
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(pm), "pod-p50-µs")
	b.ReportMetric(us(p99), "pod-p99-µs")
	b.ReportMetric(us(vm), "veth-p50-µs")
	b.ReportMetric(us(v99), "veth-p99-µs")
	b.ReportMetric(float64(pm)/float64(vm), "p50-ratio")
	b.ReportMetric(us(sm), "setup-p50-µs")
	b.ReportMetric(float64(sm)/float64(cm), "setup-vs-create-p50-ratio")
	if b.N > 1 {
		b.Logf("n=%d  setup p50 %v p99 %v | teardown p50 %v p99 %v | veth create p50 %v p99 %v | veth delete p50 %v p99 %v",
			b.N, sm, s99, tm, t99, cm, c99, dm, d99)
		b.Logf("setup+teardown p50 %v p99 %v vs veth create+delete p50 %v p99 %v: ratio p50 %.2f p99 %.2f; setup/create p50 %.2f",
			pm, p99, vm, v99, float64(pm)/float64(vm), float64(p99)/float64(v99), float64(sm)/float64(cm))
	}
}

// quantiles returns the median and the 99th percentile of ds.
func quantiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99)/100]
}
