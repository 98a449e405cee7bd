package memtrim

import "golang.org/x/sys/unix"

func pageout(addr, length uintptr) error {
	// The raw system call: the range is not Go memory, so it is passed as
	// numbers, never converted to a pointer.
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, length, unix.MADV_PAGEOUT); errno != 0 {
		return errno
	}
	return nil
}

func dontneed(addr, length uintptr) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, length, unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
