// Package cgroups manages Linux control groups for skiff's container runtime
// and node agent: it creates cgroups, applies resource limits, moves
// processes in, reads usage, reports populated/empty and OOM events, freezes,
// kills and removes. It drives cgroup v2 and cgroup v1 through the cgroupfs
// interface files (there is no systemd driver), and imports nothing else from
// skiff.
//
// # Hosts
//
// New reads /proc/self/mountinfo to find the hierarchies (Config.Layout
// overrides that):
//
//   - unified: cgroup2 at /sys/fs/cgroup with every controller;
//   - hybrid: one v1 hierarchy per controller, plus cgroup2 (usually at
//     /sys/fs/cgroup/unified) holding what v1 does not, such as hugetlb;
//   - legacy: v1 only.
//
// The manager picks the driver per controller, not per host: each limit is
// written in the v1 or v2 dialect of the hierarchy that holds that
// controller, and a cgroup is a directory in every hierarchy. Controllers
// the host has on neither give ErrNotSupported, never a silent no-op.
//
// # Simplest use
//
//	m, err := cgroups.New(cgroups.Config{Logger: log})
//	pod, err := m.Create("kubepods/burstable/pod" + uid)
//	ctr, err := m.Create("kubepods/burstable/pod" + uid + "/" + name)
//	err = ctr.Apply(&cgroups.Resources{
//		CPU: &cgroups.CPU{
//			Shares: new(cgroups.MilliCPUToShares(250)),
//			Quota:  new(cgroups.MilliCPUToQuota(500, cgroups.QuotaPeriod)),
//			Period: new(uint64(cgroups.QuotaPeriod)),
//		},
//		Memory:  &cgroups.Memory{Max: new(int64(256 << 20))},
//		PidsMax: new(int64(1024)),
//		Devices: cgroups.DefaultDevices(),
//	})
//	err = ctr.AddProc(pid)
//	events, err := ctr.Watch(ctx) // EventEmpty, EventOOMKill, ...
//	stats, err := ctr.Stats()
//	err = ctr.Kill(ctx)
//	err = ctr.Remove(ctx)
//	err = pod.Remove(ctx)
//
// # The main loop of a container's cgroup
//
//	Create ──► Apply ──► AddProc(first pid) ──► [unshare CLONE_NEWCGROUP] ──► exec
//	              ▲              │
//	              └── resize ────┤  Watch: populated, oom, oom_kill, empty
//	                             │  Stats:  cpu, memory, pids, psi
//	                             ▼
//	                  Freeze/Thaw (pause), Kill ──► Remove
//
// Dirs documents how a runtime gives a container a cgroup namespace so that
// it sees its own cgroup as the root (the delegation model of cgroup v2).
//
// On a hybrid host a cgroup also exists in the cgroup2 hierarchy and
// AddProc puts processes there too, so that hugetlb limits apply and Watch
// and Stats can use cgroup.events and the pressure (PSI) files; every
// other controller, and freezing and device rules, go through v1.
//
// Freeze, Thaw, Kill and Remove wait for the kernel to settle; they stop
// when their context ends, or after DefaultTimeout if it has no deadline.
//
// # Resource mapping
//
// Resources is written in the units of the kubelet: CPU shares (converted
// to cpu.weight on v2 by SharesToWeight), CFS quota and period in
// microseconds, bytes for memory, -1 for "max". MilliCPUToShares and
// MilliCPUToQuota turn pod requests and limits into those, as the kubelet
// does. The table on Resources lists the files each field becomes.
//
// Device rules become, on v2, an eBPF program of type BPF_CGROUP_DEVICE
// attached to the cgroup (replacing the one before), and on v1, writes to
// devices.deny and devices.allow. Both start from "deny everything".
//
// # Errors
//
// Errors carry the cgroup path or the interface file and the value written,
// and wrap one of ErrNotExist, ErrInvalid, ErrNotSupported and ErrBusy, plus
// the kernel's errno when there is one.
//
// # Concurrency
//
// Manager and Cgroup hold no mutable state and are safe for concurrent use.
// Apply calls racing on one cgroup interleave their writes. Create calls for
// overlapping paths are safe, except that a Create that fails and undoes its
// directories can remove an ancestor another Create just relied on.
package cgroups
