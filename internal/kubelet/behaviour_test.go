package kubelet_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet"
)

func TestKubelet_RejectsPodsThatDoNotFit(t *testing.T) {
	h := newHarness(t, func(c *kubelet.Config) { c.MaxPods = 2 })
	big := simplePod("big")
	big.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5")}
	h.createPod(big)
	p := h.waitPod("big", "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if want := "Pod was rejected: Node didn't have enough resource: cpu, requested: 5000, used: 0, capacity: 4000"; p.Status.Reason != "OutOfcpu" || p.Status.Message != want {
		t.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
	}
	if n := len(h.rt.Sandboxes()); n != 0 {
		t.Errorf("%d sandboxes for a rejected pod", n)
	}
	h.createPod(simplePod("one"))
	h.createPod(simplePod("two"))
	h.waitPod("two", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	h.createPod(simplePod("three"))
	p = h.waitPod("three", "rejected", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if p.Status.Reason != "OutOfpods" || !strings.Contains(p.Status.Message, "pods, requested: 1, used: 2, capacity: 2") {
		t.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
	}
	// A rejected pod frees nothing and takes nothing: deleting one makes
	// room for a new pod.
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "one", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("one")
	h.createPod(simplePod("four"))
	h.waitPod("four", "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
}

func TestKubelet_ImagePullBackOffWithPullSecrets(t *testing.T) {
	h := newHarness(t)
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{"registry.example.com": map[string]string{"username": "robot", "password": "hunter2"}}})
	_, err := h.client.CoreV1().Secrets("default").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	image := "registry.example.com/team/app:v1"
	h.rt.FailPull(image, errors.New("connection refused"))
	pod := simplePod("private", corev1.Container{Name: "app", Image: image, ImagePullPolicy: corev1.PullIfNotPresent})
	pod.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	h.createPod(pod)
	// ErrImagePull first; a sync soon after (the status write comes back
	// through the informer) may already show ImagePullBackOff.
	h.waitPod("private", "ErrImagePull", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && (cs.State.Waiting.Reason == "ErrImagePull" || cs.State.Waiting.Reason == "ImagePullBackOff")
	})
	pulls := h.rt.Pulls()
	if len(pulls) == 0 || pulls[0].Auth.GetUsername() != "robot" || pulls[0].Auth.GetPassword() != "hunter2" {
		t.Fatalf("pull auth = %+v", pulls)
	}
	h.clock.Step(time.Second)
	p := h.waitPod("private", "ImagePullBackOff", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ImagePullBackOff"
	})
	if msg := containerStatus(p, "app").State.Waiting.Message; !strings.Contains(msg, `Back-off pulling image "registry.example.com/team/app:v1"`) {
		t.Errorf("message = %q", msg)
	}
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase = %s", p.Status.Phase)
	}
	h.rt.FailPull(image, nil)
	h.rt.AllowPulls()
	h.clock.Step(10 * time.Second)
	h.waitPod("private", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	never := simplePod("never", corev1.Container{Name: "app", Image: "absent:1", ImagePullPolicy: corev1.PullNever})
	h.createPod(never)
	p = h.waitPod("never", "ErrImageNeverPull", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ErrImageNeverPull"
	})
	if msg := containerStatus(p, "app").State.Waiting.Message; msg != `Container image "absent:1" is not present with pull policy of Never` {
		t.Errorf("message = %q", msg)
	}
}

func TestKubelet_ActiveDeadlineFailsThePod(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("deadline")
	pod.Spec.ActiveDeadlineSeconds = new(int64(30))
	h.createPod(pod)
	h.waitPod("deadline", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	h.clock.Step(31 * time.Second)
	p := h.waitPod("deadline", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("reason %q message %q", p.Status.Reason, p.Status.Message)
	}
	if c := h.rt.Containers("app"); len(c) != 1 || c[0].Status.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container not stopped: %+v", c)
	}
}

func TestKubelet_EvictsBestEffortFirstUnderMemoryPressure(t *testing.T) {
	h := newHarness(t)
	burst := simplePod("burstable")
	burst.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")}
	h.createPod(burst)
	h.createPod(simplePod("besteffort"))
	h.waitPod("besteffort", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	h.waitPod("burstable", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	for _, c := range h.rt.Containers("app") {
		h.rt.SetMemory(c.Status.Id, 50<<20)
	}
	h.machine.setAvailable(50 << 20)
	h.clock.Step(10 * time.Second)
	p := h.waitPod("besteffort", "Evicted", func(p *corev1.Pod) bool { return p.Status.Reason == "Evicted" })
	if p.Status.Phase != corev1.PodFailed || !strings.HasPrefix(p.Status.Message, "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container app was using 50Mi, request is 0") {
		t.Errorf("phase %s message %q", p.Status.Phase, p.Status.Message)
	}
	if condition(p, corev1.DisruptionTarget) != corev1.ConditionTrue {
		t.Error("no DisruptionTarget condition")
	}
	if got := h.getPod("burstable"); got.Status.Phase != corev1.PodRunning {
		t.Errorf("burstable pod within its request evicted first: %s", describeStatus(got))
	}
	eventually(t, "MemoryPressure", func() (bool, string) {
		n, err := h.client.CoreV1().Nodes().Get(context.Background(), "node-1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeMemoryPressure {
				return c.Status == corev1.ConditionTrue, c.Reason
			}
		}
		return false, "none"
	})
}

func TestKubelet_ProbesDriveReadyAndRestarts(t *testing.T) {
	h := newHarness(t)
	var ready, alive atomicBool
	h.rt.ExecFunc(func(id string, cmd []string) ([]byte, int32, error) {
		switch cmd[0] {
		case "ready":
			if ready.get() {
				return nil, 0, nil
			}
		case "alive":
			if alive.get() {
				return nil, 0, nil
			}
		}
		return []byte("no"), 1, nil
	})
	alive.set(true)
	pod := simplePod("probed")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}}, PeriodSeconds: 5, FailureThreshold: 1}
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"alive"}}}, PeriodSeconds: 5, FailureThreshold: 2}
	h.createPod(pod)
	h.waitPod("probed", "Running, not Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionFalse
	})
	ready.set(true)
	eventually(t, "Ready", func() (bool, string) {
		h.clock.Step(5 * time.Second)
		p := h.getPod("probed")
		return condition(p, corev1.PodReady) == corev1.ConditionTrue, describeStatus(p)
	})
	alive.set(false)
	eventually(t, "restarted for its liveness probe", func() (bool, string) {
		h.clock.Step(5 * time.Second)
		p := h.getPod("probed")
		cs := containerStatus(p, "app")
		return cs.RestartCount == 1, describeStatus(p)
	})
	events, err := h.client.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range events.Items {
		if e.InvolvedObject.Name == "probed" {
			reasons = append(reasons, e.Reason)
		}
	}
	for _, want := range []string{"Pulled", "Created", "Started", "Unhealthy", "Killing"} {
		if !strings.Contains(strings.Join(reasons, " "), want) {
			t.Errorf("no %s event in %v", want, reasons)
		}
	}
}

func TestKubelet_ConfigErrorsWaitForTheirSource(t *testing.T) {
	h := newHarness(t)
	pod := simplePod("needs-config")
	pod.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	h.createPod(pod)
	p := h.waitPod("needs-config", "CreateContainerConfigError", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
	})
	if msg := containerStatus(p, "app").State.Waiting.Message; msg != `configmap "settings" not found` {
		t.Errorf("message = %q", msg)
	}
	if _, err := h.client.CoreV1().ConfigMaps("default").Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"MODE": "fast"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.clock.Step(10 * time.Second) // the retry interval, at the latest
	h.waitPod("needs-config", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	root := int64(0)
	h.rt.AddImage("rooted:1", &root)
	nonRoot := simplePod("non-root", corev1.Container{Name: "app", Image: "rooted:1", ImagePullPolicy: corev1.PullIfNotPresent})
	nonRoot.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: new(true)}
	h.createPod(nonRoot)
	p = h.waitPod("non-root", "refused", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
	})
	if msg := containerStatus(p, "app").State.Waiting.Message; !strings.HasPrefix(msg, "container has runAsNonRoot and image will run as root") {
		t.Errorf("message = %q", msg)
	}
}

func TestKubelet_RestartAdoptsRunningPods(t *testing.T) {
	h := newHarness(t)
	p := h.createPod(simplePod("survivor"))
	h.waitPod("survivor", "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	before := h.running("app")
	h.stop()
	h.start()
	// Whatever syncs happen, the container is the same one.
	h.clock.Step(time.Minute)
	time.Sleep(200 * time.Millisecond)
	if cs := h.rt.Containers("app"); len(cs) != 1 || cs[0].Status.Id != before.Status.Id {
		t.Fatalf("containers after restart: %d", len(cs))
	}
	got := h.getPod("survivor")
	if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.42.0.2" || condition(got, corev1.PodReady) != corev1.ConditionTrue {
		t.Errorf("status after restart: %s ip %s", describeStatus(got), got.Status.PodIP)
	}
	// A pod deleted while the kubelet is down is cleaned up when it comes
	// back.
	h.stop()
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "survivor", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("survivor")
	h.start()
	eventually(t, "orphan removed", func() (bool, string) {
		return len(h.rt.Containers("")) == 0 && len(h.rt.Sandboxes()) == 0, ""
	})
	if !h.volumes.tornDown(p.UID) {
		t.Error("volumes of the orphan not torn down")
	}
}

func TestKubelet_DeletionInterruptsAHungPull(t *testing.T) {
	h := newHarness(t)
	h.rt.BlockPull("stalled:1")
	pod := simplePod("stalled", corev1.Container{Name: "app", Image: "stalled:1", ImagePullPolicy: corev1.PullAlways})
	pod.Spec.TerminationGracePeriodSeconds = new(int64(300))
	h.createPod(pod)
	p := h.waitPod("stalled", "ContainerCreating while pulling", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return len(h.rt.Pulls()) > 0 && cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ContainerCreating"
	})
	if p.Status.StartTime == nil {
		t.Error("no startTime while the image is pulled")
	}
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), "stalled", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("stalled")
	eventually(t, "sandbox removed", func() (bool, string) { return len(h.rt.Sandboxes()) == 0, "" })
}

func TestKubelet_IdlePodsCauseNoRuntimeCalls(t *testing.T) {
	h := newHarness(t)
	h.createPod(simplePod("idle"))
	h.waitPod("idle", "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	count := func() int {
		n := 0
		for _, c := range h.rt.Calls() {
			if c == "ListPodSandbox" || c == "ContainerStatus" {
				n++
			}
		}
		return n
	}
	// Let the syncs the start caused (events, the status write coming
	// back) finish, then nothing may happen until a timer or an event.
	time.Sleep(500 * time.Millisecond)
	before := count()
	time.Sleep(500 * time.Millisecond)
	if after := count(); after != before {
		t.Errorf("%d runtime calls for an idle pod with the clock stopped", after-before)
	}
}

func TestKubelet_CleansStateLeftByGonePods(t *testing.T) {
	root := t.TempDir()
	stale := filepath.Join(root, "pods", "0b5d7c4e-gone", "containers", "app")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *kubelet.Config) { c.RootDir = root })
	eventually(t, "stale pod directory removed", func() (bool, string) {
		_, err := os.Stat(filepath.Join(root, "pods", "0b5d7c4e-gone"))
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	if !h.volumes.tornDown("0b5d7c4e-gone") {
		t.Error("volumes of the gone pod not torn down")
	}
}
