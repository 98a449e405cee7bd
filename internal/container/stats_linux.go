package container

import (
	"context"
	"io/fs"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStats returns the container's CPU and memory usage (from its
// cgroup) and the size of its writable layer.
func (r *Runtime) ContainerStats(ctx context.Context, id string) (*runtimeapi.ContainerStats, error) {
	c, err := r.lookupContainer(id)
	if err != nil {
		return nil, err
	}
	return r.containerStats(c), nil
}

func (r *Runtime) containerStats(c *ctr) *runtimeapi.ContainerStats {
	st := r.containerStatus(c)
	now := r.cfg.Now().UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: st.Id, Metadata: st.Metadata, Labels: st.Labels, Annotations: st.Annotations},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: now},
		Memory:     &runtimeapi.MemoryUsage{Timestamp: now},
	}
	if c.cgroup != nil {
		if cs, err := c.cgroup.Stats(); err == nil {
			if cs.CPU != nil {
				out.Cpu.UsageCoreNanoSeconds = &runtimeapi.UInt64Value{Value: uint64(cs.CPU.Usage.Nanoseconds())}
			}
			if m := cs.Memory; m != nil {
				out.Memory.WorkingSetBytes = &runtimeapi.UInt64Value{Value: m.WorkingSet}
				out.Memory.UsageBytes = &runtimeapi.UInt64Value{Value: m.Usage}
				out.Memory.RssBytes = &runtimeapi.UInt64Value{Value: m.RSS}
				out.Memory.PageFaults = &runtimeapi.UInt64Value{Value: m.PageFaults}
				out.Memory.MajorPageFaults = &runtimeapi.UInt64Value{Value: m.MajorPageFaults}
				if m.Limit > 0 && uint64(m.Limit) > m.WorkingSet {
					out.Memory.AvailableBytes = &runtimeapi.UInt64Value{Value: uint64(m.Limit) - m.WorkingSet}
				}
			}
		}
	}
	upper := filepath.Join(c.bundle, "upper")
	var used, inodes uint64
	filepath.WalkDir(upper, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		inodes++
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			used += uint64(info.Size())
		}
		return nil
	})
	out.WritableLayer = &runtimeapi.FilesystemUsage{
		Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: upper},
		UsedBytes: &runtimeapi.UInt64Value{Value: used}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return out
}

// ListContainerStats returns the stats of the containers matching filter.
func (r *Runtime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats {
	var cf *runtimeapi.ContainerFilter
	if filter != nil {
		cf = &runtimeapi.ContainerFilter{Id: filter.GetId(), PodSandboxId: filter.GetPodSandboxId(), LabelSelector: filter.GetLabelSelector()}
	}
	var out []*runtimeapi.ContainerStats
	for _, c := range r.ListContainers(ctx, cf) {
		if s, err := r.ContainerStats(ctx, c.Id); err == nil {
			out = append(out, s)
		}
	}
	return out
}

// PodSandboxStats returns the sandbox's pod cgroup usage and its
// containers' stats.
func (r *Runtime) PodSandboxStats(ctx context.Context, id string) (*runtimeapi.PodSandboxStats, error) {
	s, err := r.lookupSandbox(id)
	if err != nil {
		return nil, err
	}
	st := r.sandboxStatus(s)
	now := r.cfg.Now().UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{
		Cpu:     &runtimeapi.CpuUsage{Timestamp: now},
		Memory:  &runtimeapi.MemoryUsage{Timestamp: now},
		Process: &runtimeapi.ProcessUsage{Timestamp: now},
	}
	s.mu.Lock()
	cgPath := s.rec.Cgroup
	s.mu.Unlock()
	if cg, err := r.cfg.Cgroups.Open(cgPath); err == nil {
		if cs, err := cg.Stats(); err == nil {
			if cs.CPU != nil {
				linux.Cpu.UsageCoreNanoSeconds = &runtimeapi.UInt64Value{Value: uint64(cs.CPU.Usage.Nanoseconds())}
			}
			if m := cs.Memory; m != nil {
				linux.Memory.WorkingSetBytes = &runtimeapi.UInt64Value{Value: m.WorkingSet}
				linux.Memory.UsageBytes = &runtimeapi.UInt64Value{Value: m.Usage}
				linux.Memory.RssBytes = &runtimeapi.UInt64Value{Value: m.RSS}
			}
			if cs.Pids != nil {
				linux.Process.ProcessCount = &runtimeapi.UInt64Value{Value: cs.Pids.Current}
			}
		}
	}
	for _, c := range r.containersOf(s.rec.ID) {
		linux.Containers = append(linux.Containers, r.containerStats(c))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: st.Id, Metadata: st.Metadata, Labels: st.Labels, Annotations: st.Annotations},
		Linux:      linux,
	}, nil
}

// ListPodSandboxStats returns the stats of the sandboxes matching filter.
func (r *Runtime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	var sf *runtimeapi.PodSandboxFilter
	if filter != nil {
		sf = &runtimeapi.PodSandboxFilter{Id: filter.GetId(), LabelSelector: filter.GetLabelSelector()}
	}
	var out []*runtimeapi.PodSandboxStats
	for _, s := range r.ListPodSandbox(ctx, sf) {
		if st, err := r.PodSandboxStats(ctx, s.Id); err == nil {
			out = append(out, st)
		}
	}
	return out
}
