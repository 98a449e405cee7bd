package cgroups

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// hugePagesDir lists one directory per huge page size the kernel supports.
const hugePagesDir = "/sys/kernel/mm/hugepages"

// HugePageSizes lists the host's huge page sizes, smallest first, named as
// in cgroup interface files ("2MB", "1GB"). A host without huge page support
// gives an empty list and no error.
func HugePageSizes() ([]string, error) {
	return hugePageSizesIn(hugePagesDir)
}

func hugePageSizesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("huge page sizes: %w", err)
	}
	var sizes []uint64
	for _, e := range entries {
		// hugepages-2048kB
		num, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, "kB")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(num, 10, 64)
		if err != nil || kb == 0 {
			return nil, fmt.Errorf("huge page sizes: unexpected entry %q in %s: %w", e.Name(), dir, ErrInvalid)
		}
		sizes = append(sizes, kb<<10)
	}
	slices.Sort(sizes)
	names := make([]string, len(sizes))
	for i, s := range sizes {
		names[i] = HugePageSizeName(s)
	}
	return names, nil
}
