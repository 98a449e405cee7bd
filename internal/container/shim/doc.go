// Package shim holds the helper processes the container runtime starts by
// re-executing its own binary, and the protocol the runtime speaks to them.
//
// Go cannot fork without exec, so every process the runtime needs on the
// far side of a fork is this binary again, started with the environment
// variable ReexecEnv naming its role. The roles:
//
//	runtime ──exec──► shim ──clone(NEWPID|NEWNS) in the pod's netns/ipcns/utsns──► init ──execve──► container program
//	runtime ──clone in the container's pid/net/ipc/uts/cgroup ns──► exec-init ──setns(mnt), execve──► exec'd program
//
// The shim (one per container, about 1.5 MB RSS) is the container init's
// parent. It lives in its own session, ignores terminal signals and
// outlives the runtime, so containers keep running across a runtime
// restart. It holds the container's stdio: it writes stdout and stderr to
// the CRI log file (rotated by size, reopened on request), serves attach
// and resize on a unix socket in the bundle directory, and when the init
// exits it writes the exit status to exit.json in the bundle and exits.
// The runtime watches the shim with a pidfd, so it learns of the exit
// whether or not it is the shim's parent.
//
// The init runs the OCI spec in the bundle's config.json: it waits for the
// runtime to put it in its cgroup, enters a new cgroup namespace, builds
// the root filesystem (mounts, devices, masked paths), pivots into it,
// applies rlimits, user, capabilities, no_new_privs and seccomp, checks
// that the program exists, reports "created" and then blocks opening the
// bundle's exec.fifo. StartContainer opens the other end; the init execs.
//
// The exec-init does the same for a process run inside a running
// container, joining the container's mount namespace itself (a Go thread
// can, after unsharing its filesystem info) because the binary, which may
// be dynamically linked, must be loaded from the host's filesystem first.
//
// These processes must start fast and stay small, so the dispatch happens
// in this package's init function, before the rest of the binary's
// packages initialize (Go initializes packages in import-path order as
// soon as their imports are ready; this package imports only the standard
// library, golang.org/x/sys and skiff's internal/sys packages). MaybeRun
// is the explicit form of the same hook for programs that want it.
package shim
