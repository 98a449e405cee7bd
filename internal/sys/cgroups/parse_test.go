package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseMountInfo_FindsHierarchies(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Layout
		mode Mode
	}{
		{"hybrid", Layout{Unified: "/sys/fs/cgroup/unified", V1: map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
			"memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices", "freezer": "/sys/fs/cgroup/freezer",
			"blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids",
		}}, ModeHybrid},
		{"unified", Layout{Unified: "/sys/fs/cgroup"}, ModeUnified},
		// Co-mounted controllers share a mount point; named hierarchies and
		// controllers the manager does not drive are left out; the first
		// mount of a hierarchy wins over a later bind mount.
		{"legacy", Layout{V1: map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory",
			"hugetlb": "/sys/fs/cgroup/hugetlb", "pids": "/sys/fs/cgroup/pids", "cpuset": "/sys/fs/cgroup/cpuset",
			"blkio": "/sys/fs/cgroup/blkio", "devices": "/sys/fs/cgroup/devices", "freezer": "/sys/fs/cgroup/freezer",
			"rdma": "/sys/fs/cgroup/rdma",
		}}, ModeLegacy},
		{"none", Layout{}, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "mountinfo", tc.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := parseMountInfo(f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("layout (-want +got):\n%s", diff)
			}
			if got.Mode() != tc.mode {
				t.Errorf("mode %v, want %v", got.Mode(), tc.mode)
			}
		})
	}
}

func TestParseMountInfo_RejectsMalformedLines(t *testing.T) {
	for _, file := range []string{"bad-no-separator", "bad-short"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "mountinfo", file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseMountInfo(strings.NewReader(string(data))); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestUnescapeMountInfo_DecodesOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:              "/plain",
		`/mnt/memory\040copy`: "/mnt/memory copy",
		`/a\134b`:             `/a\b`,
		`/trailing\04`:        `/trailing\04`,
		`/not\999octal`:       `/not\999octal`,
	} {
		if got := unescapeMountInfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"absolute_parent", Config{Parent: "/skiff", Layout: &Layout{Unified: dir}}, ErrInvalid},
		{"dotdot_parent", Config{Parent: "skiff/../etc", Layout: &Layout{Unified: dir}}, ErrInvalid},
		{"negative_poll", Config{PollInterval: -time.Second, Layout: &Layout{Unified: dir}}, ErrInvalid},
		{"empty_layout", Config{Layout: &Layout{}}, ErrNotSupported},
		{"relative_mount", Config{Layout: &Layout{Unified: "sys/fs/cgroup"}}, ErrInvalid},
		{"unknown_controller", Config{Layout: &Layout{V1: map[string]string{"net_cls": dir}}}, ErrInvalid},
		{"relative_v1_mount", Config{Layout: &Layout{V1: map[string]string{"memory": "memory"}}}, ErrInvalid},
		{"unified_without_controllers_file", Config{Layout: &Layout{Unified: dir}}, ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Errorf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidatePath_RejectsEscapes(t *testing.T) {
	for _, p := range []string{"/abs", "a//b", "a/", "..", "a/../b", "./a", "a/.", "nul\x00", "new\nline", strings.Repeat("x", 256)} {
		t.Run(p, func(t *testing.T) {
			if err := validatePath(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("validatePath(%q) = %v, want ErrInvalid", p, err)
			}
		})
	}
	for _, p := range []string{"", "a", "kubepods/burstable/pod1234/ctr", "a.b-c_d", "cpu.max"} {
		if err := validatePath(p); err != nil {
			t.Errorf("validatePath(%q) = %v, want nil", p, err)
		}
	}
}

func TestResourcesValidate_RejectsBadValues(t *testing.T) {
	rule := func(r DeviceRule) *Resources { return &Resources{Devices: []DeviceRule{r}} }
	for _, tc := range []struct {
		name string
		r    *Resources
	}{
		{"shares_too_low", &Resources{CPU: &CPU{Shares: new(uint64(1))}}},
		{"shares_too_high", &Resources{CPU: &CPU{Shares: new(uint64(MaxShares + 1))}}},
		{"quota_below_minimum", &Resources{CPU: &CPU{Quota: new(int64(999))}}},
		{"quota_negative", &Resources{CPU: &CPU{Quota: new(int64(-2))}}},
		{"period_too_short", &Resources{CPU: &CPU{Period: new(uint64(999))}}},
		{"period_too_long", &Resources{CPU: &CPU{Period: new(uint64(MaxPeriod + 1))}}},
		{"cpuset_garbage", &Resources{CPUSet: &CPUSet{CPUs: "0-a"}}},
		{"cpuset_descending", &Resources{CPUSet: &CPUSet{CPUs: "3-1"}}},
		{"cpuset_spaces", &Resources{CPUSet: &CPUSet{Mems: "0, 1"}}},
		{"memory_zero_max", &Resources{Memory: &Memory{Max: new(int64(0))}}},
		{"memory_negative_low", &Resources{Memory: &Memory{Low: new(int64(-5))}}},
		{"memory_negative_swap", &Resources{Memory: &Memory{Swap: new(int64(-2))}}},
		{"pids_negative", &Resources{PidsMax: new(int64(-2))}},
		{"io_weight_zero", &Resources{IO: &IO{Weight: new(uint64(0))}}},
		{"io_weight_too_high", &Resources{IO: &IO{Weight: new(uint64(10001))}}},
		{"io_device_negative", &Resources{IO: &IO{Throttle: []IOThrottle{{Major: -1, Minor: 0}}}}},
		{"hugetlb_bad_size", &Resources{HugeTLB: []HugeTLB{{PageSize: "2M", Limit: 1}}}},
		{"hugetlb_negative", &Resources{HugeTLB: []HugeTLB{{PageSize: "2MB", Limit: -3}}}},
		{"rdma_no_device", &Resources{RDMA: []RDMA{{HCAHandles: 1}}}},
		{"rdma_device_with_space", &Resources{RDMA: []RDMA{{Device: "mlx 0", HCAHandles: 1}}}},
		{"rdma_negative", &Resources{RDMA: []RDMA{{Device: "mlx4_0", HCAObjects: -2}}}},
		{"device_bad_type", rule(DeviceRule{Type: 'x', Major: 1, Minor: 3, Access: "r"})},
		{"device_empty_access", rule(DeviceRule{Type: DeviceChar, Major: 1, Minor: 3})},
		{"device_bad_access", rule(DeviceRule{Type: DeviceChar, Major: 1, Minor: 3, Access: "rx"})},
		{"device_major_range", rule(DeviceRule{Type: DeviceChar, Major: 4096, Minor: 3, Access: "r"})},
		{"device_minor_negative", rule(DeviceRule{Type: DeviceChar, Major: 1, Minor: -2, Access: "r"})},
		{"device_all_with_number", rule(DeviceRule{Type: DeviceAll, Major: 1, Minor: Wildcard, Access: "rwm"})},
		{"device_all_partial_access", rule(DeviceRule{Type: DeviceAll, Major: Wildcard, Minor: Wildcard, Access: "r"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r.validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestDeviceRuleString_UsesV1Syntax(t *testing.T) {
	for _, tc := range []struct {
		r    DeviceRule
		want string
	}{
		{DeviceRule{Type: DeviceAll, Major: Wildcard, Minor: Wildcard, Access: "rwm"}, "a"},
		{DeviceRule{Type: DeviceChar, Major: 1, Minor: 3, Access: "rwm"}, "c 1:3 rwm"},
		{DeviceRule{Type: DeviceChar, Major: 136, Minor: Wildcard, Access: "rw"}, "c 136:* rw"},
		{DeviceRule{Type: DeviceBlock, Major: Wildcard, Minor: Wildcard, Access: "m"}, "b *:* m"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
	}
	for i, r := range DefaultDevices() {
		if err := r.validate(); err != nil || !r.Allow {
			t.Errorf("default device %d %v: allow=%v err=%v", i, r, r.Allow, err)
		}
	}
}

func TestParseKeyed_SkipsNonNumbers(t *testing.T) {
	got := parseKeyed("usage_usec 12\nnr_periods 3\n\ngarbage\nname text\nthrottled_usec 7\n")
	want := map[string]uint64{"usage_usec": 12, "nr_periods": 3, "throttled_usec": 7}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParsePressure(t *testing.T) {
	t.Run("reads_some_and_full", func(t *testing.T) {
		got, err := parsePressure("some avg10=1.50 avg60=0.25 avg300=0.00 total=1234567\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=42\n")
		if err != nil {
			t.Fatal(err)
		}
		want := Pressure{
			Some: PressureData{Avg10: 1.5, Avg60: 0.25, Total: 1234567 * time.Microsecond},
			Full: PressureData{Avg10: 0.1, Total: 42 * time.Microsecond},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	for name, bad := range map[string]string{
		"unknown_line": "most avg10=1\n",
		"no_equals":    "some avg10\n",
		"bad_number":   "some avg10=x\n",
		"bad_total":    "full total=-1\n",
	} {
		t.Run("rejects_"+name, func(t *testing.T) {
			if _, err := parsePressure(bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"max\n":                 -1,
		"-1":                    -1,
		"9223372036854771712\n": -1, // v1's "unlimited"
		"67108864\n":            64 << 20,
		"0":                     0,
	} {
		got, err := parseLimit(in)
		if err != nil || got != want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-5", "1.5"} {
		if _, err := parseLimit(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("parseLimit(%q) err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParsePids(t *testing.T) {
	got, err := parsePids("12\n7\n\n300\n")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{12, 7, 300}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parsePids("12\nx\n"); !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
}

func TestWorkingSet_FloorsAtZero(t *testing.T) {
	for _, tc := range []struct{ usage, inactive, want uint64 }{
		{100, 30, 70},
		{100, 100, 0},
		{100, 150, 0},
		{0, 0, 0},
	} {
		if got := workingSet(tc.usage, tc.inactive); got != tc.want {
			t.Errorf("workingSet(%d, %d) = %d, want %d", tc.usage, tc.inactive, got, tc.want)
		}
	}
}

func TestHugePageSizes_ListsSmallestFirst(t *testing.T) {
	got, err := hugePageSizesIn(filepath.Join("testdata", "hugepages"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"64KB", "2MB", "1GB"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	t.Run("missing_dir_means_none", func(t *testing.T) {
		got, err := hugePageSizesIn(filepath.Join(t.TempDir(), "nope"))
		if err != nil || len(got) != 0 {
			t.Errorf("got %v, %v", got, err)
		}
	})
	t.Run("rejects_odd_entry", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "hugepages-xkB"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := hugePageSizesIn(dir); !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("host", func(t *testing.T) {
		if _, err := HugePageSizes(); err != nil {
			t.Errorf("HugePageSizes: %v", err)
		}
	})
}
