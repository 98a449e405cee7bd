// Package shim holds the helper processes of the container runtime, and
// the protocol the runtime speaks to them.
//
// The monitor and the exec-init are this binary again, started with the
// environment variable ReexecEnv naming their role. A container's init is
// not: Go cannot run between fork and exec, so the monitor prepares a
// thread of its own and vforks it, and the child carries out a plan of
// raw system calls worked out beforehand (fork_linux.go):
//
//	runtime ──exec, setsid──► monitor (one per runtime root)
//	           create: bundle, pod namespaces, stdio, sync socket
//	                             │ a locked thread: setns(net, ipc, uts),
//	                             │ unshare(FS|NEWNS), build the rootfs, pivot_root,
//	                             │ find the program, plan the rest
//	                             ▼ vfork(NEWPID)
//	                           init: /proc, masked and read-only paths ── "joined" ──►
//	                                 unshare(NEWCGROUP), cgroup mounts, rlimits, user,
//	                                 caps, seccomp ── "created" ──► block on exec.fifo
//	                                 ── StartContainer ──► execve
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
// The init shares the monitor's memory until it execs, and the forking
// thread waits for that in the kernel: no process start-up and no page
// copies are on the path of CreateContainer. The init mounts what needs
// its PID namespace while the runtime moves it into its cgroup (on cgroup
// v1 that move is the slowest step), and only the cgroup namespace and
// cgroup mounts wait for it. Errors found while preparing come back to
// the runtime as a SetupError; the init reports its own on the sync
// socket.
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
