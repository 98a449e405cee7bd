package kubelet

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/prober"
	"github.com/skiff-sh/skiff/internal/kubelet/qos"
)

// statusInput is everything a pod's status is computed from.
type statusInput struct {
	pod *corev1.Pod
	rp  *runtimePod
	// podIPs and hostIPs are the pod's and the node's addresses.
	podIPs, hostIPs []string
	// lastIPs are the IPs the kubelet last reported, kept by a stopped
	// pod.
	lastIPs []string
	// runtimeName prefixes container IDs ("skiff://<id>").
	runtimeName string
	// waiting says why containers are not running.
	waiting map[string]waitState
	// terminal, when set, is why the kubelet ended the pod.
	terminal *terminalStatus
	// startTime is when the kubelet first saw the pod.
	startTime *metav1.Time
	now       time.Time
	// probe returns a container instance's probe result, and whether it
	// has that probe.
	probe func(id string, kind prober.Kind) (prober.Result, bool)
	// message returns an exited instance's termination message.
	message func(c *corev1.Container, st *runtimeapi.ContainerStatus) string
}

// podStatus computes the pod's status now.
func (k *Kubelet) podStatus(w *podWorker, pod *corev1.Pod, rp *runtimePod) corev1.PodStatus {
	var last []string
	if st, ok := k.status.Status(pod.UID); ok {
		for _, ip := range st.PodIPs {
			last = append(last, ip.IP)
		}
	}
	return computePodStatus(statusInput{
		lastIPs:     last,
		pod:         pod,
		rp:          rp,
		podIPs:      k.podIPs(k.ctx, w, pod, rp, false),
		hostIPs:     k.nodeIPStrings(),
		runtimeName: k.runtimeName,
		waiting:     w.waiting,
		terminal:    w.terminal,
		startTime:   w.startTime,
		now:         k.clock.Now(),
		probe:       k.probes.Result,
		message:     k.terminationMessage,
	})
}

// The pod phase, from its containers (upstream's rules):
//
//	Pending ──all init done, app containers running──► Running
//	   │                                                 │ every app container exited and
//	   │ an init container failed,                       │ the restart policy stops them
//	   │ restartPolicy Never                             ▼
//	   └────────────────────► Failed ◄── some failed ── (Never: Failed if any failed,
//	                                                     Succeeded if all exited 0;
//	                          Succeeded ◄─ all exit 0 ── OnFailure: Succeeded once all 0)
//
// Succeeded and Failed are final. A pod being deleted whose containers
// have all stopped ends Succeeded if they all exited 0, else Failed.
// Unknown is set by the control plane, never here.
func podPhase(pod *corev1.Pod, inits, apps []corev1.ContainerStatus, deleting bool) corev1.PodPhase {
	pendingInit, failedInit := 0, 0
	for i := range pod.Spec.InitContainers {
		c, cs := &pod.Spec.InitContainers[i], inits[i]
		if isSidecar(c) {
			if cs.Started == nil || !*cs.Started {
				pendingInit++
			}
			continue
		}
		switch {
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil && cs.LastTerminationState.Terminated.ExitCode != 0:
			failedInit++
		default:
			pendingInit++
		}
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, cs := range apps {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	anyAppRan := running+stopped > 0
	if failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case (pendingInit > 0 || failedInit > 0) && !anyAppRan:
		if deleting && failedInit > 0 {
			return corev1.PodFailed
		}
		return corev1.PodPending
	case waiting > 0:
		if deleting && running == 0 {
			return corev1.PodFailed
		}
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch {
		case deleting && stopped == succeeded:
			return corev1.PodSucceeded
		case deleting:
			return corev1.PodFailed
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// computePodStatus is the pod's status as upstream's kubelet reports it.
func computePodStatus(in statusInput) corev1.PodStatus {
	pod := in.pod
	old := pod.Status
	if t := in.terminal; t != nil && t.rejected {
		// A rejected pod never ran here: upstream reports only why.
		return corev1.PodStatus{Phase: corev1.PodFailed, Reason: t.reason, Message: t.message, QOSClass: qos.Class(pod), ObservedGeneration: pod.Generation}
	}
	deleting := pod.DeletionTimestamp != nil
	s := corev1.PodStatus{
		QOSClass:           qos.Class(pod),
		StartTime:          in.startTime,
		ObservedGeneration: pod.Generation,
	}
	if old.StartTime != nil {
		s.StartTime = old.StartTime
	}
	for _, ip := range in.hostIPs {
		s.HostIPs = append(s.HostIPs, corev1.HostIP{IP: ip})
	}
	if len(in.hostIPs) > 0 {
		s.HostIP = in.hostIPs[0]
	}
	ips := in.podIPs
	if len(ips) == 0 && (deleting || in.terminal != nil || isTerminal(old.Phase) || !in.rp.sandboxReady()) {
		// A stopped pod keeps the IPs it had.
		ips = in.lastIPs
		if len(ips) == 0 {
			for _, ip := range old.PodIPs {
				ips = append(ips, ip.IP)
			}
		}
	}
	for _, ip := range ips {
		s.PodIPs = append(s.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		s.PodIP = ips[0]
	}

	// Init containers first: app containers wait for them.
	initialized := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		cs := in.containerStatus(c, true, findStatus(old.InitContainerStatuses, c.Name))
		s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
		if !initDone(c, cs) {
			initialized = false
		}
	}
	anyApp := false
	for i := range pod.Spec.Containers {
		if in.rp.latest(pod.Spec.Containers[i].Name) != nil {
			anyApp = true
		}
	}
	initialized = initialized || anyApp
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s.ContainerStatuses = append(s.ContainerStatuses, in.containerStatus(c, false, findStatus(old.ContainerStatuses, c.Name)))
	}
	slices.SortFunc(s.ContainerStatuses, func(a, b corev1.ContainerStatus) int { return strings.Compare(a.Name, b.Name) })

	s.Phase = podPhase(pod, s.InitContainerStatuses, s.ContainerStatuses, deleting)
	if in.terminal != nil {
		s.Phase, s.Reason, s.Message = corev1.PodFailed, in.terminal.reason, in.terminal.message
	}
	if isTerminal(old.Phase) {
		s.Phase = old.Phase
		if s.Reason == "" {
			s.Reason, s.Message = old.Reason, old.Message
		}
	}
	s.Conditions = in.conditions(s, initialized)
	return s
}

func findStatus(l []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range l {
		if l[i].Name == name {
			return &l[i]
		}
	}
	return nil
}

// initDone reports whether an init container no longer holds the pod
// back: it exited 0, or, for a sidecar, it has started.
func initDone(c *corev1.Container, cs corev1.ContainerStatus) bool {
	if isSidecar(c) {
		return cs.Started != nil && *cs.Started
	}
	return cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
}

// containerStatus is one container's status.
func (in *statusInput) containerStatus(c *corev1.Container, isInit bool, old *corev1.ContainerStatus) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: new(false)}
	latest := in.rp.latest(c.Name)
	ws, held := in.waiting[c.Name]
	if latest == nil {
		// As upstream: in a pod with init containers, every container
		// (init ones included) that has no instance yet waits as
		// PodInitializing; kubectl prints those as Init:N/M.
		reason, msg := "ContainerCreating", ""
		if len(in.pod.Spec.InitContainers) > 0 {
			reason = "PodInitializing"
		}
		if held {
			reason, msg = ws.reason, ws.message
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		if old != nil {
			// The runtime lost it (a new sandbox); what the API knew stays.
			cs.RestartCount, cs.LastTerminationState = old.RestartCount, *old.LastTerminationState.DeepCopy()
			ended := in.terminal != nil || in.pod.DeletionTimestamp != nil || isTerminal(in.pod.Status.Phase)
			if ended && old.State.Running != nil {
				cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: "ContainerStatusUnknown",
					Message: "The container could not be located when the pod was terminated",
				}}
			}
		}
		return cs
	}
	cs.ContainerID = in.runtimeName + "://" + latest.Id
	cs.ImageID = latest.ImageRef
	if img := latest.GetImage().GetImage(); img != "" && !strings.HasPrefix(img, "sha256:") {
		cs.Image = img
	}
	cs.RestartCount = restartCountOf(latest)
	switch latest.State {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(0, latest.StartedAt))}
		started := true
		if c.StartupProbe != nil {
			r, ok := in.probe(latest.Id, prober.Startup)
			started = ok && r == prober.Success
		}
		cs.Started = &started
		ready := started
		if started && c.ReadinessProbe != nil {
			r, ok := in.probe(latest.Id, prober.Readiness)
			ready = ok && r == prober.Success
		}
		// A regular init container is ready once it has completed, not
		// while it runs.
		cs.Ready = ready && !(isInit && !isSidecar(c))
		cs.Resources = &corev1.ResourceRequirements{Requests: c.Resources.Requests.DeepCopy(), Limits: c.Resources.Limits.DeepCopy()}
		if len(c.Resources.Requests) > 0 {
			cs.AllocatedResources = c.Resources.Requests.DeepCopy()
		}
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		reason, msg := "ContainerCreating", ""
		if held {
			reason, msg = ws.reason, ws.message
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	default:
		t := in.terminated(c, latest)
		if held {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: ws.reason, Message: ws.message}
			cs.LastTerminationState.Terminated = t
		} else {
			cs.State.Terminated = t
			cs.Ready = isInit && !isSidecar(c) && t.ExitCode == 0
		}
	}
	if cs.LastTerminationState.Terminated == nil {
		if prev := in.rp.previous(c.Name); prev != nil && isExited(prev) {
			cs.LastTerminationState.Terminated = in.terminated(c, prev)
		}
	}
	for _, m := range c.VolumeMounts {
		vm := corev1.VolumeMountStatus{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly}
		if m.ReadOnly {
			vm.RecursiveReadOnly = new(corev1.RecursiveReadOnlyDisabled)
		}
		cs.VolumeMounts = append(cs.VolumeMounts, vm)
	}
	return cs
}

// terminated is an exited instance's Terminated state.
func (in *statusInput) terminated(c *corev1.Container, st *runtimeapi.ContainerStatus) *corev1.ContainerStateTerminated {
	reason := st.Reason
	if reason == "" {
		reason = "Completed"
		if st.ExitCode != 0 {
			reason = "Error"
		}
	}
	t := &corev1.ContainerStateTerminated{
		ExitCode:    st.ExitCode,
		Reason:      reason,
		ContainerID: in.runtimeName + "://" + st.Id,
	}
	if st.StartedAt != 0 {
		t.StartedAt = metav1.NewTime(time.Unix(0, st.StartedAt))
	}
	if st.FinishedAt != 0 {
		t.FinishedAt = metav1.NewTime(time.Unix(0, st.FinishedAt))
	}
	if in.message != nil {
		t.Message = in.message(c, st)
	}
	if t.Message == "" {
		t.Message = st.Message
	}
	return t
}

// conditions are the pod conditions the kubelet owns, in upstream's
// order, keeping the transition time of those that did not change.
func (in *statusInput) conditions(s corev1.PodStatus, initialized bool) []corev1.PodCondition {
	pod := in.pod
	cond := func(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: pod.Generation}
		if ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, "", ""
		}
		return c
	}
	sandbox := in.rp.sandboxReady() && (pod.Spec.HostNetwork || len(in.podIPs) > 0)

	var incomplete []string
	for i := range pod.Spec.InitContainers {
		if !initDone(&pod.Spec.InitContainers[i], s.InitContainerStatuses[i]) {
			incomplete = append(incomplete, pod.Spec.InitContainers[i].Name)
		}
	}
	initCond := cond(corev1.PodInitialized, initialized, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: %v", incomplete))
	if s.Phase == corev1.PodSucceeded && initialized {
		initCond.Reason = "PodCompleted"
	}

	var unready []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if isSidecar(c) && !s.InitContainerStatuses[i].Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		if cs := findStatus(s.ContainerStatuses, c.Name); cs == nil || !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	var containersReady corev1.PodCondition
	switch {
	case s.Phase == corev1.PodSucceeded:
		containersReady = cond(corev1.ContainersReady, false, "PodCompleted", "")
	case !initialized:
		containersReady = cond(corev1.ContainersReady, false, "ContainersNotReady", fmt.Sprintf("containers with unready status: %v", unready))
	default:
		containersReady = cond(corev1.ContainersReady, len(unready) == 0, "ContainersNotReady", fmt.Sprintf("containers with unready status: %v", unready))
	}
	if s.Phase == corev1.PodFailed {
		// Upstream names a failed pod's containers unready by the phase,
		// whatever they are, since they may still be terminating.
		containersReady = cond(corev1.ContainersReady, false, "PodFailed", "")
	}
	ready := containersReady
	ready.Type = corev1.PodReady
	if ready.Status == corev1.ConditionTrue {
		for _, g := range pod.Spec.ReadinessGates {
			var found *corev1.PodCondition
			for i := range pod.Status.Conditions {
				if pod.Status.Conditions[i].Type == g.ConditionType {
					found = &pod.Status.Conditions[i]
				}
			}
			switch {
			case found == nil:
				ready = cond(corev1.PodReady, false, "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
			case found.Status != corev1.ConditionTrue:
				ready = cond(corev1.PodReady, false, "ReadinessGatesNotReady", fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, found.Status))
			}
			if ready.Status != corev1.ConditionTrue {
				break
			}
		}
	}
	out := []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, sandbox, "", ""),
		initCond,
		ready,
		containersReady,
		cond(corev1.PodScheduled, true, "", ""),
	}
	if in.terminal != nil && in.terminal.disruption {
		out = append(out, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet",
			Message: in.terminal.message, ObservedGeneration: pod.Generation,
		})
	}
	now := metav1.NewTime(in.now)
	for i := range out {
		out[i].LastTransitionTime = now
		for _, o := range pod.Status.Conditions {
			if o.Type == out[i].Type && o.Status == out[i].Status {
				out[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return out
}

// Termination messages are read once per exited instance.
const (
	maxTerminationMessage = 4096
	fallbackLogLines      = 80
	fallbackLogBytes      = 2048
)

// terminationMessage reads an exited instance's termination message: the
// file it wrote, else, with FallbackToLogsOnError and a failure, the end
// of its log.
func (k *Kubelet) terminationMessage(c *corev1.Container, st *runtimeapi.ContainerStatus) string {
	if v, ok := k.messages.Load(st.Id); ok {
		return v.(string)
	}
	msg := ""
	if f := st.Annotations[annotationTerminationHostDir]; f != "" {
		if data, err := readAtMost(f, maxTerminationMessage); err == nil {
			msg = string(data)
		}
	}
	if msg == "" && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && st.ExitCode != 0 && st.LogPath != "" {
		msg = tailLog(st.LogPath, fallbackLogLines, fallbackLogBytes)
	}
	k.messages.Store(st.Id, msg)
	return msg
}

func readAtMost(name string, n int) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.Read(buf)
	if m == 0 && err != nil && err.Error() != "EOF" {
		return nil, err
	}
	return buf[:m], nil
}

// tailLog returns the content of the last lines of a CRI log file
// ("<time> <stream> <P|F> <content>" lines), at most maxBytes of it.
func tailLog(name string, lines, maxBytes int) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	var out []string
	var partial string
	for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 4 {
			continue
		}
		if f[2] == "P" {
			partial += f[3]
			continue
		}
		out = append(out, partial+f[3])
		partial = ""
	}
	if len(out) > lines {
		out = out[len(out)-lines:]
	}
	msg := strings.Join(out, "\n")
	if len(out) > 0 {
		msg += "\n"
	}
	if len(msg) > maxBytes {
		msg = msg[len(msg)-maxBytes:]
	}
	return msg
}
