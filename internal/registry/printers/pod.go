package printers

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// nodeLostReason is the pod status reason the node lifecycle controller
// sets on pods of an unreachable node; upstream prints such pods, once
// deleted, as Unknown rather than Terminating.
const nodeLostReason = "NodeLost"

func podTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
			column("Status", "string", "The aggregate status of the containers in this pod."),
			column("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
			ageColumn(),
			wideColumn("IP", "string", corev1.PodStatus{}.SwaggerDoc()["podIP"]),
			wideColumn("Node", "string", corev1.PodSpec{}.SwaggerDoc()["nodeName"]),
			wideColumn("Nominated Node", "string", corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"]),
			wideColumn("Readiness Gates", "string", corev1.PodSpec{}.SwaggerDoc()["readinessGates"]),
		},
		Row:        cellsOf(func(pod *corev1.Pod) []interface{} { return podCells(c, pod) }),
		Conditions: podConditions,
	}
}

// podConditions marks the rows of pods that ran to completion, as upstream
// does.
func podConditions(obj runtime.Object) []metav1.TableRowCondition {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod == nil {
		return nil
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodSucceeded), Message: "The pod has completed successfully."}}
	case corev1.PodFailed:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodFailed), Message: "The pod failed."}}
	}
	return nil
}

// podCells computes a pod's row. STATUS is the most telling of, from
// weakest to strongest:
//
//	phase → status.reason → SchedulingGated
//	  → the first init container not done: Init:<reason>, Init:ExitCode:N,
//	    Init:Signal:N or Init:i/n
//	  → (once initialized) the waiting or terminated reason of the first
//	    container that has one, scanning from the last; Completed turns
//	    back to Running (or NotReady) while some container still runs
//	  → Terminating (or Unknown for a lost node) once deleted.
//
// READY counts ready containers plus started, ready sidecars (init
// containers with restartPolicy Always) over containers plus sidecars.
// RESTARTS sums restarts, with the age of the latest restart; while the pod
// is still initializing, it counts init containers, afterwards containers
// and sidecars.
func podCells(c clock, pod *corev1.Pod) []interface{} {
	var (
		restarts        int
		sidecarRestarts int
		total           = len(pod.Spec.Containers)
		ready           int
		lastRestart     time.Time
		lastSidecar     time.Time
	)

	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	initSpecs := make(map[string]*corev1.Container, len(pod.Spec.InitContainers))
	for i := range pod.Spec.InitContainers {
		ic := &pod.Spec.InitContainers[i]
		initSpecs[ic.Name] = ic
		if isSidecar(ic) {
			total++
		}
	}

	initializing := false
	for i := range pod.Status.InitContainerStatuses {
		st := &pod.Status.InitContainerStatuses[i]
		restarts += int(st.RestartCount)
		finished := lastFinish(st)
		lastRestart = later(lastRestart, finished)
		sidecar := isSidecar(initSpecs[st.Name])
		if sidecar {
			sidecarRestarts += int(st.RestartCount)
			lastSidecar = later(lastSidecar, finished)
		}

		state := st.State
		switch {
		case state.Terminated != nil && state.Terminated.ExitCode == 0:
			continue
		case sidecar && st.Started != nil && *st.Started:
			if st.Ready {
				ready++
			}
			continue
		case state.Terminated != nil:
			switch {
			case state.Terminated.Reason != "":
				reason = "Init:" + state.Terminated.Reason
			case state.Terminated.Signal != 0:
				reason = fmt.Sprintf("Init:Signal:%d", state.Terminated.Signal)
			default:
				reason = fmt.Sprintf("Init:ExitCode:%d", state.Terminated.ExitCode)
			}
		case state.Waiting != nil && state.Waiting.Reason != "" && state.Waiting.Reason != "PodInitializing":
			reason = "Init:" + state.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}

	if !initializing || podConditionTrue(pod, corev1.PodInitialized) {
		restarts = sidecarRestarts
		lastRestart = lastSidecar
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			st := &pod.Status.ContainerStatuses[i]
			restarts += int(st.RestartCount)
			lastRestart = later(lastRestart, lastFinish(st))
			switch {
			case st.State.Waiting != nil && st.State.Waiting.Reason != "":
				reason = st.State.Waiting.Reason
			case st.State.Terminated != nil && st.State.Terminated.Reason != "":
				reason = st.State.Terminated.Reason
			case st.State.Terminated != nil && st.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", st.State.Terminated.Signal)
			case st.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", st.State.Terminated.ExitCode)
			case st.Ready && st.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		// A pod whose last container completed while another still runs
		// is running, not completed.
		if reason == "Completed" && hasRunning {
			if podReady(pod) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	if pod.DeletionTimestamp != nil {
		switch {
		case pod.Status.Reason == nodeLostReason:
			reason = "Unknown"
		case pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed:
			reason = "Terminating"
		}
	}

	restartCell := strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartCell = fmt.Sprintf("%d (%s ago)", restarts, c.since(metav1.NewTime(lastRestart)))
	}

	return []interface{}{
		pod.Name,
		fmt.Sprintf("%d/%d", ready, total),
		reason,
		restartCell,
		c.since(pod.CreationTimestamp),
		orNone(podIP(pod)),
		orNone(pod.Spec.NodeName),
		orNone(pod.Status.NominatedNodeName),
		readinessGates(pod),
	}
}

// isSidecar reports whether c is a restartable init container. c may be
// nil (a status without a matching spec).
func isSidecar(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// lastFinish is when the container's previous run ended, or the zero time.
func lastFinish(st *corev1.ContainerStatus) time.Time {
	if t := st.LastTerminationState.Terminated; t != nil {
		return t.FinishedAt.Time
	}
	return time.Time{}
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// podConditionTrue reports whether the first condition of type t is True.
func podConditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == t {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podReady reports whether any Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// podIP is the pod's primary IP. Upstream's conversion makes status.podIP
// win over status.podIPs when both are set.
func podIP(pod *corev1.Pod) string {
	if pod.Status.PodIP != "" {
		return pod.Status.PodIP
	}
	if len(pod.Status.PodIPs) > 0 {
		return pod.Status.PodIPs[0].IP
	}
	return ""
}

// readinessGates prints how many readiness gates are met: "1/3".
func readinessGates(pod *corev1.Pod) string {
	if len(pod.Spec.ReadinessGates) == 0 {
		return none
	}
	met := 0
	for _, gate := range pod.Spec.ReadinessGates {
		for _, cond := range pod.Status.Conditions {
			if cond.Type == gate.ConditionType {
				if cond.Status == corev1.ConditionTrue {
					met++
				}
				break
			}
		}
	}
	return fmt.Sprintf("%d/%d", met, len(pod.Spec.ReadinessGates))
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}
