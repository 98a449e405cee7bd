package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/qos"
)

// killContainer stops one running instance: the preStop hook first
// (within the grace period), then SIGTERM and, after what is left of
// the grace period, SIGKILL (the runtime's StopContainer). pod and c may
// be nil for a pod gone from the API.
func (k *Kubelet) killContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *runtimeapi.ContainerStatus, grace int64) {
	start := k.clock.Now()
	if pod != nil && c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 &&
		st.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		hctx, cancel := context.WithTimeout(ctx, time.Duration(grace)*time.Second)
		ip := ""
		if ips := pod.Status.PodIPs; len(ips) > 0 {
			ip = ips[0].IP
		}
		err := k.runHook(hctx, pod, c, st.Id, ip, c.Lifecycle.PreStop)
		cancel()
		if err != nil {
			k.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
		}
		left := grace - int64(k.clock.Since(start)/time.Second)
		grace = max(left, minGracePeriod)
	}
	_, err := k.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: st.Id, Timeout: grace})
	if err != nil && !isNotFound(err) && ctx.Err() == nil {
		k.log.Warn("cannot stop container", "container", st.Id, "err", err)
	}
}

// killPodContainers stops every running container of the pod: app and
// regular init containers together, then sidecars in reverse order, all
// within grace seconds.
func (k *Kubelet) killPodContainers(ctx context.Context, pod *corev1.Pod, rp *runtimePod, grace int64) {
	running := rp.running()
	if len(running) == 0 {
		return
	}
	deadline := k.clock.Now().Add(time.Duration(grace) * time.Second)
	var sidecars []*runtimeapi.ContainerStatus
	var wg sync.WaitGroup
	for _, st := range running {
		var c *corev1.Container
		if pod != nil {
			c = findContainer(pod, st.GetMetadata().GetName())
		}
		if c != nil && isSidecar(c) {
			sidecars = append(sidecars, st)
			continue
		}
		if c != nil {
			k.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
		}
		wg.Go(func() { k.killContainer(ctx, pod, c, st, grace) })
	}
	wg.Wait()
	if len(sidecars) == 0 {
		return
	}
	// Reverse order of the spec: the last sidecar started stops first.
	order := map[string]int{}
	for i := range pod.Spec.InitContainers {
		order[pod.Spec.InitContainers[i].Name] = i
	}
	slices.SortFunc(sidecars, func(a, b *runtimeapi.ContainerStatus) int {
		return order[b.GetMetadata().GetName()] - order[a.GetMetadata().GetName()]
	})
	for _, st := range sidecars {
		c := findContainer(pod, st.GetMetadata().GetName())
		left := int64(deadline.Sub(k.clock.Now()) / time.Second)
		if grace > 0 {
			left = max(left, minGracePeriod)
		}
		k.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Killing", "Stopping container %s", c.Name)
		k.killContainer(ctx, pod, c, st, max(left, 0))
	}
}

// stopSandboxes tears down the network of the pod's ready sandboxes and
// stops them.
func (k *Kubelet) stopSandboxes(ctx context.Context, w *podWorker, pod *corev1.Pod, rp *runtimePod) error {
	var errs []error
	for _, sb := range rp.sandboxes {
		if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if k.cfg.Network != nil {
			st, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id, Verbose: true})
			if err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("sandbox %s status: %w", sb.Id, err))
				continue
			}
			host := st.GetStatus().GetLinux().GetNamespaces().GetOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
			if err == nil && !host {
				md := sb.GetMetadata()
				s := Sandbox{ID: sb.Id, NetNS: netnsFromInfo(st.Info), Namespace: md.GetNamespace(), Name: md.GetName(), UID: rp.uid}
				if err := k.cfg.Network.TearDown(ctx, s); err != nil {
					errs = append(errs, fmt.Errorf("tear down network of sandbox %s: %w", sb.Id, err))
					continue
				}
			}
		}
		if w != nil {
			delete(w.ips, sb.Id)
		}
		if _, err := k.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.Id, err))
		}
	}
	return errors.Join(errs...)
}

// release gives back what a pod held once none of its containers runs:
// its sandboxes (stopped, not removed: their containers keep their logs),
// network, volumes, cgroup, probes and its share of the node.
func (k *Kubelet) release(ctx context.Context, w *podWorker, pod *corev1.Pod, rp *runtimePod) error {
	if err := k.stopSandboxes(ctx, w, pod, rp); err != nil {
		return err
	}
	k.probes.RemovePod(rp.uid)
	if k.cfg.Volumes != nil {
		if err := k.cfg.Volumes.TearDown(ctx, rp.uid); err != nil {
			return fmt.Errorf("tear down volumes: %w", err)
		}
	}
	if k.cfg.Cgroups != nil {
		paths := []string{}
		if pod != nil {
			paths = append(paths, qos.PodCgroup(pod))
		} else {
			for _, class := range []string{qos.Root, qos.Burstable, qos.BestEffort} {
				paths = append(paths, class+"/pod"+string(rp.uid))
			}
		}
		for _, p := range paths {
			if err := k.cfg.Cgroups.Remove(ctx, p); err != nil {
				return fmt.Errorf("remove pod cgroup %s: %w", p, err)
			}
		}
	}
	k.unadmit(rp.uid)
	if k.cfg.Cgroups != nil {
		if err := k.ensureQoSCgroups(); err != nil {
			k.log.Warn("cannot update QoS cgroups", "err", err)
		}
	}
	return nil
}

// removePod removes what the runtime and the disk hold of a pod gone from
// the API: sandboxes, containers, logs, state.
func (k *Kubelet) removePod(ctx context.Context, pod *corev1.Pod, rp *runtimePod) error {
	var errs []error
	ns, name := "", ""
	if pod != nil {
		ns, name = pod.Namespace, pod.Name
	}
	for _, sb := range rp.sandboxes {
		if ns == "" {
			ns, name = sb.GetMetadata().GetNamespace(), sb.GetMetadata().GetName()
		}
		if _, err := k.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.Id, err))
		}
	}
	for _, l := range rp.containers {
		for _, c := range l {
			if ns == "" {
				ns, name = c.Labels[labelPodNamespace], c.Labels[labelPodName]
			}
			if _, err := k.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", c.Id, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if ns != "" {
		if err := os.RemoveAll(k.podLogDir(ns, name, string(rp.uid))); err != nil {
			errs = append(errs, err)
		}
	}
	dir := k.podDir(string(rp.uid))
	if m := mountBelow(dir); m != "" {
		// Never delete through a mount: a hostPath would lose its files.
		return fmt.Errorf("pod directory %s: %s is still mounted", dir, m)
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountBelow returns a mount point at or below dir, or "". It asks statx
// whether each entry is the root of a mount, which costs a call per file
// of the pod's directory; the mount table, read instead on kernels
// without STATX_ATTR_MOUNT_ROOT (before 5.8), lists every mount of every
// container on the node.
func mountBelow(dir string) string {
	found := ""
	supported := true
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: nothing to delete through
		}
		var st unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &st); err != nil {
			return nil
		}
		if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 {
			supported = false
			return fs.SkipAll
		}
		if st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if !supported {
		return mountInTable(dir)
	}
	return found
}

// mountInTable returns a mount point at or below dir from the mount
// table, or "".
func mountInTable(dir string) string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	prefix := filepath.Clean(dir) + "/"
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// Field 5 is the mount point, with spaces and such octal-escaped.
		mp := strings.ReplaceAll(f[4], "\\040", " ")
		if mp == filepath.Clean(dir) || strings.HasPrefix(mp, prefix) {
			return mp
		}
	}
	return ""
}

// gcContainers removes exited instances beyond the two newest of each
// container (the newest and the one kubectl logs --previous reads), with
// their logs and termination message files, and sandboxes none of the
// kept instances live in.
func (k *Kubelet) gcContainers(ctx context.Context, pod *corev1.Pod, rp *runtimePod) {
	keepSandbox := map[string]bool{}
	if sb := rp.sandbox(); sb != nil {
		keepSandbox[sb.Id] = true
	}
	for _, l := range rp.containers {
		for i, c := range l {
			if i < 2 || !isExited(c) {
				keepSandbox[rp.sandboxOf[c.Id]] = true
				continue
			}
			if _, err := k.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil && !isNotFound(err) {
				k.log.Warn("cannot remove old container", "pod", podKey(pod), "container", c.Id, "err", err)
				keepSandbox[rp.sandboxOf[c.Id]] = true
				continue
			}
			if c.LogPath != "" {
				os.Remove(c.LogPath)
			}
			if f := c.Annotations[annotationTerminationHostDir]; f != "" && filepath.IsAbs(f) {
				os.Remove(f)
			}
		}
	}
	for _, sb := range rp.sandboxes {
		if keepSandbox[sb.Id] || sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		if _, err := k.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil && !isNotFound(err) {
			k.log.Warn("cannot remove old sandbox", "pod", podKey(pod), "sandbox", sb.Id, "err", err)
		}
	}
}
