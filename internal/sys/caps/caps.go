// Package caps names Linux capabilities and applies capability sets to the
// calling thread.
//
// A Set is a bit mask of capabilities. Parse and Names convert between the
// "CAP_NET_ADMIN" spelling used by OCI specs and CRI and the kernel numbers.
// Apply is meant for a process that is about to execve: it works on the
// calling OS thread only, so the caller must hold that thread
// (runtime.LockOSThread) and exec from it.
package caps

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Cap is a capability number as the kernel numbers them.
type Cap uint

// Set is a set of capabilities, bit n standing for Cap n.
type Set uint64

// ErrUnknown is returned (wrapped) by Parse for a name that is not a Linux
// capability.
var ErrUnknown = errors.New("unknown capability")

// names lists the capabilities the kernel knows, by number.
var names = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Default is the capability set Docker and containerd give a container
// unless told otherwise.
var Default = Of(
	0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31,
) // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP

// Of returns the set holding caps.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// String returns the capability's name, or "CAP_<n>" for a number this
// package does not know.
func (c Cap) String() string {
	if int(c) < len(names) {
		return names[c]
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Parse returns the capability named name. The "CAP_" prefix and case are
// optional, so "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" are the same.
func Parse(name string) (Cap, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, known := range names {
		if known == n {
			return Cap(i), nil
		}
	}
	return 0, fmt.Errorf("capability %q: %w", name, ErrUnknown)
}

// ParseSet returns the set of the named capabilities. The name "ALL" stands
// for every capability up to Last.
func ParseSet(list []string) (Set, error) {
	var s Set
	for _, n := range list {
		if strings.EqualFold(n, "ALL") || strings.EqualFold(n, "CAP_ALL") {
			s |= All()
			continue
		}
		c, err := Parse(n)
		if err != nil {
			return 0, err
		}
		s |= 1 << c
	}
	return s, nil
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

// Len returns the number of capabilities in s.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// Caps returns the capabilities in s, lowest number first.
func (s Set) Caps() []Cap {
	out := make([]Cap, 0, s.Len())
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Names returns the names of the capabilities in s, sorted.
func (s Set) Names() []string {
	out := make([]string, 0, s.Len())
	for _, c := range s.Caps() {
		out = append(out, c.String())
	}
	sort.Strings(out)
	return out
}

// Last returns the highest capability the running kernel knows, read from
// /proc/sys/kernel/cap_last_cap (once per process: the kernel's answer
// cannot change); it falls back to the highest this package names when
// that file cannot be read.
func Last() Cap { return lastCap() }

// lastCap caches Last. It is package-level but immutable once computed.
var lastCap = sync.OnceValue(func() Cap {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 64 {
			return Cap(n)
		}
	}
	return Cap(len(names) - 1)
})

// All returns every capability up to Last.
func All() Set {
	last := Last()
	return Set(uint64(1)<<(last+1) - 1)
}
