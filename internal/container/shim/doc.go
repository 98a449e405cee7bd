// Package shim holds the helper processes the container runtime starts by
// re-executing its own binary, and the protocol the runtime speaks to them.
//
// Go cannot fork without exec, so every process the runtime needs on the
// far side of a fork is this binary again, started with the environment
// variable ReexecEnv naming its role:
//
//	runtime ──exec, setsid──► monitor (one per runtime root)
//	                             │ clone(NEWPID) ahead of time
//	                             ▼
//	                           init (warm: waits on its control socket)
//	                             │ Assignment: bundle, pod namespaces, stdio, sync socket
//	                             ▼
//	                           init: setns(net, ipc, uts), unshare(NEWNS), build rootfs,
//	                                 pivot_root ── "joined" ──► unshare(NEWCGROUP), cgroup
//	                                 mounts, rlimits, user, caps, seccomp ── "created" ──►
//	                                 block on exec.fifo ── StartContainer ──► execve
//
//	runtime ──clone in the container's pid/net/ipc/uts/cgroup ns──► exec-init
//	           ──setns(mnt), user, caps, seccomp──► execve (ExecSync, Exec)
//
// The monitor is the parent (and a subreaper) of every container init, in
// its own session, ignoring terminal signals, so containers outlive the
// runtime. It holds each container's stdio: it writes stdout and stderr to
// the CRI log file (rotated by size, reopened on request) and serves
// attach and resize. When an init exits it writes the exit status to the
// bundle's exit.json and sends an "exit" event to the runtime, whose
// subscription opens with a "live" snapshot, so a restarted runtime learns
// which containers still run and which exited meanwhile. Its cost per
// container is a few goroutines and buffers (about 0.1 MB); it exits by
// itself once it holds no container and no runtime is connected.
//
// The monitor keeps one init started ahead of time, so that the
// re-executed binary's start-up and a new PID namespace are off the path
// of CreateContainer. The init builds the container's filesystem while
// the runtime moves it into its cgroup (on cgroup v1 that move is the
// slowest step), and only the cgroup namespace and cgroup mounts wait for
// it.
//
// The exec-init does the same for a process run inside a running
// container, joining the container's mount namespace itself (a Go thread
// can, after unsharing its filesystem info) because the binary, which may
// be dynamically linked, must be loaded from the host's filesystem first.
//
// The dispatch to a helper happens in this package's init function, so a
// helper skips main and the rest of the program; MaybeRun is the explicit
// form of the same hook for entry points that want it.
package shim
