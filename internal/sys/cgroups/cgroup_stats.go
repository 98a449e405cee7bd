package cgroups

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Stats reads the cgroup's usage from its interface files. Sections the host
// does not account for are nil. It fails with ErrNotExist if the cgroup does
// not exist.
func (c *Cgroup) Stats() (*Stats, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var s Stats
	var err error
	if s.CPU, err = c.cpuStats(); err != nil {
		return nil, err
	}
	if s.Memory, err = c.memoryStats(); err != nil {
		return nil, err
	}
	if s.Pids, err = c.pidsStats(); err != nil {
		return nil, err
	}
	s.PSI = c.psiStats()
	return &s, nil
}

// check fails with ErrNotExist unless the cgroup exists in some hierarchy.
func (c *Cgroup) check() error {
	for _, dir := range c.dirList() {
		if _, err := os.Stat(dir); err == nil {
			return nil
		}
	}
	return fmt.Errorf("cgroup %s: %w", c.name(), ErrNotExist)
}

// optional reads a file that may be missing; missing gives "", false.
func optional(dir, file string) (string, bool, error) {
	s, err := readFile(dir, file)
	if errors.Is(err, ErrNotSupported) {
		return "", false, nil
	}
	return s, err == nil, err
}

func (c *Cgroup) cpuStats() (*CPUStats, error) {
	if dir, ok := c.v1["cpuacct"]; ok {
		var s CPUStats
		usage, err := readFile(dir, "cpuacct.usage")
		if err != nil {
			return nil, err
		}
		n, err := parseUint(usage)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: cpuacct.usage: %w", c.name(), err)
		}
		s.Usage = time.Duration(n)
		user, okUser, err := optional(dir, "cpuacct.usage_user")
		if err != nil {
			return nil, err
		}
		sys, okSys, err := optional(dir, "cpuacct.usage_sys")
		if err != nil {
			return nil, err
		}
		if okUser && okSys {
			u, err1 := parseUint(user)
			k, err2 := parseUint(sys)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("cgroup %s: cpuacct usage: %w", c.name(), err)
			}
			s.User, s.System = time.Duration(u), time.Duration(k)
		} else {
			// Older kernels: cpuacct.stat in USER_HZ ticks, 100 per second
			// on every Linux architecture.
			st, err := readFile(dir, "cpuacct.stat")
			if err != nil {
				return nil, err
			}
			kv := parseKeyed(st)
			s.User = time.Duration(kv["user"]) * 10 * time.Millisecond
			s.System = time.Duration(kv["system"]) * 10 * time.Millisecond
		}
		if cpu, ok := c.v1["cpu"]; ok {
			st, present, err := optional(cpu, "cpu.stat")
			if err != nil {
				return nil, err
			}
			if present {
				kv := parseKeyed(st)
				s.Periods, s.ThrottledPeriods = kv["nr_periods"], kv["nr_throttled"]
				s.Throttled = time.Duration(kv["throttled_time"])
			}
		}
		return &s, nil
	}
	if c.unified == "" {
		return nil, nil
	}
	// cpu.stat is a core file on v2: usage is there even without the cpu
	// controller, throttling only with it.
	st, present, err := optional(c.unified, "cpu.stat")
	if err != nil || !present {
		return nil, err
	}
	kv := parseKeyed(st)
	return &CPUStats{
		Usage:            time.Duration(kv["usage_usec"]) * time.Microsecond,
		User:             time.Duration(kv["user_usec"]) * time.Microsecond,
		System:           time.Duration(kv["system_usec"]) * time.Microsecond,
		Periods:          kv["nr_periods"],
		ThrottledPeriods: kv["nr_throttled"],
		Throttled:        time.Duration(kv["throttled_usec"]) * time.Microsecond,
	}, nil
}

func (c *Cgroup) memoryStats() (*MemoryStats, error) {
	dir, v2, err := c.controllerDir("memory", "memory")
	if errors.Is(err, ErrNotSupported) {
		return nil, nil
	}
	var s MemoryStats
	usageFile, limitFile, prefix := "memory.usage_in_bytes", "memory.limit_in_bytes", "total_"
	if v2 {
		usageFile, limitFile, prefix = "memory.current", "memory.max", ""
	}
	usage, err := readFile(dir, usageFile)
	if err != nil {
		return nil, err
	}
	if s.Usage, err = parseUint(usage); err != nil {
		return nil, fmt.Errorf("cgroup %s: %s: %w", c.name(), usageFile, err)
	}
	limit, err := readFile(dir, limitFile)
	if err != nil {
		return nil, err
	}
	if s.Limit, err = parseLimit(limit); err != nil {
		return nil, fmt.Errorf("cgroup %s: %s: %w", c.name(), limitFile, err)
	}
	st, err := readFile(dir, "memory.stat")
	if err != nil {
		return nil, err
	}
	kv := parseKeyed(st)
	s.WorkingSet = workingSet(s.Usage, kv[prefix+"inactive_file"])
	s.PageFaults, s.MajorPageFaults = kv[prefix+"pgfault"], kv[prefix+"pgmajfault"]
	if v2 {
		s.RSS = kv["anon"]
		if sw, ok, err := optional(dir, "memory.swap.current"); err != nil {
			return nil, err
		} else if ok {
			s.Swap, _ = parseUint(sw)
		}
		ev, err := readFile(dir, "memory.events")
		if err != nil {
			return nil, err
		}
		events := parseKeyed(ev)
		s.OOMEvents, s.OOMKills = events["oom"], events["oom_kill"]
		return &s, nil
	}
	s.RSS = kv["total_rss"]
	s.Swap = kv["total_swap"]
	oc, err := readFile(dir, "memory.oom_control")
	if err != nil {
		return nil, err
	}
	s.OOMKills = parseKeyed(oc)["oom_kill"]
	return &s, nil
}

func (c *Cgroup) pidsStats() (*PidsStats, error) {
	dir, _, err := c.controllerDir("pids", "pids")
	if errors.Is(err, ErrNotSupported) {
		return nil, nil
	}
	cur, err := readFile(dir, "pids.current")
	if err != nil {
		return nil, err
	}
	var s PidsStats
	if s.Current, err = parseUint(cur); err != nil {
		return nil, fmt.Errorf("cgroup %s: pids.current: %w", c.name(), err)
	}
	max, err := readFile(dir, "pids.max")
	if err != nil {
		return nil, err
	}
	if s.Max, err = parseLimit(max); err != nil {
		return nil, fmt.Errorf("cgroup %s: pids.max: %w", c.name(), err)
	}
	return &s, nil
}

// psiStats reads the pressure files of the cgroup2 directory. PSI may be
// compiled out or disabled at boot (reads then fail); that is not an error,
// the section is just nil.
func (c *Cgroup) psiStats() *PSIStats {
	if c.unified == "" {
		return nil
	}
	var s PSIStats
	for _, f := range []struct {
		file string
		p    *Pressure
	}{{"cpu.pressure", &s.CPU}, {"memory.pressure", &s.Memory}, {"io.pressure", &s.IO}} {
		data, err := os.ReadFile(c.unified + "/" + f.file)
		if err != nil {
			return nil
		}
		if *f.p, err = parsePressure(string(data)); err != nil {
			c.m.log.Warn("unreadable pressure file", "cgroup", c.name(), "file", f.file, "err", err)
			return nil
		}
	}
	return &s
}
