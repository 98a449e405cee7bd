// Package kubelet is skiff's node agent core: it registers this host as a
// Node, keeps its Lease and status fresh, and turns the pods bound to it
// into sandboxes and containers through the CRI, reporting their status
// back the way the upstream kubelet does.
//
// # Simplest use
//
//	k, err := kubelet.New(kubelet.Config{
//		NodeName: "node-1",
//		Client:   clientset,                        // the node's credentials
//		Runtime:  runtimeapi.NewRuntimeServiceClient(conn),
//		Images:   runtimeapi.NewImageServiceClient(conn),
//		Volumes:  volumeManager,                    // package volume
//		Network:  podNetwork,                       // package podnet
//		Cgroups:  kubelet.HostCgroups(cgroupManager),
//		PodCIDR:  "10.42.0.0/24",
//	})
//	go k.Run(ctx)
//	<-k.Ready()
//
// The HTTPS API (package server) reads through Pod, Pods, Container,
// RuntimeService and ImageService.
//
// # The main loop
//
//	API server ──watch pods (spec.nodeName=me)──┐
//	CRI GetContainerEvents ──────────────────────┤   slow relist (safety net)
//	probe results, backoff and deadline timers ──┤   per-pod resync
//	                                             ▼
//	                          pod workers: one goroutine per pod UID,
//	                          one sync at a time, latest spec wins
//	                                             │
//	        sync(pod): admit ─► observe runtime (sandboxes, containers)
//	                   ─► compute status ─► status manager (patch pods/status)
//	                   ─► act: sandbox, pull, create/start, kill, restart
//	                                             │
//	        terminating: preStop ─► SIGTERM ─► grace ─► SIGKILL ─► stop
//	                     sandbox ─► network, volumes, cgroup teardown
//	                     ─► final status ─► DELETE pod (grace 0)
//
// Each pod's worker runs sync whenever something about the pod may have
// changed: the API object, a runtime event for one of its containers, a
// probe result, or a timer it set itself (a CrashLoopBackOff expiring, an
// activeDeadlineSeconds, a grace period). Syncs of one pod never overlap;
// events that arrive during a sync coalesce into one more sync.
//
// # Time
//
// Every timer (backoff, probes, deadlines, resyncs, lease, node status,
// eviction) runs on Config.Clock, so tests drive the kubelet with a fake
// clock and no sleeps. Container timestamps come from the runtime.
//
// # Volumes contract
//
// Volumes.SetUp runs on every sync of a pod that should run, before its
// containers are created (and is where configMap and secret contents are
// refreshed); Volumes.Mounts turns each container's volumeMounts into CRI
// mounts; Volumes.TearDown runs once the pod's containers have stopped,
// and for pods found on disk that are no longer bound here.
//
// # Pod network contract
//
// The built-in runtime makes a sandbox with only a loopback interface.
// After RunPodSandbox the kubelet reads PodSandboxStatus with verbose set,
// takes the "netns" key of the JSON in its "info" entry, and calls
// Network.SetUp with it; the IPs returned become status.podIPs. Before
// stopping or removing a sandbox it calls Network.TearDown. When the node's
// pod CIDRs are known (Node spec.podCIDRs, else Config.PodCIDR) they are
// passed to the network (PodCIDRSetter) and to the runtime
// (UpdateRuntimeConfig). With no Network configured, the runtime owns the
// network (CNI in containerd) and the IP is PodSandboxStatus.network.ip.
//
// # What the runtime holds
//
// Sandboxes and containers carry upstream's labels and annotations, so
// that crictl output reads the same and a restarted kubelet adopts them:
// io.kubernetes.pod.{name,namespace,uid} and io.kubernetes.container.name
// labels; io.kubernetes.container.{hash,restartCount,
// terminationMessagePath,terminationMessagePolicy} and
// io.kubernetes.pod.terminationGracePeriod annotations. Logs go to
// PodLogsDir/<ns>_<pod>_<uid>/<container>/<restartCount>.log.
//
// # Errors
//
// Lookups wrap ErrPodNotFound or ErrContainerNotFound. Failures while
// syncing a pod are not returned to anyone: they become the pod's status
// (ErrImagePull, CreateContainerError, ...) and events, and the pod is
// synced again with backoff.
package kubelet
