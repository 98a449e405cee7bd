package openapi

import (
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// skiffResources is what skiff serves today: the list the tests document.
func skiffResources() []Resource {
	core := schema.GroupVersion{Version: "v1"}
	apps := appsv1.SchemeGroupVersion
	rw := []string{VerbGet, VerbUpdate, VerbPatch}
	status := func(obj runtime.Object) Subresource {
		return Subresource{Name: "status", Object: obj, Verbs: rw}
	}
	scale := Subresource{Name: "scale", Object: &autoscalingv1.Scale{}, Kind: autoscalingv1.SchemeGroupVersion.WithKind("Scale"), Verbs: rw}
	connect := func(name string, options runtime.Object, verbs ...string) Subresource {
		return Subresource{Name: name, Options: options, Verbs: verbs, Connect: true}
	}
	proxy := func(options runtime.Object) Subresource {
		s := connect("proxy", options, VerbGet, VerbCreate, VerbUpdate, VerbPatch, VerbDelete)
		s.WithPath = true
		return s
	}
	readOnly := []string{VerbGet, VerbList}
	return []Resource{
		{GroupVersion: core, Resource: "namespaces", Kind: "Namespace", Object: &corev1.Namespace{}, List: &corev1.NamespaceList{},
			Verbs:        []string{VerbCreate, VerbDelete, VerbGet, VerbList, VerbPatch, VerbUpdate, VerbWatch},
			Subresources: []Subresource{status(&corev1.Namespace{}), {Name: "finalize", Object: &corev1.Namespace{}, Verbs: []string{VerbUpdate}}}},
		{GroupVersion: core, Resource: "pods", Kind: "Pod", Namespaced: true, Object: &corev1.Pod{}, List: &corev1.PodList{},
			Subresources: []Subresource{
				status(&corev1.Pod{}),
				{Name: "binding", Object: &corev1.Binding{}, Kind: core.WithKind("Binding"), Verbs: []string{VerbCreate}},
				{Name: "log", Options: &corev1.PodLogOptions{}, Verbs: []string{VerbGet}},
				connect("exec", &corev1.PodExecOptions{}, VerbGet, VerbCreate),
				connect("attach", &corev1.PodAttachOptions{}, VerbGet, VerbCreate),
				connect("portforward", &corev1.PodPortForwardOptions{}, VerbGet, VerbCreate),
				{Name: "eviction", Object: &policyv1.Eviction{}, Kind: policyv1.SchemeGroupVersion.WithKind("Eviction"), Verbs: []string{VerbCreate}},
				{Name: "ephemeralcontainers", Object: &corev1.Pod{}, Verbs: rw},
				proxy(&corev1.PodProxyOptions{}),
			}},
		{GroupVersion: core, Resource: "nodes", Kind: "Node", Object: &corev1.Node{}, List: &corev1.NodeList{},
			Subresources: []Subresource{status(&corev1.Node{}), proxy(&corev1.NodeProxyOptions{})}},
		{GroupVersion: core, Resource: "services", Kind: "Service", Namespaced: true, Object: &corev1.Service{}, List: &corev1.ServiceList{},
			Subresources: []Subresource{status(&corev1.Service{}), proxy(&corev1.ServiceProxyOptions{})}},
		{GroupVersion: core, Resource: "endpoints", Kind: "Endpoints", Namespaced: true, Object: &corev1.Endpoints{}, List: &corev1.EndpointsList{}},
		{GroupVersion: core, Resource: "configmaps", Kind: "ConfigMap", Namespaced: true, Object: &corev1.ConfigMap{}, List: &corev1.ConfigMapList{}},
		{GroupVersion: core, Resource: "secrets", Kind: "Secret", Namespaced: true, Object: &corev1.Secret{}, List: &corev1.SecretList{}},
		{GroupVersion: core, Resource: "serviceaccounts", Kind: "ServiceAccount", Namespaced: true, Object: &corev1.ServiceAccount{}, List: &corev1.ServiceAccountList{},
			Subresources: []Subresource{{Name: "token", Object: &authenticationv1.TokenRequest{}, Kind: authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"), Verbs: []string{VerbCreate}}}},
		{GroupVersion: core, Resource: "events", Kind: "Event", Namespaced: true, Object: &corev1.Event{}, List: &corev1.EventList{}},
		{GroupVersion: core, Resource: "limitranges", Kind: "LimitRange", Namespaced: true, Object: &corev1.LimitRange{}, List: &corev1.LimitRangeList{}},
		{GroupVersion: core, Resource: "resourcequotas", Kind: "ResourceQuota", Namespaced: true, Object: &corev1.ResourceQuota{}, List: &corev1.ResourceQuotaList{},
			Subresources: []Subresource{status(&corev1.ResourceQuota{})}},
		{GroupVersion: core, Resource: "replicationcontrollers", Kind: "ReplicationController", Namespaced: true, Object: &corev1.ReplicationController{}, List: &corev1.ReplicationControllerList{},
			Subresources: []Subresource{status(&corev1.ReplicationController{}), scale}},
		{GroupVersion: core, Resource: "podtemplates", Kind: "PodTemplate", Namespaced: true, Object: &corev1.PodTemplate{}, List: &corev1.PodTemplateList{}},

		{GroupVersion: eventsv1.SchemeGroupVersion, Resource: "events", Kind: "Event", Namespaced: true, Object: &eventsv1.Event{}, List: &eventsv1.EventList{}},

		{GroupVersion: apps, Resource: "deployments", Kind: "Deployment", Namespaced: true, Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{},
			Subresources: []Subresource{status(&appsv1.Deployment{}), scale}},
		{GroupVersion: apps, Resource: "replicasets", Kind: "ReplicaSet", Namespaced: true, Object: &appsv1.ReplicaSet{}, List: &appsv1.ReplicaSetList{},
			Subresources: []Subresource{status(&appsv1.ReplicaSet{}), scale}},
		{GroupVersion: apps, Resource: "statefulsets", Kind: "StatefulSet", Namespaced: true, Object: &appsv1.StatefulSet{}, List: &appsv1.StatefulSetList{},
			Subresources: []Subresource{status(&appsv1.StatefulSet{}), scale}},
		{GroupVersion: apps, Resource: "daemonsets", Kind: "DaemonSet", Namespaced: true, Object: &appsv1.DaemonSet{}, List: &appsv1.DaemonSetList{},
			Subresources: []Subresource{status(&appsv1.DaemonSet{})}},
		{GroupVersion: apps, Resource: "controllerrevisions", Kind: "ControllerRevision", Namespaced: true, Object: &appsv1.ControllerRevision{}, List: &appsv1.ControllerRevisionList{}},

		{GroupVersion: batchv1.SchemeGroupVersion, Resource: "jobs", Kind: "Job", Namespaced: true, Object: &batchv1.Job{}, List: &batchv1.JobList{},
			Subresources: []Subresource{status(&batchv1.Job{})}},
		{GroupVersion: batchv1.SchemeGroupVersion, Resource: "cronjobs", Kind: "CronJob", Namespaced: true, Object: &batchv1.CronJob{}, List: &batchv1.CronJobList{},
			Subresources: []Subresource{status(&batchv1.CronJob{})}},

		{GroupVersion: coordinationv1.SchemeGroupVersion, Resource: "leases", Kind: "Lease", Namespaced: true, Object: &coordinationv1.Lease{}, List: &coordinationv1.LeaseList{}},
		{GroupVersion: discoveryv1.SchemeGroupVersion, Resource: "endpointslices", Kind: "EndpointSlice", Namespaced: true, Object: &discoveryv1.EndpointSlice{}, List: &discoveryv1.EndpointSliceList{}},
		{GroupVersion: schedulingv1.SchemeGroupVersion, Resource: "priorityclasses", Kind: "PriorityClass", Object: &schedulingv1.PriorityClass{}, List: &schedulingv1.PriorityClassList{}},

		{GroupVersion: rbacv1.SchemeGroupVersion, Resource: "roles", Kind: "Role", Namespaced: true, Object: &rbacv1.Role{}, List: &rbacv1.RoleList{}},
		{GroupVersion: rbacv1.SchemeGroupVersion, Resource: "clusterroles", Kind: "ClusterRole", Object: &rbacv1.ClusterRole{}, List: &rbacv1.ClusterRoleList{}},
		{GroupVersion: rbacv1.SchemeGroupVersion, Resource: "rolebindings", Kind: "RoleBinding", Namespaced: true, Object: &rbacv1.RoleBinding{}, List: &rbacv1.RoleBindingList{}},
		{GroupVersion: rbacv1.SchemeGroupVersion, Resource: "clusterrolebindings", Kind: "ClusterRoleBinding", Object: &rbacv1.ClusterRoleBinding{}, List: &rbacv1.ClusterRoleBindingList{}},

		{GroupVersion: metricsv1beta1.SchemeGroupVersion, Resource: "nodes", Kind: "NodeMetrics", Verbs: readOnly, Object: &metricsv1beta1.NodeMetrics{}, List: &metricsv1beta1.NodeMetricsList{}},
		{GroupVersion: metricsv1beta1.SchemeGroupVersion, Resource: "pods", Kind: "PodMetrics", Namespaced: true, Verbs: readOnly, Object: &metricsv1beta1.PodMetrics{}, List: &metricsv1beta1.PodMetricsList{}},
	}
}
