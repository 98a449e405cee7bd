package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cgroup is a handle on one cgroup: its directory in each hierarchy. It
// holds no open files and no state beyond names, so handles are cheap, may
// be copied freely and are safe for concurrent use; two handles on the same
// path are interchangeable.
type Cgroup struct {
	m    *Manager
	path string // relative to the manager's parent
	full string // relative to the hierarchy roots
	// unified is the directory in the cgroup2 hierarchy, or "".
	unified string
	// v1 maps each v1 controller to the directory in its hierarchy.
	v1 map[string]string
}

// Path returns the cgroup's path relative to the manager's parent.
func (c *Cgroup) Path() string { return c.path }

func (c *Cgroup) name() string { return "/" + c.full }

// UnifiedDir returns the cgroup's directory in the cgroup2 hierarchy, or ""
// on a host without cgroup2.
func (c *Cgroup) UnifiedDir() string { return c.unified }

// Dirs returns the cgroup's directory in every hierarchy: keyed by
// controller name for v1 hierarchies (co-mounted controllers share a
// directory) and by "" for the cgroup2 hierarchy. The caller owns the map.
//
// A container runtime uses these to place a container's first process and
// then give it a cgroup namespace, so that the container sees its own cgroup
// as the root of every hierarchy:
//
//   - On a unified host, open UnifiedDir with O_PATH|O_DIRECTORY and start
//     the process with syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd,
//     Cloneflags: syscall.CLONE_NEWCGROUP}: clone3 puts the child in the
//     cgroup and roots its new cgroup namespace there in one step.
//   - On v1 and hybrid hosts, start the process held (for example blocked
//     reading a pipe), call AddProc, then let it unshare(CLONE_NEWCGROUP)
//     before it execs; the namespace is rooted at the cgroups it is in at
//     that moment, in every hierarchy.
func (c *Cgroup) Dirs() map[string]string {
	out := maps.Clone(c.v1)
	if c.unified != "" {
		out[""] = c.unified
	}
	return out
}

// dirList returns each distinct directory once: v1 directories sorted, then
// the unified one.
func (c *Cgroup) dirList() []string {
	dirs := slices.Sorted(maps.Values(c.v1))
	dirs = slices.Compact(dirs)
	if c.unified != "" {
		dirs = append(dirs, c.unified)
	}
	return dirs
}

// v1Roots returns the distinct v1 mount points, sorted.
func (c *Cgroup) v1Roots() []string {
	return slices.Compact(slices.Sorted(maps.Values(c.m.layout.V1)))
}

// controllerDir finds the directory of the hierarchy that holds a
// controller: its v1 hierarchy if the host mounts one, else the cgroup2
// hierarchy if that offers it.
func (c *Cgroup) controllerDir(v1name, v2name string) (dir string, v2 bool, err error) {
	if d, ok := c.v1[v1name]; ok {
		return d, false, nil
	}
	if c.unified != "" && c.m.v2[v2name] {
		return c.unified, true, nil
	}
	return "", false, fmt.Errorf("cgroup %s: %s controller: %w", c.name(), v2name, ErrNotSupported)
}

func (c *Cgroup) write(dir, file, data string) error {
	name := filepath.Join(dir, file)
	if err := c.m.fs.writeFile(name, data); err != nil {
		return fileError("write", name, data, dir, err)
	}
	return nil
}

// Apply writes the limits in r. Fields left nil or empty are not touched.
// Apply checks every value, and that the host supports every controller and
// file r needs, before it writes anything: a bad value gives ErrInvalid, a
// limit the host cannot enforce gives ErrNotSupported, and nothing has
// changed. A value the kernel itself refuses (ErrInvalid, with the errno)
// can leave the writes before it applied.
func (c *Cgroup) Apply(r *Resources) error {
	if r == nil {
		return nil
	}
	if err := r.validate(); err != nil {
		return fmt.Errorf("cgroup %s: %w", c.name(), err)
	}
	ops, err := c.plan(r)
	if err != nil {
		return err
	}
	for _, o := range ops {
		if err := c.run(o); err != nil {
			return err
		}
	}
	return nil
}

// op is one step of applying resources.
type op struct {
	dir, file, data string
	// devices, when not nil, makes this step install a device program in
	// dir instead of writing a file.
	devices []DeviceRule
	// onInvalid, when the write fails with EINVAL, is run instead.
	onInvalid []op
}

func (c *Cgroup) run(o op) error {
	if o.devices != nil {
		if err := c.m.fs.attachDevices(o.dir, o.devices); err != nil {
			return fmt.Errorf("cgroup %s: device program: %w", c.name(), err)
		}
		return nil
	}
	err := c.write(o.dir, o.file, o.data)
	if err != nil && o.onInvalid != nil && errors.Is(err, syscall.EINVAL) {
		for _, alt := range o.onInvalid {
			if err := c.run(alt); err != nil {
				return err
			}
		}
		return nil
	}
	return err
}

// plan turns validated resources into the writes that apply them, checking
// that the host has every controller and file needed.
func (c *Cgroup) plan(r *Resources) ([]op, error) {
	var ops []op
	add := func(more []op, err error) error {
		ops = append(ops, more...)
		return err
	}
	steps := []func() error{
		func() error { return add(c.planCPU(r.CPU)) },
		func() error { return add(c.planCPUSet(r.CPUSet)) },
		func() error { return add(c.planMemory(r.Memory)) },
		func() error { return add(c.planPids(r.PidsMax)) },
		func() error { return add(c.planIO(r.IO)) },
		func() error { return add(c.planHugeTLB(r.HugeTLB)) },
		func() error { return add(c.planRDMA(r.RDMA)) },
		func() error { return add(c.planDevices(r.Devices)) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	// Every file must be there before anything is written: a controller
	// the kernel offers at the root may still be off for this cgroup.
	for _, o := range ops {
		if o.devices == nil {
			if err := need(o.dir, o.file); err != nil {
				return nil, err
			}
		}
	}
	return ops, nil
}

// need fails with ErrNotSupported (or ErrNotExist) unless dir/file exists.
func need(dir, file string) error {
	if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
		return fileError("stat", filepath.Join(dir, file), "", dir, err)
	}
	return nil
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

func (c *Cgroup) planCPU(cpu *CPU) ([]op, error) {
	if cpu == nil || (cpu.Shares == nil && cpu.Quota == nil && cpu.Period == nil) {
		return nil, nil
	}
	dir, v2, err := c.controllerDir("cpu", "cpu")
	if err != nil {
		return nil, err
	}
	var ops []op
	if v2 {
		if cpu.Shares != nil {
			ops = append(ops, op{dir: dir, file: "cpu.weight", data: strconv.FormatUint(SharesToWeight(*cpu.Shares), 10)})
		}
		if cpu.Quota != nil || cpu.Period != nil {
			var quota string
			if cpu.Quota != nil {
				quota = "max"
				if *cpu.Quota > 0 {
					quota = strconv.FormatInt(*cpu.Quota, 10)
				}
			} else {
				// Only the period changes: keep the quota.
				cur, err := readFile(dir, "cpu.max")
				if err != nil {
					return nil, err
				}
				quota, _, _ = strings.Cut(strings.TrimSpace(cur), " ")
			}
			data := quota
			if cpu.Period != nil {
				data += " " + strconv.FormatUint(*cpu.Period, 10)
			}
			ops = append(ops, op{dir: dir, file: "cpu.max", data: data})
		}
		return ops, nil
	}
	if cpu.Shares != nil {
		ops = append(ops, op{dir: dir, file: "cpu.shares", data: strconv.FormatUint(*cpu.Shares, 10)})
	}
	var quota, period *op
	if cpu.Quota != nil {
		q := int64(-1)
		if *cpu.Quota > 0 {
			q = *cpu.Quota
		}
		quota = &op{dir: dir, file: "cpu.cfs_quota_us", data: strconv.FormatInt(q, 10)}
	}
	if cpu.Period != nil {
		period = &op{dir: dir, file: "cpu.cfs_period_us", data: strconv.FormatUint(*cpu.Period, 10)}
	}
	switch {
	case quota != nil && period != nil:
		// The kernel checks quota against period (and the parent's
		// bandwidth) on each write; when the period cannot go first, the
		// quota can.
		p := *period
		p.onInvalid = []op{*quota, *period}
		ops = append(ops, p, *quota)
	case quota != nil:
		ops = append(ops, *quota)
	case period != nil:
		ops = append(ops, *period)
	}
	return ops, nil
}

func (c *Cgroup) planCPUSet(s *CPUSet) ([]op, error) {
	if s == nil || (s.CPUs == "" && s.Mems == "") {
		return nil, nil
	}
	dir, _, err := c.controllerDir("cpuset", "cpuset")
	if err != nil {
		return nil, err
	}
	var ops []op
	if s.CPUs != "" {
		ops = append(ops, op{dir: dir, file: "cpuset.cpus", data: s.CPUs})
	}
	if s.Mems != "" {
		ops = append(ops, op{dir: dir, file: "cpuset.mems", data: s.Mems})
	}
	return ops, nil
}

func (c *Cgroup) planMemory(m *Memory) ([]op, error) {
	if m == nil || (m.Max == nil && m.High == nil && m.Low == nil && m.Min == nil && m.Swap == nil) {
		return nil, nil
	}
	dir, v2, err := c.controllerDir("memory", "memory")
	if err != nil {
		return nil, err
	}
	var ops []op
	if v2 {
		for _, f := range []struct {
			file string
			v    *int64
		}{{"memory.min", m.Min}, {"memory.low", m.Low}, {"memory.high", m.High}, {"memory.max", m.Max}, {"memory.swap.max", m.Swap}} {
			if f.v != nil {
				ops = append(ops, op{dir: dir, file: f.file, data: maxOr(*f.v)})
			}
		}
		return ops, nil
	}
	if m.High != nil {
		return nil, fmt.Errorf("cgroup %s: memory.high on cgroup v1: %w", c.name(), ErrNotSupported)
	}
	if m.Min != nil {
		return nil, fmt.Errorf("cgroup %s: memory.min on cgroup v1: %w", c.name(), ErrNotSupported)
	}
	if m.Low != nil {
		ops = append(ops, op{dir: dir, file: "memory.soft_limit_in_bytes", data: strconv.FormatInt(*m.Low, 10)})
	}
	if m.Swap == nil {
		if m.Max != nil {
			ops = append(ops, op{dir: dir, file: "memory.limit_in_bytes", data: strconv.FormatInt(*m.Max, 10)})
		}
		return ops, nil
	}
	// v1 limits memory+swap together; it needs both values.
	if m.Max == nil {
		return nil, fmt.Errorf("cgroup %s: memory swap on cgroup v1 needs max in the same call: %w", c.name(), ErrInvalid)
	}
	if err := need(dir, "memory.memsw.limit_in_bytes"); err != nil {
		return nil, err
	}
	memsw := int64(-1)
	if *m.Max != -1 && *m.Swap != -1 {
		memsw = *m.Max + *m.Swap
	}
	cur, err := readFile(dir, "memory.memsw.limit_in_bytes")
	if err != nil {
		return nil, err
	}
	curLimit, err := parseLimit(cur)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: memory.memsw.limit_in_bytes: %w", c.name(), err)
	}
	mem := op{dir: dir, file: "memory.limit_in_bytes", data: strconv.FormatInt(*m.Max, 10)}
	sw := op{dir: dir, file: "memory.memsw.limit_in_bytes", data: strconv.FormatInt(memsw, 10)}
	// The kernel keeps limit <= memsw limit at every step: raise memsw
	// first, lower it last.
	if unlimitedAbove(memsw, curLimit) {
		return append(ops, sw, mem), nil
	}
	return append(ops, mem, sw), nil
}

// unlimitedAbove reports a > b where -1 is infinity.
func unlimitedAbove(a, b int64) bool {
	switch {
	case a == -1:
		return b != -1
	case b == -1:
		return false
	}
	return a > b
}

func (c *Cgroup) planPids(max *int64) ([]op, error) {
	if max == nil {
		return nil, nil
	}
	dir, _, err := c.controllerDir("pids", "pids")
	if err != nil {
		return nil, err
	}
	return []op{{dir: dir, file: "pids.max", data: maxOr(*max)}}, nil
}

func (c *Cgroup) planIO(io *IO) ([]op, error) {
	if io == nil || (io.Weight == nil && len(io.Throttle) == 0) {
		return nil, nil
	}
	dir, v2, err := c.controllerDir("blkio", "io")
	if err != nil {
		return nil, err
	}
	var ops []op
	if io.Weight != nil {
		// The weight file depends on the I/O scheduler: io.weight and
		// blkio.weight come with iocost and CFQ, the bfq ones with BFQ,
		// which takes v1's range.
		candidates := []op{
			{dir: dir, file: "blkio.weight", data: strconv.FormatUint(IOWeightToBlkioWeight(*io.Weight), 10)},
			{dir: dir, file: "blkio.bfq.weight", data: strconv.FormatUint(IOWeightToBlkioWeight(*io.Weight), 10)},
		}
		if v2 {
			candidates = []op{
				{dir: dir, file: "io.weight", data: strconv.FormatUint(*io.Weight, 10)},
				{dir: dir, file: "io.bfq.weight", data: strconv.FormatUint(IOWeightToBlkioWeight(*io.Weight), 10)},
			}
		}
		i := slices.IndexFunc(candidates, func(o op) bool { return exists(o.dir, o.file) })
		if i < 0 {
			return nil, fmt.Errorf("cgroup %s: io weight: no %s or %s (no proportional I/O scheduler): %w",
				c.name(), candidates[0].file, candidates[1].file, ErrNotSupported)
		}
		ops = append(ops, candidates[i])
	}
	for _, t := range io.Throttle {
		dev := fmt.Sprintf("%d:%d", t.Major, t.Minor)
		if v2 {
			ops = append(ops, op{dir: dir, file: "io.max", data: fmt.Sprintf("%s rbps=%s wbps=%s riops=%s wiops=%s",
				dev, zeroMax(t.ReadBPS), zeroMax(t.WriteBPS), zeroMax(t.ReadIOPS), zeroMax(t.WriteIOPS))})
			continue
		}
		for _, f := range []struct {
			file string
			v    uint64
		}{
			{"blkio.throttle.read_bps_device", t.ReadBPS},
			{"blkio.throttle.write_bps_device", t.WriteBPS},
			{"blkio.throttle.read_iops_device", t.ReadIOPS},
			{"blkio.throttle.write_iops_device", t.WriteIOPS},
		} {
			ops = append(ops, op{dir: dir, file: f.file, data: fmt.Sprintf("%s %d", dev, f.v)})
		}
	}
	return ops, nil
}

func (c *Cgroup) planHugeTLB(limits []HugeTLB) ([]op, error) {
	if len(limits) == 0 {
		return nil, nil
	}
	dir, v2, err := c.controllerDir("hugetlb", "hugetlb")
	if err != nil {
		return nil, err
	}
	limitFile, rsvdFile, unlimited := "hugetlb.%s.limit_in_bytes", "hugetlb.%s.rsvd.limit_in_bytes", "-1"
	if v2 {
		limitFile, rsvdFile, unlimited = "hugetlb.%s.max", "hugetlb.%s.rsvd.max", "max"
	}
	var ops []op
	for _, h := range limits {
		data := unlimited
		if h.Limit != -1 {
			data = strconv.FormatInt(h.Limit, 10)
		}
		file := fmt.Sprintf(limitFile, h.PageSize)
		if !exists(dir, file) {
			return nil, fmt.Errorf("cgroup %s: hugetlb page size %s: no %s: %w", c.name(), h.PageSize, file, ErrNotSupported)
		}
		ops = append(ops, op{dir: dir, file: file, data: data})
		// Reservations count pages promised at mmap time; limit them alike
		// where the kernel has them, so a reservation cannot slip past.
		if rsvd := fmt.Sprintf(rsvdFile, h.PageSize); exists(dir, rsvd) {
			ops = append(ops, op{dir: dir, file: rsvd, data: data})
		}
	}
	return ops, nil
}

func (c *Cgroup) planRDMA(limits []RDMA) ([]op, error) {
	if len(limits) == 0 {
		return nil, nil
	}
	dir, _, err := c.controllerDir("rdma", "rdma")
	if err != nil {
		return nil, err
	}
	var ops []op
	for _, l := range limits {
		ops = append(ops, op{dir: dir, file: "rdma.max", data: fmt.Sprintf("%s hca_handle=%s hca_object=%s", l.Device, maxOr(l.HCAHandles), maxOr(l.HCAObjects))})
	}
	return ops, nil
}

func (c *Cgroup) planDevices(rules []DeviceRule) ([]op, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	if dir, ok := c.v1["devices"]; ok {
		// Start from "deny everything", then apply the rules in order.
		ops := []op{{dir: dir, file: "devices.deny", data: "a"}}
		for _, r := range rules {
			file := "devices.deny"
			if r.Allow {
				file = "devices.allow"
			}
			ops = append(ops, op{dir: dir, file: file, data: r.String()})
		}
		return ops, nil
	}
	if c.unified == "" {
		return nil, fmt.Errorf("cgroup %s: device rules: %w", c.name(), ErrNotSupported)
	}
	if _, err := os.Stat(c.unified); err != nil {
		return nil, fileError("stat", c.unified, "", c.unified, err)
	}
	return []op{{dir: c.unified, devices: slices.Clone(rules)}}, nil
}

// AddProc moves the process pid, with all its threads, into the cgroup in
// every hierarchy. On a v1 or hybrid host a failure part way leaves the
// process in some of the cgroup's hierarchies; the error says which file
// failed.
func (c *Cgroup) AddProc(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("cgroup %s: add pid %d: %w", c.name(), pid, ErrInvalid)
	}
	for _, dir := range c.dirList() {
		if err := c.write(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// procsDir is the hierarchy Procs reads: the unified one on a unified host,
// else a v1 hierarchy, preferring those that account for every task.
func (c *Cgroup) procsDir() string {
	for _, ctrl := range []string{"pids", "memory", "cpu", "cpuacct", "freezer", "devices", "blkio", "cpuset", "hugetlb", "rdma"} {
		if d, ok := c.v1[ctrl]; ok {
			return d
		}
	}
	return c.unified
}

// Procs returns the processes directly in the cgroup (not in its children),
// sorted. It fails with ErrNotExist if the cgroup does not exist.
func (c *Cgroup) Procs() ([]int, error) {
	dir := c.procsDir()
	data, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	pids, err := parsePids(data)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", c.name(), err)
	}
	slices.Sort(pids)
	return pids, nil
}

// allProcs returns every process in the cgroup or its descendants, in any
// hierarchy, deduplicated. A cgroup that does not exist has none.
func (c *Cgroup) allProcs() ([]int, error) {
	var all []int
	for _, dir := range c.dirList() {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			pids, err := parsePids(string(data))
			all = append(all, pids...)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: list processes: %w", c.name(), err)
		}
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// Freeze stops every process in the cgroup and its descendants and waits
// until the kernel reports them frozen. If ctx ends first (or
// DefaultTimeout passes, without a deadline) it thaws the cgroup again and
// fails with ErrBusy. Freezing a frozen cgroup is a no-op.
func (c *Cgroup) Freeze(ctx context.Context) error {
	return c.setFrozen(ctx, true)
}

// Thaw resumes a frozen cgroup and waits until the kernel reports it
// thawed. Thawing a cgroup that is not frozen is a no-op.
func (c *Cgroup) Thaw(ctx context.Context) error {
	return c.setFrozen(ctx, false)
}

func (c *Cgroup) setFrozen(ctx context.Context, frozen bool) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	verb := map[bool]string{true: "freeze", false: "thaw"}[frozen]
	// write asks for the state; done reports whether it has been reached.
	var write func() error
	var done func() (bool, error)
	if dir, ok := c.v1["freezer"]; ok {
		want := map[bool]string{true: "FROZEN", false: "THAWED"}[frozen]
		write = func() error { return c.write(dir, "freezer.state", want) }
		done = func() (bool, error) {
			s, err := readFile(dir, "freezer.state")
			return strings.TrimSpace(s) == want, err
		}
	} else if c.unified != "" {
		want := map[bool]string{true: "1", false: "0"}[frozen]
		write = func() error { return c.write(c.unified, "cgroup.freeze", want) }
		done = func() (bool, error) {
			s, err := readFile(c.unified, "cgroup.events")
			return strconv.FormatUint(parseKeyed(s)["frozen"], 10) == want, err
		}
	} else {
		return fmt.Errorf("cgroup %s: %s: no freezer: %w", c.name(), verb, ErrNotSupported)
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		// v1 may stay FREEZING while a task sleeps uninterruptibly; asking
		// again retries the tasks that did not stop.
		if err := write(); err != nil {
			return err
		}
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := sleep(ctx, delay); err != nil {
			if frozen {
				// Do not leave a half-frozen cgroup behind.
				if terr := c.setFrozen(context.WithoutCancel(ctx), false); terr != nil {
					c.m.log.Warn("cannot thaw after failed freeze", "cgroup", c.name(), "err", terr)
				}
			}
			return fmt.Errorf("cgroup %s: %s: %w: %w", c.name(), verb, ErrBusy, err)
		}
	}
}

// DefaultTimeout bounds Freeze, Thaw, Kill and Remove when their context
// has no deadline, so that a cgroup that never settles cannot hang them.
const DefaultTimeout = 30 * time.Second

// bounded returns ctx, given DefaultTimeout if it has no deadline.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// sleep waits for d or until ctx ends, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Kill sends SIGKILL to every process in the cgroup and its descendants and
// waits until none is left. It uses cgroup.kill where the kernel has it,
// and otherwise freezes the cgroup (where there is a freezer) so that no
// process can fork while being killed. If ctx ends first (or
// DefaultTimeout passes, without a deadline) it fails with ErrBusy. Killing
// an empty or missing cgroup succeeds.
func (c *Cgroup) Kill(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	cgroupKill := c.unified != "" && exists(c.unified, "cgroup.kill")
	_, freezer := c.v1["freezer"]
	if c.unified != "" && c.m.layout.Mode() == ModeUnified {
		freezer = exists(c.unified, "cgroup.freeze")
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		pids, err := c.allProcs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if cgroupKill {
			if err := c.write(c.unified, "cgroup.kill", "1"); err != nil && !errors.Is(err, ErrNotExist) {
				return err
			}
		}
		// On hybrid hosts cgroup.kill reaches only what is in the cgroup2
		// hierarchy; signal what the v1 hierarchies still list.
		if !cgroupKill || c.m.layout.Mode() != ModeUnified {
			if err := c.signalAll(ctx, freezer); err != nil {
				return err
			}
		}
		if err := sleep(ctx, delay); err != nil {
			left, _ := c.allProcs()
			return fmt.Errorf("cgroup %s: kill: %d processes left %v: %w: %w", c.name(), len(left), left, ErrBusy, err)
		}
	}
}

// signalAll sends SIGKILL to every listed process, inside a freeze when
// possible.
func (c *Cgroup) signalAll(ctx context.Context, freeze bool) error {
	if freeze {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Freeze(fctx)
		cancel()
		if err != nil {
			// A cgroup that does not freeze is still killed, only racily.
			c.m.log.Debug("kill without freezing", "cgroup", c.name(), "err", err)
			freeze = false
		}
	}
	pids, err := c.allProcs()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := killProcess(pid); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("cgroup %s: kill pid %d: %w", c.name(), pid, err)
		}
	}
	if freeze {
		return c.Thaw(context.WithoutCancel(ctx))
	}
	return nil
}

// Remove deletes the cgroup and every cgroup below it, in every hierarchy.
// It does not kill processes: if a cgroup still lists some, Remove fails at
// once with ErrBusy (call Kill first). Processes that are exiting are no
// longer listed but can keep the kernel from removing the directory for a
// moment; Remove retries that until ctx ends (or DefaultTimeout, without a
// deadline). Removing a missing cgroup succeeds, so Remove is idempotent.
// The cgroups above it, such as a pod's, are left alone.
func (c *Cgroup) Remove(ctx context.Context) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	for _, dir := range c.dirList() {
		if err := c.removeTree(ctx, dir); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cgroup) removeTree(ctx context.Context, dir string) error {
	// Most cgroups removed are leaves: try that first.
	err := c.m.fs.rmdir(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: remove: %w", c.name(), err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := c.removeTree(ctx, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := c.m.fs.rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fileError("rmdir", dir, "", dir, err)
		}
		if data, rerr := os.ReadFile(filepath.Join(dir, "cgroup.procs")); rerr == nil {
			if pids, _ := parsePids(string(data)); len(pids) > 0 {
				return fmt.Errorf("cgroup %s: rmdir %s: processes %v still in it: %w: %w", c.name(), dir, pids, ErrBusy, err)
			}
		}
		if serr := sleep(ctx, delay); serr != nil {
			return fmt.Errorf("cgroup %s: rmdir %s: %w: %w", c.name(), dir, ErrBusy, serr)
		}
	}
}
