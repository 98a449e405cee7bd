package cgroups

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"
)

// Errors returned by this package. They are wrapped with the cgroup or file
// concerned; check them with errors.Is. A kernel errno, when there is one, is
// wrapped alongside (errors.Is(err, unix.EINVAL) also works).
var (
	// ErrNotExist reports that the cgroup (its directory) does not exist.
	ErrNotExist = errors.New("cgroup does not exist")
	// ErrInvalid reports a bad argument: a malformed path, a value out of
	// range, or a value the kernel refused.
	ErrInvalid = errors.New("invalid cgroup argument")
	// ErrNotSupported reports a controller, interface file or feature this
	// host's cgroups do not offer (for example memory.high on cgroup v1, or
	// rdma limits without the rdma controller).
	ErrNotSupported = errors.New("not supported by this host's cgroups")
	// ErrBusy reports a cgroup that still holds processes (or children) where
	// the operation needs it empty, or a freeze that did not settle.
	ErrBusy = errors.New("cgroup busy")
)

// Mode says which cgroup versions a host mounts.
type Mode int

// Modes, as detected from the mount table.
const (
	// ModeLegacy: only cgroup v1 hierarchies.
	ModeLegacy Mode = iota + 1
	// ModeHybrid: cgroup v1 hierarchies plus a cgroup2 mount (usually at
	// /sys/fs/cgroup/unified) that holds the controllers v1 does not.
	ModeHybrid
	// ModeUnified: only cgroup2, every controller on it.
	ModeUnified
)

func (m Mode) String() string {
	switch m {
	case ModeLegacy:
		return "legacy"
	case ModeHybrid:
		return "hybrid"
	case ModeUnified:
		return "unified"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// The cgroup v1 controllers the manager drives. Other v1 hierarchies
// (net_cls, perf_event, named ones such as name=systemd) are left alone.
var v1Controllers = []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "pids", "rdma"}

// The cgroup v2 controllers the manager enables along a path when the
// hierarchy offers them.
var v2Controllers = []string{"cpu", "cpuset", "hugetlb", "io", "memory", "misc", "pids", "rdma"}

// Layout says where the cgroup hierarchies are mounted.
type Layout struct {
	// Unified is the mount point of the cgroup2 hierarchy, or "" when there
	// is none.
	Unified string
	// V1 maps a cgroup v1 controller name ("cpu", "memory", ...) to the mount
	// point of its hierarchy. Co-mounted controllers share a mount point.
	V1 map[string]string
}

// Mode reports the host mode the layout describes, or 0 if it is empty.
func (l Layout) Mode() Mode {
	switch {
	case l.Unified != "" && len(l.V1) > 0:
		return ModeHybrid
	case l.Unified != "":
		return ModeUnified
	case len(l.V1) > 0:
		return ModeLegacy
	}
	return 0
}

func (l Layout) validate() error {
	if l.Mode() == 0 {
		return fmt.Errorf("layout: no cgroup hierarchy: %w", ErrNotSupported)
	}
	if l.Unified != "" && !path.IsAbs(l.Unified) {
		return fmt.Errorf("layout: unified mount %q is not absolute: %w", l.Unified, ErrInvalid)
	}
	for c, dir := range l.V1 {
		if !slices.Contains(v1Controllers, c) {
			return fmt.Errorf("layout: unknown v1 controller %q: %w", c, ErrInvalid)
		}
		if !path.IsAbs(dir) {
			return fmt.Errorf("layout: %s mount %q is not absolute: %w", c, dir, ErrInvalid)
		}
	}
	return nil
}

// DefaultParent is the parent used when Config.Parent is empty.
const DefaultParent = "skiff"

// DefaultPollInterval is the period used when Config.PollInterval is zero.
const DefaultPollInterval = time.Second

// Config configures a Manager. The zero value is ready to use: it detects the
// host's hierarchies and puts every cgroup under "skiff".
type Config struct {
	// Parent is the slash-separated path, relative to the root of every
	// hierarchy, under which all cgroups of this manager live, such as
	// "skiff" or "skiff/kubepods". Empty means DefaultParent. It is created
	// on demand and never removed by the manager unless asked to (path "").
	Parent string
	// Layout overrides detection from /proc/self/mountinfo. Tests point it at
	// a synthetic tree; a node agent inside a container may point it at
	// bind mounts.
	Layout *Layout
	// PollInterval is how often Watch polls for processes on a host without
	// cgroup2, where there is no cgroup.events file to watch. Zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives debug and warning records. Nil discards them.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Parent == "" {
		c.Parent = DefaultParent
	}
	if err := validatePath(c.Parent); err != nil {
		return fmt.Errorf("config: parent: %w", err)
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("config: poll interval %v is negative: %w", c.PollInterval, ErrInvalid)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Layout != nil {
		return c.Layout.validate()
	}
	return nil
}

// validatePath checks a slash-separated relative cgroup path. The empty path
// is valid (it names the parent itself).
func validatePath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is absolute, want a path relative to the parent: %w", p, ErrInvalid)
	}
	for name := range strings.SplitSeq(p, "/") {
		switch {
		case name == "":
			return fmt.Errorf("path %q has an empty element: %w", p, ErrInvalid)
		case name == "." || name == "..":
			return fmt.Errorf("path %q has a %q element: %w", p, name, ErrInvalid)
		case len(name) > 255:
			return fmt.Errorf("path %q has an element longer than 255 bytes: %w", p, ErrInvalid)
		case strings.ContainsAny(name, "\x00\n"):
			return fmt.Errorf("path %q has a NUL or newline: %w", p, ErrInvalid)
		}
	}
	return nil
}
