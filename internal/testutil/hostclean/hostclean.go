// Package hostclean removes what a skiff node agent run by a test or a
// benchmark left on the host: its helper processes, its mounts and its
// cgroups. It is for test harnesses, which must leave the host as they
// found it even when the agent did not stop cleanly.
package hostclean

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KillNaming SIGKILLs every process (but this one) whose command line
// contains s, such as the data dir of an agent's runtime monitor and
// container inits, and reports each to logf when it is not nil.
func KillNaming(s string, logf func(format string, args ...any)) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		if logf != nil {
			logf("cleanup: killing leftover process %d (%s)", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// UnmountUnder detaches every mount point under dir, deepest first.
func UnmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
			mounts = append(mounts, fields[4])
		}
	}
	f.Close()
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

// RemoveCgroupTree removes a cgroup directory tree bottom up (cgroup
// directories go with rmdir; their files are not real files). A cgroup a
// killed process is still leaving gets a second (bounded) try; one that
// still holds processes stays.
func RemoveCgroupTree(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			RemoveCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	for range 20 {
		err := syscall.Rmdir(dir)
		if err == nil || !errors.Is(err, syscall.EBUSY) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
