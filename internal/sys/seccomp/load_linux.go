package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs prog on the calling thread. Unless the thread has set
// no_new_privs it needs CAP_SYS_ADMIN. The filter is inherited across
// execve and fork; other threads of the process are not affected, so call
// it on the locked thread that will exec.
func Load(prog Program) error {
	if len(prog) == 0 {
		return fmt.Errorf("%w: empty program", ErrInvalid)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("load seccomp filter: %w", errno)
	}
	return nil
}
