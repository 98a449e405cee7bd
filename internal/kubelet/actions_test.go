package kubelet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/kubelet/prober"
)

// actionsKubelet is a Kubelet with just what computeActions uses.
func actionsKubelet(clk *testingclock.FakeClock) *Kubelet {
	probes, _ := prober.NewManager(prober.Config{Runner: &prober.Runner{}, Clock: clk})
	return &Kubelet{
		clock: clk, probes: probes, recorder: record.NewFakeRecorder(1000),
		restarts: newBackoff(clk, backoffInitial, backoffMax),
	}
}

// summary is computeActions' result in words, for comparing.
type summary struct {
	NewSandbox bool
	Attempt    uint32
	Kill       []string
	Start      []string
	InitFailed bool
	Waits      map[string]string
}

func summarize(a podActions) summary {
	s := summary{NewSandbox: a.newSandbox, Attempt: a.sandboxAttempt, InitFailed: a.initFailed, Waits: map[string]string{}}
	for _, k := range a.kill {
		s.Kill = append(s.Kill, k.container.Name)
	}
	for _, c := range a.start {
		s.Start = append(s.Start, c.Name)
	}
	for n, w := range a.waits {
		s.Waits[n] = w.reason
	}
	return s
}

func TestComputeActions(t *testing.T) {
	tests := []struct {
		name  string
		build func(s *scenario)
		pod   func() *corev1.Pod
		want  summary
	}{
		{
			name: "NewPodGetsASandboxAndItsContainers",
			pod:  func() *corev1.Pod { return spec("a", "b") },
			build: func(s *scenario) {
				s.rp.sandboxes = nil
			},
			want: summary{NewSandbox: true, Start: []string{"a", "b"}},
		},
		{
			name:  "NewPodWithInitContainersStartsOnlyTheFirst",
			pod:   func() *corev1.Pod { return withInit(spec("app"), "one", "two") },
			build: func(s *scenario) { s.rp.sandboxes = nil },
			want:  summary{NewSandbox: true, Start: []string{"one"}},
		},
		{
			name: "RunningPodNeedsNothing",
			pod:  func() *corev1.Pod { return spec("a") },
			build: func(s *scenario) {
				s.add("a", 0, -1, "")
			},
			want: summary{},
		},
		{
			name: "InitDoneStartsApps",
			pod:  func() *corev1.Pod { return withInit(spec("app"), "one", "two") },
			build: func(s *scenario) {
				s.add("one", 0, 0, "")
				s.add("two", 0, 0, "")
			},
			want: summary{Start: []string{"app"}},
		},
		{
			name: "FailedInitRestartsAtOnceTheFirstTime",
			pod:  func() *corev1.Pod { return withInit(spec("app"), "one") },
			build: func(s *scenario) {
				s.add("one", 0, 1, "")
			},
			want: summary{Start: []string{"one"}},
		},
		{
			name: "FailedInitUnderNeverFailsThePod",
			pod: func() *corev1.Pod {
				p := withInit(spec("app"), "one")
				p.Spec.RestartPolicy = corev1.RestartPolicyNever
				return p
			},
			build: func(s *scenario) { s.add("one", 0, 1, "") },
			want:  summary{InitFailed: true},
		},
		{
			name: "SidecarMustStartBeforeTheNextInit",
			pod:  func() *corev1.Pod { return withInit(spec("app"), "sidecar", "two") },
			build: func(s *scenario) {
				s.add("sidecar", 0, -1, "")
			},
			want: summary{Start: []string{"two"}},
		},
		{
			name: "ExitedSidecarRestartsBesideRunningApps",
			pod:  func() *corev1.Pod { return withInit(spec("app"), "sidecar") },
			build: func(s *scenario) {
				s.add("sidecar", 0, 1, "")
				s.add("app", 0, -1, "")
			},
			want: summary{Start: []string{"sidecar"}},
		},
		{
			name: "ExitedAppRestartsUnderAlways",
			pod:  func() *corev1.Pod { return spec("a") },
			build: func(s *scenario) {
				s.add("a", 0, 0, "")
			},
			want: summary{Start: []string{"a"}},
		},
		{
			name: "SucceededAppStaysUnderOnFailure",
			pod: func() *corev1.Pod {
				p := spec("a")
				p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
				return p
			},
			build: func(s *scenario) { s.add("a", 0, 0, "") },
			want:  summary{},
		},
		{
			name: "DeadSandboxUnderNeverIsNotReplaced",
			pod: func() *corev1.Pod {
				p := spec("a")
				p.Spec.RestartPolicy = corev1.RestartPolicyNever
				return p
			},
			build: func(s *scenario) {
				s.add("a", 0, 137, "")
				s.rp.sandboxes[0].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
			},
			want: summary{},
		},
		{
			name: "DeadSandboxIsReplacedWithTheNextAttempt",
			pod:  func() *corev1.Pod { return spec("a") },
			build: func(s *scenario) {
				s.add("a", 0, 137, "")
				s.rp.sandboxes[0].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
			},
			want: summary{NewSandbox: true, Attempt: 1, Start: []string{"a"}},
		},
		{
			name: "ChangedImageRestarts",
			pod:  func() *corev1.Pod { return spec("a") },
			build: func(s *scenario) {
				c := s.add("a", 0, -1, "")
				c.Annotations = map[string]string{annotationHash: "old"}
			},
			want: summary{Kill: []string{"a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testingclock.NewFakeClock(t0.Add(time.Hour))
			k := actionsKubelet(clk)
			s := newScenario(tt.pod())
			tt.build(s)
			if diff := cmp.Diff(tt.want, summarize(k.computeActions(s.pod, s.rp)), cmp.Transformer("empty", func(m map[string]string) map[string]string {
				if len(m) == 0 {
					return nil
				}
				return m
			})); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeActions_CrashLoopHoldsTheSecondRestart(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	k := actionsKubelet(clk)
	s := newScenario(spec("a"))
	first := s.add("a", 0, 1, "")
	clk.SetTime(time.Unix(0, first.FinishedAt))
	if got := summarize(k.computeActions(s.pod, s.rp)); len(got.Start) != 1 {
		t.Fatalf("first crash: %+v, want an immediate restart", got)
	}
	second := s.add("a", 1, 1, "")
	clk.SetTime(time.Unix(0, second.FinishedAt).Add(time.Second))
	a := k.computeActions(s.pod, s.rp)
	if got := summarize(a); len(got.Start) != 0 || got.Waits["a"] != "CrashLoopBackOff" {
		t.Fatalf("second crash: %+v, want CrashLoopBackOff", got)
	}
	if want := time.Unix(0, second.FinishedAt).Add(10 * time.Second); !a.wakeAt.Equal(want) {
		t.Errorf("wake at %v, want %v", a.wakeAt, want)
	}
	clk.SetTime(a.wakeAt)
	if got := summarize(k.computeActions(s.pod, s.rp)); len(got.Start) != 1 {
		t.Errorf("after the backoff: %+v, want a restart", got)
	}
}
