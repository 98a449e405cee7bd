// Package memtrim gives back memory a long-running process used only while
// starting: the pages of its own executable touched by package
// initialisation (a Go binary that embeds kubectl, etcd and the Kubernetes
// types runs a great deal of init code once), and the heap garbage left by
// start-up.
//
// The executable's pages are clean and file-backed: paging them out costs
// nothing but a later page fault if the code runs again, so the process's
// resident set shrinks to what it actually uses while serving.
package memtrim

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Stats reports what Release did.
type Stats struct {
	// Mappings is the number of executable mappings advised.
	Mappings int
	// Bytes is their total size.
	Bytes int64
}

// Release pages out the process's executable mappings and returns freed
// heap memory to the operating system. It is best effort: an error means
// nothing was released (for example on a kernel without MADV_PAGEOUT,
// before Linux 5.4).
func Release() (Stats, error) {
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		return Stats{}, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	var st Stats
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/skiff
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if err := pageout(uintptr(start), uintptr(end-start)); err != nil {
			return st, err
		}
		st.Mappings++
		st.Bytes += int64(end - start)
	}
	return st, sc.Err()
}
