package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// parseMountInfo reads a mount table in the format of /proc/self/mountinfo
// and returns where the cgroup hierarchies are mounted. When a hierarchy is
// mounted more than once the first mount wins. Named v1 hierarchies
// (name=systemd) and controllers the manager does not drive are ignored.
func parseMountInfo(r io.Reader) (Layout, error) {
	l := Layout{V1: make(map[string]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return Layout{}, fmt.Errorf("mountinfo line %q: no separator: %w", line, ErrInvalid)
		}
		fields := strings.Fields(pre)
		tail := strings.Fields(post)
		if len(fields) < 6 || len(tail) < 3 {
			return Layout{}, fmt.Errorf("mountinfo line %q: too few fields: %w", line, ErrInvalid)
		}
		mountPoint := unescapeMountInfo(fields[4])
		switch tail[0] {
		case "cgroup2":
			if l.Unified == "" {
				l.Unified = mountPoint
			}
		case "cgroup":
			for opt := range strings.SplitSeq(tail[2], ",") {
				if !slices.Contains(v1Controllers, opt) {
					continue
				}
				if _, seen := l.V1[opt]; !seen {
					l.V1[opt] = mountPoint
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Layout{}, fmt.Errorf("mountinfo: %w", err)
	}
	if len(l.V1) == 0 {
		l.V1 = nil
	}
	return l, nil
}

// unescapeMountInfo undoes the kernel's octal escapes (\040 for a space) in
// a mountinfo path.
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
