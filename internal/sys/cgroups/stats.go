package cgroups

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Stats is a snapshot of a cgroup's usage. A section is nil when the host
// does not account for it (no such controller, or PSI disabled).
type Stats struct {
	CPU    *CPUStats
	Memory *MemoryStats
	Pids   *PidsStats
	// PSI is read from the cgroup2 hierarchy: on unified hosts, and on hybrid
	// hosts for processes added through the manager.
	PSI *PSIStats
}

// CPUStats is CPU time used by the cgroup and its descendants.
type CPUStats struct {
	Usage  time.Duration // user + system
	User   time.Duration
	System time.Duration
	// CFS bandwidth control: periods elapsed with runnable tasks, periods in
	// which the quota ran out, and the total time the cgroup was throttled.
	Periods          uint64
	ThrottledPeriods uint64
	Throttled        time.Duration
}

// MemoryStats is the cgroup's memory use in bytes.
type MemoryStats struct {
	// Usage is memory.current (v2) or memory.usage_in_bytes (v1).
	Usage uint64
	// WorkingSet is Usage minus the inactive file cache, floored at zero:
	// the kubelet's measure for eviction and what "kubectl top" shows.
	WorkingSet uint64
	// RSS is anonymous memory (v2 anon, v1 total_rss).
	RSS uint64
	// Swap is swap in use, where the kernel accounts for it.
	Swap uint64
	// Limit is the memory limit, or -1 for none.
	Limit int64
	// PageFaults and MajorPageFaults count faults since creation.
	PageFaults      uint64
	MajorPageFaults uint64
	// OOMEvents counts the times the cgroup reached its limit and the OOM
	// killer ran (cgroup v2 only; v1 reports these through Watch).
	OOMEvents uint64
	// OOMKills counts processes the OOM killer killed in the cgroup.
	OOMKills uint64
}

// PidsStats is the number of tasks (threads) in the cgroup.
type PidsStats struct {
	Current uint64
	Max     int64 // -1 for no limit
}

// PSIStats is pressure stall information: how long tasks waited for a
// resource.
type PSIStats struct {
	CPU    Pressure
	Memory Pressure
	IO     Pressure
}

// Pressure is one resource's pressure. Some is the share of time at least
// one task stalled on it; Full the share of time all non-idle tasks did.
type Pressure struct {
	Some PressureData
	Full PressureData
}

// PressureData holds running averages, in percent over 10 s, 60 s and 300 s,
// and the total stall time.
type PressureData struct {
	Avg10, Avg60, Avg300 float64
	Total                time.Duration
}

// parseKeyed parses a flat keyed file ("key value" per line, as cpu.stat,
// memory.stat, memory.events and cgroup.events). Values that are not
// unsigned integers are skipped.
func parseKeyed(data string) map[string]uint64 {
	out := make(map[string]uint64)
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// parsePressure parses a *.pressure file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func parsePressure(data string) (Pressure, error) {
	var p Pressure
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		var d *PressureData
		switch fields[0] {
		case "some":
			d = &p.Some
		case "full":
			d = &p.Full
		default:
			return p, fmt.Errorf("pressure line %q: %w", sc.Text(), ErrInvalid)
		}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return p, fmt.Errorf("pressure field %q: %w", f, ErrInvalid)
			}
			var err error
			switch k {
			case "avg10":
				d.Avg10, err = strconv.ParseFloat(v, 64)
			case "avg60":
				d.Avg60, err = strconv.ParseFloat(v, 64)
			case "avg300":
				d.Avg300, err = strconv.ParseFloat(v, 64)
			case "total":
				var us uint64
				us, err = strconv.ParseUint(v, 10, 64)
				d.Total = time.Duration(us) * time.Microsecond
			}
			if err != nil {
				return p, fmt.Errorf("pressure field %q: %w: %w", f, ErrInvalid, err)
			}
		}
	}
	return p, nil
}

// parseLimit parses a single-value limit file: "max" gives -1, and so does a
// cgroup v1 "unlimited" value (the page-aligned maximum, anything above
// 2^62).
func parseLimit(data string) (int64, error) {
	s := strings.TrimSpace(data)
	if s == "max" || s == "-1" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: %w: %w", s, ErrInvalid, err)
	}
	if n > 1<<62 {
		return -1, nil
	}
	return int64(n), nil
}

// parseUint parses a single unsigned value.
func parseUint(data string) (uint64, error) {
	s := strings.TrimSpace(data)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: %w: %w", s, ErrInvalid, err)
	}
	return n, nil
}

// parsePids parses cgroup.procs: one pid per line.
func parsePids(data string) ([]int, error) {
	var pids []int
	for f := range strings.FieldsSeq(data) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("pid %q: %w: %w", f, ErrInvalid, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// workingSet is usage minus inactive file pages, floored at zero, as the
// kubelet computes it.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}
