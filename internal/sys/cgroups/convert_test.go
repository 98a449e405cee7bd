package cgroups

import (
	"fmt"
	"testing"
)

func TestMilliCPUToShares_MatchesKubelet(t *testing.T) {
	for _, tc := range []struct {
		milli int64
		want  uint64
	}{
		{0, MinShares}, // no request: the least share, not the kernel default
		{-5, MinShares},
		{1, MinShares},
		{2, MinShares},
		{3, 3},
		{5, 5},
		{100, 102},
		{250, 256},
		{1000, 1024},
		{1500, 1536},
		{2000, 2048},
		{256000, MaxShares},
		{300000, MaxShares},
	} {
		t.Run(fmt.Sprint(tc.milli), func(t *testing.T) {
			if got := MilliCPUToShares(tc.milli); got != tc.want {
				t.Errorf("MilliCPUToShares(%d) = %d, want %d", tc.milli, got, tc.want)
			}
		})
	}
}

func TestMilliCPUToQuota_MatchesKubelet(t *testing.T) {
	for _, tc := range []struct {
		milli, period, want int64
	}{
		{0, QuotaPeriod, 0}, // no limit
		{-1, QuotaPeriod, 0},
		{5, QuotaPeriod, MinQuota}, // 500µs is below the kernel's minimum
		{9, QuotaPeriod, MinQuota},
		{10, QuotaPeriod, 1000},
		{200, QuotaPeriod, 20000},
		{500, QuotaPeriod, 50000},
		{1000, QuotaPeriod, 100000},
		{1500, QuotaPeriod, 150000},
		{1000, 50000, 50000}, // custom period
		{1000, 0, 0},
	} {
		t.Run(fmt.Sprintf("%dm_per_%dus", tc.milli, tc.period), func(t *testing.T) {
			if got := MilliCPUToQuota(tc.milli, tc.period); got != tc.want {
				t.Errorf("MilliCPUToQuota(%d, %d) = %d, want %d", tc.milli, tc.period, got, tc.want)
			}
		})
	}
}

func TestSharesToWeight_MapsV1RangeOntoV2(t *testing.T) {
	for _, tc := range []struct{ shares, want uint64 }{
		{0, 0}, // unset stays unset
		{1, 1}, // clamped to the minimum
		{2, 1},
		{102, 4},
		{1024, 39}, // one CPU
		{2048, 79},
		{131073, 5000},
		{262144, 10000},
		{300000, 10000},
	} {
		t.Run(fmt.Sprint(tc.shares), func(t *testing.T) {
			if got := SharesToWeight(tc.shares); got != tc.want {
				t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, got, tc.want)
			}
		})
	}
}

func TestIOWeight_ConvertsBothWays(t *testing.T) {
	for _, tc := range []struct{ blkio, io uint64 }{
		{10, 1},
		{100, 910},
		{500, 4950},
		{1000, 10000},
	} {
		t.Run(fmt.Sprint(tc.blkio), func(t *testing.T) {
			if got := BlkioWeightToIOWeight(tc.blkio); got != tc.io {
				t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", tc.blkio, got, tc.io)
			}
			if got := IOWeightToBlkioWeight(tc.io); got != tc.blkio {
				t.Errorf("IOWeightToBlkioWeight(%d) = %d, want %d", tc.io, got, tc.blkio)
			}
		})
	}
	t.Run("zero_stays_unset", func(t *testing.T) {
		if BlkioWeightToIOWeight(0) != 0 || IOWeightToBlkioWeight(0) != 0 {
			t.Error("zero weight not kept")
		}
	})
	t.Run("out_of_range_is_clamped", func(t *testing.T) {
		if got := BlkioWeightToIOWeight(5000); got != MaxIOWeight {
			t.Errorf("BlkioWeightToIOWeight(5000) = %d", got)
		}
		if got := IOWeightToBlkioWeight(20000); got != MaxBlkio {
			t.Errorf("IOWeightToBlkioWeight(20000) = %d", got)
		}
	})
	t.Run("round_trip_stays_close", func(t *testing.T) {
		for w := uint64(MinBlkio); w <= MaxBlkio; w++ {
			back := IOWeightToBlkioWeight(BlkioWeightToIOWeight(w))
			if back > w || w-back > 1 {
				t.Fatalf("blkio %d -> io %d -> blkio %d", w, BlkioWeightToIOWeight(w), back)
			}
		}
	})
}

func TestHugePageSizeName_MatchesKernelFileNames(t *testing.T) {
	for _, tc := range []struct {
		bytes uint64
		want  string
	}{
		{64 << 10, "64KB"},
		{2 << 20, "2MB"},
		{32 << 20, "32MB"},
		{512 << 20, "512MB"},
		{1 << 30, "1GB"},
		{16 << 30, "16GB"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := HugePageSizeName(tc.bytes); got != tc.want {
				t.Errorf("HugePageSizeName(%d) = %q, want %q", tc.bytes, got, tc.want)
			}
		})
	}
}
