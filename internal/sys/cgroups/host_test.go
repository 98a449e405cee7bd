//go:build linux

package cgroups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/testutil"
)

// hostManager returns a manager on this host's real hierarchies, under a
// parent of its own ("skiff-test-<random>") that cleanup kills and removes
// in every hierarchy, checking that nothing is left. edit may change the
// detected layout (to drive only the cgroup2 or only the v1 hierarchies).
func hostManager(t testing.TB, edit func(*Layout)) *Manager {
	t.Helper()
	testutil.RequireRoot(t)
	l, err := detectLayout()
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&l)
	}
	m, err := New(Config{
		Parent:       fmt.Sprintf("skiff-test-%08x", rand.Uint32()),
		Layout:       &l,
		PollInterval: 20 * time.Millisecond,
		Logger:       testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		top, err := m.Open("")
		if errors.Is(err, ErrNotExist) {
			return
		}
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if err := top.Kill(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := top.Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, dir := range top.Dirs() {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup left %s behind", dir)
			}
		}
	})
	return m
}

// testLogger logs to the test's output, at debug level except in
// benchmarks, where logging would be measured.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

func readTrim(t *testing.T, dir, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// blockDevice returns the major:minor of a block device of this host.
func blockDevice(t *testing.T) (int64, int64) {
	t.Helper()
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "loop") || strings.HasPrefix(e.Name(), "ram") {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		var major, minor int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(data)), "%d:%d", &major, &minor); err == nil {
			return major, minor
		}
	}
	t.Fatal("no block device under /sys/block")
	return 0, 0
}

func TestHost_DetectsLayout(t *testing.T) {
	testutil.RequireRoot(t)
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseMountInfo(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, m.Layout()); diff != "" {
		t.Errorf("layout (-want +got):\n%s", diff)
	}
	if m.Mode() == 0 {
		t.Error("no mode")
	}
	ctrls := m.Controllers()
	for _, c := range []string{"cpu", "memory", "pids"} {
		if ctrls[c] == 0 {
			t.Errorf("controller %s missing from %v", c, ctrls)
		}
	}
	t.Logf("mode %v, controllers %v", m.Mode(), ctrls)
}

func TestHost_ApplyReadsBack(t *testing.T) {
	m := hostManager(t, nil)
	c, err := m.Create("pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	major, minor := blockDevice(t)
	dirs := c.Dirs()
	ver := m.Controllers()
	type check struct{ dir, file, want string }
	var checks []check
	r := &Resources{
		CPU:     &CPU{Shares: new(uint64(512)), Quota: new(int64(50000)), Period: new(uint64(100000))},
		CPUSet:  &CPUSet{CPUs: "0", Mems: "0"},
		Memory:  &Memory{Max: new(int64(64 << 20)), Low: new(int64(16 << 20)), Swap: new(int64(0))},
		PidsMax: new(int64(64)),
		IO:      &IO{Throttle: []IOThrottle{{Major: major, Minor: minor, ReadBPS: 1 << 20}}},
		Devices: []DeviceRule{
			{Allow: true, Type: DeviceChar, Major: 1, Minor: 3, Access: "rwm"},
			{Allow: true, Type: DeviceChar, Major: 136, Minor: Wildcard, Access: "rw"},
		},
	}
	dev := fmt.Sprintf("%d:%d", major, minor)
	switch ver["cpu"] {
	case 1:
		checks = append(checks, check{dirs["cpu"], "cpu.shares", "512"}, check{dirs["cpu"], "cpu.cfs_quota_us", "50000"}, check{dirs["cpu"], "cpu.cfs_period_us", "100000"})
	case 2:
		checks = append(checks, check{dirs[""], "cpu.weight", "20"}, check{dirs[""], "cpu.max", "50000 100000"})
	}
	cpusetDir := map[int]string{1: dirs["cpuset"], 2: dirs[""]}[ver["cpuset"]]
	checks = append(checks, check{cpusetDir, "cpuset.cpus", "0"}, check{cpusetDir, "cpuset.mems", "0"})
	switch ver["memory"] {
	case 1:
		checks = append(checks, check{dirs["memory"], "memory.limit_in_bytes", "67108864"},
			check{dirs["memory"], "memory.memsw.limit_in_bytes", "67108864"},
			check{dirs["memory"], "memory.soft_limit_in_bytes", "16777216"})
	case 2:
		checks = append(checks, check{dirs[""], "memory.max", "67108864"}, check{dirs[""], "memory.swap.max", "0"}, check{dirs[""], "memory.low", "16777216"})
	}
	pidsDir := map[int]string{1: dirs["pids"], 2: dirs[""]}[ver["pids"]]
	checks = append(checks, check{pidsDir, "pids.max", "64"})
	switch ver["blkio"] + ver["io"] {
	case 1:
		checks = append(checks, check{dirs["blkio"], "blkio.throttle.read_bps_device", dev + " 1048576"})
		if exists(dirs["blkio"], "blkio.bfq.weight") || exists(dirs["blkio"], "blkio.weight") {
			r.IO.Weight = new(uint64(500))
			file := "blkio.weight"
			if !exists(dirs["blkio"], file) {
				file = "blkio.bfq.weight"
			}
			checks = append(checks, check{dirs["blkio"], file, "59"})
		}
	case 2:
		checks = append(checks, check{dirs[""], "io.max", dev + " rbps=1048576 wbps=max riops=max wiops=max"})
	}
	if sizes, _ := HugePageSizes(); slices.Contains(sizes, "2MB") && ver["hugetlb"] != 0 {
		r.HugeTLB = []HugeTLB{{PageSize: "2MB", Limit: 4 << 20}}
		file := map[int]string{1: "hugetlb.2MB.limit_in_bytes", 2: "hugetlb.2MB.max"}[ver["hugetlb"]]
		dir := map[int]string{1: dirs["hugetlb"], 2: dirs[""]}[ver["hugetlb"]]
		checks = append(checks, check{dir, file, "4194304"})
	}
	if ver["devices"] == 1 {
		checks = append(checks, check{dirs["devices"], "devices.list", "c 1:3 rwm\nc 136:* rw"})
	}
	if err := c.Apply(r); err != nil {
		t.Fatal(err)
	}
	for _, ch := range checks {
		t.Run(ch.file, func(t *testing.T) {
			if got := readTrim(t, ch.dir, ch.file); got != ch.want {
				t.Errorf("%s/%s = %q, want %q", ch.dir, ch.file, got, ch.want)
			}
		})
	}
	t.Run("unsupported_limits_fail_clearly", func(t *testing.T) {
		if ver["rdma"] == 0 {
			err := c.Apply(&Resources{RDMA: []RDMA{{Device: "mlx4_0", HCAHandles: 1, HCAObjects: 1}}})
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("rdma without the controller: %v, want ErrNotSupported", err)
			}
		}
		if ver["memory"] == 1 {
			err := c.Apply(&Resources{Memory: &Memory{High: new(int64(1 << 20))}})
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("memory.high on v1: %v, want ErrNotSupported", err)
			}
		}
	})
	t.Run("kernel_refusal_is_invalid", func(t *testing.T) {
		// A CPU this machine does not have.
		err := c.Apply(&Resources{CPUSet: &CPUSet{CPUs: "4095"}})
		if !errors.Is(err, ErrInvalid) || !(errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ERANGE)) {
			t.Errorf("cpuset beyond the machine: %v, want ErrInvalid with the kernel's errno", err)
		}
	})
	t.Run("raising_and_lowering_memory_keeps_order", func(t *testing.T) {
		for _, max := range []int64{128 << 20, 32 << 20, -1} {
			if err := c.Apply(&Resources{Memory: &Memory{Max: new(max), Swap: new(int64(0))}}); err != nil {
				t.Fatalf("max %d: %v", max, err)
			}
		}
	})
}

func TestHost_ProcessLifecycle(t *testing.T) {
	m := hostManager(t, nil)
	ctx := t.Context()
	c, err := m.Create("pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Kind != EventEmpty {
		t.Fatalf("first event %v, want empty", e)
	}
	ch := startChild(t, "block", nil, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	pids, err := c.Procs()
	if err != nil || !slices.Equal(pids, []int{ch.pid()}) {
		t.Fatalf("Procs = %v, %v; want [%d]", pids, err, ch.pid())
	}
	for key, dir := range c.Dirs() {
		if got := readTrim(t, dir, "cgroup.procs"); got != fmt.Sprint(ch.pid()) {
			t.Errorf("hierarchy %q: cgroup.procs = %q", key, got)
		}
	}
	if c.UnifiedDir() != "" {
		if e := next(t, events); e.Kind != EventPopulated {
			t.Errorf("event %v, want populated", e)
		}
	}
	stats, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.CPU == nil || stats.Memory == nil || stats.Pids == nil {
		t.Fatalf("missing stats: %+v", stats)
	}
	// (Memory usage may be 0: cgroup v1 does not move a process's charges
	// with it.)
	if stats.Pids.Current == 0 || stats.Memory.Limit != -1 || stats.CPU.Usage < 0 {
		t.Errorf("stats do not show the process: memory %+v, pids %+v", stats.Memory, stats.Pids)
	}
	if c.UnifiedDir() != "" && stats.PSI == nil {
		if _, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
			t.Error("no PSI although the kernel has it")
		}
	}
	if err := c.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if dir, ok := c.Dirs()["freezer"]; ok {
		if got := readTrim(t, dir, "freezer.state"); got != "FROZEN" {
			t.Errorf("freezer.state = %s", got)
		}
	}
	if st := procState(t, ch.pid()); st != "D" && st != "S" && st != "T" {
		t.Logf("frozen process state %q", st)
	}
	if err := c.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ch.wait(t); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("helper exit: %v, want killed", err)
	}
	if pids, err := c.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("Procs after Kill = %v, %v", pids, err)
	}
	if err := c.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := m.Open("pod/ctr"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open after Remove: %v, want ErrNotExist", err)
	}
	// The watch ends with the cgroup; an empty event may come first.
	for e := range events {
		if e.Kind != EventEmpty {
			t.Errorf("unexpected event %v", e)
		}
	}
}

func procState(t *testing.T, pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	return strings.SplitN(rest, " ", 2)[0]
}

func TestHost_MemoryHogIsOOMKilled(t *testing.T) {
	m := hostManager(t, nil)
	c, err := m.Create("hog")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(&Resources{Memory: &Memory{Max: new(int64(32 << 20)), Swap: new(int64(0))}}); err != nil {
		t.Fatal(err)
	}
	events, err := c.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ch := startChild(t, "memhog", nil, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	ch.start(t)
	err = ch.wait(t)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("memory hog ended with %v, want killed by SIGKILL", err)
	}
	var got []EventKind
	for e := range events {
		got = append(got, e.Kind)
		if e.Kind == EventOOMKill {
			break
		}
	}
	if !slices.Contains(got, EventOOMKill) {
		t.Errorf("events %v, want an oom_kill", got)
	}
	stats, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.Memory.OOMKills < 1 {
		t.Errorf("OOMKills = %d, want at least 1", stats.Memory.OOMKills)
	}
}

func TestHost_ForkBombStopsAtPidsMax(t *testing.T) {
	m := hostManager(t, nil)
	c, err := m.Create("bomb")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 48
	if err := c.Apply(&Resources{PidsMax: new(int64(limit))}); err != nil {
		t.Fatal(err)
	}
	// This host's init does not reap orphans: adopt the bomb's children so
	// that the test can reap them and leave no zombies behind.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	ch := startChild(t, "forkbomb", nil, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	var spawned []int
	t.Cleanup(func() {
		if err := c.Kill(context.Background()); err != nil {
			t.Error(err)
		}
		ch.wait(t)
		for _, pid := range spawned {
			if pid != ch.pid() {
				unix.Wait4(pid, nil, 0, nil)
			}
		}
	})
	ch.start(t)
	if !ch.out.Scan() {
		t.Fatal("fork bomb said nothing")
	}
	line := ch.out.Text()
	spawned, _ = c.allProcs()
	if !strings.HasPrefix(line, "refused ") {
		t.Fatalf("fork bomb: %q, want it refused", line)
	}
	stats, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.Pids.Current > limit || stats.Pids.Max != limit {
		t.Errorf("pids %+v, want at most %d", stats.Pids, limit)
	}
	pidsDir, _, _ := c.controllerDir("pids", "pids")
	if kv := parseKeyed(readTrim(t, pidsDir, "pids.events")); kv["max"] == 0 {
		t.Errorf("pids.events shows no refused fork: %v", kv)
	}
	// The host is unaffected: a process outside the cgroup still starts.
	if out, err := exec.Command(os.Args[0], "-test.run=^$").CombinedOutput(); err != nil {
		t.Errorf("starting a process outside the cgroup: %v\n%s", err, out)
	}
	t.Logf("bomb %s; %d processes, %d tasks in the cgroup", line, len(spawned), stats.Pids.Current)
}

func TestHost_CPUQuotaThrottles(t *testing.T) {
	m := hostManager(t, nil)
	c, err := m.Create("burn")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(&Resources{CPU: &CPU{Quota: new(MilliCPUToQuota(100, QuotaPeriod)), Period: new(uint64(QuotaPeriod))}}); err != nil {
		t.Fatal(err)
	}
	ch := startChild(t, "burn", nil, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	ch.start(t)
	// Wait for the condition, not for a time: a burner at 10% of a CPU is
	// throttled within a few periods, however loaded the machine.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		s, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.CPU.ThrottledPeriods > 0 {
			// (throttled time is added when a period ends, so it may
			// still be 0 here.)
			if s.CPU.Periods < s.CPU.ThrottledPeriods {
				t.Errorf("inconsistent throttling stats %+v", s.CPU)
			}
			t.Logf("cpu %+v", s.CPU)
			return
		}
		if sleep(ctx, 50*time.Millisecond) != nil {
			t.Fatalf("never throttled: %+v", s.CPU)
		}
	}
}

func TestHost_CgroupNamespaceRootsAtContainer(t *testing.T) {
	m := hostManager(t, nil)
	c, err := m.Create("pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	ch := startChild(t, "cgroupns", nil, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	ch.start(t)
	lines := ch.lines(t)
	if len(lines) == 0 || strings.HasPrefix(lines[0], "error") {
		t.Fatalf("helper: %v", lines)
	}
	for _, l := range lines {
		// hierarchy-id:controllers:path
		if i := strings.LastIndex(l, ":"); l[i+1:] != "/" {
			t.Errorf("in its cgroup namespace the container sees %q, want its cgroup as /", l)
		}
	}
}

func TestHost_V1WithoutCgroup2PollsForProcesses(t *testing.T) {
	m := hostManager(t, func(l *Layout) { l.Unified = "" })
	if len(m.Layout().V1) == 0 {
		t.Skip("host has no cgroup v1 hierarchy")
	}
	c, err := m.Create("ctr")
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Kind != EventEmpty {
		t.Fatalf("first event %v", e)
	}
	ch := startChild(t, "block", nil, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Kind != EventPopulated {
		t.Fatalf("event %v, want populated", e)
	}
	if err := c.Kill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e := next(t, events); e.Kind != EventEmpty {
		t.Fatalf("event %v, want empty", e)
	}
	if err := c.Remove(t.Context()); err != nil {
		t.Fatal(err)
	}
	for e := range events {
		t.Errorf("event after removal: %v", e)
	}
}

func TestHost_V1DevicesDenyUnlisted(t *testing.T) {
	m := hostManager(t, nil)
	if _, ok := m.Layout().V1["devices"]; !ok {
		t.Skip("host has no v1 devices hierarchy (see TestHost_Unified)")
	}
	testDeviceRules(t, m)
}

// testDeviceRules checks that a process in a cgroup with device rules can
// open what they allow and nothing else.
func testDeviceRules(t *testing.T, m *Manager) {
	c, err := m.Create("dev")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Apply(&Resources{Devices: []DeviceRule{
		{Allow: true, Type: DeviceChar, Major: 1, Minor: 3, Access: "rw"}, // /dev/null
		{Allow: true, Type: DeviceChar, Major: 1, Minor: 9, Access: "r"},  // /dev/urandom, read only
	}})
	if err != nil {
		t.Fatal(err)
	}
	ch := startChild(t, "devices", []string{"SKIFF_CGROUPS_TEST_DEVICES=/dev/null:rw /dev/zero:r /dev/urandom:r /dev/urandom:w"}, nil)
	if err := c.AddProc(ch.pid()); err != nil {
		t.Fatal(err)
	}
	ch.start(t)
	want := []string{"/dev/null:rw ok", "/dev/zero:r operation not permitted", "/dev/urandom:r ok", "/dev/urandom:w operation not permitted"}
	if diff := cmp.Diff(want, ch.lines(t)); diff != "" {
		t.Errorf("device access (-want +got):\n%s", diff)
	}
	t.Run("replacing_rules_replaces_the_program", func(t *testing.T) {
		if err := c.Apply(&Resources{Devices: []DeviceRule{{Allow: true, Type: DeviceChar, Major: 1, Minor: 5, Access: "r"}}}); err != nil {
			t.Fatal(err)
		}
		ch := startChild(t, "devices", []string{"SKIFF_CGROUPS_TEST_DEVICES=/dev/null:r /dev/zero:r"}, nil)
		if err := c.AddProc(ch.pid()); err != nil {
			t.Fatal(err)
		}
		ch.start(t)
		want := []string{"/dev/null:r operation not permitted", "/dev/zero:r ok"}
		if diff := cmp.Diff(want, ch.lines(t)); diff != "" {
			t.Errorf("device access (-want +got):\n%s", diff)
		}
	})
}

// TestHost_Unified drives the cgroup2 hierarchy alone, as on a unified host.
// On a hybrid host it has few controllers, but every core feature: the
// device program, freezing, cgroup.kill, cgroup.events, PSI, clone3 into a
// cgroup.
func TestHost_Unified(t *testing.T) {
	m := hostManager(t, func(l *Layout) { l.V1 = nil })
	if m.Layout().Unified == "" {
		t.Skip("host has no cgroup2 hierarchy")
	}
	ctx := t.Context()
	t.Run("devices", func(t *testing.T) { testDeviceRules(t, m) })
	t.Run("freeze_kill_watch", func(t *testing.T) {
		c, err := m.Create("ctr")
		if err != nil {
			t.Fatal(err)
		}
		events, err := c.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		next(t, events)
		ch := startChild(t, "block", nil, nil)
		if err := c.AddProc(ch.pid()); err != nil {
			t.Fatal(err)
		}
		if e := next(t, events); e.Kind != EventPopulated {
			t.Errorf("event %v, want populated", e)
		}
		if err := c.Freeze(ctx); err != nil {
			t.Fatal(err)
		}
		if kv := parseKeyed(readTrim(t, c.UnifiedDir(), "cgroup.events")); kv["frozen"] != 1 {
			t.Errorf("cgroup.events %v, want frozen", kv)
		}
		if err := c.Thaw(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.CPU == nil {
			t.Error("no CPU stats from cpu.stat")
		}
		if _, err := os.ReadFile("/proc/pressure/cpu"); err == nil && s.PSI == nil {
			t.Error("no PSI although the kernel has it")
		}
		if err := c.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		if e := next(t, events); e.Kind != EventEmpty {
			t.Errorf("event %v, want empty", e)
		}
		if err := ch.wait(t); err == nil {
			t.Error("helper survived Kill")
		}
		if err := c.Remove(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("hugetlb", func(t *testing.T) {
		sizes, _ := HugePageSizes()
		if !m.v2["hugetlb"] || len(sizes) == 0 {
			t.Skip("no hugetlb controller on cgroup2 here")
		}
		c, err := m.Create("huge")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(&Resources{HugeTLB: []HugeTLB{{PageSize: sizes[0], Limit: 2 * (2 << 20)}}}); err != nil {
			t.Fatal(err)
		}
		if got := readTrim(t, c.UnifiedDir(), "hugetlb."+sizes[0]+".max"); got != "4194304" {
			t.Errorf("hugetlb.%s.max = %s", sizes[0], got)
		}
	})
	t.Run("clone_into_cgroup_with_namespace", func(t *testing.T) {
		c, err := m.Create("pod/clone")
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(c.UnifiedDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		ch := startChild(t, "cgroupfile", nil, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Cloneflags: syscall.CLONE_NEWCGROUP})
		lines := ch.lines(t)
		if !slices.Contains(lines, "0::/") {
			t.Errorf("child sees %v, want 0::/ (its cgroup as the root)", lines)
		}
		if pids, err := c.Procs(); err != nil || !slices.Contains(pids, ch.pid()) {
			t.Errorf("Procs = %v, %v; want the child %d", pids, err, ch.pid())
		}
	})
}
