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
	"errors"
	"io"
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
	return advise(pageout, false)
}

// Forget drops this process's own mappings of its executable's pages
// (MADV_DONTNEED), leaving the pages in the page cache; code that runs
// again faults them back in from there. It is for a helper process that
// shares the executable with a long-running one and runs little of it:
// the kernel does not page out a page two processes map, so a helper
// holding every page start-up touched would keep Release in the main
// process from freeing them. Only mappings the process cannot have
// written are dropped (text, and read-only data of a non-PIE executable,
// which the dynamic loader never relocates).
func Forget() (Stats, error) {
	return advise(dontneed, true)
}

func advise(fn func(addr, length uintptr) error, onlyPristine bool) (Stats, error) {
	exe, err := os.Executable()
	if err != nil {
		return Stats{}, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	pie := false
	if onlyPristine {
		if pie, err = isPIE(exe); err != nil {
			return Stats{}, err
		}
	}
	var st Stats
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/skiff
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		if onlyPristine && pie && !strings.Contains(fields[1], "x") {
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
		if err := fn(uintptr(start), uintptr(end-start)); err != nil {
			return st, err
		}
		st.Mappings++
		st.Bytes += int64(end - start)
	}
	return st, sc.Err()
}

// isPIE reports whether the ELF executable at path is position
// independent (type ET_DYN), whose read-only data may hold relocations.
func isPIE(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var hdr [18]byte // e_ident (16 bytes), then e_type
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return false, err
	}
	if string(hdr[:4]) != "\x7fELF" {
		return false, errors.New("memtrim: executable is not ELF")
	}
	typ := uint16(hdr[16]) | uint16(hdr[17])<<8
	if hdr[5] == 2 { // big-endian
		typ = uint16(hdr[16])<<8 | uint16(hdr[17])
	}
	return typ != 2, nil // anything but ET_EXEC is treated as relocatable
}
