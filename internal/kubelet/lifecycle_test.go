package kubelet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-sh/skiff/internal/kubelet"
)

func TestKubelet_RegistersNodeWithLease(t *testing.T) {
	h := newHarness(t, func(c *kubelet.Config) { c.Labels = map[string]string{"tier": "edge"} })
	ctx := context.Background()
	var node *corev1.Node
	eventually(t, "node ready", func() (bool, string) {
		n, err := h.client.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, c.Message
			}
		}
		return false, "no Ready condition"
	})
	for key, want := range map[string]string{"kubernetes.io/hostname": "node-1", "kubernetes.io/os": "linux", "tier": "edge"} {
		if got := node.Labels[key]; got != want {
			t.Errorf("label %s = %q, want %q", key, got, want)
		}
	}
	if got := node.Spec.PodCIDR; got != "10.42.0.0/24" {
		t.Errorf("podCIDR = %q", got)
	}
	wantCap := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	for name, want := range wantCap {
		if got := node.Status.Capacity[name]; got.Cmp(want) != 0 {
			t.Errorf("capacity %s = %s, want %s", name, got.String(), want.String())
		}
	}
	if got, want := node.Status.Allocatable[corev1.ResourceMemory], resource.MustParse("8092Mi"); got.Cmp(want) != 0 {
		t.Errorf("allocatable memory = %s, want %s (capacity less the eviction threshold)", got.String(), want.String())
	}
	var types []string
	for _, c := range node.Status.Conditions {
		types = append(types, string(c.Type)+"="+string(c.Status)+"/"+c.Reason)
	}
	if diff := cmp.Diff([]string{"MemoryPressure=False/KubeletHasSufficientMemory", "DiskPressure=False/KubeletHasNoDiskPressure",
		"PIDPressure=False/KubeletHasSufficientPID", "Ready=True/KubeletReady"}, types); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}, {Type: corev1.NodeHostName, Address: "host-1"}}, node.Status.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 10250 {
		t.Errorf("kubelet port = %d", got)
	}
	if got := node.Status.NodeInfo.ContainerRuntimeVersion; got != "fake://1.0" {
		t.Errorf("runtime version = %q", got)
	}
	if got := node.Status.NodeInfo.KubeletVersion; !strings.HasPrefix(got, "v1.") {
		t.Errorf("kubelet version = %q", got)
	}
	var lease *coordinationv1.Lease
	eventually(t, "lease", func() (bool, string) {
		l, err := h.client.CoordinationV1().Leases("kube-node-lease").Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		lease = l
		return true, ""
	})
	if *lease.Spec.HolderIdentity != "node-1" || *lease.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease spec = %+v", lease.Spec)
	}
	if len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != node.UID {
		t.Errorf("lease owner = %+v, want the node", lease.OwnerReferences)
	}
	renewed := lease.Spec.RenewTime.Time
	h.clock.Step(10 * time.Second)
	eventually(t, "lease renewed", func() (bool, string) {
		l, err := h.client.CoordinationV1().Leases("kube-node-lease").Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return l.Spec.RenewTime.After(renewed), l.Spec.RenewTime.String()
	})
	if got := h.network.cidrs; len(got) != 1 || got[0] != "10.42.0.0/24" {
		t.Errorf("network pod CIDRs = %v", got)
	}
}

func TestKubelet_RunsPodAndReportsRunning(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("web")
	pod.Labels = map[string]string{"app": "web"}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "GREETING", Value: "hello"},
		{Name: "MSG", Value: "$(GREETING) world $(MISSING) $$(GREETING)"},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
	}
	pod.Spec.Containers[0].Command = []string{"echo", "$(MSG)"}
	pod = h.createPod(pod)
	got := h.waitPod("web", "Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	c := h.running("app")
	st := got.Status
	if st.PodIP != "10.42.0.2" || len(st.PodIPs) != 1 || st.HostIP != "192.0.2.10" || st.QOSClass != corev1.PodQOSBestEffort || st.StartTime == nil {
		t.Errorf("status = podIP %q podIPs %v hostIP %q qos %q start %v", st.PodIP, st.PodIPs, st.HostIP, st.QOSClass, st.StartTime)
	}
	var conds []string
	for _, c := range st.Conditions {
		conds = append(conds, string(c.Type)+"="+string(c.Status))
	}
	if diff := cmp.Diff([]string{"PodReadyToStartContainers=True", "Initialized=True", "Ready=True", "ContainersReady=True", "PodScheduled=True"}, conds); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	cs := containerStatus(got, "app")
	if cs == nil || cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 ||
		cs.ContainerID != "fake://"+c.Status.Id || cs.ImageID == "" || cs.Image != "toolbox:1" {
		t.Errorf("container status = %+v", cs)
	}
	env := map[string]string{}
	for _, kv := range c.Config.Envs {
		env[kv.Key] = string(kv.Value)
	}
	for key, want := range map[string]string{"GREETING": "hello", "MSG": "hello world $(MISSING) $(GREETING)", "POD": "web", "IP": "10.42.0.2", "KUBERNETES_SERVICE_PORT": "443"} {
		if env[key] != want {
			t.Errorf("env %s = %q, want %q", key, env[key], want)
		}
	}
	if diff := cmp.Diff([]string{"echo", "hello world $(MISSING) $(GREETING)"}, c.Config.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if got, want := c.Config.LogPath, "app/0.log"; got != want {
		t.Errorf("log path = %q, want %q", got, want)
	}
	sb := h.rt.SandboxConfig(c.SandboxID)
	if want := "default_web_" + string(pod.UID); !strings.HasSuffix(sb.LogDirectory, want) {
		t.Errorf("log directory = %q, want .../%s", sb.LogDirectory, want)
	}
	if got, want := sb.Linux.CgroupParent, "/kubepods/besteffort/pod"+string(pod.UID); got != want {
		t.Errorf("cgroup parent = %q, want %q", got, want)
	}
	for key, want := range map[string]string{"app": "web", "io.kubernetes.pod.uid": string(pod.UID), "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "default"} {
		if sb.Labels[key] != want {
			t.Errorf("sandbox label %s = %q, want %q", key, sb.Labels[key], want)
		}
	}
	if _, ok := h.cgroups.get("kubepods/besteffort/pod" + string(pod.UID)); !ok {
		t.Error("pod cgroup not made")
	}
	ref, err := h.k.Container(context.Background(), "default", "web", "app", false)
	if err != nil || ref.ID != c.Status.Id || !ref.Running {
		t.Errorf("Container() = %+v, %v", ref, err)
	}
	if _, err := h.k.Container(context.Background(), "default", "web", "app", true); err == nil {
		t.Error("Container(previous) found an instance before any restart")
	}
}

func TestKubelet_CrashLoopBackOff(t *testing.T) {
	h := newHarness(t)
	h.createPod(simplePod("crash"))
	first := h.running("app")
	h.rt.Exit(first.Status.Id, 1, "")
	// The first failure restarts at once.
	h.waitPod("crash", "restarted once", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount == 1 && cs.State.Running != nil
	})
	second := h.running("app")
	h.rt.Exit(second.Status.Id, 2, "")
	p := h.waitPod("crash", "CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := containerStatus(p, "app")
	if want := "back-off 10s restarting failed container=app pod=crash_default(" + string(p.UID) + ")"; cs.State.Waiting.Message != want {
		t.Errorf("waiting message = %q, want %q", cs.State.Waiting.Message, want)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 2 || lt.Reason != "Error" {
		t.Errorf("last state = %+v", cs.LastTerminationState)
	}
	if p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("phase %s ready %s, want Running and not ready", p.Status.Phase, condition(p, corev1.PodReady))
	}
	// Not before the backoff ends.
	h.clock.Step(9 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if n := len(h.rt.Containers("app")); n != 2 {
		t.Fatalf("%d instances during the backoff, want 2", n)
	}
	h.clock.Step(time.Second)
	h.waitPod("crash", "restarted after 10s", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.RestartCount == 2 && cs.State.Running != nil
	})
	third := h.running("app")
	h.rt.Exit(third.Status.Id, 1, "")
	p = h.waitPod("crash", "backoff doubled", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && strings.HasPrefix(cs.State.Waiting.Message, "back-off 20s")
	})
	// Only the newest two instances are kept.
	eventually(t, "old instances removed", func() (bool, string) {
		n := len(h.rt.Containers("app"))
		return n == 2, "instances: " + string(rune('0'+n))
	})
	if ref, err := h.k.Container(context.Background(), "default", "crash", "app", true); err != nil || ref.Attempt != 1 {
		t.Errorf("previous instance = %+v, %v; want attempt 1", ref, err)
	}
}

func TestKubelet_InitContainerFailureBlocksApps(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("init")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	pod.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "toolbox:1", ImagePullPolicy: corev1.PullIfNotPresent}}
	h.createPod(pod)
	p := h.waitPod("init", "initializing", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return condition(p, corev1.PodInitialized) == corev1.ConditionFalse && cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "PodInitializing"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase = %s, want Pending", p.Status.Phase)
	}
	setup := h.running("setup")
	h.rt.Exit(setup.Status.Id, 3, "")
	p = h.waitPod("init", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if n := len(h.rt.Containers("app")); n != 0 {
		t.Errorf("app container created %d times after its init container failed", n)
	}
	if cs := containerStatus(p, "setup"); cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
		t.Errorf("init status = %+v", cs.State)
	}
	if c := p.Status.Conditions; condition(p, corev1.PodInitialized) != corev1.ConditionFalse {
		t.Errorf("conditions = %+v", c)
	}
}

func TestKubelet_InitContainersRunInOrderThenApps(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("ordered")
	always := corev1.ContainerRestartPolicyAlways
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "first", Image: "toolbox:1", ImagePullPolicy: corev1.PullIfNotPresent},
		{Name: "sidecar", Image: "toolbox:1", ImagePullPolicy: corev1.PullIfNotPresent, RestartPolicy: &always},
		{Name: "second", Image: "toolbox:1", ImagePullPolicy: corev1.PullIfNotPresent},
	}
	h.createPod(pod)
	first := h.running("first")
	if n := len(h.rt.Containers("sidecar")); n != 0 {
		t.Fatalf("sidecar started before the first init container finished")
	}
	h.rt.Exit(first.Status.Id, 0, "")
	h.running("sidecar")
	second := h.running("second")
	h.rt.Exit(second.Status.Id, 0, "")
	p := h.waitPod("ordered", "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	if cs := containerStatus(p, "sidecar"); cs.State.Running == nil || !cs.Ready {
		t.Errorf("sidecar status = %+v", cs)
	}
	if cs := containerStatus(p, "first"); cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || !cs.Ready {
		t.Errorf("first status = %+v", cs)
	}
	// The sidecar is restarted when it dies, whatever the pod's policy.
	sc := h.running("sidecar")
	h.rt.Exit(sc.Status.Id, 1, "")
	h.waitPod("ordered", "sidecar restarted", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "sidecar")
		return cs.RestartCount == 1 && cs.State.Running != nil
	})
}

func TestKubelet_CompletedPodSucceeds(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("job")
	pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	p := h.createPod(pod)
	app := h.running("app")
	h.rt.Exit(app.Status.Id, 0, "")
	got := h.waitPod("job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if condition(got, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("Ready = %s", condition(got, corev1.PodReady))
	}
	eventually(t, "volumes torn down", func() (bool, string) { return h.volumes.tornDown(p.UID), "" })
	eventually(t, "pod cgroup removed", func() (bool, string) {
		_, ok := h.cgroups.get("kubepods/besteffort/pod" + string(p.UID))
		h.cgroups.mu.Lock()
		defer h.cgroups.mu.Unlock()
		return !ok, fmt.Sprintf("applied %v removed %v", h.cgroups.applied, h.cgroups.removed)
	})
	if ip := got.Status.PodIP; ip == "" {
		t.Error("finished pod lost its IP")
	}
}

func TestKubelet_OOMKilledIsReported(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("hog")
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	h.createPod(pod)
	app := h.running("app")
	h.rt.Exit(app.Status.Id, 137, "OOMKilled")
	p := h.waitPod("hog", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if t2 := containerStatus(p, "app").State.Terminated; t2 == nil || t2.Reason != "OOMKilled" || t2.ExitCode != 137 {
		t.Errorf("terminated = %+v", t2)
	}
}

func TestKubelet_GracefulDeletion(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("grace")
	pod.Spec.TerminationGracePeriodSeconds = new(int64(45))
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}}
	var execs []string
	h.rt.ExecFunc(func(id string, cmd []string) ([]byte, int32, error) {
		execs = append(execs, strings.Join(cmd, " "))
		return nil, 0, nil
	})
	p := h.createPod(pod)
	app := h.running("app")
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "grace", metav1.DeleteOptions{GracePeriodSeconds: new(int64(20))}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("grace")
	eventually(t, "runtime cleaned", func() (bool, string) {
		return len(h.rt.Containers("")) == 0 && len(h.rt.Sandboxes()) == 0, ""
	})
	if stops := h.rt.Stops(); len(stops) == 0 || stops[0].ID != app.Status.Id || stops[0].Timeout < 19 || stops[0].Timeout > 20 {
		t.Errorf("stops = %+v, want the app container stopped with the deletion's 20s grace", stops)
	}
	if len(execs) != 1 || execs[0] != "drain" {
		t.Errorf("preStop execs = %v", execs)
	}
	calls := strings.Join(h.rt.Calls(), " ")
	if i, j := strings.Index(calls, "ExecSync"), strings.Index(calls, "StopContainer"); i < 0 || j < i {
		t.Errorf("preStop did not run before the stop: %s", calls)
	}
	if !h.volumes.tornDown(p.UID) {
		t.Error("volumes not torn down")
	}
}

func TestKubelet_EventsGoThroughTheEventClient(t *testing.T) {
	events := fake.NewClientset()
	h := newHarness(t, func(c *kubelet.Config) { c.EventClient = events })
	h.createPod(simplePod("web"))
	h.waitPod("web", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	ctx := context.Background()
	eventually(t, "a Started event through the event client", func() (bool, string) {
		list, err := events.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var reasons []string
		for _, e := range list.Items {
			if e.Reason == "Started" {
				return true, ""
			}
			reasons = append(reasons, e.Reason)
		}
		return false, fmt.Sprint(reasons)
	})
	list, err := h.client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		t.Errorf("event %s %q recorded with the API client", e.Reason, e.Message)
	}
}
