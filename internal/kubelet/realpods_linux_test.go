package kubelet_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func toolboxPod(name string, args ...string) *corev1.Pod {
	return simplePod(name, corev1.Container{Name: "app", Image: toolboxImage, ImagePullPolicy: corev1.PullNever, Command: args})
}

func TestRealRuntime_PodRunsWithIPInItsQoSCgroup(t *testing.T) {
	h := newRealHarness(t)
	pod := toolboxPod("web", "sleep", "infinity")
	pod.Spec.TerminationGracePeriodSeconds = new(int64(1))
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	pod = h.createPod(pod)
	p := h.waitPod("web", "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	if p.Status.PodIP != "10.244.7.2" || p.Status.HostIP != "127.0.0.1" || p.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("podIP %q hostIP %q qos %q", p.Status.PodIP, p.Status.HostIP, p.Status.QOSClass)
	}
	cs := containerStatus(p, "app")
	if !strings.HasPrefix(cs.ContainerID, "skiff://") || cs.State.Running == nil || !strings.HasPrefix(cs.ImageID, "sha256:") {
		t.Errorf("container status = %+v", cs)
	}
	podCg := "kubepods/burstable/pod" + string(pod.UID)
	dir := h.cgroupDir(podCg)
	if dir == "" {
		t.Fatalf("no pod cgroup %s", podCg)
	}
	for file, want := range map[string]string{"memory.limit_in_bytes": "67108864", "memory.max": "67108864"} {
		if data, err := os.ReadFile(filepath.Join(dir, file)); err == nil && strings.TrimSpace(string(data)) != want {
			t.Errorf("%s = %s, want %s", file, strings.TrimSpace(string(data)), want)
		}
	}
	logFile := filepath.Join(h.logsDir, "default_web_"+string(pod.UID), "app", "0.log")
	if !fileExists(logFile) {
		t.Errorf("no log file %s", logFile)
	}
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("web")
	eventually(t, "pod cgroup and logs removed", func() (bool, string) {
		return h.cgroupDir(podCg) == "" && !fileExists(filepath.Dir(filepath.Dir(logFile))), ""
	})
	if n := len(h.rt.ListContainers(context.Background(), nil)); n != 0 {
		t.Errorf("%d containers left in the runtime", n)
	}
}

func TestRealRuntime_GracePeriodIsHonoured(t *testing.T) {
	h := newRealHarness(t)
	// signals takes a minute to exit after SIGTERM: only SIGKILL, after
	// the grace period, ends it sooner.
	pod := toolboxPod("stubborn", "signals", "60")
	pod.Spec.TerminationGracePeriodSeconds = new(int64(2))
	created := h.createPod(pod)
	h.waitPod("stubborn", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	// Running means started, not that it handles SIGTERM yet: it says
	// "ready" once it does.
	logFile := filepath.Join(h.logsDir, "default_stubborn_"+string(created.UID), "app", "0.log")
	eventually(t, "the container to handle SIGTERM", func() (bool, string) {
		data, _ := os.ReadFile(logFile)
		return strings.Contains(string(data), "ready"), string(data)
	})
	start := time.Now()
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "stubborn", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("stubborn")
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("pod deleted %v after the request, before its 2s grace period", took)
	}

	// A container that exits on SIGTERM goes at once, with its own status.
	polite := toolboxPod("polite", "signals", "0")
	polite.Spec.TerminationGracePeriodSeconds = new(int64(30))
	h.createPod(polite)
	h.waitPod("polite", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "polite", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("polite")
}

func TestRealRuntime_CrashLoopBackOff(t *testing.T) {
	h := newRealHarness(t)
	h.createPod(toolboxPod("crash", "exit", "3"))
	h.waitPod("crash", "restarted once at once", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount >= 1
	})
	p := h.waitPod("crash", "CrashLoopBackOff 10s", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && strings.HasPrefix(cs.State.Waiting.Message, "back-off 10s")
	})
	cs := containerStatus(p, "app")
	if cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 3 {
		t.Errorf("status = %s", describeStatus(p))
	}
	// The kubelet's clock says when the backoff ends.
	h.clock.SetTime(time.Now().Add(11 * time.Second))
	h.waitPod("crash", "CrashLoopBackOff 20s", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount == 2 && cs.State.Waiting != nil && strings.HasPrefix(cs.State.Waiting.Message, "back-off 20s")
	})
}

func TestRealRuntime_InitContainerFailureBlocksApps(t *testing.T) {
	h := newRealHarness(t)
	pod := toolboxPod("init", "sleep", "infinity")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: toolboxImage, ImagePullPolicy: corev1.PullNever, Command: []string{"exit", "1"}}}
	h.createPod(pod)
	p := h.waitPod("init", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if cs := containerStatus(p, "setup"); cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 1 || cs.State.Terminated.Reason != "Error" {
		t.Errorf("setup = %s", describeStatus(p))
	}
	if cs := containerStatus(p, "app"); cs.State.Waiting == nil || cs.State.Waiting.Reason != "PodInitializing" {
		t.Errorf("app = %s", describeStatus(p))
	}
	for _, c := range h.rt.ListContainers(context.Background(), nil) {
		if c.Metadata.Name == "app" {
			t.Error("app container created after its init container failed")
		}
	}
}

// withSeccomp gives the pod the runtime's default seccomp profile. The
// built-in runtime's exec without a helper process (taken when no seccomp
// profile applies) runs on a thread of the runtime that joins the
// container's cgroups; on this host it fails with ENOMEM and leaves that
// thread in the container's cgroup, where killing the container freezes
// it. With a profile, exec goes through the helper process.
func withSeccomp(p *corev1.Pod) *corev1.Pod {
	p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	return p
}

func TestRealRuntime_ProbesFlipReadyAndRestart(t *testing.T) {
	h := newRealHarness(t)
	pod := withSeccomp(toolboxPod("probed", "sleep", "infinity"))
	pod.Spec.TerminationGracePeriodSeconds = new(int64(1))
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	h.createPod(pod)
	p := h.waitPod("probed", "Running, not ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.ContainersReady) == corev1.ConditionFalse
	})
	id := strings.TrimPrefix(containerStatus(p, "app").ContainerID, "skiff://")
	if _, err := h.rtc.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"touch", "/tmp/ready"}, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready", func() (bool, string) {
		h.clock.Step(time.Second)
		p := h.getPod("probed")
		return condition(p, corev1.PodReady) == corev1.ConditionTrue, describeStatus(p)
	})

	live := withSeccomp(toolboxPod("unhealthy", "sleep", "infinity"))
	live.Spec.TerminationGracePeriodSeconds = new(int64(1))
	live.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/no/such/file"}}},
		PeriodSeconds: 1, FailureThreshold: 2,
	}
	h.createPod(live)
	eventually(t, "restarted by its liveness probe", func() (bool, string) {
		h.clock.Step(time.Second)
		p := h.getPod("unhealthy")
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount >= 1, describeStatus(p)
	})
}

func TestRealRuntime_OOMKilledAndTerminationMessages(t *testing.T) {
	h := newRealHarness(t)
	hog := toolboxPod("hog", "hog", "256")
	hog.Spec.RestartPolicy = corev1.RestartPolicyNever
	hog.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}
	h.createPod(hog)

	msg := toolboxPod("message", "write", "/dev/termination-log", "all done")
	msg.Spec.RestartPolicy = corev1.RestartPolicyNever
	h.createPod(msg)

	logs := toolboxPod("fallback", "cat", "/no/such/file")
	logs.Spec.RestartPolicy = corev1.RestartPolicyNever
	logs.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	h.createPod(logs)

	p := h.waitPod("hog", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := containerStatus(p, "app").State.Terminated; term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("hog = %s", describeStatus(p))
	}
	p = h.waitPod("message", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if term := containerStatus(p, "app").State.Terminated; term == nil || term.Message != "all done" || term.Reason != "Completed" {
		t.Errorf("message = %+v", containerStatus(p, "app").State)
	}
	p = h.waitPod("fallback", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := containerStatus(p, "app").State.Terminated; term == nil || !strings.Contains(term.Message, "/no/such/file") {
		t.Errorf("fallback = %+v", containerStatus(p, "app").State)
	}
}

func TestRealRuntime_HostNetworkPodWithHTTPProbe(t *testing.T) {
	h := newRealHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pod := toolboxPod("hostnet", "serve-http", strconv.Itoa(port), "hello")
	pod.Spec.HostNetwork = true
	pod.Spec.TerminationGracePeriodSeconds = new(int64(1))
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds: 1,
	}
	h.createPod(pod)
	var p *corev1.Pod
	eventually(t, "Ready through its HTTP probe", func() (bool, string) {
		h.clock.Step(time.Second)
		p = h.getPod("hostnet")
		return condition(p, corev1.PodReady) == corev1.ConditionTrue, describeStatus(p)
	})
	if p.Status.PodIP != "127.0.0.1" || condition(p, corev1.PodReadyToStartContainers) != corev1.ConditionTrue {
		t.Errorf("podIP %q, PodReadyToStartContainers %s", p.Status.PodIP, condition(p, corev1.PodReadyToStartContainers))
	}
}
