package caps

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sets is the full capability state of a thread.
type Sets struct {
	Bounding    Set
	Effective   Set
	Permitted   Set
	Inheritable Set
	Ambient     Set
}

// DropBounding removes from the calling thread's bounding set every
// capability up to Last that keep does not hold. It needs CAP_SETPCAP, so
// call it before changing user.
func DropBounding(keep Set) error {
	last := Last()
	for c := Cap(0); c <= last; c++ {
		if keep.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL {
				continue // the kernel does not know this one
			}
			return fmt.Errorf("drop %s from bounding set: %w", c, err)
		}
	}
	return nil
}

// Current returns the calling thread's effective, permitted and
// inheritable sets.
func Current() (Sets, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if _, _, errno := unix.RawSyscall(unix.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 {
		return Sets{}, fmt.Errorf("capget: %w", errno)
	}
	join := func(lo, hi uint32) Set { return Set(uint64(hi)<<32 | uint64(lo)) }
	return Sets{
		Effective:   join(data[0].Effective, data[1].Effective),
		Permitted:   join(data[0].Permitted, data[1].Permitted),
		Inheritable: join(data[0].Inheritable, data[1].Inheritable),
	}, nil
}
