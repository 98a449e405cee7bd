package shim

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sigaction is the kernel's struct sigaction on amd64 and arm64.
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	sigDefault = 0
	sigIgnore  = 1
)

// resetIgnoredSignals gives every signal ignored in this process its
// default disposition back. Ignored signals survive execve, and the
// monitor ignores terminal signals, so an init must do this just before
// it execs the container's program. (Handled signals need nothing: exec
// resets them.)
func resetIgnoredSignals() {
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		var old sigaction
		if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); errno != 0 {
			continue
		}
		if old.handler == sigIgnore {
			act := sigaction{handler: sigDefault}
			unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		}
	}
}

func uintptrOf(a *sigaction) uintptr { return uintptr(unsafe.Pointer(a)) }
