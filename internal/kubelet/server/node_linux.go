package server

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// ProcHost reads the node's usage from /proc.
type ProcHost struct{}

var _ Host = ProcHost{}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture skiff runs on.
const clockTicks = 100

// Usage reads /proc/stat and /proc/meminfo.
func (ProcHost) Usage() (HostUsage, error) {
	var u HostUsage
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return u, err
	}
	cpu, boot, err := parseProcStat(stat)
	if err != nil {
		return u, err
	}
	u.CPU, u.Boot = cpu, boot
	mem, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return u, err
	}
	u.MemoryTotal, u.MemoryAvailable, err = parseMeminfo(mem)
	return u, err
}

// parseProcStat returns the busy CPU time of all CPUs (everything but
// idle and iowait) and the boot time.
func parseProcStat(data []byte) (time.Duration, time.Time, error) {
	var busy time.Duration
	var boot time.Time
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "cpu":
			// user nice system idle iowait irq softirq steal guest guest_nice
			for i, v := range f[1:] {
				if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is in user already
					continue
				}
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, boot, fmt.Errorf("/proc/stat cpu line: %w", err)
				}
				busy += time.Duration(n) * time.Second / clockTicks
			}
			found = true
		case "btime":
			if len(f) > 1 {
				if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					boot = time.Unix(n, 0)
				}
			}
		}
	}
	if !found {
		return 0, boot, fmt.Errorf("/proc/stat: no cpu line")
	}
	return busy, boot, nil
}

func parseMeminfo(data []byte) (total, avail uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var haveTotal, haveAvail bool
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, perr := strconv.ParseUint(f[1], 10, 64)
		if perr != nil {
			continue
		}
		if len(f) > 2 && f[2] == "kB" {
			n *= 1024
		}
		switch f[0] {
		case "MemTotal:":
			total, haveTotal = n, true
		case "MemAvailable:":
			avail, haveAvail = n, true
		}
	}
	if !haveTotal || !haveAvail {
		return 0, 0, fmt.Errorf("/proc/meminfo: no MemTotal or MemAvailable")
	}
	return total, avail, nil
}

// Statfs reports the usage of the filesystem holding path.
func Statfs(path string) (*statsapi.FsStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	capacity, avail := st.Blocks*bs, st.Bavail*bs
	used := (st.Blocks - st.Bfree) * bs
	inodes, free := st.Files, st.Ffree
	inodesUsed := inodes - free
	return &statsapi.FsStats{
		Time:           metav1.Now(),
		CapacityBytes:  &capacity,
		AvailableBytes: &avail,
		UsedBytes:      &used,
		Inodes:         &inodes,
		InodesFree:     &free,
		InodesUsed:     &inodesUsed,
	}, nil
}
