package printers

import (
	"errors"
	"reflect"
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
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kinds maps every resource For knows to a new empty object of its type.
func kinds() map[schema.GroupResource]func() runtime.Object {
	return map[schema.GroupResource]func() runtime.Object{
		{Resource: "pods"}:                                                    func() runtime.Object { return &corev1.Pod{} },
		{Resource: "nodes"}:                                                   func() runtime.Object { return &corev1.Node{} },
		{Resource: "namespaces"}:                                              func() runtime.Object { return &corev1.Namespace{} },
		{Resource: "services"}:                                                func() runtime.Object { return &corev1.Service{} },
		{Resource: "endpoints"}:                                               func() runtime.Object { return &corev1.Endpoints{} },
		{Resource: "configmaps"}:                                              func() runtime.Object { return &corev1.ConfigMap{} },
		{Resource: "secrets"}:                                                 func() runtime.Object { return &corev1.Secret{} },
		{Resource: "serviceaccounts"}:                                         func() runtime.Object { return &corev1.ServiceAccount{} },
		{Resource: "events"}:                                                  func() runtime.Object { return &corev1.Event{} },
		{Resource: "resourcequotas"}:                                          func() runtime.Object { return &corev1.ResourceQuota{} },
		{Resource: "replicationcontrollers"}:                                  func() runtime.Object { return &corev1.ReplicationController{} },
		{Resource: "podtemplates"}:                                            func() runtime.Object { return &corev1.PodTemplate{} },
		{Resource: "persistentvolumes"}:                                       func() runtime.Object { return &corev1.PersistentVolume{} },
		{Resource: "persistentvolumeclaims"}:                                  func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		{Group: "events.k8s.io", Resource: "events"}:                          func() runtime.Object { return &eventsv1.Event{} },
		{Group: "apps", Resource: "deployments"}:                              func() runtime.Object { return &appsv1.Deployment{} },
		{Group: "apps", Resource: "replicasets"}:                              func() runtime.Object { return &appsv1.ReplicaSet{} },
		{Group: "apps", Resource: "statefulsets"}:                             func() runtime.Object { return &appsv1.StatefulSet{} },
		{Group: "apps", Resource: "daemonsets"}:                               func() runtime.Object { return &appsv1.DaemonSet{} },
		{Group: "apps", Resource: "controllerrevisions"}:                      func() runtime.Object { return &appsv1.ControllerRevision{} },
		{Group: "batch", Resource: "jobs"}:                                    func() runtime.Object { return &batchv1.Job{} },
		{Group: "batch", Resource: "cronjobs"}:                                func() runtime.Object { return &batchv1.CronJob{} },
		{Group: "coordination.k8s.io", Resource: "leases"}:                    func() runtime.Object { return &coordinationv1.Lease{} },
		{Group: "discovery.k8s.io", Resource: "endpointslices"}:               func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		{Group: "scheduling.k8s.io", Resource: "priorityclasses"}:             func() runtime.Object { return &schedulingv1.PriorityClass{} },
		{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}:        func() runtime.Object { return &rbacv1.RoleBinding{} },
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}: func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		{Group: "networking.k8s.io", Resource: "ingresses"}:                   func() runtime.Object { return &networkingv1.Ingress{} },
		{Group: "networking.k8s.io", Resource: "ingressclasses"}:              func() runtime.Object { return &networkingv1.IngressClass{} },
		{Group: "networking.k8s.io", Resource: "networkpolicies"}:             func() runtime.Object { return &networkingv1.NetworkPolicy{} },
		{Group: "storage.k8s.io", Resource: "storageclasses"}:                 func() runtime.Object { return &storagev1.StorageClass{} },
		{Group: "policy", Resource: "poddisruptionbudgets"}:                   func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
	}
}

func TestFor_MatchesGoldenFiles(t *testing.T) {
	tests := []struct {
		name string
		gr   schema.GroupResource
		objs func() []runtime.Object
	}{
		{"pods", schema.GroupResource{Resource: "pods"}, podFixtures},
		{"nodes", schema.GroupResource{Resource: "nodes"}, nodeFixtures},
		{"namespaces", schema.GroupResource{Resource: "namespaces"}, namespaceFixtures},
		{"services", schema.GroupResource{Resource: "services"}, serviceFixtures},
		{"endpoints", schema.GroupResource{Resource: "endpoints"}, endpointsFixtures},
		{"configmaps", schema.GroupResource{Resource: "configmaps"}, configMapFixtures},
		{"secrets", schema.GroupResource{Resource: "secrets"}, secretFixtures},
		{"serviceaccounts", schema.GroupResource{Resource: "serviceaccounts"}, serviceAccountFixtures},
		{"events", schema.GroupResource{Resource: "events"}, coreEventFixtures},
		{"resourcequotas", schema.GroupResource{Resource: "resourcequotas"}, resourceQuotaFixtures},
		{"replicationcontrollers", schema.GroupResource{Resource: "replicationcontrollers"}, replicationControllerFixtures},
		{"podtemplates", schema.GroupResource{Resource: "podtemplates"}, podTemplateFixtures},
		{"persistentvolumes", schema.GroupResource{Resource: "persistentvolumes"}, persistentVolumeFixtures},
		{"persistentvolumeclaims", schema.GroupResource{Resource: "persistentvolumeclaims"}, persistentVolumeClaimFixtures},
		{"events.events.k8s.io", schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, eventsV1Fixtures},
		{"deployments.apps", schema.GroupResource{Group: "apps", Resource: "deployments"}, deploymentFixtures},
		{"replicasets.apps", schema.GroupResource{Group: "apps", Resource: "replicasets"}, replicaSetFixtures},
		{"statefulsets.apps", schema.GroupResource{Group: "apps", Resource: "statefulsets"}, statefulSetFixtures},
		{"daemonsets.apps", schema.GroupResource{Group: "apps", Resource: "daemonsets"}, daemonSetFixtures},
		{"controllerrevisions.apps", schema.GroupResource{Group: "apps", Resource: "controllerrevisions"}, controllerRevisionFixtures},
		{"jobs.batch", schema.GroupResource{Group: "batch", Resource: "jobs"}, jobFixtures},
		{"cronjobs.batch", schema.GroupResource{Group: "batch", Resource: "cronjobs"}, cronJobFixtures},
		{"leases.coordination.k8s.io", schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, leaseFixtures},
		{"endpointslices.discovery.k8s.io", schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, endpointSliceFixtures},
		{"priorityclasses.scheduling.k8s.io", schema.GroupResource{Group: "scheduling.k8s.io", Resource: "priorityclasses"}, priorityClassFixtures},
		{"rolebindings.rbac.authorization.k8s.io", schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}, roleBindingFixtures},
		{"clusterrolebindings.rbac.authorization.k8s.io", schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, clusterRoleBindingFixtures},
		{"ingresses.networking.k8s.io", schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}, ingressFixtures},
		{"ingressclasses.networking.k8s.io", schema.GroupResource{Group: "networking.k8s.io", Resource: "ingressclasses"}, ingressClassFixtures},
		{"networkpolicies.networking.k8s.io", schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}, networkPolicyFixtures},
		{"storageclasses.storage.k8s.io", schema.GroupResource{Group: "storage.k8s.io", Resource: "storageclasses"}, storageClassFixtures},
		{"poddisruptionbudgets.policy", schema.GroupResource{Group: "policy", Resource: "poddisruptionbudgets"}, podDisruptionBudgetFixtures},
	}

	covered := make(map[schema.GroupResource]bool)
	for _, tt := range tests {
		covered[tt.gr] = true
		t.Run(tt.name, func(t *testing.T) {
			table := For(tt.gr, Options{Now: fixedNow})
			if table == nil {
				t.Fatalf("For(%v) = nil", tt.gr)
			}
			checkGolden(t, tt.name+".golden", renderGolden(t, tt.gr, table, tt.objs()))
		})
	}
	t.Run("default", func(t *testing.T) {
		gr := schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "roles"}
		checkGolden(t, "default.golden", renderGolden(t, gr, Default(), defaultFixtures()))
	})

	for _, gr := range Resources() {
		if !covered[gr] {
			t.Errorf("no golden file covers %v", gr)
		}
	}
}

func TestFor_ReturnsNilWithoutUpstreamPrinter(t *testing.T) {
	for _, gr := range []schema.GroupResource{
		{Group: "rbac.authorization.k8s.io", Resource: "roles"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Resource: "limitranges"},
		{Group: "example.com", Resource: "widgets"},
		{Group: "apps", Resource: "pods"},
		{},
	} {
		t.Run(gr.String(), func(t *testing.T) {
			if got := For(gr, Options{}); got != nil {
				t.Errorf("For(%v) = %d columns, want nil", gr, len(got.Columns))
			}
		})
	}
}

func TestResources_ListsEveryTableOnce(t *testing.T) {
	seen := make(map[schema.GroupResource]bool)
	for _, gr := range Resources() {
		if seen[gr] {
			t.Errorf("%v listed twice", gr)
		}
		seen[gr] = true
		if For(gr, Options{}) == nil {
			t.Errorf("Resources lists %v but For has no table for it", gr)
		}
	}
	for gr := range kinds() {
		if !seen[gr] {
			t.Errorf("%v missing from Resources", gr)
		}
	}
}

func TestColumns_FollowUpstreamConventions(t *testing.T) {
	for gr := range kinds() {
		t.Run(gr.String(), func(t *testing.T) {
			table := For(gr, Options{})
			names := make(map[string]bool)
			nameColumns := 0
			for i, c := range table.Columns {
				if names[c.Name] {
					t.Errorf("column %q twice", c.Name)
				}
				names[c.Name] = true
				switch c.Type {
				case "string", "integer", "boolean", "date":
				default:
					t.Errorf("column %q: type %q", c.Name, c.Type)
				}
				if c.Priority != 0 && c.Priority != 1 {
					t.Errorf("column %q: priority %d", c.Name, c.Priority)
				}
				if c.Description == "" {
					t.Errorf("column %q has no description", c.Name)
				}
				if c.Format == "name" {
					nameColumns++
					if c.Name != "Name" {
						t.Errorf("column %q has format name", c.Name)
					}
				}
				if c.Name == "Name" && i != 0 && gr.Resource != "events" {
					t.Errorf("Name is column %d", i)
				}
			}
			if nameColumns != 1 {
				t.Errorf("%d columns with format name, want 1", nameColumns)
			}
		})
	}
}

func TestRow_PrintsEmptyObjects(t *testing.T) {
	for gr, newObj := range kinds() {
		t.Run(gr.String(), func(t *testing.T) {
			table := For(gr, Options{Now: fixedNow})
			cells, err := table.Row(newObj())
			if err != nil {
				t.Fatalf("Row(empty): %v", err)
			}
			if len(cells) != len(table.Columns) {
				t.Fatalf("%d cells for %d columns", len(cells), len(table.Columns))
			}
			for i, c := range cells {
				switch c.(type) {
				case string, int64, bool:
				default:
					t.Errorf("cell %d (%s) is %T", i, table.Columns[i].Name, c)
				}
			}
		})
	}
}

func TestRow_RejectsOtherKinds(t *testing.T) {
	for gr, newObj := range kinds() {
		t.Run(gr.String(), func(t *testing.T) {
			table := For(gr, Options{})
			other := runtime.Object(&metav1.Status{})
			if _, isPod := newObj().(*corev1.Pod); !isPod {
				other = &corev1.Pod{}
			}
			typedNil := typedNilOf(newObj())
			for name, obj := range map[string]runtime.Object{
				"other kind":       other,
				"nil":              nil,
				"typed nil":        typedNil,
				"list of its kind": &metav1.List{},
			} {
				if _, err := table.Row(obj); !errors.Is(err, ErrUnexpectedType) {
					t.Errorf("%s: Row error = %v, want ErrUnexpectedType", name, err)
				}
			}
		})
	}
}

// typedNilOf returns a nil pointer of obj's type.
func typedNilOf(obj runtime.Object) runtime.Object {
	return reflect.Zero(reflect.TypeOf(obj)).Interface().(runtime.Object)
}

func TestRows_AcceptsListsAndSingleObjects(t *testing.T) {
	table := For(schema.GroupResource{Resource: "namespaces"}, Options{Now: fixedNow})
	list := &corev1.NamespaceList{
		ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next", RemainingItemCount: ptrTo[int64](7)},
		Items: []corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "a", CreationTimestamp: ago(time.Minute)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			{ObjectMeta: metav1.ObjectMeta{Name: "b", CreationTimestamp: ago(time.Hour)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		},
	}

	t.Run("list", func(t *testing.T) {
		got, err := table.Convert(list, false)
		if err != nil {
			t.Fatal(err)
		}
		want := &metav1.Table{
			ListMeta:          metav1.ListMeta{ResourceVersion: "42", Continue: "next", RemainingItemCount: ptrTo[int64](7)},
			ColumnDefinitions: table.Columns,
			Rows: []metav1.TableRow{
				{Cells: []interface{}{"a", "Active", "60s"}, Object: runtime.RawExtension{Object: &list.Items[0]}},
				{Cells: []interface{}{"b", "Terminating", "60m"}, Object: runtime.RawExtension{Object: &list.Items[1]}},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Convert (-want +got):\n%s", diff)
		}
	})
	t.Run("single object without headers", func(t *testing.T) {
		obj := list.Items[0].DeepCopy()
		obj.ResourceVersion = "9"
		got, err := table.Convert(obj, true)
		if err != nil {
			t.Fatal(err)
		}
		want := &metav1.Table{
			ListMeta: metav1.ListMeta{ResourceVersion: "9"},
			Rows:     []metav1.TableRow{{Cells: []interface{}{"a", "Active", "60s"}, Object: runtime.RawExtension{Object: obj}}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Convert (-want +got):\n%s", diff)
		}
	})
	t.Run("empty list", func(t *testing.T) {
		got, err := table.Rows(&corev1.NamespaceList{})
		if err != nil || len(got) != 0 {
			t.Errorf("Rows(empty list) = %v, %v; want no rows", got, err)
		}
	})
	t.Run("nil and typed nil", func(t *testing.T) {
		for _, obj := range []runtime.Object{nil, (*corev1.Namespace)(nil), (*corev1.NamespaceList)(nil)} {
			if _, err := table.Convert(obj, false); !errors.Is(err, ErrUnexpectedType) {
				t.Errorf("Convert(%#v) error = %v, want ErrUnexpectedType", obj, err)
			}
		}
	})
	t.Run("list with a foreign item", func(t *testing.T) {
		bad := &metav1.List{Items: []runtime.RawExtension{{Object: &list.Items[0]}, {Object: &corev1.Pod{}}}}
		if _, err := table.Rows(bad); !errors.Is(err, ErrUnexpectedType) {
			t.Errorf("Rows error = %v, want ErrUnexpectedType", err)
		}
	})
}

func TestRows_SetsPodCompletedCondition(t *testing.T) {
	table := For(schema.GroupResource{Resource: "pods"}, Options{Now: fixedNow})
	list := &corev1.PodList{Items: []corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "ok"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}},
		{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Status: corev1.PodStatus{Phase: corev1.PodFailed}},
		{ObjectMeta: metav1.ObjectMeta{Name: "live"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	}}
	rows, err := table.Rows(list)
	if err != nil {
		t.Fatal(err)
	}
	got := make([][]metav1.TableRowCondition, len(rows))
	for i := range rows {
		got[i] = rows[i].Conditions
	}
	want := [][]metav1.TableRowCondition{
		{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "The pod has completed successfully."}},
		{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Failed", Message: "The pod failed."}},
		nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
}

func TestControllerRevision_MalformedControllerAPIVersionFails(t *testing.T) {
	table := For(schema.GroupResource{Group: "apps", Resource: "controllerrevisions"}, Options{})
	cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "x", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "a/b/c", Kind: "DaemonSet", Name: "d", Controller: ptrTo(true)},
	}}}
	_, err := table.Row(cr)
	if err == nil {
		t.Fatal("Row succeeded, want an error")
	}
	if errors.Is(err, ErrUnexpectedType) {
		t.Errorf("error %v wraps ErrUnexpectedType", err)
	}
	if _, err := table.Rows(&appsv1.ControllerRevisionList{Items: []appsv1.ControllerRevision{*cr}}); err == nil {
		t.Error("Rows of a list with it succeeded, want an error")
	}
}

func TestDefault_PrintsNameAndCreationTime(t *testing.T) {
	table := Default()
	tests := []struct {
		name    string
		obj     runtime.Object
		want    []interface{}
		wantErr bool
	}{
		{"converts to UTC", &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r", CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -3600)))}}, []interface{}{"r", "2026-01-02T04:04:05Z"}, false},
		{"zero time", &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "l"}}, []interface{}{"l", "0001-01-01T00:00:00Z"}, false},
		{"no metadata", &metav1.Status{}, nil, true},
		{"nil", nil, nil, true},
		{"typed nil", (*rbacv1.Role)(nil), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := table.Row(tt.obj)
			if tt.wantErr {
				if !errors.Is(err, ErrUnexpectedType) {
					t.Errorf("error = %v, want ErrUnexpectedType", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptions_ZeroValueUsesWallClock(t *testing.T) {
	table := For(schema.GroupResource{Resource: "namespaces"}, Options{})
	cells, err := table.Row(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n", CreationTimestamp: metav1.NewTime(time.Now().Add(-5*day - 10*time.Minute))}})
	if err != nil {
		t.Fatal(err)
	}
	if cells[2] != "5d" {
		t.Errorf("age = %v, want 5d", cells[2])
	}
}
