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
	"fmt"
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
// written are dropped: text, and read-only data of a non-PIE executable
// outside the segments the dynamic loader writes. Those include the
// GOT, which a full-RELRO executable (such as skiff linked by gcc with
// -z now) holds in a read-only mapping after relocation: dropping it
// would send calls into the C library (pthread_create) to address 0.
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
	var layout *exeLayout
	if onlyPristine {
		if layout, err = readLayout(exe); err != nil {
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
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if layout != nil && !layout.pristine(fields[1], start, end) {
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

// exeLayout is what Forget needs to know of the executable's ELF program
// headers.
type exeLayout struct {
	// pie: the executable is position independent (not ET_EXEC), so its
	// read-only data may hold relocations anywhere.
	pie bool
	// written are the page-rounded address ranges of the segments the
	// process or the dynamic loader writes: writable PT_LOAD segments,
	// PT_GNU_RELRO (written, then made read-only) and PT_DYNAMIC.
	written []addrRange
}

type addrRange struct{ start, end uint64 }

// pristine reports whether the mapping [start, end) with permissions
// perms (as in /proc/self/maps) holds only what the executable file
// holds, so that dropping it loses nothing.
func (l *exeLayout) pristine(perms string, start, end uint64) bool {
	if strings.Contains(perms, "w") {
		return false
	}
	if strings.Contains(perms, "x") {
		return true // code is never written
	}
	if l.pie {
		return false
	}
	for _, r := range l.written {
		if start < r.end && r.start < end {
			return false
		}
	}
	return true
}

// ELF constants used by readLayout.
const (
	elfTypeExec    = 2          // e_type ET_EXEC
	elfPTLoad      = 1          // p_type PT_LOAD
	elfPTDynamic   = 2          // p_type PT_DYNAMIC
	elfPTGNURelro  = 0x6474e552 // p_type PT_GNU_RELRO
	elfPFWrite     = 2          // p_flags PF_W
	elfMaxPhdrSize = 1 << 20    // a sanity bound on the program headers
)

// readLayout reads the ELF header and program headers of the executable
// at path. It reads the bytes by hand (no debug/elf) to keep the
// packages a helper process initialises few.
func readLayout(path string) (*exeLayout, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdr [64]byte
	if _, err := io.ReadFull(f, hdr[:52]); err != nil { // an ELF32 header's size
		return nil, fmt.Errorf("memtrim: %s: %w", path, err)
	}
	if string(hdr[:4]) != "\x7fELF" {
		return nil, errors.New("memtrim: executable is not ELF")
	}
	is64, big := hdr[4] == 2, hdr[5] == 2
	u16 := func(b []byte) uint64 {
		if big {
			return uint64(b[0])<<8 | uint64(b[1])
		}
		return uint64(b[1])<<8 | uint64(b[0])
	}
	u32 := func(b []byte) uint64 {
		if big {
			return u16(b[:2])<<16 | u16(b[2:4])
		}
		return u16(b[2:4])<<16 | u16(b[:2])
	}
	u64 := func(b []byte) uint64 {
		if big {
			return u32(b[:4])<<32 | u32(b[4:8])
		}
		return u32(b[4:8])<<32 | u32(b[:4])
	}
	var phoff, phentsize, phnum uint64
	if is64 {
		if _, err := io.ReadFull(f, hdr[52:]); err != nil {
			return nil, fmt.Errorf("memtrim: %s: %w", path, err)
		}
		phoff, phentsize, phnum = u64(hdr[32:]), u16(hdr[54:]), u16(hdr[56:])
	} else {
		phoff, phentsize, phnum = u32(hdr[28:]), u16(hdr[42:]), u16(hdr[44:])
	}
	l := &exeLayout{pie: u16(hdr[16:]) != elfTypeExec}
	if (is64 && phentsize < 56) || (!is64 && phentsize < 32) || phentsize*phnum > elfMaxPhdrSize {
		return nil, fmt.Errorf("memtrim: %s: bad program headers", path)
	}
	phdrs := make([]byte, phentsize*phnum)
	if _, err := f.ReadAt(phdrs, int64(phoff)); err != nil {
		return nil, fmt.Errorf("memtrim: %s: program headers: %w", path, err)
	}
	page := uint64(os.Getpagesize())
	for i := uint64(0); i < phnum; i++ {
		ph := phdrs[i*phentsize:]
		var typ, flags, vaddr, memsz uint64
		if is64 {
			typ, flags, vaddr, memsz = u32(ph[0:]), u32(ph[4:]), u64(ph[16:]), u64(ph[40:])
		} else {
			typ, vaddr, memsz, flags = u32(ph[0:]), u32(ph[8:]), u32(ph[20:]), u32(ph[24:])
		}
		written := typ == elfPTGNURelro || typ == elfPTDynamic || (typ == elfPTLoad && flags&elfPFWrite != 0)
		if !written || memsz == 0 {
			continue
		}
		l.written = append(l.written, addrRange{vaddr &^ (page - 1), (vaddr + memsz + page - 1) &^ (page - 1)})
	}
	return l, nil
}
