package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Manager creates and opens cgroups under one parent cgroup. It drives the
// cgroup v2 interface files for controllers the host mounts on cgroup2, and
// the v1 files for those on v1 hierarchies; on a hybrid host each controller
// goes to wherever the host put it. A Manager is safe for concurrent use.
type Manager struct {
	log    *slog.Logger
	parent string
	layout Layout
	// v2 is the set of controllers the cgroup2 root offers and v1 does not
	// hold.
	v2   map[string]bool
	poll time.Duration
	fs   fsOps
}

// fsOps is what the manager does to a cgroup file system besides reading.
// The host implementation calls the kernel; tests substitute a fake kernel
// that keeps a synthetic tree in a temporary directory.
type fsOps interface {
	// mkdir creates one cgroup directory; the parent exists.
	mkdir(dir string) error
	// rmdir removes one empty cgroup directory.
	rmdir(dir string) error
	// writeFile writes data to an existing interface file in one write.
	writeFile(name, data string) error
	// attachDevices installs rules as the device program of the cgroup2
	// directory dir, replacing any program installed before.
	attachDevices(dir string, rules []DeviceRule) error
}

// New returns a Manager for the hierarchies in cfg.Layout, or for those the
// host mounts when it is nil. It fails with ErrNotSupported when there is no
// cgroup hierarchy at all, and with ErrInvalid for a bad Config.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var layout Layout
	if cfg.Layout != nil {
		layout = Layout{Unified: cfg.Layout.Unified, V1: maps.Clone(cfg.Layout.V1)}
	} else {
		l, err := detectLayout()
		if err != nil {
			return nil, err
		}
		if err := l.validate(); err != nil {
			return nil, err
		}
		layout = l
	}
	return newManager(cfg, layout, hostFS{})
}

func newManager(cfg Config, layout Layout, ops fsOps) (*Manager, error) {
	m := &Manager{
		log:    cfg.Logger.WithGroup("cgroups"),
		parent: cfg.Parent,
		layout: layout,
		v2:     make(map[string]bool),
		poll:   cfg.PollInterval,
		fs:     ops,
	}
	if layout.Unified != "" {
		data, err := readFile(layout.Unified, "cgroup.controllers")
		if err != nil {
			return nil, fmt.Errorf("cgroup2 at %s: %w", layout.Unified, err)
		}
		for c := range strings.FieldsSeq(data) {
			if _, onV1 := layout.V1[c]; !onV1 && slices.Contains(v2Controllers, c) {
				m.v2[c] = true
			}
		}
	}
	m.log.Debug("cgroup manager ready", "mode", layout.Mode(), "parent", m.parent,
		"v1", slices.Sorted(maps.Keys(layout.V1)), "v2", slices.Sorted(maps.Keys(m.v2)))
	return m, nil
}

// Mode reports whether the manager drives v1, v2 or both.
func (m *Manager) Mode() Mode { return m.layout.Mode() }

// Layout returns where the hierarchies are mounted. The caller owns the
// returned value.
func (m *Manager) Layout() Layout {
	return Layout{Unified: m.layout.Unified, V1: maps.Clone(m.layout.V1)}
}

// Controllers maps every controller the manager can drive to the cgroup
// version (1 or 2) that holds it on this host. The caller owns the map.
func (m *Manager) Controllers() map[string]int {
	out := make(map[string]int)
	for c := range m.layout.V1 {
		out[c] = 1
	}
	for c := range m.v2 {
		out[c] = 2
	}
	return out
}

// Create makes the cgroup at p, a slash path relative to the manager's
// parent ("kubepods/burstable/pod<uid>/<container>"; "" is the parent
// itself), in every hierarchy, with any missing ancestors. On cgroup v2 it
// enables the available controllers in cgroup.subtree_control of every
// ancestor, so that the new cgroup has their interface files; on v1 it
// gives new cpuset cgroups their parent's cpus and mems. Create is
// idempotent: an existing cgroup is opened. On failure it removes the
// directories it made.
func (m *Manager) Create(p string) (*Cgroup, error) {
	if err := validatePath(p); err != nil {
		return nil, err
	}
	c := m.handle(p)
	var made []string
	fail := func(err error) (*Cgroup, error) {
		for _, dir := range slices.Backward(made) {
			if rerr := m.fs.rmdir(dir); rerr != nil {
				m.log.Warn("cannot undo cgroup creation", "dir", dir, "err", rerr)
			}
		}
		return nil, fmt.Errorf("create cgroup %s: %w", c.name(), err)
	}
	elems := strings.Split(c.full, "/")
	var err error
	if root := m.layout.Unified; root != "" {
		if made, err = m.createUnified(root, elems, made); err != nil {
			return fail(err)
		}
	}
	for _, root := range c.v1Roots() {
		if made, err = m.createV1(root, elems, m.layout.V1["cpuset"] == root, made); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// createUnified makes root/elems in the cgroup2 hierarchy. The common case,
// a new cgroup in an existing parent that already delegates every
// controller the manager drives (a container in its pod), costs one read
// and one mkdir; otherwise it walks down from the root, enabling the
// available controllers in each ancestor before making the next level.
func (m *Manager) createUnified(root string, elems []string, made []string) ([]string, error) {
	leaf := filepath.Join(append([]string{root}, elems...)...)
	if m.delegatesAll(filepath.Dir(leaf)) {
		return m.mkdir(leaf, made)
	}
	dir := root
	for _, e := range elems {
		if err := m.enableControllers(dir); err != nil {
			return made, err
		}
		dir = filepath.Join(dir, e)
		var err error
		if made, err = m.mkdir(dir, made); err != nil {
			return made, err
		}
	}
	return made, nil
}

// delegatesAll reports whether dir exists and has every controller the
// manager drives in its cgroup.subtree_control. The kernel only lets a
// cgroup enable what its parent enabled, so then every ancestor has too.
func (m *Manager) delegatesAll(dir string) bool {
	on, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return false
	}
	enabled := strings.Fields(on)
	for c := range m.v2 {
		if !slices.Contains(enabled, c) {
			return false
		}
	}
	return true
}

// createV1 makes root/elems in one v1 hierarchy: first the leaf alone, and
// only if its parent is missing, every level from the top. New cpuset
// cgroups get their parent's cpus and mems.
func (m *Manager) createV1(root string, elems []string, cpuset bool, made []string) ([]string, error) {
	leaf := filepath.Join(append([]string{root}, elems...)...)
	n := len(made)
	made, err := m.mkdir(leaf, made)
	switch {
	case err == nil:
		if cpuset && len(made) > n {
			return made, m.inheritCpuset(filepath.Dir(leaf), leaf)
		}
		return made, nil
	case !errors.Is(err, ErrNotExist):
		return made, err
	}
	dir := root
	for _, e := range elems {
		parent := dir
		dir = filepath.Join(dir, e)
		n := len(made)
		if made, err = m.mkdir(dir, made); err != nil {
			return made, err
		}
		if cpuset && len(made) > n {
			if err := m.inheritCpuset(parent, dir); err != nil {
				return made, err
			}
		}
	}
	return made, nil
}

// mkdir makes dir unless it exists, and appends it to made if it made it.
func (m *Manager) mkdir(dir string, made []string) ([]string, error) {
	err := m.fs.mkdir(dir)
	switch {
	case err == nil:
		m.log.Debug("created cgroup directory", "dir", dir)
		return append(made, dir), nil
	case errors.Is(err, fs.ErrExist):
		return made, nil
	}
	return made, fileError("mkdir", dir, "", filepath.Dir(dir), err)
}

// enableControllers turns on, in dir's cgroup.subtree_control, every
// controller the manager drives that dir offers and has not enabled yet.
func (m *Manager) enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	enabled := strings.Fields(on)
	var add []string
	for c := range strings.FieldsSeq(avail) {
		if m.v2[c] && !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	data := strings.Join(add, " ")
	if err := m.fs.writeFile(filepath.Join(dir, "cgroup.subtree_control"), data); err != nil {
		return fileError("write", filepath.Join(dir, "cgroup.subtree_control"), data, dir, err)
	}
	m.log.Debug("enabled controllers", "dir", dir, "controllers", data)
	return nil
}

// inheritCpuset copies cpuset.cpus and cpuset.mems from parent into a v1
// cpuset cgroup that has none: v1 refuses tasks in a cpuset without them.
func (m *Manager) inheritCpuset(parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		val, err := readFile(parent, f)
		if err != nil {
			return err
		}
		val = strings.TrimSpace(val)
		if err := m.fs.writeFile(filepath.Join(dir, f), val); err != nil {
			return fileError("write", filepath.Join(dir, f), val, dir, err)
		}
	}
	return nil
}

// Open returns the existing cgroup at p (see Create for paths). It fails
// with ErrNotExist when no hierarchy has it. A cgroup missing from some
// hierarchies (left half-removed) is still opened, so that it can be
// removed; Create repairs it.
func (m *Manager) Open(p string) (*Cgroup, error) {
	if err := validatePath(p); err != nil {
		return nil, err
	}
	c := m.handle(p)
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return c, nil
}

func (m *Manager) handle(p string) *Cgroup {
	full := m.parent
	if p != "" {
		full = path.Join(m.parent, p)
	}
	c := &Cgroup{m: m, path: p, full: full, v1: make(map[string]string)}
	if m.layout.Unified != "" {
		c.unified = filepath.Join(m.layout.Unified, full)
	}
	for ctrl, root := range m.layout.V1 {
		c.v1[ctrl] = filepath.Join(root, full)
	}
	return c
}

// readFile reads an interface file, classifying errors like fileError.
func readFile(dir, file string) (string, error) {
	name := filepath.Join(dir, file)
	data, err := readSmall(name)
	if err != nil {
		return "", fileError("read", name, "", dir, err)
	}
	return string(data), nil
}

// fileError wraps an error from an interface file operation with the file
// (and the data written, if any) and the package sentinel it falls under: a
// missing cgroup directory is ErrNotExist, a missing file in an existing
// cgroup is ErrNotSupported, EINVAL and ERANGE are ErrInvalid, EBUSY is
// ErrBusy.
func fileError(op, name, data, dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var sentinel error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sentinel = ErrNotSupported
		if _, serr := os.Stat(dir); serr != nil {
			sentinel = ErrNotExist
		}
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ERANGE):
		sentinel = ErrInvalid
	case errors.Is(err, syscall.EBUSY):
		sentinel = ErrBusy
	case errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
		sentinel = ErrNotSupported
	}
	what := op + " " + name
	if data != "" {
		what += fmt.Sprintf(" %q", data)
	}
	if sentinel != nil {
		return fmt.Errorf("%s: %w: %w", what, sentinel, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
