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
// With no process in it, a sandbox cannot hold a PID namespace (one dies
// with its first process). A pod that asks for a shared one (NamespaceMode
// POD: crictl's default, Kubernetes' shareProcessNamespace) gets one PID
// namespace per container, as with CONTAINER; NODE gives the host's.
//
// # Containers
//
//	CreateContainer:
//	  lease the image ─► mount overlay(layers, upper) at containers/<id>/rootfs
//	  ─► spec.Build: the OCI spec, written as config.json
//	  ─► the monitor, on a thread of its own: joins the pod's net/ipc/uts,
//	     builds the rootfs in a new mount namespace, pivot_root, finds the
//	     program ─► vforks the init (new PID namespace)
//	  ─► init: /proc, masked and read-only paths ║ runtime creates the
//	                                ║ container cgroup under the pod's,
//	                                ║ applies resources, moves the init in,
//	                                ║ says "joined"
//	  ─► init: new cgroup ns, cgroup mounts, rlimits, user, caps, seccomp,
//	     reports created, blocks on exec.fifo
//	StartContainer: open exec.fifo ─► init execs the program
//	exit: the monitor reaps the init, writes exit.json, sends an exit event
//	  ─► the runtime records exit code and reason (OOMKilled from the
//	  cgroup's oom_kill count, Completed, Error)
//
// The container state machine is drawn beside the state constants.
//
// # Surviving a restart, and what it costs
//
// Containers must outlive the runtime process and keep their exit codes.
// Only a process's parent (or a subreaper above it) learns its exit
// status, so some process other than the runtime must be the parent of
// every container init. The choice here is one monitor per runtime root
// (package shim): this binary re-executed in its own session, parent and
// subreaper of every container init, holding their stdio (logs keep
// flowing while the runtime is down) and writing each exit status to
// containers/<id>/exit.json. Per container it costs a few goroutines and
// buffers, about 0.1 MB (BenchmarkMonitorMemory), and a container created
// but not yet started holds one of its threads; the monitor itself costs
// a fixed few MB per node.
//
// One shim process per container (containerd's model) was measured first:
// a Go process from this binary costs about 15 MB RSS (2.5 MB private)
// each, and two cold re-executions on the start path. A pidfd held by the
// runtime dies with it; the runtime as subreaper loses the exit status of
// containers that exit while it is down. The price of one monitor is its
// blast radius: if it is killed, its containers are orphaned; a runtime
// that finds its monitor gone kills them and reports them UNKNOWN.
//
// Every state change is written to containers/<id>/container.json and
// sandboxes/<id>/sandbox.json. New reads them back and reconciles them
// with the monitor's live set: containers it still holds run on; those it
// does not hold get the status in their exit.json, or UNKNOWN with exit
// code 255 when there is none.
//
// # Exec, attach, port-forward
//
// Exec starts this binary again in the container's PID, network, IPC, UTS
// and cgroup namespaces (joined on a throw-away thread before the fork),
// puts it in the container's cgroup, and sends it the process spec; it
// then joins the container's mount namespace itself, applies user,
// capabilities and seccomp, and execs. Attach talks to the monitor's socket.
// PortForward dials the port from a thread inside the pod's netns.
//
// # Errors
//
// Errors wrap ErrNotFound, ErrAlreadyExists, ErrInvalid or ErrNotReady
// when one applies; test them with errors.Is.
package container
