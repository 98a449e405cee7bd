package job

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func TestIntervals(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		completions int
		add         []int
		want        string
		total       int
	}{
		{"empty", "", 5, nil, "", 0},
		{"single_and_range", "1,3-5", 10, nil, "1,3-5", 4},
		{"merges_adjacent_additions", "1,3-5", 10, []int{2, 6}, "1-6", 6},
		{"keeps_order_of_additions", "", 10, []int{7, 0, 3}, "0,3,7", 3},
		{"drops_indexes_past_completions", "0-9", 4, nil, "0-3", 4},
		{"skips_malformed_parts", "a,2,5-3,-1,4", 10, nil, "2,4", 2},
		{"merges_overlapping_parts", "1-3,2-6", 10, nil, "1-6", 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := parseIntervals(tc.in, tc.completions).withIndexes(tc.add)
			if got := v.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := v.total(); got != tc.total {
				t.Errorf("total() = %d, want %d", got, tc.total)
			}
		})
	}
}

func TestBackoffRemaining(t *testing.T) {
	base, maxDelay := 10*time.Second, time.Minute
	cases := []struct {
		name     string
		failures int32
		elapsed  time.Duration
		want     time.Duration
	}{
		{"no_failures_no_wait", 0, 0, 0},
		{"first_failure_waits_base", 1, 2 * time.Second, 8 * time.Second},
		{"doubles_per_failure", 3, 0, 40 * time.Second},
		{"capped", 10, 0, time.Minute},
		{"over_once_elapsed", 2, 30 * time.Second, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := backoffRecord{failuresAfterLastSuccess: tc.failures, lastFailure: t0}
			if got := r.remaining(t0.Add(tc.elapsed), base, maxDelay); got != tc.want {
				t.Errorf("remaining = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBackoffStore_CountsFailuresAfterLastSuccess(t *testing.T) {
	at := func(d time.Duration, phase corev1.PodPhase) *corev1.Pod {
		p := &corev1.Pod{}
		p.Status.Phase = phase
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(t0.Add(d))}}}}
		return p
	}
	s := newBackoffStore()
	r := s.next("k", nil, []*corev1.Pod{at(1, corev1.PodFailed), at(3, corev1.PodFailed)}, t0)
	if r.failuresAfterLastSuccess != 2 || !r.lastFailure.Equal(t0.Add(3)) {
		t.Fatalf("after two failures: %+v", r)
	}
	s.store("k", r)
	r = s.next("k", []*corev1.Pod{at(5, corev1.PodSucceeded)}, []*corev1.Pod{at(4, corev1.PodFailed), at(6, corev1.PodFailed)}, t0)
	if r.failuresAfterLastSuccess != 1 || !r.lastFailure.Equal(t0.Add(6)) {
		t.Fatalf("a success resets the count to the failures after it: %+v", r)
	}
}

func TestMatchPodFailurePolicy(t *testing.T) {
	exit := func(name string, code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
	}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptrTo("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2}}},
	}}
	cases := []struct {
		name   string
		status corev1.PodStatus
		want   policyMatch
	}{
		{"disruption_is_ignored", corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}}, policyMatch{action: batchv1.PodFailurePolicyActionIgnore}},
		{"exit_42_in_main_fails_the_job", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{exit("main", 42)}},
			policyMatch{failJob: "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1", count: true, action: batchv1.PodFailurePolicyActionFailJob}},
		{"exit_42_in_a_sidecar_counts", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{exit("side", 42)}}, policyMatch{count: true, action: batchv1.PodFailurePolicyActionCount}},
		{"init_container_exit_codes_match", corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{exit("main", 42)}},
			policyMatch{failJob: "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1", count: true, action: batchv1.PodFailurePolicyActionFailJob}},
		{"exit_1_matches_no_rule_and_counts", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{exit("main", 1)}}, policyMatch{count: true}},
		{"exit_0_never_matches", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{exit("main", 0)}}, policyMatch{count: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: tc.status}
			if diff := cmp.Diff(tc.want, matchPodFailurePolicy(policy, p), cmp.AllowUnexported(policyMatch{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSortForRemoval(t *testing.T) {
	mk := func(name, node string, phase corev1.PodPhase, ready bool, created time.Duration) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(created))}}
		p.Spec.NodeName = node
		p.Status.Phase = phase
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		return p
	}
	pods := []*corev1.Pod{
		mk("ready-old", "n", corev1.PodRunning, true, 0),
		mk("running", "n", corev1.PodRunning, false, 0),
		mk("unscheduled", "", corev1.PodPending, false, 0),
		mk("pending", "n", corev1.PodPending, false, 0),
		mk("ready-new", "n", corev1.PodRunning, true, time.Minute),
	}
	sortForRemoval(pods)
	var got []string
	for _, p := range pods {
		got = append(got, p.Name)
	}
	want := []string{"unscheduled", "pending", "running", "ready-new", "ready-old"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no_client", Config{Informers: factory}, "client is required"},
		{"no_informers", Config{Client: client}, "informer factory is required"},
		{"negative_workers", Config{Client: client, Informers: factory, Workers: -1}, "workers -1 is negative"},
		{"max_backoff_below_base", Config{Client: client, Informers: factory, PodFailureBackoff: time.Minute, MaxPodFailureBackoff: time.Second}, "max pod failure backoff 1s is below pod failure backoff 1m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestIndexedGenerateName_KeepsIndexOfLongNames(t *testing.T) {
	long := strings.Repeat("a", 63)
	got := indexedGenerateName(long, 12345)
	if len(got) != maxGenerateName || !strings.HasSuffix(got, "-12345-") {
		t.Errorf("indexedGenerateName = %q (%d chars)", got, len(got))
	}
	if got := indexedGenerateName("pi", 3); got != "pi-3-" {
		t.Errorf("indexedGenerateName = %q, want pi-3-", got)
	}
}
