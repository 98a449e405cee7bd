package cgroups

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Synthetic hosts: a pure cgroup v2 host with every controller, and a hybrid
// host shaped like the development and CI machines (v1 controllers each on
// their own hierarchy, cgroup2 holding only hugetlb).
var synthHosts = map[string]func() fakeOptions{
	"v2": func() fakeOptions {
		return fakeOptions{v2: []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"}}
	},
	"hybrid": func() fakeOptions {
		return fakeOptions{v2: []string{"hugetlb"}, v1: map[string][]string{
			"cpu": {"cpu"}, "cpuacct": {"cpuacct"}, "cpuset": {"cpuset"}, "memory": {"memory"},
			"devices": {"devices"}, "freezer": {"freezer"}, "blkio": {"blkio"}, "pids": {"pids"},
		}, omit: []string{"hugetlb.1GB.max", "hugetlb.1GB.rsvd.max"}}
	},
}

func TestCreate_EnablesControllersAlongThePath(t *testing.T) {
	for host, opts := range synthHosts {
		t.Run(host, func(t *testing.T) {
			m, k := newFakeManager(t, opts(), Config{})
			if _, err := m.Create("kubepods/burstable/pod1/ctr"); err != nil {
				t.Fatal(err)
			}
			// A second Create of the same path, or of a sibling, only adds
			// what is missing.
			if _, err := m.Create("kubepods/burstable/pod1/ctr"); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Create("kubepods/burstable/pod1/sidecar"); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("synthetic", host, "create"), k.take())
		})
	}
}

func TestApply_WritesInterfaceFiles(t *testing.T) {
	all := &Resources{
		CPU:     &CPU{Shares: new(MilliCPUToShares(250)), Quota: new(MilliCPUToQuota(500, QuotaPeriod)), Period: new(uint64(QuotaPeriod))},
		CPUSet:  &CPUSet{CPUs: "0-1", Mems: "0"},
		Memory:  &Memory{Max: new(int64(256 << 20)), Swap: new(int64(0))},
		PidsMax: new(int64(1024)),
		IO:      &IO{Weight: new(uint64(500)), Throttle: []IOThrottle{{Major: 8, Minor: 0, ReadBPS: 1 << 20, WriteIOPS: 100}}},
		HugeTLB: []HugeTLB{{PageSize: "2MB", Limit: 4 << 20}},
		Devices: DefaultDevices(),
	}
	for _, tc := range []struct {
		name string
		r    *Resources
		// wantErr per host; hosts not listed must succeed.
		wantErr map[string]error
	}{
		{name: "cpu", r: &Resources{CPU: &CPU{Shares: new(uint64(512)), Quota: new(int64(50000)), Period: new(uint64(100000))}}},
		{name: "cpu_quota_only", r: &Resources{CPU: &CPU{Quota: new(int64(20000))}}},
		{name: "cpu_no_limit", r: &Resources{CPU: &CPU{Quota: new(int64(-1))}}},
		{name: "cpu_zero_quota_is_no_limit", r: &Resources{CPU: &CPU{Quota: new(MilliCPUToQuota(0, QuotaPeriod)), Period: new(uint64(QuotaPeriod))}}},
		{name: "cpu_period_only_keeps_quota", r: &Resources{CPU: &CPU{Period: new(uint64(50000))}}},
		{name: "cpuset", r: &Resources{CPUSet: &CPUSet{CPUs: "0-1,3", Mems: "0"}}},
		{name: "memory_max_and_swap", r: &Resources{Memory: &Memory{Max: new(int64(64 << 20)), Swap: new(int64(32 << 20))}}},
		{name: "memory_no_limit", r: &Resources{Memory: &Memory{Max: new(int64(-1)), Swap: new(int64(-1))}}},
		{name: "memory_soft_limit", r: &Resources{Memory: &Memory{Low: new(int64(16 << 20))}}},
		{name: "memory_protection_and_throttle", r: &Resources{Memory: &Memory{Min: new(int64(8 << 20)), Low: new(int64(16 << 20)), High: new(int64(48 << 20))}},
			wantErr: map[string]error{"hybrid": ErrNotSupported}},
		{name: "memory_swap_without_max", r: &Resources{Memory: &Memory{Swap: new(int64(0))}},
			wantErr: map[string]error{"hybrid": ErrInvalid}},
		{name: "pids", r: &Resources{PidsMax: new(int64(64))}},
		{name: "pids_no_limit", r: &Resources{PidsMax: new(int64(-1))}},
		{name: "io", r: &Resources{IO: &IO{Weight: new(uint64(500)), Throttle: []IOThrottle{
			{Major: 8, Minor: 0, ReadBPS: 1 << 20, WriteBPS: 2 << 20, ReadIOPS: 100, WriteIOPS: 200},
			{Major: 253, Minor: 1, WriteBPS: 4096},
		}}}},
		{name: "hugetlb", r: &Resources{HugeTLB: []HugeTLB{{PageSize: "2MB", Limit: 8 << 20}, {PageSize: "1GB", Limit: -1}}},
			// The hybrid host's kernel has 2MB pages only.
			wantErr: map[string]error{"hybrid": ErrNotSupported}},
		{name: "hugetlb_2mb", r: &Resources{HugeTLB: []HugeTLB{{PageSize: "2MB", Limit: 8 << 20}}}},
		{name: "hugetlb_unknown_size", r: &Resources{HugeTLB: []HugeTLB{{PageSize: "16GB", Limit: 1}}},
			wantErr: map[string]error{"v2": ErrNotSupported, "hybrid": ErrNotSupported}},
		{name: "rdma", r: &Resources{RDMA: []RDMA{{Device: "mlx4_0", HCAHandles: 2, HCAObjects: -1}}},
			wantErr: map[string]error{"hybrid": ErrNotSupported}},
		{name: "devices", r: &Resources{Devices: DefaultDevices()}},
		{name: "kubelet_container", r: all},
	} {
		for host, opts := range synthHosts {
			t.Run(host+"/"+tc.name, func(t *testing.T) {
				m, k := newFakeManager(t, opts(), Config{})
				c, err := m.Create("pod/ctr")
				if err != nil {
					t.Fatal(err)
				}
				k.take()
				err = c.Apply(tc.r)
				if want := tc.wantErr[host]; want != nil {
					if !errors.Is(err, want) {
						t.Fatalf("Apply: %v, want %v", err, want)
					}
					if got := k.take(); got != "\n" {
						t.Errorf("Apply failed but wrote:\n%s", got)
					}
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				golden(t, filepath.Join("synthetic", host, "apply-"+tc.name), k.take())
			})
		}
	}
}

func TestApply_ChecksEverythingBeforeWriting(t *testing.T) {
	m, k := newFakeManager(t, synthHosts["v2"](), Config{})
	c, err := m.Create("pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	k.take()
	for _, tc := range []struct {
		name string
		r    *Resources
		want error
	}{
		{"bad_value_after_good_ones", &Resources{PidsMax: new(int64(5)), IO: &IO{Weight: new(uint64(0))}}, ErrInvalid},
		{"unsupported_after_good_ones", &Resources{PidsMax: new(int64(5)), HugeTLB: []HugeTLB{{PageSize: "4MB", Limit: 1}}}, ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Apply(tc.r); !errors.Is(err, tc.want) {
				t.Fatalf("Apply: %v, want %v", err, tc.want)
			}
			if got := k.take(); got != "\n" {
				t.Errorf("Apply failed but wrote:\n%s", got)
			}
		})
	}
	t.Run("nil_is_a_no_op", func(t *testing.T) {
		if err := c.Apply(nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Apply(&Resources{CPU: &CPU{}, Memory: &Memory{}, IO: &IO{}, CPUSet: &CPUSet{}}); err != nil {
			t.Fatal(err)
		}
		if got := k.take(); got != "\n" {
			t.Errorf("empty Apply wrote:\n%s", got)
		}
	})
}

func TestApply_ReportsMissingFilesAsNotSupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		host string
		omit []string
		r    *Resources
	}{
		{"no_io_weight_files_v2", "v2", []string{"io.weight", "io.bfq.weight"}, &Resources{IO: &IO{Weight: new(uint64(100))}}},
		{"no_blkio_weight_files_v1", "hybrid", []string{"blkio.bfq.weight"}, &Resources{IO: &IO{Weight: new(uint64(100))}}},
		{"no_swap_accounting_v2", "v2", []string{"memory.swap.max"}, &Resources{Memory: &Memory{Swap: new(int64(0))}}},
		{"no_swap_accounting_v1", "hybrid", []string{"memory.memsw.limit_in_bytes"}, &Resources{Memory: &Memory{Max: new(int64(1 << 20)), Swap: new(int64(0))}}},
		{"no_io_max", "v2", []string{"io.max"}, &Resources{IO: &IO{Throttle: []IOThrottle{{Major: 8}}}}},
		{"no_rdma_max", "v2", []string{"rdma.max"}, &Resources{RDMA: []RDMA{{Device: "mlx4_0", HCAHandles: 1, HCAObjects: 1}}}},
		{"no_devices_files", "hybrid", []string{"devices.deny"}, &Resources{Devices: DefaultDevices()}},
		// A controller the root offers but this cgroup lacks is found
		// before the earlier limits are written.
		{"controller_off_here_v2", "v2", []string{"pids.max"}, &Resources{CPU: &CPU{Shares: new(uint64(2))}, PidsMax: new(int64(5))}},
		{"controller_off_here_v1", "hybrid", []string{"pids.max"}, &Resources{CPU: &CPU{Shares: new(uint64(2))}, PidsMax: new(int64(5))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := synthHosts[tc.host]()
			o.omit = append(o.omit, tc.omit...)
			m, k := newFakeManager(t, o, Config{})
			c, err := m.Create("ctr")
			if err != nil {
				t.Fatal(err)
			}
			k.take()
			if err := c.Apply(tc.r); !errors.Is(err, ErrNotSupported) {
				t.Fatalf("Apply: %v, want ErrNotSupported", err)
			}
			if got := k.take(); got != "\n" {
				t.Errorf("Apply failed but wrote:\n%s", got)
			}
		})
	}
	t.Run("io_weight_falls_back_to_bfq", func(t *testing.T) {
		o := synthHosts["v2"]()
		o.omit = append(o.omit, "io.weight")
		m, k := newFakeManager(t, o, Config{})
		c, err := m.Create("ctr")
		if err != nil {
			t.Fatal(err)
		}
		k.take()
		if err := c.Apply(&Resources{IO: &IO{Weight: new(uint64(10000))}}); err != nil {
			t.Fatal(err)
		}
		if got, want := k.take(), "write unified/skiff/ctr/io.bfq.weight 1000\n"; got != want {
			t.Errorf("wrote %q, want %q", got, want)
		}
	})
}

func TestCreate_RejectsBadPathsAndUndoesFailures(t *testing.T) {
	m, k := newFakeManager(t, synthHosts["hybrid"](), Config{})
	for _, p := range []string{"/abs", "a/../b", "a//b", "x/"} {
		t.Run("rejects_"+p, func(t *testing.T) {
			if _, err := m.Create(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("Create(%q): %v, want ErrInvalid", p, err)
			}
			if _, err := m.Open(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("Open(%q): %v, want ErrInvalid", p, err)
			}
		})
	}
	if got := k.take(); got != "\n" {
		t.Errorf("bad paths wrote:\n%s", got)
	}
	t.Run("undoes_directories_on_failure", func(t *testing.T) {
		o := synthHosts["hybrid"]()
		o.omit = append(o.omit, "cpuset.mems") // v1 cpuset cannot be set up
		m, k := newFakeManager(t, o, Config{})
		_, err := m.Create("a/b")
		if !errors.Is(err, ErrNotSupported) {
			t.Fatalf("Create: %v, want ErrNotSupported", err)
		}
		golden(t, filepath.Join("synthetic", "hybrid", "create-undo"), k.take())
		if _, err := m.Open("a"); !errors.Is(err, ErrNotExist) {
			t.Errorf("Open after undo: %v, want ErrNotExist", err)
		}
	})
}

func TestCgroup_LifecycleOnSyntheticTree(t *testing.T) {
	ctx := t.Context()
	m, k := newFakeManager(t, synthHosts["v2"](), Config{})
	pod, err := m.Create("pod")
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Create("pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	k.take()
	if _, err := m.Open("pod/other"); !errors.Is(err, ErrNotExist) {
		t.Errorf("Open missing: %v, want ErrNotExist", err)
	}
	if err := c.AddProc(0); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddProc(0): %v, want ErrInvalid", err)
	}
	if err := c.AddProc(4242); err != nil {
		t.Fatal(err)
	}
	pids, err := c.Procs()
	if err != nil || !cmp.Equal(pids, []int{4242}) {
		t.Errorf("Procs = %v, %v", pids, err)
	}
	if err := c.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Thaw(ctx); err != nil {
		t.Fatal(err)
	}
	// The pod cannot go while its container holds a process; Remove says
	// so at once rather than wait (ctx has no deadline here).
	if err := pod.Remove(context.Background()); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "4242") {
		t.Errorf("Remove of populated pod: %v, want ErrBusy naming pid 4242", err)
	}
	if err := pod.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pod.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pod.Remove(ctx); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	golden(t, filepath.Join("synthetic", "v2", "lifecycle"), k.take())
	if err := c.Apply(&Resources{PidsMax: new(int64(1))}); !errors.Is(err, ErrNotExist) {
		t.Errorf("Apply after Remove: %v, want ErrNotExist", err)
	}
	if _, err := c.Stats(); !errors.Is(err, ErrNotExist) {
		t.Errorf("Stats after Remove: %v, want ErrNotExist", err)
	}
	if err := c.AddProc(1); !errors.Is(err, ErrNotExist) {
		t.Errorf("AddProc after Remove: %v, want ErrNotExist", err)
	}
}

func TestStats_ReadsInterfaceFiles(t *testing.T) {
	const psi = "some avg10=1.00 avg60=2.00 avg300=3.00 total=4000\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=10\n"
	psiWant := Pressure{
		Some: PressureData{Avg10: 1, Avg60: 2, Avg300: 3, Total: 4 * time.Millisecond},
		Full: PressureData{Avg10: 0.5, Total: 10 * time.Microsecond},
	}
	for _, tc := range []struct {
		host  string
		files map[string]string // relative to the fake root, under each cgroup dir
		want  *Stats
	}{
		{"v2", map[string]string{
			"unified/skiff/ctr/cpu.stat":            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 500\n",
			"unified/skiff/ctr/memory.current":      "1000000\n",
			"unified/skiff/ctr/memory.max":          "2000000\n",
			"unified/skiff/ctr/memory.stat":         "anon 600000\nfile 400000\ninactive_file 300000\npgfault 77\npgmajfault 3\n",
			"unified/skiff/ctr/memory.swap.current": "4096\n",
			"unified/skiff/ctr/memory.events":       "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n",
			"unified/skiff/ctr/pids.current":        "7\n",
			"unified/skiff/ctr/pids.max":            "max\n",
			"unified/skiff/ctr/cpu.pressure":        psi,
			"unified/skiff/ctr/memory.pressure":     psi,
			"unified/skiff/ctr/io.pressure":         psi,
		}, &Stats{
			CPU:    &CPUStats{Usage: 3 * time.Millisecond, User: 2 * time.Millisecond, System: time.Millisecond, Periods: 10, ThrottledPeriods: 4, Throttled: 500 * time.Microsecond},
			Memory: &MemoryStats{Usage: 1000000, WorkingSet: 700000, RSS: 600000, Swap: 4096, Limit: 2000000, PageFaults: 77, MajorPageFaults: 3, OOMEvents: 2, OOMKills: 1},
			Pids:   &PidsStats{Current: 7, Max: -1},
			PSI:    &PSIStats{CPU: psiWant, Memory: psiWant, IO: psiWant},
		}},
		{"hybrid", map[string]string{
			"cpuacct/skiff/ctr/cpuacct.usage":        "3000000\n",
			"cpuacct/skiff/ctr/cpuacct.usage_user":   "2000000\n",
			"cpuacct/skiff/ctr/cpuacct.usage_sys":    "1000000\n",
			"cpu/skiff/ctr/cpu.stat":                 "nr_periods 10\nnr_throttled 4\nthrottled_time 500000\n",
			"memory/skiff/ctr/memory.usage_in_bytes": "1000000\n",
			"memory/skiff/ctr/memory.limit_in_bytes": "9223372036854771712\n",
			"memory/skiff/ctr/memory.stat":           "rss 1\ntotal_rss 600000\ntotal_inactive_file 1200000\ntotal_pgfault 77\ntotal_pgmajfault 3\ntotal_swap 0\n",
			"memory/skiff/ctr/memory.oom_control":    "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
			"pids/skiff/ctr/pids.current":            "7\n",
			"pids/skiff/ctr/pids.max":                "64\n",
			"unified/skiff/ctr/cpu.pressure":         psi,
			"unified/skiff/ctr/memory.pressure":      psi,
			"unified/skiff/ctr/io.pressure":          psi,
		}, &Stats{
			CPU: &CPUStats{Usage: 3 * time.Millisecond, User: 2 * time.Millisecond, System: time.Millisecond, Periods: 10, ThrottledPeriods: 4, Throttled: 500 * time.Microsecond},
			// Inactive file pages above usage floor the working set at 0.
			Memory: &MemoryStats{Usage: 1000000, WorkingSet: 0, RSS: 600000, Limit: -1, PageFaults: 77, MajorPageFaults: 3, OOMKills: 5},
			Pids:   &PidsStats{Current: 7, Max: 64},
			PSI:    &PSIStats{CPU: psiWant, Memory: psiWant, IO: psiWant},
		}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			m, k := newFakeManager(t, synthHosts[tc.host](), Config{})
			c, err := m.Create("ctr")
			if err != nil {
				t.Fatal(err)
			}
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(k.root, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("psi_unreadable_is_nil", func(t *testing.T) {
		m, k := newFakeManager(t, synthHosts["v2"](), Config{})
		c, err := m.Create("ctr")
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(k.root, "unified/skiff/ctr/io.pressure"))
		s, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.PSI != nil {
			t.Errorf("PSI = %+v, want nil", s.PSI)
		}
	})
	t.Run("garbage_is_invalid", func(t *testing.T) {
		m, k := newFakeManager(t, synthHosts["v2"](), Config{})
		c, err := m.Create("ctr")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(k.root, "unified/skiff/ctr/memory.current"), []byte("lots\n"), 0o644)
		if _, err := c.Stats(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "memory.current") {
			t.Errorf("Stats: %v, want ErrInvalid naming memory.current", err)
		}
	})
}
