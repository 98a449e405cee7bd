package kubelet_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/fakecri"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// harness runs a kubelet.Kubelet against a real API server and a fake runtime,
// with a fake clock.
type harness struct {
	t       testing.TB
	client  kubernetes.Interface
	rt      *fakecri.Runtime
	clock   *testingclock.FakeClock
	k       *kubelet.Kubelet
	cgroups *fakeCgroups
	machine *fakeMachine
	volumes *fakeVolumes
	network *fakeNetwork
	cfg     kubelet.Config
	// stop stops the running kubelet (idempotent).
	stop func()
}

func apiServer(t testing.TB) *testserver.Server {
	t.Helper()
	return testserver.Start(t)
}

func newHarness(t testing.TB, tweak ...func(*kubelet.Config)) *harness {
	t.Helper()
	ts := apiServer(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := fakecri.New(clk)
	rt.AddImage("toolbox:1", nil)
	conn := rt.Serve(t)
	h := &harness{
		t: t, client: client, rt: rt, clock: clk,
		cgroups: newFakeCgroups(),
		machine: &fakeMachine{info: kubelet.MachineInfo{Hostname: "host-1", NumCPU: 4, MemoryCapacity: 8 << 30, EphemeralStorage: 100 << 30, BootID: "boot"}, available: 4 << 30},
		volumes: &fakeVolumes{},
		network: &fakeNetwork{},
	}
	cfg := kubelet.Config{
		NodeName:   "node-1",
		Client:     client,
		Runtime:    runtimeapi.NewRuntimeServiceClient(conn),
		Images:     runtimeapi.NewImageServiceClient(conn),
		Cgroups:    h.cgroups,
		Machine:    h.machine,
		Volumes:    h.volumes,
		Network:    h.network,
		NodeIP:     net.IPv4(192, 0, 2, 10),
		PodCIDR:    "10.42.0.0/24",
		RootDir:    t.TempDir(),
		PodLogsDir: t.TempDir(),
		Clock:      clk,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	h.cfg = cfg
	h.start()
	return h
}

// start runs a kubelet with h.cfg until stop or the end of the test.
func (h *harness) start() {
	t := h.t
	t.Helper()
	k, err := kubelet.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.k = k
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("kubelet did not stop")
			}
		})
	}
	t.Cleanup(h.stop)
	select {
	case <-k.Ready():
	case err := <-done:
		t.Fatalf("kubelet exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("kubelet not ready")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { recover() }()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually polls check until it passes; it fails the test with the
// last reason after a generous deadline (a hang, not a slow pass).
func eventually(t testing.TB, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var why string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = check(); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last: %s", what, why)
}

func (h *harness) createPod(pod *corev1.Pod) *corev1.Pod {
	h.t.Helper()
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	pod.Spec.NodeName = "node-1"
	p, err := h.client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) getPod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// waitPod waits until check passes on the pod.
func (h *harness) waitPod(name, what string, check func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	var last *corev1.Pod
	eventually(h.t, "pod "+name+": "+what, func() (bool, string) {
		p, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		last = p
		return check(p), describeStatus(p)
	})
	return last
}

func (h *harness) waitGone(name string) {
	h.t.Helper()
	eventually(h.t, "pod "+name+" deleted", func() (bool, string) {
		_, err := h.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// running returns the running instance of a container, waiting for it.
func (h *harness) running(name string) fakecri.Container {
	h.t.Helper()
	var found fakecri.Container
	eventually(h.t, "container "+name+" running", func() (bool, string) {
		cs := h.rt.Containers(name)
		for _, c := range cs {
			if c.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				found = c
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d instances", len(cs))
	})
	return found
}

func describeStatus(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%s", p.Status.Phase, p.Status.Reason)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, l := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, c := range l {
			fmt.Fprintf(&b, " [%s ready=%v restarts=%d", c.Name, c.Ready, c.RestartCount)
			switch {
			case c.State.Waiting != nil:
				fmt.Fprintf(&b, " waiting %s %q", c.State.Waiting.Reason, c.State.Waiting.Message)
			case c.State.Running != nil:
				b.WriteString(" running")
			case c.State.Terminated != nil:
				fmt.Fprintf(&b, " terminated %s %d", c.State.Terminated.Reason, c.State.Terminated.ExitCode)
			}
			b.WriteString("]")
		}
	}
	return b.String()
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, l := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range l {
			if l[i].Name == name {
				return &l[i]
			}
		}
	}
	return nil
}

// fakeCgroups records the cgroups the kubelet makes.
type fakeCgroups struct {
	mu      sync.Mutex
	applied map[string]*cgroups.Resources
	removed []string
}

func newFakeCgroups() *fakeCgroups { return &fakeCgroups{applied: map[string]*cgroups.Resources{}} }

func (f *fakeCgroups) Ensure(p string, r *cgroups.Resources) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied[p] = r
	return nil
}

func (f *fakeCgroups) Remove(_ context.Context, p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.applied[p]; ok {
		f.removed = append(f.removed, p)
	}
	delete(f.applied, p)
	return nil
}

func (f *fakeCgroups) Stats(p string) (*cgroups.Stats, error) { return &cgroups.Stats{}, nil }

func (f *fakeCgroups) get(p string) (*cgroups.Resources, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.applied[p]
	return r, ok
}

type fakeMachine struct {
	mu        sync.Mutex
	info      kubelet.MachineInfo
	available int64
}

func (m *fakeMachine) Info() (kubelet.MachineInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.info, nil
}

func (m *fakeMachine) MemoryAvailable() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.available, nil
}

func (m *fakeMachine) setAvailable(v int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.available = v
}

type fakeVolumes struct {
	mu        sync.Mutex
	setups    map[types.UID]int
	teardowns []types.UID
	err       error
}

func (v *fakeVolumes) SetUp(_ context.Context, pod *corev1.Pod) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.setups == nil {
		v.setups = map[types.UID]int{}
	}
	v.setups[pod.UID]++
	return v.err
}

func (v *fakeVolumes) Mounts(pod *corev1.Pod, c *corev1.Container, env map[string]string) ([]*runtimeapi.Mount, error) {
	var out []*runtimeapi.Mount
	for _, m := range c.VolumeMounts {
		out = append(out, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: "/volumes/" + m.Name, Readonly: m.ReadOnly})
	}
	return out, nil
}

func (v *fakeVolumes) TearDown(_ context.Context, uid types.UID) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.teardowns = append(v.teardowns, uid)
	return nil
}

func (v *fakeVolumes) tornDown(uid types.UID) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, u := range v.teardowns {
		if u == uid {
			return true
		}
	}
	return false
}

type fakeNetwork struct {
	mu    sync.Mutex
	cidrs []string
	ips   map[string]net.IP
	downs []string
	// ports are the port mappings of each sandbox's last SetUp.
	ports map[string][]*runtimeapi.PortMapping
}

func (n *fakeNetwork) SetUp(_ context.Context, sb kubelet.Sandbox) ([]net.IP, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ips == nil {
		n.ips = map[string]net.IP{}
		n.ports = map[string][]*runtimeapi.PortMapping{}
	}
	n.ports[sb.ID] = sb.PortMappings
	if ip, ok := n.ips[sb.ID]; ok {
		return []net.IP{ip}, nil
	}
	if sb.NetNS == "" {
		return nil, fmt.Errorf("no netns")
	}
	ip := net.IPv4(10, 42, 0, byte(len(n.ips)+2))
	n.ips[sb.ID] = ip
	return []net.IP{ip}, nil
}

func (n *fakeNetwork) TearDown(_ context.Context, sb kubelet.Sandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.downs = append(n.downs, sb.ID)
	delete(n.ips, sb.ID)
	return nil
}

func (n *fakeNetwork) SetPodCIDRs(_ context.Context, cidrs []string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cidrs = cidrs
	return nil
}

func simplePod(name string, containers ...corev1.Container) *corev1.Pod {
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "app", Image: "toolbox:1", ImagePullPolicy: corev1.PullIfNotPresent}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

// atomicBool is a bool shared with runtime callbacks.
type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) set(v bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.v = v
}

func (b *atomicBool) get() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}
