package cgroups

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Resources is a portable set of limits for one cgroup. A nil pointer or an
// empty slice leaves the corresponding interface files untouched, so Apply can
// be used to change one limit at a time. Limits that take "max" use -1 for it.
//
// Cgroup.Apply maps each field to the files of the hierarchy that holds the
// controller on this host (v2 names first, v1 names after the slash):
//
//	CPU.Shares          cpu.weight (converted, see SharesToWeight) / cpu.shares
//	CPU.Quota, Period   cpu.max / cpu.cfs_quota_us, cpu.cfs_period_us
//	CPUSet              cpuset.cpus, cpuset.mems (both)
//	Memory.Max          memory.max / memory.limit_in_bytes
//	Memory.High         memory.high / not supported
//	Memory.Low          memory.low / memory.soft_limit_in_bytes
//	Memory.Min          memory.min / not supported
//	Memory.Swap         memory.swap.max / memory.memsw.limit_in_bytes (Max+Swap)
//	PidsMax             pids.max (both)
//	IO.Weight           io.weight or io.bfq.weight / blkio.weight or blkio.bfq.weight
//	IO.Throttle         io.max / blkio.throttle.{read,write}_{bps,iops}_device
//	HugeTLB             hugetlb.<size>.max / hugetlb.<size>.limit_in_bytes (and rsvd)
//	RDMA                rdma.max (both)
//	Devices             an eBPF device program / devices.deny, devices.allow
type Resources struct {
	CPU     *CPU
	CPUSet  *CPUSet
	Memory  *Memory
	PidsMax *int64 // -1: no limit
	IO      *IO
	HugeTLB []HugeTLB
	RDMA    []RDMA
	// Devices, when not empty, replaces the cgroup's device access rules.
	// The rules are applied in order on top of "deny everything"; to deny
	// every device pass the single rule DeviceRule{Type: DeviceAll, Major:
	// Wildcard, Minor: Wildcard, Access: "rwm"}.
	Devices []DeviceRule
}

// CPU holds the cpu controller's settings.
type CPU struct {
	// Shares is the relative weight in cgroup v1 units, [MinShares,
	// MaxShares] (MilliCPUToShares computes it from a request). On cgroup v2
	// it is written as cpu.weight, converted by SharesToWeight.
	Shares *uint64
	// Quota is the CPU time, in microseconds, the cgroup may use per Period.
	// -1 or 0 mean no limit (0 is what MilliCPUToQuota returns for no
	// limit); a limit is at least MinQuota.
	Quota *int64
	// Period is the length of a quota period in microseconds,
	// [MinPeriod, MaxPeriod]; nil leaves it as it is (the kernel default is
	// QuotaPeriod).
	Period *uint64
}

// CPUSet pins the cgroup to CPUs and memory nodes. The values use the
// kernel's list format ("0-3,8"); empty leaves the file untouched.
type CPUSet struct {
	CPUs string
	Mems string
}

// Memory holds the memory controller's settings, in bytes; -1 means "max"
// (no limit). Swap is the swap-only allowance (cgroup v2 semantics); on v1 it
// is turned into a memory+swap limit and then needs Max in the same call.
type Memory struct {
	Max  *int64
	High *int64
	Low  *int64
	Min  *int64
	Swap *int64
}

// IO holds the io (v2) or blkio (v1) controller's settings.
type IO struct {
	// Weight is the proportional weight in cgroup v2 units, [1, 10000]; it
	// is converted for v1 and for BFQ (see IOWeightToBlkioWeight).
	Weight *uint64
	// Throttle sets per-device limits. Each entry sets all four of its
	// limits; 0 means no limit.
	Throttle []IOThrottle
}

// IOThrottle limits one block device.
type IOThrottle struct {
	Major, Minor int64
	ReadBPS      uint64 // bytes per second
	WriteBPS     uint64
	ReadIOPS     uint64 // operations per second
	WriteIOPS    uint64
}

// HugeTLB limits the use of one huge page size.
type HugeTLB struct {
	// PageSize is the kernel's name for the size: "2MB", "1GB", "64KB".
	// HugePageSizes lists the host's.
	PageSize string
	// Limit is in bytes; -1 means no limit.
	Limit int64
}

// RDMA limits one RDMA device. Counts of -1 mean no limit.
type RDMA struct {
	Device     string // as in rdma.current, e.g. "mlx4_0"
	HCAHandles int64
	HCAObjects int64
}

// Limits checked by validate; the kernel's own.
const (
	MinQuota  = 1000    // µs, the smallest CFS quota the kernel accepts
	MinPeriod = 1000    // µs
	MaxPeriod = 1000000 // µs
)

var (
	cpuListRE  = regexp.MustCompile(`^\d+(-\d+)?(,\d+(-\d+)?)*$`)
	pageSizeRE = regexp.MustCompile(`^[1-9]\d*(KB|MB|GB)$`)
)

// validate checks every field and reports the first problem, wrapped with
// ErrInvalid. It does not consult the host.
func (r *Resources) validate() error {
	if c := r.CPU; c != nil {
		if c.Shares != nil && (*c.Shares < MinShares || *c.Shares > MaxShares) {
			return invalid("cpu shares %d outside [%d, %d]", *c.Shares, MinShares, MaxShares)
		}
		if c.Quota != nil && *c.Quota < -1 {
			return invalid("cpu quota %d: want -1, 0 or a positive number of µs", *c.Quota)
		}
		if c.Quota != nil && *c.Quota > 0 && *c.Quota < MinQuota {
			return invalid("cpu quota %dµs below the kernel minimum %dµs", *c.Quota, MinQuota)
		}
		if c.Period != nil && (*c.Period < MinPeriod || *c.Period > MaxPeriod) {
			return invalid("cpu period %dµs outside [%d, %d]", *c.Period, MinPeriod, MaxPeriod)
		}
	}
	if s := r.CPUSet; s != nil {
		for name, v := range map[string]string{"cpus": s.CPUs, "mems": s.Mems} {
			if v != "" && !validList(v) {
				return invalid("cpuset %s %q: want a list such as 0-3,8", name, v)
			}
		}
	}
	if m := r.Memory; m != nil {
		for _, f := range []struct {
			name string
			v    *int64
			min  int64
		}{{"max", m.Max, 1}, {"high", m.High, 1}, {"low", m.Low, 0}, {"min", m.Min, 0}, {"swap", m.Swap, 0}} {
			if f.v != nil && *f.v != -1 && *f.v < f.min {
				return invalid("memory %s %d: want -1 (max) or at least %d", f.name, *f.v, f.min)
			}
		}
	}
	if r.PidsMax != nil && *r.PidsMax < -1 {
		return invalid("pids max %d: want -1 (max) or a count", *r.PidsMax)
	}
	if io := r.IO; io != nil {
		if io.Weight != nil && (*io.Weight < MinIOWeight || *io.Weight > MaxIOWeight) {
			return invalid("io weight %d outside [%d, %d]", *io.Weight, MinIOWeight, MaxIOWeight)
		}
		for _, t := range io.Throttle {
			if t.Major < 0 || t.Minor < 0 || t.Major > 0xfff || t.Minor > 0xfffff {
				return invalid("io throttle device %d:%d out of range", t.Major, t.Minor)
			}
		}
	}
	for _, h := range r.HugeTLB {
		if !pageSizeRE.MatchString(h.PageSize) {
			return invalid("hugetlb page size %q: want a size such as 2MB or 1GB", h.PageSize)
		}
		if h.Limit < -1 {
			return invalid("hugetlb %s limit %d: want -1 (max) or bytes", h.PageSize, h.Limit)
		}
	}
	for _, d := range r.RDMA {
		if d.Device == "" || strings.ContainsAny(d.Device, " \t\n=") {
			return invalid("rdma device name %q", d.Device)
		}
		if d.HCAHandles < -1 || d.HCAObjects < -1 {
			return invalid("rdma %s limits %d/%d: want -1 (max) or counts", d.Device, d.HCAHandles, d.HCAObjects)
		}
	}
	for i, d := range r.Devices {
		if err := d.validate(); err != nil {
			return fmt.Errorf("device rule %d: %w", i, err)
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrInvalid)...)
}

// validList checks the kernel's list format and that ranges ascend.
func validList(s string) bool {
	if !cpuListRE.MatchString(s) {
		return false
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 10, 32)
		b, err2 := strconv.ParseUint(hi, 10, 32)
		if err1 != nil || err2 != nil || a > b {
			return false
		}
	}
	return true
}

// maxOr formats a limit where -1 means "max".
func maxOr(v int64) string {
	if v == -1 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// zeroMax formats a limit where 0 means "max".
func zeroMax(v uint64) string {
	if v == 0 {
		return "max"
	}
	return strconv.FormatUint(v, 10)
}
