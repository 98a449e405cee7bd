package core_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/skiff-sh/skiff/internal/registry/core"
	"github.com/skiff-sh/skiff/internal/registry/core/reservationstest"
)

// BenchmarkServiceCreate measures the create hooks of a NodePort service
// (defaults, validation, allocation of a cluster IP and a node port, and
// the release at delete) against its peer without allocation, and with
// the IP range 90% full, where random choices start to miss and the
// allocator falls back to a scan:
//
//	go test -run '^$' -bench BenchmarkServiceCreate -benchmem ./internal/registry/core/
func BenchmarkServiceCreate(b *testing.B) {
	ctx := context.Background()
	cidr := netip.MustParsePrefix("10.96.0.0/20") // 4094 addresses
	run := func(b *testing.B, cfg core.Config) {
		r := lookupIn(b, cfg, "/services")
		tmpl := nodePortService("web", 0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			svc := tmpl.DeepCopy()
			svc.UID = newUID()
			svc.Name = fmt.Sprintf("web-%d", i)
			r.PrepareForCreate(ctx, svc)
			r.Default(svc)
			if errs := r.Validate(ctx, svc); len(errs) != 0 {
				b.Fatal(errs)
			}
			if err := r.BeforeCreate(ctx, svc); err != nil {
				b.Fatal(err)
			}
			if err := r.AfterDelete(ctx, svc); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("NoAllocation", func(b *testing.B) { run(b, core.Config{ServiceCIDR: cidr}) })
	b.Run("EmptyRange", func(b *testing.B) {
		run(b, core.Config{ServiceCIDR: cidr, Reservations: reservationstest.NewMemory()})
	})
	b.Run("RangeNinetyPercentFull", func(b *testing.B) {
		mem := reservationstest.NewMemory()
		fill(b, mem, cidr, 0.9)
		run(b, core.Config{ServiceCIDR: cidr, Reservations: mem})
	})
}

// fill claims frac of the addresses of cidr for other owners.
func fill(b *testing.B, mem *reservationstest.Memory, cidr netip.Prefix, frac float64) {
	b.Helper()
	ctx := context.Background()
	size := 1 << (32 - cidr.Bits())
	n := int(float64(size) * frac)
	a := cidr.Addr().Next()
	for i := 0; i < n; i++ {
		if _, err := mem.Reserve(ctx, core.ServiceIPPrefix+a.String(), "other/filler/"+fmt.Sprint(i)); err != nil {
			b.Fatal(err)
		}
		a = a.Next()
	}
}
