package printers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestRow_AgreesWithUpstreamCases replays cases of upstream's printer
// tests for the other resources, on v1 objects, with every cell (the
// server always prints wide). "Just created" is 1.9s in the future there,
// which prints as 0s; "5m" is 300s ago.
func TestRow_AgreesWithUpstreamCases(t *testing.T) {
	justNow := ago(-1900 * time.Millisecond)
	fiveMin := ago(5 * time.Minute)
	meta := func(name string, created metav1.Time) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, CreationTimestamp: created}
	}
	twoContainers := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "fake-container1", Image: "fake-image1"}, {Name: "fake-container2", Image: "fake-image2"},
	}}}
	fooBar := &metav1.LabelSelector{MatchLabels: map[string]string{"foo": "bar"}}
	core := func(r string) schema.GroupResource { return schema.GroupResource{Resource: r} }
	gr := func(g, r string) schema.GroupResource { return schema.GroupResource{Group: g, Resource: r} }

	tests := []struct {
		name string
		gr   schema.GroupResource
		obj  runtime.Object
		want []interface{}
	}{
		{
			name: "node with only a kernel version",
			gr:   core("nodes"),
			obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo1"}, Status: corev1.NodeStatus{
				NodeInfo: corev1.NodeSystemInfo{KernelVersion: "fake-kernel-version"}, Addresses: []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}},
			}},
			want: []interface{}{"foo1", "Unknown", "<none>", "<unknown>", "", "<none>", "1.1.1.1", "<unknown>", "fake-kernel-version", "<unknown>"},
		},
		{
			name: "node addresses: first of each type",
			gr:   core("nodes"),
			obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo3"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeExternalIP, Address: "2.2.2.2"}, {Type: corev1.NodeInternalIP, Address: "3.3.3.3"}, {Type: corev1.NodeExternalIP, Address: "4.4.4.4"},
			}}},
			want: []interface{}{"foo3", "Unknown", "<none>", "<unknown>", "", "3.3.3.3", "2.2.2.2", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "load balancer with several ingress points is not shortened",
			gr:   core("services"),
			obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "service4"}, Spec: corev1.ServiceSpec{
				ClusterIPs: []string{"1.5.6.7"}, Type: "LoadBalancer", Selector: map[string]string{"foo": "bar"},
				Ports: []corev1.ServicePort{{Port: 80, Protocol: "TCP"}, {Port: 8090, Protocol: "UDP"}, {Port: 8000, Protocol: "TCP"}},
			}, Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "2.3.4.5"}, {IP: "3.4.5.6"}, {IP: "5.6.7.8", Hostname: "host5678"}}}}},
			want: []interface{}{"service4", "LoadBalancer", "1.5.6.7", "2.3.4.5,3.4.5.6,5.6.7.8", "80/TCP,8090/UDP,8000/TCP", "<unknown>", "foo=bar"},
		},
		{
			name: "pending load balancer",
			gr:   core("services"),
			obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "service2"}, Spec: corev1.ServiceSpec{
				ClusterIPs: []string{"1.3.4.5"}, Type: "LoadBalancer",
				Ports: []corev1.ServicePort{{Port: 80, Protocol: "TCP"}, {Port: 8090, Protocol: "UDP"}, {Port: 8000, Protocol: "TCP"}, {Port: 7777, Protocol: "SCTP"}},
			}},
			want: []interface{}{"service2", "LoadBalancer", "1.3.4.5", "<pending>", "80/TCP,8090/UDP,8000/TCP,7777/SCTP", "<unknown>", "<none>"},
		},
		{
			name: "ingress",
			gr:   gr("networking.k8s.io", "ingresses"),
			obj: &networkingv1.Ingress{ObjectMeta: meta("test1", ago(10*365*day)), Spec: networkingv1.IngressSpec{
				IngressClassName: ptrTo("foo"),
				DefaultBackend:   &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "default-backend", Port: networkingv1.ServiceBackendPort{Name: "default-backend", Number: 80}}},
			}, Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "2.3.4.5", Hostname: "localhost.localdomain"}}}}},
			want: []interface{}{"test1", "foo", "*", "2.3.4.5", "80", "10y"},
		},
		{
			name: "ingress class parameters with API group",
			gr:   gr("networking.k8s.io", "ingressclasses"),
			obj: &networkingv1.IngressClass{ObjectMeta: meta("test1", ago(10*365*day)), Spec: networkingv1.IngressClassSpec{
				Controller: "example.com/controller",
				Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptrTo("example.com"), Kind: "customgroup", Name: "example"},
			}},
			want: []interface{}{"test1", "example.com/controller", "customgroup.example.com/example", "10y"},
		},
		{
			name: "ingress class without parameters",
			gr:   gr("networking.k8s.io", "ingressclasses"),
			obj:  &networkingv1.IngressClass{ObjectMeta: meta("test2", ago(11*365*day)), Spec: networkingv1.IngressClassSpec{Controller: "example.com/controller2"}},
			want: []interface{}{"test2", "example.com/controller2", "<none>", "11y"},
		},
		{
			name: "controller revision owned by a daemon set",
			gr:   gr("apps", "controllerrevisions"),
			obj: &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "test1", CreationTimestamp: justNow, OwnerReferences: []metav1.OwnerReference{
				{Controller: ptrTo(true), APIVersion: "apps/v1", Kind: "DaemonSet", Name: "foo"},
			}}, Revision: 1},
			want: []interface{}{"test1", "daemonset.apps/foo", int64(1), "0s"},
		},
		{
			name: "controller revision with a non-controller owner",
			gr:   gr("apps", "controllerrevisions"),
			obj: &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "test2", CreationTimestamp: justNow, OwnerReferences: []metav1.OwnerReference{
				{Controller: ptrTo(false), Kind: "ABC", Name: "foo"},
			}}, Revision: 2},
			want: []interface{}{"test2", "<none>", int64(2), "0s"},
		},
		{
			name: "config map with data and binary data",
			gr:   core("configmaps"),
			obj:  &corev1.ConfigMap{ObjectMeta: meta("configmap3", justNow), Data: map[string]string{"foo": "bar"}, BinaryData: map[string][]byte{"bin": []byte("binary data")}},
			want: []interface{}{"configmap3", int64(2), "0s"},
		},
		{
			name: "network policy with empty selector",
			gr:   gr("networking.k8s.io", "networkpolicies"),
			obj:  &networkingv1.NetworkPolicy{ObjectMeta: meta("policy1", justNow)},
			want: []interface{}{"policy1", "<none>", "0s"},
		},
		{
			name: "role binding with every kind of subject",
			gr:   gr("rbac.authorization.k8s.io", "rolebindings"),
			obj: &rbacv1.RoleBinding{ObjectMeta: meta("binding2", justNow), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "role-name"}, Subjects: []rbacv1.Subject{
				{Kind: "User", Name: "user-name"}, {Kind: "Group", Name: "group-name"}, {Kind: "ServiceAccount", Name: "service-account-name", Namespace: "service-account-namespace"},
			}},
			want: []interface{}{"binding2", "Role/role-name", "0s", "user-name", "group-name", "service-account-namespace/service-account-name"},
		},
		{
			name: "replication controller",
			gr:   core("replicationcontrollers"),
			obj: &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc1"}, Spec: corev1.ReplicationControllerSpec{
				Replicas: ptrTo[int32](5), Selector: map[string]string{"a": "b"},
				Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "test", Image: "test_image"}}}},
			}, Status: corev1.ReplicationControllerStatus{Replicas: 3, ReadyReplicas: 1}},
			want: []interface{}{"rc1", int64(5), int64(3), int64(1), "<unknown>", "test", "test_image", "a=b"},
		},
		{
			name: "replication controller without template",
			gr:   core("replicationcontrollers"),
			obj:  &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}, Spec: corev1.ReplicationControllerSpec{Replicas: ptrTo[int32](0)}},
			want: []interface{}{"", int64(0), int64(0), int64(0), "<unknown>", "", "", "<none>"},
		},
		{
			name: "replica set",
			gr:   gr("apps", "replicasets"),
			obj: &appsv1.ReplicaSet{ObjectMeta: meta("test1", justNow), Spec: appsv1.ReplicaSetSpec{Replicas: ptrTo[int32](5), Template: twoContainers, Selector: fooBar},
				Status: appsv1.ReplicaSetStatus{Replicas: 5, ReadyReplicas: 2}},
			want: []interface{}{"test1", int64(5), int64(5), int64(2), "0s", "fake-container1,fake-container2", "fake-image1,fake-image2", "foo=bar"},
		},
		{
			name: "stateful set",
			gr:   gr("apps", "statefulsets"),
			obj: &appsv1.StatefulSet{ObjectMeta: meta("test1", justNow), Spec: appsv1.StatefulSetSpec{Replicas: ptrTo[int32](5), Template: twoContainers},
				Status: appsv1.StatefulSetStatus{Replicas: 5, ReadyReplicas: 2}},
			want: []interface{}{"test1", "2/5", "0s", "fake-container1,fake-container2", "fake-image1,fake-image2"},
		},
		{
			name: "deployment",
			gr:   gr("apps", "deployments"),
			obj: &appsv1.Deployment{ObjectMeta: meta("test1", justNow), Spec: appsv1.DeploymentSpec{Replicas: ptrTo[int32](5), Template: twoContainers, Selector: fooBar},
				Status: appsv1.DeploymentStatus{Replicas: 10, UpdatedReplicas: 2, AvailableReplicas: 1, UnavailableReplicas: 4}},
			want: []interface{}{"test1", "0/5", int64(2), int64(1), "0s", "fake-container1,fake-container2", "fake-image1,fake-image2", "foo=bar"},
		},
		{
			name: "daemon set",
			gr:   gr("apps", "daemonsets"),
			obj: &appsv1.DaemonSet{ObjectMeta: meta("test1", justNow), Spec: appsv1.DaemonSetSpec{Template: twoContainers, Selector: fooBar},
				Status: appsv1.DaemonSetStatus{CurrentNumberScheduled: 2, DesiredNumberScheduled: 3, NumberReady: 1, UpdatedNumberScheduled: 2}},
			want: []interface{}{"test1", int64(3), int64(2), int64(1), int64(2), int64(0), "<none>", "0s", "fake-container1,fake-container2", "fake-image1,fake-image2", "foo=bar"},
		},
		{
			name: "job with completions",
			gr:   gr("batch", "jobs"),
			obj: &batchv1.Job{ObjectMeta: meta("job1", justNow), Spec: batchv1.JobSpec{Completions: ptrTo[int32](2), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "fake-job-container1", Image: "fake-job-image1"}, {Name: "fake-job-container2", Image: "fake-job-image2"},
			}}}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"job-label": "job-label-value"}}}, Status: batchv1.JobStatus{Succeeded: 1}},
			want: []interface{}{"job1", "Running", "1/2", "", "0s", "fake-job-container1,fake-job-container2", "fake-job-image1,fake-job-image2", "job-label=job-label-value"},
		},
		{
			name: "job duration from start to completion",
			gr:   gr("batch", "jobs"),
			obj: &batchv1.Job{ObjectMeta: meta("job3", ago(10*365*day)), Status: batchv1.JobStatus{
				StartTime: agoPtr(-time.Minute), CompletionTime: agoPtr(-31 * time.Minute),
			}},
			want: []interface{}{"job3", "Running", "0/1", "30m", "10y", "", "", "<none>"},
		},
		{
			name: "job running for twenty minutes",
			gr:   gr("batch", "jobs"),
			obj:  &batchv1.Job{ObjectMeta: meta("job4", ago(10*365*day)), Status: batchv1.JobStatus{StartTime: agoPtr(20 * time.Minute)}},
			want: []interface{}{"job4", "Running", "0/1", "20m", "10y", "", "", "<none>"},
		},
		{
			name: "deleted job",
			gr:   gr("batch", "jobs"),
			obj:  &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job9", CreationTimestamp: justNow, DeletionTimestamp: &justNow}},
			want: []interface{}{"job9", "Terminating", "0/1", "", "0s", "", "", "<none>"},
		},
		{
			name: "cron job",
			gr:   gr("batch", "cronjobs"),
			obj: &batchv1.CronJob{ObjectMeta: meta("cronjob1", justNow), Spec: batchv1.CronJobSpec{
				Schedule: "0/5 * * * ?", Suspend: ptrTo(false),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Completions: ptrTo[int32](2), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "fake-job-container1", Image: "fake-job-image1"}, {Name: "fake-job-container2", Image: "fake-job-image2"},
				}}}, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}}},
			}, Status: batchv1.CronJobStatus{LastScheduleTime: &justNow}},
			want: []interface{}{"cronjob1", "0/5 * * * ?", "<none>", "False", int64(0), "0s", "0s", "fake-job-container1,fake-job-container2", "fake-job-image1,fake-job-image2", "a=b"},
		},
		{
			name: "cron job with time zone, never scheduled",
			gr:   gr("batch", "cronjobs"),
			obj:  &batchv1.CronJob{ObjectMeta: meta("cronjob3", fiveMin), Spec: batchv1.CronJobSpec{Schedule: "0/5 * * * ?", TimeZone: ptrTo("LOCAL"), Suspend: ptrTo(false)}},
			want: []interface{}{"cronjob3", "0/5 * * * ?", "LOCAL", "False", int64(0), "<none>", "5m", "", "", "<none>"},
		},
		{
			name: "storage class with defaults",
			gr:   gr("storage.k8s.io", "storageclasses"),
			obj:  &storagev1.StorageClass{ObjectMeta: meta("sc1", justNow), Provisioner: "kubernetes.io/glusterfs"},
			want: []interface{}{"sc1", "kubernetes.io/glusterfs", "Delete", "Immediate", false, "0s"},
		},
		{
			name: "storage class with everything set",
			gr:   gr("storage.k8s.io", "storageclasses"),
			obj: &storagev1.StorageClass{ObjectMeta: meta("sc6", fiveMin), Provisioner: "kubernetes.io/nfs", ReclaimPolicy: ptrTo(corev1.PersistentVolumeReclaimRetain),
				AllowVolumeExpansion: ptrTo(true), VolumeBindingMode: ptrTo(storagev1.VolumeBindingWaitForFirstConsumer)},
			want: []interface{}{"sc6", "kubernetes.io/nfs", "Retain", "WaitForFirstConsumer", true, "5m"},
		},
		{
			name: "lease",
			gr:   gr("coordination.k8s.io", "leases"),
			obj:  &coordinationv1.Lease{ObjectMeta: meta("lease2", fiveMin), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptrTo("holder2")}},
			want: []interface{}{"lease2", "holder2", "5m"},
		},
		{
			name: "priority class without preemption policy",
			gr:   gr("scheduling.k8s.io", "priorityclasses"),
			obj:  &schedulingv1.PriorityClass{ObjectMeta: meta("pc2", fiveMin), Value: 1000000000, GlobalDefault: true},
			want: []interface{}{"pc2", int64(1000000000), true, "5m", ""},
		},
		{
			name: "endpoints beyond three",
			gr:   core("endpoints"),
			obj: &corev1.Endpoints{ObjectMeta: meta("endpoint2", justNow), Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: "1.2.3.4"}, {IP: "5.6.7.8"}, {IP: "9.8.7.6"}, {IP: "6.6.6.6"}},
				Ports:     []corev1.EndpointPort{{Port: 8001, Protocol: "tcp"}},
			}}},
			want: []interface{}{"endpoint2", "1.2.3.4:8001,5.6.7.8:8001,9.8.7.6:8001 + 1 more...", "0s"},
		},
		{
			name: "endpoints without ports",
			gr:   core("endpoints"),
			obj:  &corev1.Endpoints{ObjectMeta: meta("endpoint3", fiveMin), Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "1.2.3.4"}, {IP: "5.6.7.8"}}}}},
			want: []interface{}{"endpoint3", "1.2.3.4,5.6.7.8", "5m"},
		},
		{
			name: "endpoint slice with many ports and addresses",
			gr:   gr("discovery.k8s.io", "endpointslices"),
			obj: &discoveryv1.EndpointSlice{ObjectMeta: meta("multiportslice.123", fiveMin), AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{
					{Name: ptrTo("http"), Port: ptrTo[int32](80)}, {Name: ptrTo("https"), Port: ptrTo[int32](443)},
					{Name: ptrTo("extra1"), Port: ptrTo[int32](3000)}, {Name: ptrTo("extra2"), Port: ptrTo[int32](3001)},
				},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3", "2001:db8::1234:5678"}}, {Addresses: []string{"10.2.3.4", "2001:db8::2345:6789"}}}},
			want: []interface{}{"multiportslice.123", "IPv4", "80,443,3000 + 1 more...", "10.1.2.3,2001:db8::1234:5678,10.2.3.4 + 1 more...", "5m"},
		},
		{
			name: "bound persistent volume",
			gr:   core("persistentvolumes"),
			obj: &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "test1"}, Spec: corev1.PersistentVolumeSpec{
				ClaimRef: &corev1.ObjectReference{Name: "test", Namespace: "default"}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
				Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("4Gi")},
			}, Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound}},
			want: []interface{}{"test1", "4Gi", "ROX", "", "Bound", "default/test", "", "<unset>", "", "<unknown>", "<unset>"},
		},
		{
			name: "lost claim shows no capacity without a volume",
			gr:   core("persistentvolumeclaims"),
			obj: &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "test2"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeMode: ptrTo(corev1.PersistentVolumeFilesystem)},
				Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimLost, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
					Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("4Gi")}}},
			want: []interface{}{"test2", "Lost", "", "", "", "", "<unset>", "<unknown>", "Filesystem"},
		},
		{
			name: "claim with class and attributes class",
			gr:   core("persistentvolumeclaims"),
			obj: &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "test5"}, Spec: corev1.PersistentVolumeClaimSpec{
				VolumeName: "my-volume", StorageClassName: ptrTo("my-scn"), VolumeAttributesClassName: ptrTo("my-vacn"),
			}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}},
			want: []interface{}{"test5", "Pending", "my-volume", "10Gi", "RWO", "my-scn", "my-vacn", "<unknown>", "<unset>"},
		},
		{
			name: "events.k8s.io singleton event counts once",
			gr:   gr("events.k8s.io", "events"),
			obj: &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e"}, Regarding: corev1.ObjectReference{Kind: "Node", Name: "n1"},
				Type: "Normal", Reason: "Starting", Note: "Starting kubelet.", EventTime: metav1.NewMicroTime(now.Add(-3 * time.Minute)), ReportingController: "kubelet"},
			want: []interface{}{"3m", "Normal", "Starting", "node/n1", "", "kubelet", "Starting kubelet.", "3m", int64(1), "e"},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := For(tt.gr, Options{Now: fixedNow})
			got, err := table.Row(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}
