package container

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// Cgroups is the host's cgroup hierarchy, as the runtime uses it. Paths
// are relative to the hierarchy's parent for skiff. HostCgroups adapts
// *cgroups.Manager.
type Cgroups interface {
	// Create makes the cgroup (and missing parents); it is idempotent.
	Create(path string) (Cgroup, error)
	// Open returns a handle on an existing cgroup.
	Open(path string) (Cgroup, error)
	// Layout tells how to mount cgroups inside a container: unified when
	// the host is cgroup v2 only, else the v1 hierarchies' mount options
	// (such as "memory" or "cpu,cpuacct").
	Layout() (unified bool, v1 []string)
}

// Cgroup is one cgroup. *cgroups.Cgroup implements it.
type Cgroup interface {
	Apply(r *cgroups.Resources) error
	AddProc(pid int) error
	Stats() (*cgroups.Stats, error)
	// Kill SIGKILLs every process in the cgroup and waits for them to go.
	Kill(ctx context.Context) error
	// Remove deletes the cgroup; removing a missing one succeeds.
	Remove(ctx context.Context) error
	// Dirs returns the cgroup's directory in every hierarchy, keyed by
	// v1 controller, and by "" for the cgroup2 hierarchy.
	Dirs() map[string]string
}

// Images is the image store, as the runtime uses it. *image.Store
// implements it.
type Images interface {
	// Lease resolves ref and keeps its layers from garbage collection
	// until Release(holder). Unknown images wrap image.ErrNotFound.
	Lease(holder, ref string) (*image.Image, error)
	// Release drops holder's lease; releasing an unknown holder succeeds.
	Release(holder string) error
}

var (
	_ Cgroup = (*cgroups.Cgroup)(nil)
	_ Images = (*image.Store)(nil)
)

// HostCgroups adapts a cgroups.Manager to Cgroups.
func HostCgroups(m *cgroups.Manager) Cgroups { return hostCgroups{m: m, create: &sync.Mutex{}} }

type hostCgroups struct {
	m *cgroups.Manager
	// create serializes Create: concurrent creations under a parent that
	// is new can copy the parent's cpuset before it is filled in (on v1),
	// leaving a cgroup no process can join.
	create *sync.Mutex
}

func (h hostCgroups) Create(p string) (Cgroup, error) {
	h.create.Lock()
	defer h.create.Unlock()
	c, err := h.m.Create(p)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (h hostCgroups) Open(p string) (Cgroup, error) {
	c, err := h.m.Open(p)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (h hostCgroups) Layout() (bool, []string) {
	l := h.m.Layout()
	if len(l.V1) == 0 {
		return l.Unified != "", nil
	}
	byDir := map[string][]string{}
	for ctl, dir := range l.V1 {
		byDir[dir] = append(byDir[dir], ctl)
	}
	var out []string
	for _, dir := range slices.Sorted(maps.Keys(byDir)) {
		ctls := byDir[dir]
		slices.Sort(ctls)
		// Mount under the hierarchy's own name (cpu,cpuacct), with its
		// controllers as options.
		name := filepath.Base(dir)
		if name != strings.Join(ctls, ",") && len(ctls) == 1 {
			name = ctls[0]
		}
		out = append(out, name)
	}
	return false, out
}
