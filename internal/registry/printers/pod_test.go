package printers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestPodRow_AgreesWithUpstreamCases replays the cases of upstream's
// printer tests (TestPrintPod, TestPrintPodWithRestartableInitContainer,
// TestPrintPodwide) on v1 pods and expects the cells they expect.
func TestPodRow_AgreesWithUpstreamCases(t *testing.T) {
	tenSecondsAgo := ago(10 * time.Second)
	restartedAgo := func(d time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: ago(d)}}
	}
	runningState := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	emptyWaiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}
	sidecars := []corev1.Container{sidecar("restartable-init-1"), sidecar("restartable-init-2")}
	unnamed := func(n int) []corev1.Container { return make([]corev1.Container, n) }

	tests := []struct {
		name string
		pod  corev1.Pod
		want []interface{} // NAME, READY, STATUS, RESTARTS, AGE
	}{
		{
			name: "ready containers and restarts are summed",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test1"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: runningState},
					{RestartCount: 3},
				},
			}},
			want: []interface{}{"test1", "1/2", "podPhase", "6", "<unknown>"},
		},
		{
			name: "container waiting reason overrides the phase",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test2"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: runningState},
					{State: waiting("ContainerWaitingReason"), RestartCount: 3},
				},
			}},
			want: []interface{}{"test2", "1/2", "ContainerWaitingReason", "6", "<unknown>"},
		},
		{
			name: "first container's reason wins",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test3"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				ContainerStatuses: []corev1.ContainerStatus{
					{State: waiting("ContainerWaitingReason"), RestartCount: 3},
					{State: terminated("ContainerTerminatedReason", 0), RestartCount: 3},
				},
			}},
			want: []interface{}{"test3", "0/2", "ContainerWaitingReason", "6", "<unknown>"},
		},
		{
			name: "ready without running is not counted",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test4"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: runningState},
					{Ready: true, RestartCount: 3},
				},
			}},
			want: []interface{}{"test4", "1/2", "podPhase", "6", "<unknown>"},
		},
		{
			name: "pod reason overrides the phase",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test5"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Reason: "podReason", Phase: "podPhase",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: runningState},
					{Ready: true, RestartCount: 3},
				},
			}},
			want: []interface{}{"test5", "1/2", "podReason", "6", "<unknown>"},
		},
		{
			name: "completed beside running without ready condition is NotReady",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test6"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "Running",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: terminated("Completed", 0)},
					{Ready: true, RestartCount: 3, State: runningState},
				},
			}},
			want: []interface{}{"test6", "1/2", "NotReady", "6", "<unknown>"},
		},
		{
			name: "completed beside running with ready condition is Running",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test6"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "Running",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: terminated("Completed", 0)},
					{Ready: true, RestartCount: 3, State: runningState},
				},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastProbeTime: ago(0)}},
			}},
			want: []interface{}{"test6", "1/2", "Running", "6", "<unknown>"},
		},
		{
			name: "restarting init container",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test7"}, Spec: corev1.PodSpec{InitContainers: unnamed(1), Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:                 "podPhase",
				InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(10 * time.Second)}},
				ContainerStatuses:     []corev1.ContainerStatus{{State: emptyWaiting}},
			}},
			want: []interface{}{"test7", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"},
		},
		{
			name: "first of two init containers restarting",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test8"}, Spec: corev1.PodSpec{InitContainers: unnamed(2), Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				InitContainerStatuses: []corev1.ContainerStatus{
					{RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(10 * time.Second)},
					{State: emptyWaiting},
				},
				ContainerStatuses: []corev1.ContainerStatus{{State: emptyWaiting}},
			}},
			want: []interface{}{"test8", "0/1", "Init:0/2", "3 (10s ago)", "<unknown>"},
		},
		{
			name: "second init container restarting after a clean first",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test9"}, Spec: corev1.PodSpec{InitContainers: unnamed(2), Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				InitContainerStatuses: []corev1.ContainerStatus{
					{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
					{RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(10 * time.Second)},
				},
				ContainerStatuses: []corev1.ContainerStatus{{State: emptyWaiting}},
			}},
			want: []interface{}{"test9", "0/1", "Init:1/2", "3 (10s ago)", "<unknown>"},
		},
		{
			name: "init restarts are summed, latest restart shown",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test10"}, Spec: corev1.PodSpec{InitContainers: unnamed(2), Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "podPhase",
				InitContainerStatuses: []corev1.ContainerStatus{
					{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, LastTerminationState: restartedAgo(2 * time.Minute)},
					{RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(10 * time.Second)},
				},
				ContainerStatuses: []corev1.ContainerStatus{{State: emptyWaiting}},
			}},
			want: []interface{}{"test10", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"},
		},
		{
			name: "after initialization only container restarts count",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test11"}, Spec: corev1.PodSpec{InitContainers: unnamed(1), Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:                 "Running",
				InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, LastTerminationState: restartedAgo(2 * time.Minute)}},
				ContainerStatuses:     []corev1.ContainerStatus{{RestartCount: 4, State: runningState, LastTerminationState: restartedAgo(20 * time.Second)}},
			}},
			want: []interface{}{"test11", "0/1", "Running", "4 (20s ago)", "<unknown>"},
		},
		{
			name: "restart five days ago",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test12"}, Spec: corev1.PodSpec{Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:             "Running",
				ContainerStatuses: []corev1.ContainerStatus{{Ready: true, RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(5 * day)}},
			}},
			want: []interface{}{"test12", "1/1", "Running", "3 (5d ago)", "<unknown>"},
		},
		{
			name: "one container never restarted",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test13"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "Running",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, State: runningState},
					{Ready: true, RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(10 * day)},
				},
			}},
			want: []interface{}{"test13", "2/2", "Running", "3 (10d ago)", "<unknown>"},
		},
		{
			name: "latest of two restarts shown",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test14"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase: "Running",
				ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 6, State: runningState, LastTerminationState: restartedAgo(5 * day)},
					{Ready: true, RestartCount: 3, State: runningState, LastTerminationState: restartedAgo(20 * day)},
				},
			}},
			want: []interface{}{"test14", "2/2", "Running", "9 (5d ago)", "<unknown>"},
		},
		{
			name: "scheduling gated",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test15"}, Spec: corev1.PodSpec{Containers: unnamed(2)}, Status: corev1.PodStatus{
				Phase:      "podPhase",
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}},
			}},
			want: []interface{}{"test15", "0/2", "SchedulingGated", "0", "<unknown>"},
		},
		{
			name: "succeeded",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test16"}, Spec: corev1.PodSpec{Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:             corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}},
			}},
			want: []interface{}{"test16", "0/1", "Completed", "0", "<unknown>"},
		},
		{
			name: "failed",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test17"}, Spec: corev1.PodSpec{Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:             corev1.PodFailed,
				ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Error", 1)}},
			}},
			want: []interface{}{"test17", "0/1", "Error", "0", "<unknown>"},
		},
		{
			name: "succeeded and deleted stays Completed",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test18", DeletionTimestamp: &tenSecondsAgo}, Spec: corev1.PodSpec{Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:             corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}},
			}},
			want: []interface{}{"test18", "0/1", "Completed", "0", "<unknown>"},
		},
		{
			name: "running and deleted is Terminating",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test19", DeletionTimestamp: &tenSecondsAgo}, Spec: corev1.PodSpec{Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase:             "Running",
				ContainerStatuses: []corev1.ContainerStatus{{State: runningState}},
			}},
			want: []interface{}{"test19", "0/1", "Terminating", "0", "<unknown>"},
		},
		{
			name: "pending and deleted is Terminating",
			pod:  corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test20", DeletionTimestamp: &tenSecondsAgo}, Spec: corev1.PodSpec{Containers: unnamed(1)}, Status: corev1.PodStatus{Phase: "Pending"}},
			want: []interface{}{"test20", "0/1", "Terminating", "0", "<unknown>"},
		},
		{
			name: "sidecars running but not started",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test1"}, Spec: corev1.PodSpec{InitContainers: sidecars, Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "Pending",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: runningState, Started: ptrTo(false), LastTerminationState: restartedAgo(10 * time.Second)},
					{Name: "restartable-init-2", State: emptyWaiting, Started: ptrTo(false)},
				},
				ContainerStatuses: []corev1.ContainerStatus{{State: emptyWaiting}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse}},
			}},
			want: []interface{}{"test1", "0/3", "Init:0/2", "3 (10s ago)", "<unknown>"},
		},
		{
			name: "first sidecar started, second not",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test1"}, Spec: corev1.PodSpec{InitContainers: sidecars, Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "Pending",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: runningState, Started: ptrTo(true), LastTerminationState: restartedAgo(10 * time.Second)},
					{Name: "restartable-init-2", State: runningState, Started: ptrTo(false)},
				},
				ContainerStatuses: []corev1.ContainerStatus{{State: emptyWaiting}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse}},
			}},
			want: []interface{}{"test1", "0/3", "Init:1/2", "3 (10s ago)", "<unknown>"},
		},
		{
			name: "sidecars started and container running",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test2"}, Spec: corev1.PodSpec{InitContainers: sidecars, Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "Running",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: runningState, Started: ptrTo(true), LastTerminationState: restartedAgo(10 * time.Second)},
					{Name: "restartable-init-2", State: runningState, Started: ptrTo(true)},
				},
				ContainerStatuses: []corev1.ContainerStatus{{Ready: true, RestartCount: 4, State: runningState, LastTerminationState: restartedAgo(20 * time.Second)}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
			}},
			want: []interface{}{"test2", "1/3", "Running", "7 (10s ago)", "<unknown>"},
		},
		{
			name: "sidecars terminated and container completed",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test3"}, Spec: corev1.PodSpec{InitContainers: sidecars, Containers: unnamed(1)}, Status: corev1.PodStatus{
				Phase: "Succeeded",
				InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "restartable-init-1", RestartCount: 3, State: terminated("Error", 137), Started: ptrTo(false), LastTerminationState: restartedAgo(10 * time.Second)},
					{Name: "restartable-init-2", State: terminated("Error", 137), Started: ptrTo(false)},
				},
				ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 4, State: terminated("Completed", 0), LastTerminationState: restartedAgo(20 * time.Second)}},
				Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
			}},
			want: []interface{}{"test3", "0/3", "Completed", "7 (10s ago)", "<unknown>"},
		},
		{
			name: "statuses of containers missing from the spec",
			pod: corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test4"}, Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init1", Image: "initimage"}, sidecar("sidecar1")},
				Containers:     []corev1.Container{{Name: "container1", Image: "containerimage"}},
			}, Status: corev1.PodStatus{
				Phase:                 "Running",
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "initinvalid"}, {Name: "init1"}, {Name: "sidecar1"}},
				ContainerStatuses:     []corev1.ContainerStatus{{Name: "containerinvalid"}, {Name: "container1"}},
			}},
			want: []interface{}{"test4", "0/2", "Init:0/2", "0", "<unknown>"},
		},
	}

	table := For(schema.GroupResource{Resource: "pods"}, Options{Now: fixedNow})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells, err := table.Row(&tt.pod)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cells[:5]); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodRow_WideCells(t *testing.T) {
	gates := []corev1.PodReadinessGate{{ConditionType: "condition1"}, {ConditionType: "condition2"}, {ConditionType: "condition3"}}
	gateConds := []corev1.PodCondition{{Type: "condition1", Status: corev1.ConditionFalse}, {Type: "condition2", Status: corev1.ConditionTrue}}
	tests := []struct {
		name   string
		status corev1.PodStatus
		spec   corev1.PodSpec
		want   []interface{} // IP, NODE, NOMINATED NODE, READINESS GATES
	}{
		{
			name:   "node, IP, nominated node and gates",
			spec:   corev1.PodSpec{NodeName: "test1", ReadinessGates: gates},
			status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "1.1.1.1"}}, NominatedNodeName: "node1", Conditions: gateConds},
			want:   []interface{}{"1.1.1.1", "test1", "node1", "1/3"},
		},
		{
			name:   "first of dual-stack IPs",
			spec:   corev1.PodSpec{NodeName: "test1", ReadinessGates: gates},
			status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "1.1.1.1"}, {IP: "2001:db8::"}}, NominatedNodeName: "node1", Conditions: gateConds},
			want:   []interface{}{"1.1.1.1", "test1", "node1", "1/3"},
		},
		{
			name: "nothing assigned",
			want: []interface{}{"<none>", "<none>", "<none>", "<none>"},
		},
		{
			name:   "podIP wins over podIPs as in conversion",
			status: corev1.PodStatus{PodIP: "10.0.0.2", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}},
			want:   []interface{}{"10.0.0.2", "<none>", "<none>", "<none>"},
		},
		{
			name:   "podIP alone",
			status: corev1.PodStatus{PodIP: "10.0.0.3"},
			want:   []interface{}{"10.0.0.3", "<none>", "<none>", "<none>"},
		},
		{
			name:   "first matching condition decides a gate",
			spec:   corev1.PodSpec{ReadinessGates: gates[:1]},
			status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: "condition1", Status: corev1.ConditionFalse}, {Type: "condition1", Status: corev1.ConditionTrue}}},
			want:   []interface{}{"<none>", "<none>", "<none>", "0/1"},
		},
	}
	table := For(schema.GroupResource{Resource: "pods"}, Options{Now: fixedNow})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Containers = make([]corev1.Container, 2)
			cells, err := table.Row(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: tt.spec, Status: tt.status})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cells[5:]); diff != "" {
				t.Errorf("wide cells (-want +got):\n%s", diff)
			}
		})
	}
}
