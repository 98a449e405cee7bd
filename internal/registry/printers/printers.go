package printers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Options tune the tables For builds. The zero value is ready to use.
type Options struct {
	// Now returns the current time, which ages ("5m", "3 (2m ago)") are
	// computed against. Nil means time.Now. Tests inject a fixed clock.
	Now func() time.Time
}

// For returns the table of the resource gr (core resources have the empty
// group: {Resource: "pods"}), or nil when upstream has no printer for it:
// the caller then uses Default. Each call builds a new Table; it is safe
// to share between goroutines.
func For(gr schema.GroupResource, opts Options) *Table {
	c := clock{now: opts.Now}
	if c.now == nil {
		c.now = time.Now
	}
	switch gr {
	// core/v1
	case schema.GroupResource{Resource: "pods"}:
		return podTable(c)
	case schema.GroupResource{Resource: "nodes"}:
		return nodeTable(c)
	case schema.GroupResource{Resource: "namespaces"}:
		return namespaceTable(c)
	case schema.GroupResource{Resource: "services"}:
		return serviceTable(c)
	case schema.GroupResource{Resource: "endpoints"}:
		return endpointsTable(c)
	case schema.GroupResource{Resource: "configmaps"}:
		return configMapTable(c)
	case schema.GroupResource{Resource: "secrets"}:
		return secretTable(c)
	case schema.GroupResource{Resource: "serviceaccounts"}:
		return serviceAccountTable(c)
	case schema.GroupResource{Resource: "events"}:
		return coreEventTable(c)
	case schema.GroupResource{Resource: "resourcequotas"}:
		return resourceQuotaTable(c)
	case schema.GroupResource{Resource: "replicationcontrollers"}:
		return replicationControllerTable(c)
	case schema.GroupResource{Resource: "podtemplates"}:
		return podTemplateTable()
	case schema.GroupResource{Resource: "persistentvolumes"}:
		return persistentVolumeTable(c)
	case schema.GroupResource{Resource: "persistentvolumeclaims"}:
		return persistentVolumeClaimTable(c)

	case schema.GroupResource{Group: "events.k8s.io", Resource: "events"}:
		return eventsV1Table(c)

	case schema.GroupResource{Group: "apps", Resource: "deployments"}:
		return deploymentTable(c)
	case schema.GroupResource{Group: "apps", Resource: "replicasets"}:
		return replicaSetTable(c)
	case schema.GroupResource{Group: "apps", Resource: "statefulsets"}:
		return statefulSetTable(c)
	case schema.GroupResource{Group: "apps", Resource: "daemonsets"}:
		return daemonSetTable(c)
	case schema.GroupResource{Group: "apps", Resource: "controllerrevisions"}:
		return controllerRevisionTable(c)

	case schema.GroupResource{Group: "batch", Resource: "jobs"}:
		return jobTable(c)
	case schema.GroupResource{Group: "batch", Resource: "cronjobs"}:
		return cronJobTable(c)

	case schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}:
		return leaseTable(c)
	case schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}:
		return endpointSliceTable(c)
	case schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}:
		return priorityClassTable(c)

	case schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}:
		return roleBindingTable(c)
	case schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}:
		return clusterRoleBindingTable(c)

	case schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}:
		return ingressTable(c)
	case schema.GroupResource{Group: "networking.k8s.io", Resource: "ingressclasses"}:
		return ingressClassTable(c)
	case schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}:
		return networkPolicyTable(c)

	case schema.GroupResource{Group: "storage.k8s.io", Resource: "storageclasses"}:
		return storageClassTable(c)
	case schema.GroupResource{Group: "policy", Resource: "poddisruptionbudgets"}:
		return podDisruptionBudgetTable(c)
	}
	return nil
}

// Resources lists the resources For has a table for, in no particular
// order. The caller owns the returned slice.
func Resources() []schema.GroupResource {
	return []schema.GroupResource{
		{Resource: "pods"},
		{Resource: "nodes"},
		{Resource: "namespaces"},
		{Resource: "services"},
		{Resource: "endpoints"},
		{Resource: "configmaps"},
		{Resource: "secrets"},
		{Resource: "serviceaccounts"},
		{Resource: "events"},
		{Resource: "resourcequotas"},
		{Resource: "replicationcontrollers"},
		{Resource: "podtemplates"},
		{Resource: "persistentvolumes"},
		{Resource: "persistentvolumeclaims"},
		{Group: "events.k8s.io", Resource: "events"},
		{Group: "apps", Resource: "deployments"},
		{Group: "apps", Resource: "replicasets"},
		{Group: "apps", Resource: "statefulsets"},
		{Group: "apps", Resource: "daemonsets"},
		{Group: "apps", Resource: "controllerrevisions"},
		{Group: "batch", Resource: "jobs"},
		{Group: "batch", Resource: "cronjobs"},
		{Group: "coordination.k8s.io", Resource: "leases"},
		{Group: "discovery.k8s.io", Resource: "endpointslices"},
		{Group: "scheduling.k8s.io", Resource: "priorityclasses"},
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
		{Group: "networking.k8s.io", Resource: "ingresses"},
		{Group: "networking.k8s.io", Resource: "ingressclasses"},
		{Group: "networking.k8s.io", Resource: "networkpolicies"},
		{Group: "storage.k8s.io", Resource: "storageclasses"},
		{Group: "policy", Resource: "poddisruptionbudgets"},
	}
}

// Default returns upstream's table for resources without a printer: NAME
// and CREATED AT (an RFC 3339 timestamp in UTC, not an age). Its Row
// accepts any object with object metadata.
func Default() *Table {
	doc := metav1.ObjectMeta{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: doc["name"]},
			{Name: "Created At", Type: "date", Description: doc["creationTimestamp"]},
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			m, err := metaOf(obj)
			if err != nil {
				return nil, err
			}
			return []interface{}{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
		},
	}
}

// clock computes ages against an injected now.
type clock struct {
	now func() time.Time
}

// since is upstream's translateTimestampSince: "<unknown>" for the zero
// time, else the human duration from t to now.
func (c clock) since(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(c.now().Sub(t.Time))
}

// sinceMicro is since for MicroTime.
func (c clock) sinceMicro(t metav1.MicroTime) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(c.now().Sub(t.Time))
}
