package cgroups

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeKernel keeps a synthetic cgroup tree in a temporary directory and
// behaves like the kernel where the manager can tell: mkdir fills a new
// cgroup with the interface files of the controllers it has (on v2, those
// enabled in the parent's cgroup.subtree_control), writes go only to files
// that exist, cgroup.subtree_control accepts only available controllers,
// and rmdir refuses a cgroup with processes or children. It records every
// change in a transcript for golden files.
type fakeKernel struct {
	root string
	// hierarchies maps a mount point to the v1 controllers mounted there;
	// nil for the cgroup2 mount.
	hierarchies map[string][]string
	unified     string
	omit        map[string]bool // interface files this fake kernel lacks

	mu         sync.Mutex // guards transcript
	transcript []string
}

type fakeOptions struct {
	v2   []string            // controllers of the cgroup2 root, nil for no cgroup2
	v1   map[string][]string // mount name -> controllers, e.g. "cpu,cpuacct": {"cpu", "cpuacct"}
	omit []string
}

func newFakeKernel(t testing.TB, o fakeOptions) (*fakeKernel, Layout) {
	t.Helper()
	k := &fakeKernel{root: t.TempDir(), hierarchies: make(map[string][]string), omit: make(map[string]bool)}
	for _, f := range o.omit {
		k.omit[f] = true
	}
	var l Layout
	if o.v2 != nil {
		k.unified = filepath.Join(k.root, "unified")
		l.Unified = k.unified
		k.hierarchies[k.unified] = nil
		must(t, os.Mkdir(k.unified, 0o755))
		k.fill(k.unified, true, o.v2)
		must(t, os.WriteFile(filepath.Join(k.unified, "cgroup.controllers"), []byte(strings.Join(o.v2, " ")+"\n"), 0o644))
	}
	for name, ctrls := range o.v1 {
		dir := filepath.Join(k.root, name)
		must(t, os.Mkdir(dir, 0o755))
		k.hierarchies[dir] = ctrls
		k.fill(dir, true, ctrls)
		if l.V1 == nil {
			l.V1 = make(map[string]string)
		}
		for _, c := range ctrls {
			l.V1[c] = dir
		}
	}
	return k, l
}

// hierarchy returns the mount point dir belongs to.
func (k *fakeKernel) hierarchy(dir string) string {
	for mnt := range k.hierarchies {
		if dir == mnt || strings.HasPrefix(dir, mnt+"/") {
			return mnt
		}
	}
	panic("fake kernel: " + dir + " is in no hierarchy")
}

func (k *fakeKernel) record(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.transcript = append(k.transcript, fmt.Sprintf(format, args...))
}

func (k *fakeKernel) take() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := strings.Join(k.transcript, "\n") + "\n"
	k.transcript = nil
	return s
}

func (k *fakeKernel) rel(p string) string {
	r, err := filepath.Rel(k.root, p)
	if err != nil {
		panic(err)
	}
	return r
}

// files lists the interface files of a controller with their initial
// content; root cgroups lack the limit files, as on the real kernel.
func fakeFiles(v2 bool, ctrl string, root bool) map[string]string {
	if v2 {
		switch ctrl {
		case "":
			f := map[string]string{
				"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.events": "populated 0\nfrozen 0\n",
				"cpu.stat":        "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
				"cpu.pressure":    "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
				"memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
				"io.pressure":     "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
			}
			if !root {
				f["cgroup.freeze"] = "0"
				f["cgroup.kill"] = ""
			}
			return f
		case "cpu":
			if root {
				return nil
			}
			return map[string]string{"cpu.weight": "100", "cpu.max": "max 100000"}
		case "cpuset":
			return map[string]string{"cpuset.cpus": "", "cpuset.mems": ""}
		case "memory":
			if root {
				return map[string]string{"memory.stat": ""}
			}
			return map[string]string{
				"memory.max": "max", "memory.high": "max", "memory.low": "0", "memory.min": "0", "memory.swap.max": "max",
				"memory.current": "0", "memory.swap.current": "0", "memory.stat": "anon 0\ninactive_file 0\n",
				"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
			}
		case "io":
			if root {
				return nil
			}
			return map[string]string{"io.weight": "default 100", "io.bfq.weight": "default 100", "io.max": ""}
		case "pids":
			if root {
				return nil
			}
			return map[string]string{"pids.max": "max", "pids.current": "0"}
		case "hugetlb":
			if root {
				return nil
			}
			return map[string]string{"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max", "hugetlb.1GB.max": "max", "hugetlb.1GB.rsvd.max": "max"}
		case "rdma":
			if root {
				return nil
			}
			return map[string]string{"rdma.max": "", "rdma.current": ""}
		}
		return nil
	}
	switch ctrl {
	case "":
		return map[string]string{"cgroup.procs": "", "tasks": ""}
	case "cpu":
		return map[string]string{"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000",
			"cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"}
	case "cpuacct":
		return map[string]string{"cpuacct.usage": "0", "cpuacct.usage_user": "0", "cpuacct.usage_sys": "0", "cpuacct.stat": "user 0\nsystem 0\n"}
	case "cpuset":
		if root {
			return map[string]string{"cpuset.cpus": "0-3", "cpuset.mems": "0"}
		}
		return map[string]string{"cpuset.cpus": "", "cpuset.mems": ""}
	case "memory":
		return map[string]string{
			"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
			"memory.soft_limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "0",
			"memory.stat":        "total_rss 0\ntotal_inactive_file 0\n",
			"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "cgroup.event_control": "",
		}
	case "devices":
		return map[string]string{"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"}
	case "freezer":
		if root {
			return nil
		}
		return map[string]string{"freezer.state": "THAWED"}
	case "blkio":
		return map[string]string{"blkio.bfq.weight": "100", "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
			"blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""}
	case "pids":
		if root {
			return nil
		}
		return map[string]string{"pids.max": "max", "pids.current": "0"}
	case "hugetlb":
		return map[string]string{"hugetlb.2MB.limit_in_bytes": "9223372036854771712"}
	}
	return nil
}

// fill creates the interface files of dir.
func (k *fakeKernel) fill(dir string, root bool, ctrls []string) {
	v2 := dir == k.unified || (k.unified != "" && strings.HasPrefix(dir, k.unified+"/"))
	if v2 && !root {
		ctrls = nil
		on, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
		ctrls = strings.Fields(string(on))
		mustNoErr(os.WriteFile(filepath.Join(dir, "cgroup.controllers"), on, 0o644))
	}
	for _, c := range append([]string{""}, ctrls...) {
		for f, content := range fakeFiles(v2, c, root) {
			if k.omit[f] {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
				panic(err)
			}
		}
	}
}

func (k *fakeKernel) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	mnt := k.hierarchy(dir)
	k.fill(dir, false, k.hierarchies[mnt])
	k.record("mkdir %s", k.rel(dir))
	return nil
}

func (k *fakeKernel) rmdir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			return &fs.PathError{Op: "rmdir", Path: dir, Err: syscall.EBUSY}
		}
	}
	if procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); strings.TrimSpace(string(procs)) != "" {
		return &fs.PathError{Op: "rmdir", Path: dir, Err: syscall.EBUSY}
	}
	k.record("rmdir %s", k.rel(dir))
	return os.RemoveAll(dir)
}

func (k *fakeKernel) writeFile(name, data string) error {
	if _, err := os.Stat(name); err != nil {
		return err
	}
	dir, file := filepath.Dir(name), filepath.Base(name)
	content := data
	switch file {
	case "cgroup.subtree_control":
		avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		on, _ := os.ReadFile(name)
		enabled := strings.Fields(string(on))
		for tok := range strings.FieldsSeq(data) {
			c := tok[1:]
			if !slices.Contains(strings.Fields(string(avail)), c) {
				return &fs.PathError{Op: "write", Path: name, Err: syscall.ENOENT}
			}
			if tok[0] == '+' && !slices.Contains(enabled, c) {
				enabled = append(enabled, c)
			}
		}
		slices.Sort(enabled)
		content = strings.Join(enabled, " ")
	case "cgroup.procs":
		old, _ := os.ReadFile(name)
		content = string(old) + data + "\n"
		k.setEvent(dir, "populated", "1")
	case "cgroup.freeze":
		k.setEvent(dir, "frozen", data)
	case "cgroup.kill":
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.WriteFile(filepath.Join(p, "cgroup.procs"), nil, 0o644)
				k.setEvent(p, "populated", "0")
			}
			return err
		})
	}
	k.record("write %s %s", k.rel(name), data)
	return os.WriteFile(name, []byte(content), 0o644)
}

func (k *fakeKernel) setEvent(dir, key, val string) {
	name := filepath.Join(dir, "cgroup.events")
	old, err := os.ReadFile(name)
	if err != nil {
		return
	}
	kv := parseKeyed(string(old))
	var b strings.Builder
	for _, key2 := range []string{"populated", "frozen"} {
		v := fmt.Sprint(kv[key2])
		if key2 == key {
			v = val
		}
		fmt.Fprintf(&b, "%s %s\n", key2, v)
	}
	mustNoErr(os.WriteFile(name, []byte(b.String()), 0o644))
}

func (k *fakeKernel) attachDevices(dir string, rules []DeviceRule) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	insns, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	var lines []string
	for _, r := range rules {
		verb := "deny"
		if r.Allow {
			verb = "allow"
		}
		lines = append(lines, verb+" "+r.String())
	}
	k.record("attach device program to %s (%d instructions): %s", k.rel(dir), len(insns), strings.Join(lines, ", "))
	return nil
}

// newFakeManager returns a manager on a fake kernel.
func newFakeManager(t testing.TB, o fakeOptions, cfg Config) (*Manager, *fakeKernel) {
	t.Helper()
	k, l := newFakeKernel(t, o)
	cfg.Layout = &l
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	m, err := newManager(cfg, l, k)
	if err != nil {
		t.Fatal(err)
	}
	return m, k
}
