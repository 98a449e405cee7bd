package printers

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func template(names ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers(names...)}}
}

func matchLabels(kv ...string) *metav1.LabelSelector {
	m := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func deploymentFixtures() []runtime.Object {
	return []runtime.Object{
		&appsv1.Deployment{
			ObjectMeta: objectMeta("web", 6*day),
			Spec:       appsv1.DeploymentSpec{Replicas: ptrTo[int32](3), Selector: matchLabels("app", "web"), Template: template("web", "proxy")},
			Status:     appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
		},
		&appsv1.Deployment{
			ObjectMeta: objectMeta("rolling", 20*minute),
			Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](5), Template: template("api"), Selector: &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app": "api"},
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "track", Operator: metav1.LabelSelectorOpIn, Values: []string{"canary", "stable"}}},
			}},
			Status: appsv1.DeploymentStatus{Replicas: 6, ReadyReplicas: 4, UpdatedReplicas: 2, AvailableReplicas: 4, UnavailableReplicas: 2},
		},
		&appsv1.Deployment{
			ObjectMeta: objectMeta("scaled-down", 2*day),
			Spec:       appsv1.DeploymentSpec{Replicas: ptrTo[int32](0), Selector: matchLabels("app", "idle"), Template: template("idle")},
		},
		&appsv1.Deployment{
			ObjectMeta: objectMeta("bad-selector", 1*minute),
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}},
			}},
		},
	}
}

func replicaSetFixtures() []runtime.Object {
	return []runtime.Object{
		&appsv1.ReplicaSet{
			ObjectMeta: objectMeta("web-5d8f7", 6*day),
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptrTo[int32](3), Selector: matchLabels("app", "web", "pod-template-hash", "5d8f7"), Template: template("web")},
			Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2},
		},
		&appsv1.ReplicaSet{ObjectMeta: objectMeta("web-old", 9*day), Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo[int32](0)}},
	}
}

func statefulSetFixtures() []runtime.Object {
	return []runtime.Object{
		&appsv1.StatefulSet{
			ObjectMeta: objectMeta("db", 15*day),
			Spec:       appsv1.StatefulSetSpec{Replicas: ptrTo[int32](3), Selector: matchLabels("app", "db"), Template: template("postgres", "exporter")},
			Status:     appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 1},
		},
		&appsv1.StatefulSet{ObjectMeta: objectMeta("unset-replicas", 5*time.Second)},
	}
}

func daemonSetFixtures() []runtime.Object {
	return []runtime.Object{
		&appsv1.DaemonSet{
			ObjectMeta: objectMeta("proxy", 30*day),
			Spec: appsv1.DaemonSetSpec{Selector: matchLabels("app", "proxy"), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: containers("proxy"), NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			}}},
			Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 4, CurrentNumberScheduled: 4, NumberReady: 3, UpdatedNumberScheduled: 4, NumberAvailable: 3},
		},
		&appsv1.DaemonSet{ObjectMeta: objectMeta("fresh", 1*time.Second)},
	}
}

func controllerRevisionFixtures() []runtime.Object {
	owned := func(name, apiVersion, kind string, controller bool, rev int64) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(3 * day), OwnerReferences: []metav1.OwnerReference{
				{APIVersion: apiVersion, Kind: kind, Name: "owner", Controller: ptrTo(controller)},
			}},
			Revision: rev,
		}
	}
	return []runtime.Object{
		owned("proxy-7c9d", "apps/v1", "DaemonSet", true, 3),
		owned("db-6b5f", "apps/v1", "StatefulSet", true, 12),
		owned("core-owner", "v1", "Widget", true, 1),
		owned("not-controller", "apps/v1", "DaemonSet", false, 2),
		&appsv1.ControllerRevision{ObjectMeta: objectMeta("orphan", 3*day), Revision: 1},
	}
}

func jobFixtures() []runtime.Object {
	job := func(name string, age time.Duration, spec batchv1.JobSpec, status batchv1.JobStatus) *batchv1.Job {
		if spec.Selector == nil {
			spec.Selector = matchLabels("batch.kubernetes.io/controller-uid", "1f2e")
		}
		if len(spec.Template.Spec.Containers) == 0 {
			spec.Template = template("task")
		}
		return &batchv1.Job{ObjectMeta: objectMeta(name, age), Spec: spec, Status: status}
	}
	cond := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}
	deleted := ago(5 * time.Second)
	terminating := job("terminating", 1*hour, batchv1.JobSpec{Completions: ptrTo[int32](1)}, batchv1.JobStatus{StartTime: agoPtr(1 * hour)})
	terminating.DeletionTimestamp = &deleted
	return []runtime.Object{
		job("running", 12*minute, batchv1.JobSpec{Completions: ptrTo[int32](3), Parallelism: ptrTo[int32](1)}, batchv1.JobStatus{Succeeded: 1, Active: 1, StartTime: agoPtr(12 * minute)}),
		job("complete", 2*day, batchv1.JobSpec{Completions: ptrTo[int32](1)}, batchv1.JobStatus{Succeeded: 1, StartTime: agoPtr(2 * day), CompletionTime: agoPtr(2*day - 95*time.Second), Conditions: cond(batchv1.JobComplete)}),
		job("failed", 3*hour, batchv1.JobSpec{Completions: ptrTo[int32](1)}, batchv1.JobStatus{Failed: 7, StartTime: agoPtr(3 * hour), Conditions: cond(batchv1.JobFailed)}),
		job("work-queue", 30*minute, batchv1.JobSpec{Parallelism: ptrTo[int32](4)}, batchv1.JobStatus{Succeeded: 2, StartTime: agoPtr(29 * minute)}),
		job("single", 30*minute, batchv1.JobSpec{}, batchv1.JobStatus{}),
		job("suspended", 4*day, batchv1.JobSpec{Completions: ptrTo[int32](2), Suspend: ptrTo(true)}, batchv1.JobStatus{Conditions: cond(batchv1.JobSuspended)}),
		job("failing", 6*minute, batchv1.JobSpec{Completions: ptrTo[int32](1)}, batchv1.JobStatus{StartTime: agoPtr(6 * minute), Conditions: cond(batchv1.JobFailureTarget)}),
		terminating,
	}
}

func cronJobFixtures() []runtime.Object {
	return []runtime.Object{
		&batchv1.CronJob{
			ObjectMeta: objectMeta("nightly", 60*day),
			Spec: batchv1.CronJobSpec{
				Schedule: "0 3 * * *", TimeZone: ptrTo("Europe/Paris"), Suspend: ptrTo(false),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("backup", "upload")}},
			},
			Status: batchv1.CronJobStatus{LastScheduleTime: agoPtr(9 * hour), Active: []corev1.ObjectReference{{Name: "nightly-29001"}}},
		},
		&batchv1.CronJob{
			ObjectMeta: objectMeta("paused", 10*day),
			Spec: batchv1.CronJobSpec{
				Schedule: "*/5 * * * *", Suspend: ptrTo(true),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Selector: matchLabels("app", "poll"), Template: template("poll")}},
			},
		},
		&batchv1.CronJob{ObjectMeta: objectMeta("undefaulted", 1*minute), Spec: batchv1.CronJobSpec{Schedule: "@hourly"}},
	}
}

func leaseFixtures() []runtime.Object {
	return []runtime.Object{
		&coordinationv1.Lease{ObjectMeta: objectMeta("kube-scheduler", 6*day), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptrTo("control-1_4b1c")}},
		&coordinationv1.Lease{ObjectMeta: objectMeta("released", 1*day)},
	}
}

func endpointSliceFixtures() []runtime.Object {
	endpoints := func(addrs ...[]string) []discoveryv1.Endpoint {
		out := make([]discoveryv1.Endpoint, len(addrs))
		for i, a := range addrs {
			out[i] = discoveryv1.Endpoint{Addresses: a}
		}
		return out
	}
	return []runtime.Object{
		&discoveryv1.EndpointSlice{
			ObjectMeta: objectMeta("web-abcde", 6*day), AddressType: discoveryv1.AddressTypeIPv4,
			Ports:     []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo[int32](80)}},
			Endpoints: endpoints([]string{"10.244.0.7"}, []string{"10.244.1.9"}),
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta: objectMeta("many-xyz", 1*hour), AddressType: discoveryv1.AddressTypeIPv6,
			Ports:     []discoveryv1.EndpointPort{{Port: ptrTo[int32](80)}, {Name: ptrTo("metrics")}, {}, {Port: ptrTo[int32](443)}, {Port: ptrTo[int32](8443)}},
			Endpoints: endpoints([]string{"fd00::1", "fd00::2"}, []string{"fd00::3"}, []string{"fd00::4"}, []string{"fd00::5"}),
		},
		&discoveryv1.EndpointSlice{ObjectMeta: objectMeta("empty-123", 5*time.Second), AddressType: discoveryv1.AddressTypeFQDN},
	}
}

func priorityClassFixtures() []runtime.Object {
	return []runtime.Object{
		&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical", CreationTimestamp: ago(6 * day)}, Value: 2000001000, PreemptionPolicy: ptrTo(corev1.PreemptLowerPriority)},
		&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "batch-default", CreationTimestamp: ago(2 * day)}, Value: -10, GlobalDefault: true, PreemptionPolicy: ptrTo(corev1.PreemptNever)},
		&schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "undefaulted", CreationTimestamp: ago(1 * minute)}, Value: 100},
	}
}

func subjects() []rbacv1.Subject {
	return []rbacv1.Subject{
		{Kind: rbacv1.UserKind, Name: "alice"},
		{Kind: rbacv1.GroupKind, Name: "system:masters"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: "kube-system", Name: "builder"},
		{Kind: rbacv1.UserKind, Name: "bob"},
		{Kind: "Robot", Name: "r2"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "default"},
	}
}

func roleBindingFixtures() []runtime.Object {
	return []runtime.Object{
		&rbacv1.RoleBinding{ObjectMeta: objectMeta("editors", 5*day), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"}, Subjects: subjects()},
		&rbacv1.RoleBinding{ObjectMeta: objectMeta("nobody", 5*day), RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"}},
	}
}

func clusterRoleBindingFixtures() []runtime.Object {
	return []runtime.Object{
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin", CreationTimestamp: ago(6 * day)}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: subjects()[1:2]},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mixed", CreationTimestamp: ago(1 * hour)}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}, Subjects: subjects()},
	}
}

func ingressFixtures() []runtime.Object {
	rule := func(host string) networkingv1.IngressRule { return networkingv1.IngressRule{Host: host} }
	return []runtime.Object{
		&networkingv1.Ingress{
			ObjectMeta: objectMeta("site", 9*day),
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptrTo("nginx"),
				Rules:            []networkingv1.IngressRule{rule("www.example.com"), rule(""), rule("api.example.com")},
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{"www.example.com"}}},
			},
			Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{
				{Hostname: "lb-1234567890.elb.example.com"}, {IP: "203.0.113.40"}, {IP: "203.0.113.4", Hostname: "unused"},
			}}},
		},
		&networkingv1.Ingress{
			ObjectMeta: objectMeta("many-hosts", 1*day),
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{
				rule(""), rule("a.example.com"), rule("b.example.com"), rule(""), rule("c.example.com"), rule("d.example.com"), rule(""),
			}},
		},
		&networkingv1.Ingress{
			ObjectMeta: objectMeta("exactly-three", 1*day),
			Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("a.example.com"), rule("b.example.com"), rule("c.example.com")}},
		},
		&networkingv1.Ingress{ObjectMeta: objectMeta("default-backend", 2*minute)},
	}
}

func ingressClassFixtures() []runtime.Object {
	return []runtime.Object{
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx", CreationTimestamp: ago(9 * day)}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "external-lb", CreationTimestamp: ago(9 * day)}, Spec: networkingv1.IngressClassSpec{
			Controller: "example.com/ingress-controller",
			Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptrTo("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"},
		}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "core-params", CreationTimestamp: ago(9 * day)}, Spec: networkingv1.IngressClassSpec{
			Controller: "example.com/other",
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "ConfigMap", Name: "settings"},
		}},
	}
}

func networkPolicyFixtures() []runtime.Object {
	return []runtime.Object{
		&networkingv1.NetworkPolicy{ObjectMeta: objectMeta("deny-all", 4*day)},
		&networkingv1.NetworkPolicy{ObjectMeta: objectMeta("db-access", 4*day), Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{
			MatchLabels:      map[string]string{"app": "db"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"dev"}}},
		}}},
	}
}

func storageClassFixtures() []runtime.Object {
	retain := corev1.PersistentVolumeReclaimRetain
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	return []runtime.Object{
		&storagev1.StorageClass{
			ObjectMeta:  metav1.ObjectMeta{Name: "local", CreationTimestamp: ago(6 * day), Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
			Provisioner: "skiff.sh/local-path", ReclaimPolicy: &retain, VolumeBindingMode: &wait, AllowVolumeExpansion: ptrTo(true),
		},
		&storagev1.StorageClass{
			ObjectMeta:  metav1.ObjectMeta{Name: "old-default", CreationTimestamp: ago(600 * day), Annotations: map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}},
			Provisioner: "kubernetes.io/no-provisioner",
		},
		&storagev1.StorageClass{
			ObjectMeta:  metav1.ObjectMeta{Name: "not-default", CreationTimestamp: ago(1 * day), Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "false"}},
			Provisioner: "example.com/nfs", AllowVolumeExpansion: ptrTo(false),
		},
	}
}

func podDisruptionBudgetFixtures() []runtime.Object {
	return []runtime.Object{
		&policyv1.PodDisruptionBudget{
			ObjectMeta: objectMeta("web", 6*day),
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptrTo(intstr.FromInt32(2)), Selector: matchLabels("app", "web")},
			Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 1},
		},
		&policyv1.PodDisruptionBudget{
			ObjectMeta: objectMeta("db", 6*day),
			Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptrTo(intstr.FromString("25%")), Selector: matchLabels("app", "db")},
		},
		&policyv1.PodDisruptionBudget{ObjectMeta: objectMeta("empty", 1*minute)},
	}
}

func defaultFixtures() []runtime.Object {
	return []runtime.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", Namespace: "default", CreationTimestamp: metav1.NewTime(time.Date(2026, 6, 30, 9, 15, 0, 0, time.FixedZone("CEST", 2*60*60)))}},
		&corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits", Namespace: "default", CreationTimestamp: ago(3 * day)}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "no-timestamp"}},
	}
}
