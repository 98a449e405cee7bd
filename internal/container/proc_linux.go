package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/mount"
)

// startTime returns the start time of pid (field 22 of /proc/<pid>/stat,
// in clock ticks since boot), which with the PID names a process for
// good: PIDs are reused, start times with them are not.
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	// After "comm)": state is field 3, starttime field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// pidfdFor opens a pidfd on pid if it is still the process that started
// at start. It returns -1 and no error when that process is gone.
func pidfdFor(pid int, start uint64) (int, error) {
	if pid <= 0 {
		return -1, nil
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err == unix.ESRCH {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// Checked after opening: from here on the pidfd pins the process.
	if st, err := startTime(pid); err != nil || st != start {
		unix.Close(fd)
		return -1, nil
	}
	// A zombie has a stat entry but is gone for our purposes.
	if isZombie(pid) {
		unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}

// waitPidfd blocks until the process behind fd exits, then closes fd.
// It parks the goroutine in the netpoller, not a thread.
func waitPidfd(fd int) {
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err != nil || n > 0
	})
}

// signalProcess sends sig to pid if it is still the process that started
// at start; a gone process is not an error.
func signalProcess(pid int, start uint64, sig unix.Signal) error {
	fd, err := pidfdFor(pid, start)
	if err != nil || fd < 0 {
		return err
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}

func unmountAll(dir string) error { return mount.UnmountAll(dir) }

// ownOOMScoreAdj reads the runtime's own oom_score_adj: without
// CAP_SYS_RESOURCE no child can go below it.
func ownOOMScoreAdj() int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

// setOOMScoreAdj sets pid's oom_score_adj, clamped to what the host
// allows. It reports the value used, and whether it had to clamp.
func setOOMScoreAdj(pid, want int) (int, bool, error) {
	want = max(-1000, min(1000, want))
	p := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
	err := os.WriteFile(p, []byte(strconv.Itoa(want)), 0)
	if err == nil {
		return want, false, nil
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return 0, false, err
	}
	floor := ownOOMScoreAdj()
	if want >= floor {
		return 0, false, err
	}
	if err := os.WriteFile(p, []byte(strconv.Itoa(floor)), 0); err != nil {
		return 0, true, err
	}
	return floor, true, nil
}
