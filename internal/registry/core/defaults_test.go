package core_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestDefaults_Golden runs each resource's create hooks (up to
// validation, allocation disabled) on a minimal manifest and compares the
// result with testdata/defaults/*.yaml (go test -run TestDefaults_Golden
// -update rewrites them). It also checks that defaulting twice changes
// nothing, as the REST layer defaults again after every patch.
func TestDefaults_Golden(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"}
	cases := []struct {
		name     string
		resource string
		obj      func() runtime.Object
	}{
		{"service_clusterip", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstrName("dns")}},
			}}
		}},
		{"service_clusterip_requested", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.10", Ports: []corev1.ServicePort{{Port: 53}}}}
		}},
		{"service_nodeport", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
		}},
		{"service_loadbalancer", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, SessionAffinity: corev1.ServiceAffinityClientIP, Ports: []corev1.ServicePort{{Port: 443}},
			}}
		}},
		{"service_headless", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web"}}}
		}},
		{"service_headless_selectorless", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}}
		}},
		{"service_externalname", "/services", func() runtime.Object {
			return &corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com."}}
		}},
		{"namespace", "/namespaces", func() runtime.Object {
			return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", UID: "uid-1"}}
		}},
		{"node", "/nodes", func() runtime.Object {
			return &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "uid-1"},
				Spec:       corev1.NodeSpec{PodCIDR: "10.42.1.0/24"},
				Status: corev1.NodeStatus{
					Capacity:  corev1.ResourceList{corev1.ResourceCPU: mustQuantity("4"), corev1.ResourcePods: mustQuantity("110")},
					Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.10"}},
				},
			}
		}},
		{"secret", "/secrets", func() runtime.Object {
			return &corev1.Secret{ObjectMeta: meta, StringData: map[string]string{"password": "hunter2"}, Data: map[string][]byte{"user": []byte("admin")}}
		}},
		{"limitrange", "/limitranges", func() runtime.Object {
			return &corev1.LimitRange{ObjectMeta: meta, Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type: corev1.LimitTypeContainer,
				Max:  corev1.ResourceList{corev1.ResourceCPU: mustQuantity("2")},
				Min:  corev1.ResourceList{corev1.ResourceMemory: mustQuantity("64Mi")},
			}}}}
		}},
		{"rolebinding", "rbac.authorization.k8s.io/rolebindings", func() runtime.Object {
			return &rbacv1.RoleBinding{ObjectMeta: meta,
				RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "view"},
				Subjects: []rbacv1.Subject{
					{Kind: rbacv1.UserKind, Name: "alice"}, {Kind: rbacv1.GroupKind, Name: "devs"},
					{Kind: rbacv1.ServiceAccountKind, Name: "default"},
				},
			}
		}},
		{"priorityclass", "scheduling.k8s.io/priorityclasses", func() runtime.Object {
			return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high", UID: "uid-1"}, Value: 1000}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := lookup(t, tc.resource)
			obj := tc.obj()
			if errs := create(t, r, obj); len(errs) != 0 {
				t.Fatalf("the fixture must be valid: %v", errs)
			}
			again := obj.DeepCopyObject()
			r.Default(again)
			if diff := cmp.Diff(obj, again); diff != "" {
				t.Errorf("defaulting is not idempotent (-once +twice):\n%s", diff)
			}
			got, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "defaults", tc.name+".yaml")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-golden +got):\n%s", golden, diff)
			}
		})
	}
}
