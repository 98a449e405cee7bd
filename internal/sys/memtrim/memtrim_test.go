package memtrim

import (
	"os"
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

func TestForget_DropsTheExecutablesPages(t *testing.T) {
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
}
