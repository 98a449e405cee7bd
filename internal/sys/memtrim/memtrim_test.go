package memtrim

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "RssFile:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestRelease_PagesOutTheExecutable(t *testing.T) {
	before := rssFileKB(t)
	st, err := Release()
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	if st.Mappings == 0 || st.Bytes == 0 {
		t.Fatalf("no executable mappings advised: %+v", st)
	}
	after := rssFileKB(t)
	if after >= before {
		t.Fatalf("file-backed RSS did not shrink: %d kB -> %d kB", before, after)
	}
	// The process keeps working: code paged out comes back on demand.
	if strings.Repeat("x", 3) != "xxx" {
		t.Fatal("unreachable")
	}
}

// TestForget_DropsTheExecutablesPages runs Forget in a fresh child
// process, whose start-up left pages of the executable resident (in this
// process an earlier Release may already have paged them out).
func TestForget_DropsTheExecutablesPages(t *testing.T) {
	if os.Getenv("MEMTRIM_FORGET_RSS_CHILD") == "1" {
		before := rssFileKB(t)
		st, err := Forget()
		if err != nil {
			t.Fatalf("forget: %v", err)
		}
		if st.Mappings == 0 {
			t.Fatalf("no executable mappings advised: %+v", st)
		}
		if after := rssFileKB(t); after >= before {
			t.Fatalf("file-backed RSS did not shrink: %d kB -> %d kB", before, after)
		}
		// Code and read-only data come back on demand.
		if strings.Repeat("y", 2) != "yy" || strconv.Itoa(42) != "42" {
			t.Fatal("unreachable")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestForget_DropsTheExecutablesPages$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "MEMTRIM_FORGET_RSS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestForget_DropsTheExecutablesPages") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestForget_KeepsWhatTheLoaderWrote builds a cgo program externally
// linked with full RELRO (its GOT, pthread_create's slot included, is
// relocated and then made read-only) that forgets its pages and then
// starts threads. Dropping the GOT sent such processes to address 0.
func TestForget_KeepsWhatTheLoaderWrote(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc for external linking")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the test binary's own toolchain
	bin := filepath.Join(t.TempDir(), "forgetter")
	build := exec.Command(goTool, "build", "-ldflags=-linkmode=external -extldflags=-Wl,-z,relro,-z,now", "-o", bin, "./testdata/forgetter")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		if len(out) > 2000 {
			out = out[:2000]
		}
		t.Fatalf("a process that forgot its executable's pages failed: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "forgot ") {
		t.Fatalf("output %q", out)
	}
}

// TestExeLayout_SparesWhatTheLoaderWrites reads the program headers of a
// small ELF file laid out as skiff is (non-PIE, a RELRO range at the
// start of the writable segment) and checks which mappings Forget drops.
func TestExeLayout_SparesWhatTheLoaderWrites(t *testing.T) {
	le := binary.LittleEndian
	elf := make([]byte, 64+4*56)
	copy(elf, "\x7fELF")
	elf[4], elf[5], elf[6] = 2, 1, 1 // ELF64, little-endian, version 1
	le.PutUint16(elf[16:], 2)        // ET_EXEC
	le.PutUint64(elf[32:], 64)       // e_phoff
	le.PutUint16(elf[54:], 56)       // e_phentsize
	le.PutUint16(elf[56:], 4)        // e_phnum
	phdr := func(i int, typ, flags uint32, vaddr, memsz uint64) {
		ph := elf[64+56*i:]
		le.PutUint32(ph[0:], typ)
		le.PutUint32(ph[4:], flags)
		le.PutUint64(ph[16:], vaddr)
		le.PutUint64(ph[40:], memsz)
	}
	phdr(0, 1, 4, 0x400000, 0x167a6f0)          // LOAD R
	phdr(1, 1, 5, 0x1a7b000, 0x29f3c19)         // LOAD R E
	phdr(2, 1, 6, 0x794abf8, 0x218c228)         // LOAD RW
	phdr(3, 0x6474e552, 4, 0x794abf8, 0x000408) // GNU_RELRO
	path := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(path, elf, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := readLayout(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.pie {
		t.Fatal("an ET_EXEC file read as PIE")
	}
	for _, tc := range []struct {
		perms      string
		start, end uint64
		want       bool
	}{
		{"r--p", 0x400000, 0x1a7b000, true},   // headers, dynsym, read-only data
		{"r-xp", 0x1a7b000, 0x446f000, true},  // text
		{"r--p", 0x794a000, 0x794b000, false}, // the GOT, read-only after relocation
		{"rw-p", 0x794b000, 0x7a7e000, false}, // data
	} {
		if got := l.pristine(tc.perms, tc.start, tc.end); got != tc.want {
			t.Errorf("pristine(%s %x-%x) = %v, want %v", tc.perms, tc.start, tc.end, got, tc.want)
		}
	}
	l.pie = true
	if l.pristine("r--p", 0x400000, 0x1a7b000) || !l.pristine("r-xp", 0x1a7b000, 0x446f000) {
		t.Error("a PIE executable's read-only data counts as pristine, or its text does not")
	}
}
