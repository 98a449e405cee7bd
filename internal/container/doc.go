// Package container is skiff's container runtime: pod sandboxes and
// containers on this host, driven through the CRI (package cri serves it
// over gRPC) by the node agent or by crictl.
//
// # Simplest use
//
//	rt, err := container.New(container.Config{
//		Root:    "/var/lib/skiff/containers",
//		Cgroups: container.HostCgroups(cgroupManager),
//		Images:  imageStore,
//	})
//	pod, err := rt.RunPodSandbox(ctx, podConfig)
//	id, err := rt.CreateContainer(ctx, pod, containerConfig)
//	err = rt.StartContainer(ctx, id)
//	err = rt.StopContainer(ctx, id, 30)
//	err = rt.RemovePodSandbox(ctx, pod)
//
// # Sandboxes
//
// A sandbox is a set of namespaces and files, with no process: the
// network, IPC and UTS namespaces are created on a throw-away thread and
// pinned by bind-mounting them under sandboxes/<id>/ns (see package ns),
// loopback is brought up and the hostname set inside. The pod's hosts,
// hostname and resolv.conf files and a tmpfs for /dev/shm live beside
// them. hostNetwork and hostIPC pods use the host's namespaces (and a
// host-network pod the host's UTS namespace too). The pod cgroup is the
// kubelet's cgroup parent when given, else pod-<id> under the runtime's
// cgroup parent. PodSandboxStatus with verbose set reports the netns file
// for the pod network to configure.
//
// # Containers
//
//	CreateContainer:
//	  lease the image ─► mount overlay(layers, upper) at containers/<id>/rootfs
//	  ─► container cgroup under the pod's, resources applied
//	  ─► spec.Build: the OCI spec, written as config.json
//	  ─► exec shim ─► shim clones init (new pid+mnt ns, in the pod's net/ipc/uts)
//	  ─► shim reports init's PID ─► runtime adds it to the cgroup, says go
//	  ─► init: new cgroup ns, mounts, pivot_root, user, caps, seccomp,
//	     checks the program exists, reports created, blocks on exec.fifo
//	StartContainer: open exec.fifo ─► init execs the program
//	exit: shim reaps init, writes exit.json, exits ─► the runtime, watching
//	  the shim with a pidfd, records exit code, reason (OOMKilled from the
//	  cgroup's oom_kill count, Completed, Error) and unmounts the rootfs
//
// The container state machine is drawn beside the state constants.
//
// # Surviving a restart, and what it costs
//
// Containers must outlive the runtime process and keep their exit codes.
// The choice here is one small shim per container (package shim): it is
// the init's parent and a subreaper, so it alone can wait for the init and
// learn its exit status, which it writes to exit.json before exiting. The
// shim also owns the container's stdio, so logs keep flowing while the
// runtime is down, and it serves attach on a unix socket. It is this
// binary re-executed, dispatched before any other package initializes, run
// with GOMAXPROCS=1 and a low GOGC; it measures about 1.5 MB RSS per
// container (bench/container-bench.sh reports the figure).
//
// The alternatives were cheaper but lose something: a pidfd held by the
// runtime dies with it; the runtime as subreaper loses the exit status of
// containers that exit while it is down; a status file written by the
// container's own init is impossible once it has exec'd.
//
// Every state change is written to containers/<id>/container.json and
// sandboxes/<id>/sandbox.json. New reads them back: a running container
// whose shim is alive (PID and start time match) is watched again; one
// whose shim is gone gets its exit.json; one without exit.json is
// reported UNKNOWN with exit code 255.
//
// # Exec, attach, port-forward
//
// Exec starts this binary again in the container's PID, network, IPC, UTS
// and cgroup namespaces (joined on a throw-away thread before the fork),
// puts it in the container's cgroup, and sends it the process spec; it
// then joins the container's mount namespace itself, applies user,
// capabilities and seccomp, and execs. Attach talks to the shim's socket.
// PortForward dials the port from a thread inside the pod's netns.
//
// # Errors
//
// Errors wrap ErrNotFound, ErrAlreadyExists, ErrInvalid or ErrNotReady
// when one applies; test them with errors.Is.
package container
