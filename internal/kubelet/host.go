package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// HostCgroups adapts a cgroups.Manager to Cgroups. It serializes
// creations: on cgroup v1, cgroups created concurrently under a new parent
// can copy the parent's cpuset before it is filled in.
func HostCgroups(m *cgroups.Manager) Cgroups { return &hostCgroups{m: m} }

type hostCgroups struct {
	m *cgroups.Manager
	// mu serializes Ensure.
	mu sync.Mutex
}

func (h *hostCgroups) Ensure(p string, r *cgroups.Resources) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cg, err := h.m.Create(p)
	if err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	return cg.Apply(r)
}

func (h *hostCgroups) Remove(ctx context.Context, p string) error {
	cg, err := h.m.Open(p)
	if errors.Is(err, cgroups.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := cg.Kill(ctx); err != nil && !errors.Is(err, cgroups.ErrNotExist) {
		return err
	}
	if err := cg.Remove(ctx); err != nil && !errors.Is(err, cgroups.ErrNotExist) {
		return err
	}
	return nil
}

func (h *hostCgroups) Stats(p string) (*cgroups.Stats, error) {
	cg, err := h.m.Open(p)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// HostMachine describes this host; root is the directory whose filesystem
// gives ephemeral-storage capacity.
func HostMachine(root string) Machine { return &hostMachine{root: root} }

type hostMachine struct {
	root string
	// once guards static, the facts that do not change while we run.
	once   sync.Once
	static MachineInfo
}

func (h *hostMachine) Info() (MachineInfo, error) {
	h.once.Do(func() {
		s := MachineInfo{NumCPU: runtime.NumCPU()}
		s.Hostname, _ = os.Hostname()
		s.MachineID = firstLine("/etc/machine-id", "/var/lib/dbus/machine-id")
		s.SystemUUID = strings.ToLower(firstLine("/sys/class/dmi/id/product_uuid"))
		s.BootID = firstLine("/proc/sys/kernel/random/boot_id")
		var u unix.Utsname
		if unix.Uname(&u) == nil {
			s.KernelVersion = unix.ByteSliceToString(u.Release[:])
		}
		s.OSImage = osImage()
		h.static = s
	})
	info := h.static
	mem, err := meminfo()
	if err != nil {
		return MachineInfo{}, err
	}
	info.MemoryCapacity = mem["MemTotal"]
	dir := h.root
	for dir != "/" {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		dir = parentDir(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return MachineInfo{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	info.EphemeralStorage = int64(st.Blocks) * st.Bsize
	return info, nil
}

// MemoryAvailable follows the kubelet: capacity minus the working set,
// the working set being what is in use less the inactive file cache.
func (h *hostMachine) MemoryAvailable() (int64, error) {
	m, err := meminfo()
	if err != nil {
		return 0, err
	}
	used := m["MemTotal"] - m["MemFree"]
	workingSet := max(used-m["Inactive(file)"], 0)
	return m["MemTotal"] - workingSet, nil
}

// meminfo reads /proc/meminfo in bytes.
func meminfo() (map[string]int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("read meminfo: %w", err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		out[name] = v
	}
	if out["MemTotal"] == 0 {
		return nil, errors.New("read meminfo: no MemTotal")
	}
	return out, nil
}

func firstLine(files ...string) string {
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if line, _, _ := strings.Cut(string(data), "\n"); strings.TrimSpace(line) != "" {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// osImage is PRETTY_NAME from os-release, as upstream reports it.
func osImage() string {
	for _, f := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"'`)
			}
		}
	}
	return "Linux"
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
