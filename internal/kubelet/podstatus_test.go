package kubelet

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/prober"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// scenario builds the inputs of computePodStatus.
type scenario struct {
	pod        *corev1.Pod
	rp         *runtimePod
	waiting    map[string]waitState
	terminal   *terminalStatus
	probes     map[string]prober.Result // "<id>/<kind>"
	podIPs     []string
	noSandbox  bool
	sandboxOff bool
}

func newScenario(pod *corev1.Pod) *scenario {
	pod.Name, pod.Namespace, pod.UID, pod.Generation = "web", "default", "u1", 1
	return &scenario{
		pod: pod, waiting: map[string]waitState{}, probes: map[string]prober.Result{}, podIPs: []string{"10.42.0.7"},
		rp: &runtimePod{
			uid:        "u1",
			sandboxes:  []*runtimeapi.PodSandbox{{Id: "sb1", State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: t0.UnixNano(), Metadata: &runtimeapi.PodSandboxMetadata{}}},
			containers: map[string][]*runtimeapi.ContainerStatus{},
			sandboxOf:  map[string]string{},
		},
	}
}

// add records a container instance; exit < 0 means running.
func (s *scenario) add(name string, attempt uint32, exit int32, reason string) *runtimeapi.ContainerStatus {
	id := name + "-" + string(rune('0'+attempt))
	c := &runtimeapi.ContainerStatus{
		Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name, Attempt: attempt},
		CreatedAt: t0.Add(time.Duration(attempt+1) * time.Second).UnixNano(), StartedAt: t0.Add(time.Duration(attempt+1) * time.Second).UnixNano(),
		Image: &runtimeapi.ImageSpec{Image: "toolbox:1"}, ImageRef: "sha256:abc",
		State: runtimeapi.ContainerState_CONTAINER_RUNNING,
	}
	if exit >= 0 {
		c.State, c.ExitCode, c.Reason = runtimeapi.ContainerState_CONTAINER_EXITED, exit, reason
		c.FinishedAt = t0.Add(time.Duration(attempt+1)*time.Second + 500*time.Millisecond).UnixNano()
	}
	s.rp.containers[name] = append([]*runtimeapi.ContainerStatus{c}, s.rp.containers[name]...)
	s.rp.sandboxOf[id] = "sb1"
	return c
}

func (s *scenario) status() corev1.PodStatus {
	if s.noSandbox {
		s.rp.sandboxes = nil
	}
	if s.sandboxOff && len(s.rp.sandboxes) > 0 {
		s.rp.sandboxes[0].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	start := metav1.NewTime(t0)
	return computePodStatus(statusInput{
		pod: s.pod, rp: s.rp, podIPs: s.podIPs, hostIPs: []string{"192.0.2.10"}, runtimeName: "skiff",
		waiting: s.waiting, terminal: s.terminal, startTime: &start, now: t0.Add(time.Minute),
		probe: func(id string, kind prober.Kind) (prober.Result, bool) {
			r, ok := s.probes[id+"/"+kind.String()]
			return r, ok
		},
		message: func(*corev1.Container, *runtimeapi.ContainerStatus) string { return "" },
	})
}

func spec(containers ...string) *corev1.Pod {
	p := &corev1.Pod{}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "toolbox:1"})
	}
	p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	return p
}

func withInit(p *corev1.Pod, names ...string) *corev1.Pod {
	for _, n := range names {
		c := corev1.Container{Name: n, Image: "toolbox:1"}
		if n == "sidecar" {
			always := corev1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	return p
}

// TestPodStatus_Golden computes statuses for the states a pod goes
// through and compares them with testdata/status/*.json (rewrite with
// -update and review the diff).
func TestPodStatus_Golden(t *testing.T) {
	tests := []struct {
		name  string
		build func() *scenario
	}{
		{"pending-no-sandbox", func() *scenario {
			s := newScenario(spec("app"))
			s.noSandbox, s.podIPs = true, nil
			return s
		}},
		{"running-ready", func() *scenario {
			s := newScenario(spec("b", "a"))
			s.add("a", 0, -1, "")
			s.add("b", 0, -1, "")
			return s
		}},
		{"running-readiness-failing", func() *scenario {
			p := spec("app")
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
			s := newScenario(p)
			c := s.add("app", 0, -1, "")
			s.probes[c.Id+"/Readiness"] = prober.Failure
			return s
		}},
		{"crash-loop-backoff", func() *scenario {
			s := newScenario(spec("app"))
			s.add("app", 0, 1, "")
			s.add("app", 1, 2, "")
			s.waiting["app"] = waitState{"CrashLoopBackOff", "back-off 10s restarting failed container=app pod=web_default(u1)"}
			return s
		}},
		{"image-pull-backoff", func() *scenario {
			s := newScenario(spec("app"))
			s.waiting["app"] = waitState{"ImagePullBackOff", `Back-off pulling image "toolbox:1": ErrImagePull: not found`}
			return s
		}},
		{"init-running", func() *scenario {
			s := newScenario(withInit(spec("app"), "setup", "migrate"))
			s.add("setup", 0, 0, "")
			s.add("migrate", 0, -1, "")
			return s
		}},
		{"init-failed-never", func() *scenario {
			// migrate never ran: it waits as PodInitializing, as app does.
			p := withInit(spec("app"), "setup", "migrate")
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			s := newScenario(p)
			s.add("setup", 0, 1, "")
			return s
		}},
		{"sidecar-and-app-running", func() *scenario {
			s := newScenario(withInit(spec("app"), "setup", "sidecar"))
			s.add("setup", 0, 0, "")
			s.add("sidecar", 0, -1, "")
			s.add("app", 0, -1, "")
			return s
		}},
		{"succeeded-onfailure", func() *scenario {
			p := spec("app")
			p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			s := newScenario(p)
			s.add("app", 0, 0, "")
			s.sandboxOff = true
			return s
		}},
		{"failed-never-oomkilled", func() *scenario {
			p := spec("app")
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			s := newScenario(p)
			s.add("app", 0, 137, "OOMKilled")
			return s
		}},
		{"deleted-after-sigterm", func() *scenario {
			p := spec("app")
			now := metav1.NewTime(t0)
			p.DeletionTimestamp = &now
			s := newScenario(p)
			s.add("app", 0, 143, "")
			s.sandboxOff = true
			return s
		}},
		{"evicted", func() *scenario {
			s := newScenario(spec("app"))
			s.add("app", 0, 137, "")
			s.sandboxOff = true
			s.terminal = &terminalStatus{reason: "Evicted", message: "The node was low on resource: memory. ", disruption: true}
			return s
		}},
		{"rejected", func() *scenario {
			s := newScenario(spec("app"))
			s.noSandbox, s.podIPs = true, nil
			s.terminal = &terminalStatus{reason: "OutOfcpu", message: "Pod was rejected: Node didn't have enough resource: cpu, requested: 8000, used: 0, capacity: 4000", rejected: true}
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.MarshalIndent(tt.build().status(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join("testdata", "status", tt.name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodStatus_KeepsTransitionTimesAndTerminalPhase(t *testing.T) {
	s := newScenario(spec("app"))
	s.add("app", 0, -1, "")
	first := s.status()
	s.pod.Status = first
	later := computePodStatus(statusInput{
		pod: s.pod, rp: s.rp, podIPs: s.podIPs, hostIPs: []string{"192.0.2.10"}, runtimeName: "skiff",
		waiting: s.waiting, now: t0.Add(time.Hour),
		probe: func(string, prober.Kind) (prober.Result, bool) { return 0, false },
	})
	if diff := cmp.Diff(first.Conditions, later.Conditions); diff != "" {
		t.Errorf("unchanged conditions changed (-first +later):\n%s", diff)
	}
	s.pod.Status.Phase = corev1.PodSucceeded
	if got := computePodStatus(statusInput{pod: s.pod, rp: s.rp, now: t0, probe: func(string, prober.Kind) (prober.Result, bool) { return 0, false }}).Phase; got != corev1.PodSucceeded {
		t.Errorf("phase went from Succeeded to %s", got)
	}
}
