package kubelet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/prober"
	"github.com/skiff-sh/skiff/internal/kubelet/qos"
)

// sync brings one pod one step closer to what the API asks and reports
// its status; it returns true when the pod is gone for good and the
// worker may exit. See podWorker for the states.
func (k *Kubelet) sync(ctx context.Context, w *podWorker) bool {
	pod := k.podByUID(w.uid)
	rp, err := k.observe(ctx, w.uid)
	if err != nil {
		if ctx.Err() == nil {
			k.log.Warn("cannot read pod from the runtime", "uid", w.uid, "err", err)
			k.wakeAfter(w, time.Second)
		}
		return false
	}
	if t := k.takeEviction(w.uid); t != nil && w.terminal == nil {
		w.terminal = t
	}
	switch {
	case pod == nil:
		return k.syncGone(ctx, w, rp)
	case pod.DeletionTimestamp != nil || w.terminal != nil || w.finished || isTerminal(pod.Status.Phase):
		w.lastPod = pod
		k.syncTerminating(ctx, w, pod, rp)
	default:
		w.lastPod = pod
		rctx, done := w.interruptible(ctx)
		k.syncRunning(rctx, w, pod, rp)
		interrupted := rctx.Err() != nil
		done()
		if interrupted && ctx.Err() == nil {
			// Interrupted by a deletion: go on with it at once.
			k.enqueue(w.uid)
		}
	}
	return false
}

func isTerminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// syncRunning drives a pod that should run.
func (k *Kubelet) syncRunning(ctx context.Context, w *podWorker, pod *corev1.Pod, rp *runtimePod) {
	now := k.clock.Now()
	if !w.admitted {
		if rp.empty() {
			if reason, msg := k.admit(pod); reason != "" {
				k.recorder.Event(pod, corev1.EventTypeWarning, reason, msg)
				w.terminal = &terminalStatus{reason: reason, message: "Pod was rejected: " + msg, rejected: true}
				k.syncTerminating(ctx, w, pod, rp)
				return
			}
		} else {
			k.markAdmitted(pod)
		}
		w.admitted = true
	}
	if w.startTime == nil {
		if pod.Status.StartTime != nil {
			w.startTime = pod.Status.StartTime.DeepCopy()
		} else {
			t := metav1.NewTime(now)
			w.startTime = &t
		}
	}
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		end := w.startTime.Add(time.Duration(*d) * time.Second)
		if !now.Before(end) {
			msg := "Pod was active on the node longer than the specified deadline"
			k.recorder.Event(pod, corev1.EventTypeNormal, "DeadlineExceeded", msg)
			w.terminal = &terminalStatus{reason: "DeadlineExceeded", message: msg}
			k.syncTerminating(ctx, w, pod, rp)
			return
		}
		k.wakeAt(w, end)
	}
	// A pod that cannot start right away (an image to pull) says at once
	// that the kubelet has it; one that can goes straight to Running,
	// saving a status write on the start path.
	w.reportPending = func() {
		if pod.Status.StartTime == nil {
			k.status.Set(pod, k.podStatus(w, pod, rp))
		}
	}
	defer func() { w.reportPending = nil }()

	if err := k.ensurePodCgroup(pod); err != nil {
		k.log.Warn("cannot make pod cgroup", "pod", podKey(pod), "err", err)
	}
	if k.cfg.Volumes != nil {
		if err := k.cfg.Volumes.SetUp(ctx, pod); err != nil {
			if ctx.Err() != nil {
				return
			}
			w.volumeFailures++
			k.recorder.Event(pod, corev1.EventTypeWarning, "FailedMount", failedMountMessage(err))
			k.wakeAfter(w, min(time.Duration(1<<min(w.volumeFailures, 7))*time.Second, 2*time.Minute))
			k.status.Set(pod, k.podStatus(w, pod, rp))
			return
		}
		w.volumeFailures = 0
	}

	a := k.computeActions(pod, rp)
	clear(w.waiting)
	for name, ws := range a.waits {
		w.waiting[name] = ws
	}
	if !a.wakeAt.IsZero() {
		k.wakeAt(w, a.wakeAt)
	}
	k.execute(ctx, w, pod, rp, &a)

	rp2, err := k.observe(ctx, w.uid)
	if err != nil {
		k.wakeAfter(w, time.Second)
		return
	}
	k.syncProbes(pod, w, rp2)
	st := k.podStatus(w, pod, rp2)
	if isTerminal(st.Phase) {
		// Every container is done for good: stop what is left (sidecars)
		// and release the pod's resources.
		w.finished = true
		k.status.Set(pod, st)
		k.syncTerminating(ctx, w, pod, rp2)
		return
	}
	k.status.Set(pod, st)
	k.gcContainers(ctx, pod, rp2)
	k.wakeAfter(w, k.cfg.ResyncInterval)
}

// podActions is what one sync does to a running pod.
type podActions struct {
	// newSandbox: stop what runs and make sandbox attempt sandboxAttempt.
	newSandbox     bool
	sandboxAttempt uint32
	// kill are running instances to stop first.
	kill []killAction
	// start are the containers to start, in order.
	start []*corev1.Container
	// initFailed: a regular init container failed under restartPolicy
	// Never; the pod has failed.
	initFailed bool
	// waits says why containers are held back.
	waits map[string]waitState
	// wakeAt is when the first hold ends.
	wakeAt time.Time
}

// killAction is a running instance to stop, and why.
type killAction struct {
	container *corev1.Container
	status    *runtimeapi.ContainerStatus
	message   string
	grace     *int64
}

func (a *podActions) wait(name string, ws waitState, until time.Time) {
	a.waits[name] = ws
	if a.wakeAt.IsZero() || until.Before(a.wakeAt) {
		a.wakeAt = until
	}
}

// computeActions decides what a sync does from the pod spec and what the
// runtime holds: upstream's rules for sandboxes, init containers (in
// order; sidecars must have started before the next), app containers,
// restart policies with backoff, and failed liveness or startup probes.
func (k *Kubelet) computeActions(pod *corev1.Pod, rp *runtimePod) podActions {
	a := podActions{waits: map[string]waitState{}}
	policy := pod.Spec.RestartPolicy

	if !rp.sandboxReady() {
		if sb := rp.sandbox(); sb != nil {
			if policy == corev1.RestartPolicyNever && len(rp.containers) > 0 {
				// A pod that may not restart does not get a new sandbox
				// once its containers have run: it ends with them.
				return a
			}
			a.sandboxAttempt = sb.GetMetadata().GetAttempt() + 1
		}
		a.newSandbox = true
	}
	var sandboxCreated int64
	if !a.newSandbox {
		sandboxCreated = rp.sandbox().CreatedAt
	}
	// current is the instance of name in the current sandbox.
	current := func(name string) *runtimeapi.ContainerStatus {
		if a.newSandbox {
			return nil
		}
		if c := rp.latest(name); c != nil && c.CreatedAt >= sandboxCreated {
			return c
		}
		return nil
	}

	initialized := false
	for i := range pod.Spec.Containers {
		if current(pod.Spec.Containers[i].Name) != nil {
			initialized = true
		}
	}
	if initialized {
		// Sidecars keep running beside the app containers.
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			if !isSidecar(c) {
				continue
			}
			cur := current(c.Name)
			switch {
			case cur == nil:
				a.start = append(a.start, c)
			case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
				k.checkRunning(&a, pod, c, cur)
			default:
				k.restart(&a, pod, c, cur)
			}
		}
	} else {
		initialized = true
	initLoop:
		for i := range pod.Spec.InitContainers {
			c := &pod.Spec.InitContainers[i]
			cur := current(c.Name)
			state := runtimeapi.ContainerState(-1)
			if cur != nil {
				state = cur.State
			}
			switch {
			case cur == nil:
				a.start = append(a.start, c)
			case state == runtimeapi.ContainerState_CONTAINER_RUNNING:
				if isSidecar(c) {
					if k.checkRunning(&a, pod, c, cur) || !k.started(c, cur) {
						break
					}
					continue
				}
			case state == runtimeapi.ContainerState_CONTAINER_CREATED:
				a.start = append(a.start, c)
			case !isSidecar(c) && cur.ExitCode == 0 && state == runtimeapi.ContainerState_CONTAINER_EXITED:
				continue
			case !isSidecar(c) && policy == corev1.RestartPolicyNever:
				a.initFailed = true
			default:
				k.restart(&a, pod, c, cur)
			}
			initialized = false
			break initLoop
		}
	}
	if !initialized || a.initFailed {
		return a
	}

	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cur := current(c.Name)
		switch {
		case cur == nil:
			if last := rp.latest(c.Name); last != nil && isExited(last) && !shouldRestart(policy, last.ExitCode) {
				continue // done before the sandbox changed
			}
			a.start = append(a.start, c)
		case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			k.checkRunning(&a, pod, c, cur)
		case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			a.start = append(a.start, c)
		default:
			if shouldRestart(policy, cur.ExitCode) {
				k.restart(&a, pod, c, cur)
			}
		}
	}
	return a
}

func isExited(c *runtimeapi.ContainerStatus) bool {
	return c.State == runtimeapi.ContainerState_CONTAINER_EXITED || c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func shouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// checkRunning queues a kill of a running instance whose liveness or
// startup probe failed or whose spec changed; it reports whether it did.
func (k *Kubelet) checkRunning(a *podActions, pod *corev1.Pod, c *corev1.Container, cur *runtimeapi.ContainerStatus) bool {
	var msg string
	var grace *int64
	switch {
	case k.probeFailed(cur.Id, prober.Startup):
		msg = fmt.Sprintf("Container %s failed startup probe, will be restarted", c.Name)
		grace = c.StartupProbe.TerminationGracePeriodSeconds
	case k.probeFailed(cur.Id, prober.Liveness):
		msg = fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)
		grace = c.LivenessProbe.TerminationGracePeriodSeconds
	case cur.Annotations[annotationHash] != "" && cur.Annotations[annotationHash] != containerHash(c):
		msg = fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)
	default:
		return false
	}
	a.kill = append(a.kill, killAction{container: c, status: cur, message: msg, grace: grace})
	return true
}

func (k *Kubelet) probeFailed(id string, kind prober.Kind) bool {
	r, ok := k.probes.Result(id, kind)
	return ok && r == prober.Failure
}

// started reports whether a running instance has started: its startup
// probe succeeded, or it has none.
func (k *Kubelet) started(c *corev1.Container, cur *runtimeapi.ContainerStatus) bool {
	if cur.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return false
	}
	if c.StartupProbe == nil {
		return true
	}
	r, ok := k.probes.Result(cur.Id, prober.Startup)
	return ok && r == prober.Success
}

// restart queues a restart of an exited instance, unless its backoff
// holds it (CrashLoopBackOff).
func (k *Kubelet) restart(a *podActions, pod *corev1.Pod, c *corev1.Container, cur *runtimeapi.ContainerStatus) {
	if cur.State == runtimeapi.ContainerState_CONTAINER_CREATED || cur.FinishedAt == 0 {
		a.start = append(a.start, c)
		return
	}
	key := restartKey(pod, c)
	finished := time.Unix(0, cur.FinishedAt)
	if hold, delay, end := k.restarts.InBackoffSince(key, finished); hold {
		a.wait(c.Name, waitState{
			reason:  "CrashLoopBackOff",
			message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, c.Name, podDesc(pod)),
		}, end)
		k.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.Name, podDesc(pod))
		return
	}
	k.restarts.Next(key, finished)
	a.start = append(a.start, c)
}

func restartKey(pod *corev1.Pod, c *corev1.Container) string {
	return string(pod.UID) + "/" + c.Name + "/" + containerHash(c)
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// podDesc is upstream's format.Pod: name_namespace(uid).
func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// execute carries out a's actions.
func (k *Kubelet) execute(ctx context.Context, w *podWorker, pod *corev1.Pod, rp *runtimePod, a *podActions) {
	for _, ka := range a.kill {
		k.recorder.Event(containerRef(pod, ka.container.Name), corev1.EventTypeNormal, "Killing", ka.message)
		grace := k.gracePeriod(pod, nil)
		if ka.grace != nil {
			grace = *ka.grace
		}
		k.killContainer(ctx, pod, ka.container, ka.status, grace)
	}
	sandboxID := ""
	if sb := rp.sandbox(); sb != nil && !a.newSandbox {
		sandboxID = sb.Id
	}
	if a.newSandbox {
		if len(rp.running()) > 0 || rp.sandbox() != nil {
			k.killPodContainers(ctx, pod, rp, k.gracePeriod(pod, nil))
			k.stopSandboxes(ctx, w, pod, rp)
		}
		if hold, _, end := k.sandboxes.InBackoffSince(string(pod.UID), w.sandboxFailedAt()); hold {
			k.wakeAt(w, end)
			return
		}
		id, err := k.createSandbox(ctx, w, pod, a.sandboxAttempt)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			now := k.clock.Now()
			w.setSandboxFailure(now)
			k.sandboxes.Next(string(pod.UID), now)
			_, _, end := k.sandboxes.InBackoffSince(string(pod.UID), now)
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			k.log.Warn("cannot create pod sandbox", "pod", podKey(pod), "err", err)
			if end.IsZero() {
				end = now.Add(time.Second)
			}
			k.wakeAt(w, end)
			return
		}
		k.sandboxes.Forget(string(pod.UID))
		sandboxID = id
		rp2, err := k.observe(ctx, w.uid)
		if err == nil {
			rp = rp2
		}
	}
	if len(a.start) == 0 {
		return
	}
	sbConfig := k.sandboxConfig(pod, max(a.sandboxAttempt, rp.sandbox().GetMetadata().GetAttempt()))
	podIPs := k.podIPs(k.ctx, w, pod, rp, true)
	for _, c := range a.start {
		attempt := uint32(0)
		if last := rp.latest(c.Name); last != nil {
			attempt = uint32(restartCountOf(last)) + 1
		}
		ws, err := k.startContainer(ctx, w, pod, c, sandboxID, sbConfig, podIPs, attempt)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.waiting[c.Name] = ws
			k.log.Info("container did not start", "pod", podKey(pod), "container", c.Name, "reason", ws.reason, "err", err)
			if ws.reason == "ErrImagePull" || ws.reason == "ErrImageNeverPull" {
				// Show ImagePullBackOff soon, and retry when it ends.
				k.wakeAfter(w, time.Second)
			} else {
				k.wakeAfter(w, startRetry)
			}
			if isInitContainer(pod, c.Name) {
				return // init containers run one at a time
			}
			continue
		}
		delete(w.waiting, c.Name)
	}
}

// startRetry is how long a container that could not be created (a
// missing configMap, a refused security context, a runtime error) waits
// before the next try, as upstream's pod worker backs off after a failed
// sync: each try records an event, so retrying faster floods them.
const startRetry = 10 * time.Second

func isInitContainer(pod *corev1.Pod, name string) bool {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return true
		}
	}
	return false
}

// gracePeriod is how long a pod's containers get to stop: the deletion's
// grace period, else the kubelet's own override, else the spec's.
func (k *Kubelet) gracePeriod(pod *corev1.Pod, t *terminalStatus) int64 {
	if t != nil && t.grace != nil {
		return *t.grace
	}
	if pod == nil {
		return minGracePeriod
	}
	if pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return *pod.Spec.TerminationGracePeriodSeconds
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// minGracePeriod is the least time a container gets after SIGTERM unless
// the kubelet evicts it (upstream's minimum).
const minGracePeriod = 2

// syncTerminating stops a pod that must end, releases its resources and
// writes its final status.
func (k *Kubelet) syncTerminating(ctx context.Context, w *podWorker, pod *corev1.Pod, rp *runtimePod) {
	if len(rp.running()) > 0 {
		k.killPodContainers(ctx, pod, rp, k.gracePeriod(pod, w.terminal))
		if ctx.Err() != nil {
			return
		}
		if rp2, err := k.observe(ctx, w.uid); err == nil {
			rp = rp2
		}
	}
	if !w.released {
		if err := k.release(ctx, w, pod, rp); err != nil {
			if ctx.Err() == nil {
				k.log.Warn("cannot release pod resources", "pod", podKey(pod), "err", err)
				k.wakeAfter(w, 2*time.Second)
			}
			return
		}
		w.released = true
		if rp2, err := k.observe(ctx, w.uid); err == nil {
			rp = rp2
		}
	}
	st := k.podStatus(w, pod, rp)
	if pod.DeletionTimestamp != nil {
		k.status.SetFinal(pod, st)
	} else {
		k.status.Set(pod, st)
	}
}

// syncGone removes everything of a pod that left the API. It reports
// whether it is done.
func (k *Kubelet) syncGone(ctx context.Context, w *podWorker, rp *runtimePod) bool {
	pod := w.lastPod
	if len(rp.running()) > 0 {
		k.killPodContainers(ctx, pod, rp, minGracePeriod)
	}
	if !w.released {
		if err := k.release(ctx, w, pod, rp); err != nil {
			if ctx.Err() == nil {
				k.log.Warn("cannot release pod resources", "uid", w.uid, "err", err)
				k.wakeAfter(w, 2*time.Second)
			}
			return false
		}
		w.released = true
	}
	if err := k.removePod(ctx, pod, rp); err != nil {
		if ctx.Err() == nil {
			k.log.Warn("cannot remove pod", "uid", w.uid, "err", err)
			k.wakeAfter(w, 2*time.Second)
		}
		return false
	}
	k.status.Forget(w.uid)
	k.probes.RemovePod(w.uid)
	k.restarts.ForgetPrefix(string(w.uid) + "/")
	k.pulls.ForgetPrefix(string(w.uid) + "/")
	k.sandboxes.Forget(string(w.uid))
	k.unadmit(w.uid)
	return true
}

// syncProbes starts and stops probe workers to match what runs.
func (k *Kubelet) syncProbes(pod *corev1.Pod, w *podWorker, rp *runtimePod) {
	var running []prober.Running
	for _, c := range rp.running() {
		running = append(running, prober.Running{Name: c.GetMetadata().GetName(), ID: c.Id, StartedAt: time.Unix(0, c.StartedAt)})
	}
	ip := ""
	if ips := k.podIPs(k.ctx, w, pod, rp, true); len(ips) > 0 {
		ip = ips[0]
	}
	k.probes.Sync(pod, running, ip)
}

// ensurePodCgroup makes the pod's cgroup under its QoS class.
func (k *Kubelet) ensurePodCgroup(pod *corev1.Pod) error {
	if k.cfg.Cgroups == nil {
		return nil
	}
	if err := k.ensureQoSCgroups(); err != nil {
		return err
	}
	return k.cfg.Cgroups.Ensure(qos.PodCgroup(pod), qos.PodResources(pod))
}
