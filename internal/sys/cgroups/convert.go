package cgroups

import "strconv"

// Kubelet constants for CPU conversions.
const (
	MinShares    = 2      // the kernel's minimum cpu.shares
	MaxShares    = 262144 // the kernel's maximum cpu.shares
	SharesPerCPU = 1024   // cpu.shares of one whole CPU
	QuotaPeriod  = 100000 // µs, the CFS period the kubelet uses (100 ms)

	MinWeight   = 1     // cgroup v2 cpu.weight range
	MaxWeight   = 10000 //
	MinIOWeight = 1     // cgroup v2 io.weight range
	MaxIOWeight = 10000 //
	MinBlkio    = 10    // cgroup v1 blkio.weight range
	MaxBlkio    = 1000  //
)

// MilliCPUToShares converts a CPU request in millicores to cpu.shares as the
// kubelet does: 1000m is SharesPerCPU, clamped to [MinShares, MaxShares]. A
// zero request gives MinShares (not the kernel's unset default of 1024), so
// that a pod without requests really gets the least share.
func MilliCPUToShares(milliCPU int64) uint64 {
	if milliCPU <= 0 {
		return MinShares
	}
	shares := milliCPU * SharesPerCPU / 1000
	return uint64(min(max(shares, MinShares), MaxShares))
}

// MilliCPUToQuota converts a CPU limit in millicores to a CFS quota in
// microseconds for the given period (normally QuotaPeriod), as the kubelet
// does. Zero (or a negative limit) means no limit and gives 0; any real limit
// gives at least MinQuota, the smallest quota the kernel accepts.
func MilliCPUToQuota(milliCPU, period int64) int64 {
	if milliCPU <= 0 || period <= 0 {
		return 0
	}
	return max(milliCPU*period/1000, MinQuota)
}

// SharesToWeight converts cgroup v1 cpu.shares to cgroup v2 cpu.weight the
// way runc and the kubelet do, mapping [2, 262144] linearly onto [1, 10000]
// (so 1024 shares, one CPU, becomes 39). Zero (unset) stays zero.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, MinShares), MaxShares)
	return 1 + (shares-MinShares)*(MaxWeight-MinWeight)/(MaxShares-MinShares)
}

// BlkioWeightToIOWeight converts a cgroup v1 blkio.weight, [10, 1000], to a
// cgroup v2 io.weight, [1, 10000], linearly (runc's mapping). Zero (unset)
// stays zero; values outside the range are clamped.
func BlkioWeightToIOWeight(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	weight = min(max(weight, MinBlkio), MaxBlkio)
	return MinIOWeight + (weight-MinBlkio)*(MaxIOWeight-MinIOWeight)/(MaxBlkio-MinBlkio)
}

// IOWeightToBlkioWeight is the inverse of BlkioWeightToIOWeight: io.weight
// [1, 10000] to blkio.weight [10, 1000]. The BFQ scheduler's weight files
// take the same range. Zero stays zero; values outside are clamped.
func IOWeightToBlkioWeight(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	weight = min(max(weight, MinIOWeight), MaxIOWeight)
	return MinBlkio + (weight-MinIOWeight)*(MaxBlkio-MinBlkio)/(MaxIOWeight-MinIOWeight)
}

// HugePageSizeName names a huge page size the way the kernel names cgroup
// interface files: 2097152 is "2MB", 1073741824 is "1GB", 65536 is "64KB".
func HugePageSizeName(bytes uint64) string {
	const kb, mb, gb = 1 << 10, 1 << 20, 1 << 30
	switch {
	case bytes >= gb:
		return strconv.FormatUint(bytes/gb, 10) + "GB"
	case bytes >= mb:
		return strconv.FormatUint(bytes/mb, 10) + "MB"
	}
	return strconv.FormatUint(bytes/kb, 10) + "KB"
}
