// Package mount reads the mount table and turns OCI mount options into
// mount(2) flags.
package mount

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Info is one line of /proc/<pid>/mountinfo.
type Info struct {
	ID, Parent int
	Root       string // the mounted directory of the source filesystem
	Mountpoint string
	Options    string // per-mount options (ro, nosuid, ...)
	Optional   string // propagation fields (shared:N, master:N)
	FSType     string
	Source     string
	Super      string // per-superblock options
}

// Self returns the calling process's mount table.
func Self() ([]Info, error) { return Read("/proc/self/mountinfo") }

// Read parses a mountinfo file.
func Read(file string) ([]Info, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return Parse(data)
}

// Parse parses mountinfo content.
func Parse(data []byte) ([]Info, error) {
	var out []Info
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+3 {
			return nil, fmt.Errorf("parse mount table: bad line %q", sc.Text())
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("parse mount table: bad line %q", sc.Text())
		}
		in := Info{
			ID: id, Parent: parent,
			Root:       unescape(f[3]),
			Mountpoint: unescape(f[4]),
			Options:    f[5],
			Optional:   strings.Join(f[6:sep], " "),
			FSType:     f[sep+1],
			Source:     unescape(f[sep+2]),
		}
		if len(f) > sep+3 {
			in.Super = f[sep+3]
		}
		out = append(out, in)
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
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

// Under returns the mount points at or below dir in mounts, deepest first
// (the order to unmount them in).
func Under(mounts []Info, dir string) []string {
	dir = path.Clean(dir)
	var out []string
	for _, m := range mounts {
		if m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/") {
			out = append(out, m.Mountpoint)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// UnmountAll lazily unmounts every mount at or below dir in the calling
// process's mount namespace, deepest first. A mount that is already gone
// is not an error, so UnmountAll is idempotent.
func UnmountAll(dir string) error {
	mounts, err := Self()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range Under(mounts, dir) {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// IsMountpoint reports whether path is a mount point in the calling
// process's mount namespace.
func IsMountpoint(p string) (bool, error) {
	mounts, err := Self()
	if err != nil {
		return false, err
	}
	p = path.Clean(p)
	for _, m := range mounts {
		if m.Mountpoint == p {
			return true, nil
		}
	}
	return false, nil
}

// Options is a list of OCI mount options split into what mount(2) takes.
type Options struct {
	// Flags are the MS_* flags to mount with.
	Flags uintptr
	// ClearFlags are flags the options turn off (rw clears MS_RDONLY);
	// they matter when remounting a bind mount.
	ClearFlags uintptr
	// Propagation is MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE,
	// possibly with MS_REC, or 0 when the options name none.
	Propagation uintptr
	// Data is the filesystem-specific options, comma separated.
	Data string
}

// Bind reports whether the options ask for a bind mount.
func (o Options) Bind() bool { return o.Flags&unix.MS_BIND != 0 }

// Recursive reports whether the options ask for a recursive bind mount.
func (o Options) Recursive() bool { return o.Flags&unix.MS_REC != 0 }

// ParseOptions splits OCI mount options. Options it does not know are
// passed to the filesystem as data, as mount(8) does.
func ParseOptions(opts []string) Options {
	type flag struct {
		clear bool
		v     uintptr
	}
	flags := map[string]flag{
		"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
		"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
		"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
		"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
		"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
		"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
		"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
		"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
		"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
		"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
		"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
		"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	}
	propagation := map[string]uintptr{
		"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
		"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
		"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
		"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
	}
	var o Options
	var data []string
	for _, opt := range opts {
		if f, ok := flags[opt]; ok {
			if f.clear {
				o.Flags &^= f.v
				o.ClearFlags |= f.v
			} else {
				o.Flags |= f.v
				o.ClearFlags &^= f.v
			}
			continue
		}
		if p, ok := propagation[opt]; ok {
			o.Propagation = p
			continue
		}
		data = append(data, opt)
	}
	o.Data = strings.Join(data, ",")
	return o
}
