package apiserver

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/storage"
)

// testResources are small stand-ins for the real registry, enough to
// exercise every path of the REST layer: a cluster-scoped kind, a plain
// namespaced kind, a kind with status, generation, scale and graceful
// deletion.
func testResources() []*registry.Resource {
	core := corev1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GroupVersion: core, Resource: "namespaces", Kind: "Namespace", ListKind: "NamespaceList", SingularName: "namespace",
			ShortNames: []string{"ns"},
			New:        func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			Status: &registry.Subresource{},
			PrepareForCreate: func(ctx context.Context, obj runtime.Object) {
				ns := obj.(*corev1.Namespace)
				ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
				ns.Status.Phase = corev1.NamespaceActive
			},
			ReturnDeletedObject: true,
		},
		{
			GroupVersion: core, Resource: "configmaps", Kind: "ConfigMap", ListKind: "ConfigMapList", SingularName: "configmap",
			ShortNames: []string{"cm"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
			AllowCreateOnUpdate: false,
		},
		{
			GroupVersion: core, Resource: "pods", Kind: "Pod", ListKind: "PodList", SingularName: "pod",
			ShortNames: []string{"po"}, Categories: []string{"all"}, Namespaced: true,
			New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
			Status:              &registry.Subresource{},
			ReturnDeletedObject: true,
			Validate: func(ctx context.Context, obj runtime.Object) field.ErrorList {
				pod := obj.(*corev1.Pod)
				if len(pod.Spec.Containers) == 0 {
					return field.ErrorList{field.Required(field.NewPath("spec", "containers"), "")}
				}
				return nil
			},
			ValidateUpdate: func(ctx context.Context, obj, old runtime.Object) field.ErrorList {
				if obj.(*corev1.Pod).Spec.NodeName != old.(*corev1.Pod).Spec.NodeName {
					return field.ErrorList{field.Invalid(field.NewPath("spec", "nodeName"), obj.(*corev1.Pod).Spec.NodeName, "field is immutable")}
				}
				return nil
			},
			GracefulDelete: func(obj runtime.Object, opts *metav1.DeleteOptions) (int64, bool) {
				pod := obj.(*corev1.Pod)
				if pod.Spec.NodeName == "" {
					return 0, false
				}
				g := int64(30)
				if opts.GracePeriodSeconds != nil {
					g = *opts.GracePeriodSeconds
				}
				return g, g > 0
			},
			SelectableFields: func(obj runtime.Object) fieldsSet {
				pod := obj.(*corev1.Pod)
				return fieldsSet{"spec.nodeName": pod.Spec.NodeName, "status.phase": string(pod.Status.Phase)}
			},
			FieldLabels: []string{"spec.nodeName", "status.phase"},
		},
		{
			GroupVersion: appsv1.SchemeGroupVersion, Resource: "deployments", Kind: "Deployment", ListKind: "DeploymentList", SingularName: "deployment",
			ShortNames: []string{"deploy"}, Categories: []string{"all"}, Namespaced: true, HasGeneration: true,
			New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
			Status: &registry.Subresource{},
			Default: func(obj runtime.Object) {
				d := obj.(*appsv1.Deployment)
				if d.Spec.Replicas == nil {
					one := int32(1)
					d.Spec.Replicas = &one
				}
			},
			Scale: &registry.Scale{
				Get: func(obj runtime.Object) *autoscalingv1.Scale {
					d := obj.(*appsv1.Deployment)
					sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
					return &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: *d.Spec.Replicas}, Status: autoscalingv1.ScaleStatus{Replicas: d.Status.Replicas, Selector: sel.String()}}
				},
				Set: func(obj runtime.Object, sc *autoscalingv1.Scale) {
					r := sc.Spec.Replicas
					obj.(*appsv1.Deployment).Spec.Replicas = &r
				},
				ReplicasPath: ".spec.replicas",
			},
		},
	}
}

type testEnv struct {
	server *Server
	store  *storage.Store
	config *rest.Config
	client kubernetes.Interface
	url    string
}

func startTestServer(t *testing.T) *testEnv { return startTestServerB(t) }

func startTestServerB(t testing.TB) *testEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := storage.StartEmbedded(ctx, storage.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.NewStore(e.Client(), storage.NewProtobufCodec(scheme.Scheme), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Scheme: scheme.Scheme, Resources: testResources()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		e.Close()
	})
	cfg := &rest.Config{Host: hs.URL, QPS: -1}
	client := kubernetes.NewForConfigOrDie(cfg)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &testEnv{server: s, store: st, config: cfg, client: client, url: hs.URL}
}

func pod(name string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}},
	}
}

func TestServer_CRUDWithProtobufAndJSON(t *testing.T) {
	env := startTestServer(t)
	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		t.Run(ct, func(t *testing.T) {
			cfg := rest.CopyConfig(env.config)
			cfg.ContentType = ct
			c := kubernetes.NewForConfigOrDie(cfg)
			ctx := context.Background()
			name := fmt.Sprintf("p-%d", len(ct))
			created, err := c.CoreV1().Pods("default").Create(ctx, pod(name, map[string]string{"app": "x"}), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
				t.Fatalf("server did not set uid/rv/creationTimestamp: %+v", created.ObjectMeta)
			}
			got, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.ResourceVersion != created.ResourceVersion {
				t.Fatalf("get rv %s != create rv %s", got.ResourceVersion, created.ResourceVersion)
			}
			got.Labels["v"] = "2"
			upd, err := c.CoreV1().Pods("default").Update(ctx, got, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// A stale resourceVersion conflicts.
			got.Labels["v"] = "3"
			if _, err := c.CoreV1().Pods("default").Update(ctx, got, metav1.UpdateOptions{}); err == nil || !isConflict(err) {
				t.Fatalf("stale update: %v", err)
			}
			list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "v=2"})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 1 || list.Items[0].Name != name {
				t.Fatalf("list by label: %d items", len(list.Items))
			}
			if err := c.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); !isNotFound(err) {
				t.Fatalf("get after delete: %v", err)
			}
			_ = upd
		})
	}
}

func TestServer_ScaleAndGeneration(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: pod("", nil).Spec},
		},
	}
	created, err := env.client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Generation != 1 || *created.Spec.Replicas != 1 {
		t.Fatalf("generation %d replicas %d", created.Generation, *created.Spec.Replicas)
	}
	sc, err := env.client.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 3
	if _, err := env.client.AppsV1().Deployments("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := env.client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	if *got.Spec.Replicas != 3 || got.Generation != 2 {
		t.Fatalf("after scale: replicas %d generation %d", *got.Spec.Replicas, got.Generation)
	}
	// A status update moves neither spec, labels nor generation, but
	// keeps annotations (controllers record revisions that way).
	got.Status.Replicas = 3
	got.Spec.Paused = true
	got.Labels = map[string]string{"changed": "yes"}
	got.Annotations = map[string]string{"deployment.kubernetes.io/revision": "2"}
	st, err := env.client.AppsV1().Deployments("default").UpdateStatus(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Spec.Paused || st.Status.Replicas != 3 || st.Generation != 2 || st.Labels["changed"] != "" || st.Annotations["deployment.kubernetes.io/revision"] != "2" {
		t.Fatalf("status update: paused=%v replicas=%d gen=%d labels=%v annotations=%v", st.Spec.Paused, st.Status.Replicas, st.Generation, st.Labels, st.Annotations)
	}
}
