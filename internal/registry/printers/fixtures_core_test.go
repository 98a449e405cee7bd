package printers

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	minute = time.Minute
	hour   = time.Hour
	day    = 24 * time.Hour
)

// running, waiting and terminated build container states.
func running(ago time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now.Add(-ago))}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, exit int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exit}}
}

// lastTerminated is a LastTerminationState that ended ago.
func lastTerminated(ago time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, FinishedAt: metav1.NewTime(now.Add(-ago))}}
}

func condition(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
	return corev1.PodCondition{Type: t, Status: s}
}

func containers(names ...string) []corev1.Container {
	out := make([]corev1.Container, len(names))
	for i, n := range names {
		out[i] = corev1.Container{Name: n, Image: "registry.local/" + n + ":1"}
	}
	return out
}

func sidecar(name string) corev1.Container {
	return corev1.Container{Name: name, Image: "registry.local/" + name + ":1", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways)}
}

// pod builds a scheduled pod with an IP.
func pod(name string, age time.Duration, spec corev1.PodSpec, status corev1.PodStatus) *corev1.Pod {
	if spec.NodeName == "" {
		spec.NodeName = "node-1"
	}
	if status.PodIP == "" && status.Phase != corev1.PodPending {
		status.PodIP = "10.244.0.7"
		status.PodIPs = []corev1.PodIP{{IP: "10.244.0.7"}}
	}
	return &corev1.Pod{ObjectMeta: objectMeta(name, age), Spec: spec, Status: status}
}

func podFixtures() []runtime.Object {
	readyConds := []corev1.PodCondition{
		condition(corev1.PodInitialized, corev1.ConditionTrue),
		condition(corev1.PodReady, corev1.ConditionTrue),
		condition(corev1.ContainersReady, corev1.ConditionTrue),
		condition(corev1.PodScheduled, corev1.ConditionTrue),
	}
	notReadyConds := []corev1.PodCondition{
		condition(corev1.PodInitialized, corev1.ConditionTrue),
		condition(corev1.PodReady, corev1.ConditionFalse),
		condition(corev1.PodScheduled, corev1.ConditionTrue),
	}
	deleted := ago(30 * time.Second)

	return []runtime.Object{
		// Not scheduled yet.
		&corev1.Pod{
			ObjectMeta: objectMeta("pending-unscheduled", 5*time.Second),
			Spec:       corev1.PodSpec{Containers: containers("app")},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable},
			}},
		},
		// Held back by a scheduling gate.
		&corev1.Pod{
			ObjectMeta: objectMeta("gated", 2*minute),
			Spec:       corev1.PodSpec{Containers: containers("app"), SchedulingGates: []corev1.PodSchedulingGate{{Name: "example.com/quota"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated},
			}},
		},
		// Scheduled, containers being created.
		pod("creating", 3*time.Second, corev1.PodSpec{Containers: containers("app", "log")}, corev1.PodStatus{
			Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: waiting("ContainerCreating")},
				{Name: "log", State: waiting("ContainerCreating")},
			},
		}),
		// Running and ready.
		pod("web-ready", 3*day, corev1.PodSpec{Containers: containers("web")}, corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: readyConds,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "web", Ready: true, Started: ptrTo(true), State: running(3 * day)},
			},
		}),
		// Running, one of two containers not ready.
		pod("web-not-ready", 40*minute, corev1.PodSpec{Containers: containers("web", "proxy")}, corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: notReadyConds,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "proxy", Ready: true, State: running(40 * minute)},
				{Name: "web", Ready: false, State: running(40 * minute)},
			},
		}),
		// Restarted three times, the last one two minutes ago.
		pod("restarted", 2*hour, corev1.PodSpec{Containers: containers("app")}, corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: readyConds,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Ready: true, RestartCount: 3, State: running(2 * minute), LastTerminationState: lastTerminated(2 * minute)},
			},
		}),
		// Main container crash looping.
		pod("crashloop", 10*minute, corev1.PodSpec{Containers: containers("app")}, corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: notReadyConds,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", RestartCount: 6, State: waiting("CrashLoopBackOff"), LastTerminationState: lastTerminated(45 * time.Second)},
			},
		}),
		// Image cannot be pulled.
		pod("bad-image", 90*time.Second, corev1.PodSpec{Containers: containers("app")}, corev1.PodStatus{
			Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: waiting("ImagePullBackOff")},
			},
		}),
		// Init container running.
		pod("init-running", 20*time.Second, corev1.PodSpec{InitContainers: containers("migrate"), Containers: containers("app")}, corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionFalse)},
			InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "migrate", State: running(15 * time.Second)},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: waiting("PodInitializing")},
			},
		}),
		// Second of two init containers crash looping.
		pod("init-crashloop", 6*minute, corev1.PodSpec{InitContainers: containers("fetch", "migrate"), Containers: containers("app")}, corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionFalse)},
			InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "fetch", State: terminated("Completed", 0)},
				{Name: "migrate", RestartCount: 4, State: waiting("CrashLoopBackOff"), LastTerminationState: lastTerminated(30 * time.Second)},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: waiting("PodInitializing")},
			},
		}),
		// Init container failed without a reason (restartPolicy Never).
		pod("init-failed", 1*hour, corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, InitContainers: containers("check"), Containers: containers("app")}, corev1.PodStatus{
			Phase: corev1.PodFailed,
			InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "check", State: terminated("", 3)},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: waiting("PodInitializing")},
			},
		}),
		// Init container killed by a signal.
		pod("init-signaled", 1*hour, corev1.PodSpec{InitContainers: containers("check"), Containers: containers("app")}, corev1.PodStatus{
			Phase: corev1.PodPending,
			InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "check", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Signal: 9, ExitCode: 137}}},
			},
		}),
		// Ran to completion.
		pod("job-done", 25*hour, corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: containers("task")}, corev1.PodStatus{
			Phase: corev1.PodSucceeded,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "task", State: terminated("Completed", 0)},
			},
		}),
		// Failed container.
		pod("job-error", 25*hour, corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: containers("task")}, corev1.PodStatus{
			Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "task", State: terminated("Error", 2)},
			},
		}),
		// Killed for memory.
		pod("oom", 3*hour, corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: containers("hog")}, corev1.PodStatus{
			Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "hog", State: terminated("OOMKilled", 137)},
			},
		}),
		// Failed with a pod-level reason.
		pod("evicted", 7*day, corev1.PodSpec{Containers: containers("app")}, corev1.PodStatus{
			Phase:   corev1.PodFailed,
			Reason:  "Evicted",
			Message: "The node was low on resource: memory.",
		}),
		// Being deleted.
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "terminating", Namespace: "default", CreationTimestamp: ago(12 * minute), DeletionTimestamp: &deleted},
			Spec:       corev1.PodSpec{NodeName: "node-2", Containers: containers("app")},
			Status: corev1.PodStatus{
				Phase: corev1.PodRunning, Conditions: readyConds, PodIP: "10.244.1.9", PodIPs: []corev1.PodIP{{IP: "10.244.1.9"}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: running(12 * minute)}},
			},
		},
		// Deleted on a node that went away.
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "node-lost", Namespace: "default", CreationTimestamp: ago(4 * day), DeletionTimestamp: &deleted},
			Spec:       corev1.PodSpec{NodeName: "node-3", Containers: containers("app")},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost", PodIP: "10.244.2.4"},
		},
		// A finished container beside a running one, pod not ready.
		pod("half-done", 8*minute, corev1.PodSpec{Containers: containers("setup", "serve")}, corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: notReadyConds,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "serve", Ready: true, State: running(8 * minute)},
				{Name: "setup", State: terminated("Completed", 0)},
			},
		}),
		// Sidecar started and ready, main container ready.
		pod("with-sidecar", 50*minute, corev1.PodSpec{InitContainers: []corev1.Container{sidecar("mesh")}, Containers: containers("app")}, corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: readyConds,
			InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "mesh", Ready: true, Started: ptrTo(true), RestartCount: 1, State: running(49 * minute), LastTerminationState: lastTerminated(49 * minute)},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Ready: true, Started: ptrTo(true), RestartCount: 2, State: running(5 * minute), LastTerminationState: lastTerminated(5 * minute)},
			},
		}),
		// Sidecar started, plain init container still running.
		pod("sidecar-then-init", 30*time.Second, corev1.PodSpec{InitContainers: []corev1.Container{sidecar("mesh"), containers("migrate")[0]}, Containers: containers("app")}, corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{condition(corev1.PodInitialized, corev1.ConditionFalse)},
			InitContainerStatuses: []corev1.ContainerStatus{
				{Name: "mesh", Ready: true, Started: ptrTo(true), State: running(25 * time.Second)},
				{Name: "migrate", State: running(20 * time.Second)},
			},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", State: waiting("PodInitializing")},
			},
		}),
		// Readiness gates, a nominated node, dual-stack IPs.
		&corev1.Pod{
			ObjectMeta: objectMeta("gates", 5*minute),
			Spec: corev1.PodSpec{
				Containers: containers("app"),
				ReadinessGates: []corev1.PodReadinessGate{
					{ConditionType: "example.com/lb-ready"},
					{ConditionType: "example.com/warm"},
				},
			},
			Status: corev1.PodStatus{
				Phase:             corev1.PodPending,
				NominatedNodeName: "node-4",
				PodIPs:            []corev1.PodIP{{IP: "fd00::7"}, {IP: "10.244.3.7"}},
				Conditions: []corev1.PodCondition{
					{Type: "example.com/lb-ready", Status: corev1.ConditionTrue},
					{Type: "example.com/warm", Status: corev1.ConditionFalse},
				},
			},
		},
	}
}

func nodeFixtures() []runtime.Object {
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: s},
		}
	}
	info := corev1.NodeSystemInfo{
		KubeletVersion:          "v1.37.2-skiff",
		OSImage:                 "Debian GNU/Linux 13 (trixie)",
		KernelVersion:           "6.12.0-1-amd64",
		ContainerRuntimeVersion: "skiff://0.1.0",
	}
	addrs := func(internal, external string) []corev1.NodeAddress {
		out := []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "host"}}
		if internal != "" {
			out = append(out, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: internal})
		}
		if external != "" {
			out = append(out, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: external})
		}
		return out
	}
	return []runtime.Object{
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "control-1", CreationTimestamp: ago(30 * day), Labels: map[string]string{
				"node-role.kubernetes.io/control-plane": "",
				"node-role.kubernetes.io/etcd":          "true",
				"kubernetes.io/hostname":                "control-1",
			}},
			Status: corev1.NodeStatus{Conditions: ready(corev1.ConditionTrue), NodeInfo: info, Addresses: addrs("192.168.1.10", "203.0.113.10")},
		},
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-1", CreationTimestamp: ago(29 * day), Labels: map[string]string{"kubernetes.io/role": "worker"}},
			Spec:       corev1.NodeSpec{Unschedulable: true},
			Status:     corev1.NodeStatus{Conditions: ready(corev1.ConditionTrue), NodeInfo: info, Addresses: addrs("192.168.1.11", "")},
		},
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-2", CreationTimestamp: ago(2 * hour)},
			Status:     corev1.NodeStatus{Conditions: ready(corev1.ConditionUnknown), NodeInfo: info, Addresses: addrs("192.168.1.12", "")},
		},
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "registering", CreationTimestamp: ago(4 * time.Second)},
			Spec:       corev1.NodeSpec{Unschedulable: true},
		},
	}
}

func namespaceFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", CreationTimestamp: ago(400 * day)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "old", CreationTimestamp: ago(3 * day)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unknown-age"}},
	}
}

func serviceFixtures() []runtime.Object {
	tcp := func(port, nodePort int32) corev1.ServicePort {
		return corev1.ServicePort{Port: port, NodePort: nodePort, Protocol: corev1.ProtocolTCP}
	}
	svc := func(name string, spec corev1.ServiceSpec, status corev1.ServiceStatus) *corev1.Service {
		return &corev1.Service{ObjectMeta: objectMeta(name, 6*day), Spec: spec, Status: status}
	}
	return []runtime.Object{
		svc("kubernetes", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"}, Ports: []corev1.ServicePort{tcp(443, 0)}}, corev1.ServiceStatus{}),
		svc("web", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.12.4", ClusterIPs: []string{"10.96.12.4", "fd00:96::c04"}, Selector: map[string]string{"app": "web", "tier": "front"}, Ports: []corev1.ServicePort{tcp(80, 0), {Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 7777, Protocol: corev1.ProtocolSCTP}}}, corev1.ServiceStatus{}),
		svc("headless", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}, Selector: map[string]string{"app": "db"}}, corev1.ServiceStatus{}),
		svc("not-normalized", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.3.3", Ports: []corev1.ServicePort{tcp(8080, 0)}}, corev1.ServiceStatus{}),
		svc("with-external-ips", corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: []string{"10.96.5.5"}, ExternalIPs: []string{"198.51.100.7", "198.51.100.8"}, Ports: []corev1.ServicePort{tcp(80, 0)}}, corev1.ServiceStatus{}),
		svc("nodeport", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIPs: []string{"10.96.7.1"}, Ports: []corev1.ServicePort{tcp(80, 30080), tcp(443, 30443)}}, corev1.ServiceStatus{}),
		svc("lb-pending", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.8.1"}, Ports: []corev1.ServicePort{tcp(80, 31000)}}, corev1.ServiceStatus{}),
		svc("lb-ready", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.8.2"}, Ports: []corev1.ServicePort{tcp(80, 31001)}},
			corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.20"}, {IP: "203.0.113.3", Hostname: "ignored.example.com"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.20"}}}}),
		svc("lb-and-external", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.8.3"}, ExternalIPs: []string{"198.51.100.9"}, Ports: []corev1.ServicePort{tcp(443, 31002)}},
			corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.30"}}}}),
		svc("lb-pending-external", corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.8.4"}, ExternalIPs: []string{"198.51.100.10"}, Ports: []corev1.ServicePort{tcp(443, 31003)}}, corev1.ServiceStatus{}),
		svc("external-name", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}, corev1.ServiceStatus{}),
		svc("no-type", corev1.ServiceSpec{ClusterIPs: []string{"10.96.9.9"}}, corev1.ServiceStatus{}),
	}
}

func endpointsFixtures() []runtime.Object {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		out := make([]corev1.EndpointAddress, len(ips))
		for i, ip := range ips {
			out[i] = corev1.EndpointAddress{IP: ip}
		}
		return out
	}
	ep := func(name string, subsets ...corev1.EndpointSubset) *corev1.Endpoints {
		return &corev1.Endpoints{ObjectMeta: objectMeta(name, 6*day), Subsets: subsets}
	}
	return []runtime.Object{
		ep("none"),
		ep("kubernetes", corev1.EndpointSubset{Addresses: addrs("192.168.1.10"), Ports: []corev1.EndpointPort{{Name: "https", Port: 6443}}}),
		ep("web", corev1.EndpointSubset{Addresses: addrs("10.244.0.7", "10.244.1.9"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}}}),
		ep("many", corev1.EndpointSubset{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}, {Name: "metrics", Port: 9090}}},
			corev1.EndpointSubset{Addresses: addrs("10.0.0.3"), Ports: []corev1.EndpointPort{{Name: "http", Port: 80}}}),
		ep("headless-no-ports", corev1.EndpointSubset{Addresses: addrs("10.244.0.20", "10.244.0.21")}),
		ep("ipv6", corev1.EndpointSubset{Addresses: addrs("fd00::1"), Ports: []corev1.EndpointPort{{Port: 8080}}}),
		ep("not-ready-only", corev1.EndpointSubset{NotReadyAddresses: addrs("10.244.0.30"), Ports: []corev1.EndpointPort{{Port: 80}}}),
	}
}

func configMapFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: objectMeta("kube-root-ca.crt", 6*day), Data: map[string]string{"ca.crt": "..."}},
		&corev1.ConfigMap{ObjectMeta: objectMeta("empty", 1*minute)},
		&corev1.ConfigMap{ObjectMeta: objectMeta("mixed", 1*hour), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"blob": {0}}},
	}
}

func secretFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.Secret{ObjectMeta: objectMeta("db-password", 2*day), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}},
		&corev1.Secret{ObjectMeta: objectMeta("web-tls", 90*day), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
		&corev1.Secret{ObjectMeta: objectMeta("string-data", 1*minute), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": nil}, StringData: map[string]string{"a": "over", "b": "new"}},
		&corev1.Secret{ObjectMeta: objectMeta("untyped", 1*minute)},
	}
}

func serviceAccountFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.ServiceAccount{ObjectMeta: objectMeta("default", 6*day)},
		&corev1.ServiceAccount{ObjectMeta: objectMeta("legacy", 700*day), Secrets: []corev1.ObjectReference{{Name: "legacy-token-abcde"}}},
	}
}

func coreEventFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.Event{
			ObjectMeta:     objectMeta("web-ready.17f0a", 10*minute),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-ready", FieldPath: "spec.containers{web}"},
			Reason:         "Pulled", Message: "Successfully pulled image \"registry.local/web:1\" in 1.2s\n",
			Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			FirstTimestamp: ago(10 * minute), LastTimestamp: ago(4 * minute), Count: 3, Type: corev1.EventTypeNormal,
		},
		&corev1.Event{
			ObjectMeta:     objectMeta("crashloop.17f0b", 9*minute),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "crashloop", FieldPath: "spec.containers{app}"},
			Reason:         "BackOff", Message: "Back-off restarting failed container app in pod crashloop_default",
			Type:      corev1.EventTypeWarning,
			EventTime: microAgo(9 * minute), ReportingController: "kubelet", ReportingInstance: "node-1",
			Series: &corev1.EventSeries{Count: 27, LastObservedTime: microAgo(20 * time.Second)},
		},
		&corev1.Event{
			ObjectMeta:     objectMeta("web.17f0c", 2*hour),
			InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			Reason:         "ScalingReplicaSet", Message: "Scaled up replica set web-5d8f7 from 0 to 3",
			Type: corev1.EventTypeNormal, EventTime: microAgo(2 * hour), ReportingController: "deployment-controller",
		},
		&corev1.Event{
			ObjectMeta:     objectMeta("cluster.17f0d", 3*day),
			InvolvedObject: corev1.ObjectReference{Kind: "Cluster"},
			Reason:         "Started", Message: "  ", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Host: "control-1"},
		},
	}
}

func eventsV1Fixtures() []runtime.Object {
	return []runtime.Object{
		&eventsv1.Event{
			ObjectMeta: objectMeta("web-ready.17f0a", 10*minute),
			Regarding:  corev1.ObjectReference{Kind: "Pod", Name: "web-ready", FieldPath: "spec.containers{web}"},
			Reason:     "Pulled", Note: "Successfully pulled image \"registry.local/web:1\" in 1.2s",
			Action: "Pulling", Type: corev1.EventTypeNormal,
			DeprecatedSource:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			DeprecatedFirstTimestamp: ago(10 * minute), DeprecatedLastTimestamp: ago(4 * minute), DeprecatedCount: 3,
		},
		&eventsv1.Event{
			ObjectMeta: objectMeta("crashloop.17f0b", 9*minute),
			Regarding:  corev1.ObjectReference{Kind: "Pod", Name: "crashloop", FieldPath: "spec.containers{app}"},
			Reason:     "BackOff", Note: "Back-off restarting failed container app in pod crashloop_default",
			Type: corev1.EventTypeWarning, EventTime: microAgo(9 * minute), ReportingController: "kubelet", ReportingInstance: "node-1",
			Series: &eventsv1.EventSeries{Count: 27, LastObservedTime: microAgo(20 * time.Second)},
		},
		&eventsv1.Event{
			ObjectMeta: objectMeta("web.17f0c", 2*hour),
			Regarding:  corev1.ObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			Reason:     "ScalingReplicaSet", Note: "Scaled up replica set web-5d8f7 from 0 to 3",
			Type: corev1.EventTypeNormal, EventTime: microAgo(2 * hour), ReportingController: "deployment-controller", ReportingInstance: "deployment-controller-control-1",
		},
	}
}

func resourceQuotaFixtures() []runtime.Object {
	q := resource.MustParse
	return []runtime.Object{
		&corev1.ResourceQuota{
			ObjectMeta: objectMeta("compute", 5*day),
			Status: corev1.ResourceQuotaStatus{
				Hard: corev1.ResourceList{"requests.cpu": q("4"), "requests.memory": q("8Gi"), "limits.cpu": q("8"), "limits.memory": q("16Gi"), "pods": q("20")},
				Used: corev1.ResourceList{"requests.cpu": q("1500m"), "requests.memory": q("2Gi"), "limits.cpu": q("3"), "pods": q("7")},
			},
		},
		&corev1.ResourceQuota{ObjectMeta: objectMeta("new", 2*time.Second), Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": q("5")}}},
	}
}

func replicationControllerFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.ReplicationController{
			ObjectMeta: objectMeta("legacy-web", 200*day),
			Spec: corev1.ReplicationControllerSpec{
				Replicas: ptrTo[int32](3), Selector: map[string]string{"app": "legacy-web"},
				Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers("web", "sidecar")}},
			},
			Status: corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 2},
		},
		&corev1.ReplicationController{ObjectMeta: objectMeta("bare", 1*minute)},
	}
}

func podTemplateFixtures() []runtime.Object {
	return []runtime.Object{
		&corev1.PodTemplate{
			ObjectMeta: objectMeta("batch-worker", 3*day),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "worker", "tier": "batch"}},
				Spec:       corev1.PodSpec{Containers: containers("worker", "uploader")},
			},
		},
		&corev1.PodTemplate{ObjectMeta: objectMeta("empty", 3*day)},
	}
}

func persistentVolumeFixtures() []runtime.Object {
	block := corev1.PersistentVolumeBlock
	deleted := ago(1 * minute)
	return []runtime.Object{
		&corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-bound", CreationTimestamp: ago(20 * day)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOnce},
				ClaimRef:    &corev1.ObjectReference{Namespace: "default", Name: "data"}, PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName: "local", VolumeMode: ptrTo(corev1.PersistentVolumeFilesystem),
			},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
		},
		&corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-released", CreationTimestamp: ago(40 * day), Annotations: map[string]string{corev1.BetaStorageClassAnnotation: "old-class"}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("500Mi")},
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod, corev1.ReadOnlyMany},
				ClaimRef:    &corev1.ObjectReference{Namespace: "team-a", Name: "scratch"}, PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				StorageClassName: "ignored", VolumeMode: &block, VolumeAttributesClassName: ptrTo("gold"),
			},
			Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeFailed, Reason: "VolumeFailedDelete"},
		},
		&corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-deleting", CreationTimestamp: ago(1 * hour), DeletionTimestamp: &deleted},
			Status:     corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
		},
	}
}

func persistentVolumeClaimFixtures() []runtime.Object {
	deleted := ago(1 * minute)
	return []runtime.Object{
		&corev1.PersistentVolumeClaim{
			ObjectMeta: objectMeta("data", 20*day),
			Spec: corev1.PersistentVolumeClaimSpec{
				VolumeName: "pv-bound", StorageClassName: ptrTo("local"), VolumeMode: ptrTo(corev1.PersistentVolumeFilesystem),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")}},
			},
			Status: corev1.PersistentVolumeClaimStatus{
				Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany},
				Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			},
		},
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "waiting", Namespace: "default", CreationTimestamp: ago(2 * minute), Annotations: map[string]string{corev1.BetaStorageClassAnnotation: "beta-class"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: ptrTo("ignored"), VolumeAttributesClassName: ptrTo("silver"),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
			Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
		},
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "going", Namespace: "default", CreationTimestamp: ago(9 * day), DeletionTimestamp: &deleted},
			Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pv-x"},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
		},
	}
}
