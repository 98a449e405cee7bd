//go:build linux

package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkContainerCgroup measures what a container start and stop costs
// in cgroups on this host: Create under an existing pod cgroup, Apply a
// kubelet-like set of limits, Remove. Its peer, timed in the same loop, is
// the bare kernel work of making and removing one directory in every
// hierarchy; x-mkdir-rmdir is the ratio.
func BenchmarkContainerCgroup(b *testing.B) {
	m := hostManager(b, nil)
	ctx := b.Context()
	pod, err := m.Create("pod")
	if err != nil {
		b.Fatal(err)
	}
	r := &Resources{
		CPU:     &CPU{Shares: new(MilliCPUToShares(250)), Quota: new(MilliCPUToQuota(500, QuotaPeriod)), Period: new(uint64(QuotaPeriod))},
		Memory:  &Memory{Max: new(int64(256 << 20))},
		PidsMax: new(int64(1024)),
		Devices: DefaultDevices(),
	}
	dirs := pod.dirList()
	var mgr, raw time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		c, err := m.Create("pod/c" + strconv.Itoa(n))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Apply(r); err != nil {
			b.Fatal(err)
		}
		if err := c.Remove(ctx); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		for _, d := range dirs {
			if err := os.Mkdir(filepath.Join(d, "raw"), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		for _, d := range dirs {
			if err := unix.Rmdir(filepath.Join(d, "raw")); err != nil {
				b.Fatal(err)
			}
		}
		raw += time.Since(mid)
		mgr += mid.Sub(start)
		n++
	}
	b.ReportMetric(float64(mgr.Nanoseconds())/float64(n), "manager-ns/op")
	b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "mkdir-rmdir-ns/op")
	b.ReportMetric(float64(mgr)/float64(raw), "x-mkdir-rmdir")
}
