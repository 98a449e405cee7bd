package openapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/openapi3"
	kubeproto "k8s.io/kube-openapi/pkg/util/proto"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/util/openapi"
	"k8s.io/kubectl/pkg/validation"
	"k8s.io/utils/ptr"
)

// TestKubectlExplain_PrintsFieldDescriptions runs kubectl explain the way
// the command does, against a server that serves the documents and a
// minimal discovery, through both of its renderers.
func TestKubectlExplain_PrintsFieldDescriptions(t *testing.T) {
	resources := skiffResources()
	ts := newAPIServer(t, resources, newService(t))

	tests := []struct {
		name       string
		args       []string
		apiVersion string
		format     string
		want       []string
	}{
		{
			name: "v3 pod containers", args: []string{"pods.spec.containers"}, format: "plaintext",
			want: []string{"KIND:       Pod", "VERSION:    v1", "FIELD: containers <[]Container>",
				"List of containers belonging to the pod.", "image\t<string>", "name\t<string> -required-"},
		},
		{
			name: "v3 deployment", args: []string{"deployments"}, format: "plaintext",
			want: []string{"GROUP:      apps", "KIND:       Deployment", "Deployment enables declarative updates for Pods and",
				"spec\t<DeploymentSpec> -required-", "status\t<DeploymentStatus>"},
		},
		{
			name: "v3 quantity and int-or-string", args: []string{"pods.spec.containers.resources"}, format: "plaintext",
			want: []string{"limits\t<map[string]Quantity>", "requests\t<map[string]Quantity>"},
		},
		{
			name: "v3 scale subresource kind", args: []string{"deployments.spec.strategy.rollingUpdate"}, format: "plaintext",
			want: []string{"maxSurge\t<IntOrString>", "maxUnavailable\t<IntOrString>"},
		},
		{
			name: "v3 metrics", args: []string{"nodes"}, apiVersion: "metrics.k8s.io/v1beta1", format: "plaintext",
			want: []string{"GROUP:      metrics.k8s.io", "KIND:       NodeMetrics", "usage\t<map[string]Quantity> -required-"},
		},
		{
			name: "v2 pod containers", args: []string{"pods.spec.containers"}, format: "plaintext-openapiv2",
			want: []string{"KIND:     Pod", "RESOURCE: containers <[]Object>", "List of containers belonging to the pod.",
				"image\t<string>", "name\t<string> -required-"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			flags := explain.NewExplainFlags(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			flags.OutputFormat = tt.format
			flags.APIVersion = tt.apiVersion
			o, err := flags.ToOptions(kubectlFactory(t, ts), "kubectl", tt.args)
			if err != nil {
				t.Fatalf("options: %v", err)
			}
			if err := o.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if err := o.Run(); err != nil {
				t.Fatalf("kubectl explain %v: %v\n%s", tt.args, err, errOut.String())
			}
			if testing.Verbose() {
				t.Log(out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestQueryParamVerifier_FieldValidationSupported checks what makes
// kubectl leave validation to the server: the v3 verifier kubectl 1.37
// uses and the v2 one it falls back to find fieldValidation on the PATCH
// operations of every kind served.
func TestQueryParamVerifier_FieldValidationSupported(t *testing.T) {
	resources := skiffResources()
	ts := newAPIServer(t, resources, newService(t))
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig(ts))
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(restConfig(ts))
	if err != nil {
		t.Fatal(err)
	}
	verifiers := map[string]resource.Verifier{
		"v3": resource.NewQueryParamVerifierV3(dyn, dc.OpenAPIV3(), resource.QueryParamFieldValidation),
		"v2": resource.NewQueryParamVerifier(dyn, dc, resource.QueryParamFieldValidation),
	}
	for name, v := range verifiers {
		for _, r := range resources {
			if !r.has(VerbPatch) {
				continue
			}
			t.Run(name+" "+r.gvk().String(), func(t *testing.T) {
				if err := v.HasSupport(r.gvk()); err != nil {
					t.Errorf("HasSupport(%v): %v", r.gvk(), err)
				}
			})
		}
		t.Run(name+" unknown kind unsupported", func(t *testing.T) {
			gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
			if err := v.HasSupport(gvk); err == nil {
				t.Errorf("HasSupport(%v) = nil, want an error", gvk)
			}
		})
	}
}

// TestKubectlValidator_LeavesValidationToServer is kubectl 1.37's
// --validate=strict: with fieldValidation advertised it does not reject an
// unknown field itself but lets the server do it.
func TestKubectlValidator_LeavesValidationToServer(t *testing.T) {
	ts := newAPIServer(t, skiffResources(), newService(t))
	v, err := kubectlFactory(t, ts).Validator(metav1.FieldValidationStrict)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateBytes([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"bogus":1}}`)); err != nil {
		t.Errorf("ValidateBytes = %v, want nil: the server validates", err)
	}
}

// resourcesGetter serves parsed v2 documents to kubectl's validation.
type resourcesGetter struct{ resources openapi.Resources }

func (g resourcesGetter) OpenAPISchema() (openapi.Resources, error) { return g.resources, nil }

// TestClientSideValidation_V2 is kubectl 1.20's validation: the v2
// protobuf document, parsed by kube-openapi, accepts valid objects and
// rejects unknown fields, wrong types and missing required fields.
func TestClientSideValidation_V2(t *testing.T) {
	ts := newAPIServer(t, skiffResources(), newService(t))
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig(ts))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dc.OpenAPISchema() // GET /openapi/v2 as protobuf
	if err != nil {
		t.Fatalf("OpenAPISchema: %v", err)
	}
	if _, err := kubeproto.NewOpenAPIData(doc); err != nil {
		t.Fatalf("kube-openapi rejects the document: %v", err)
	}
	parsed, err := openapi.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("kubectl rejects the document: %v", err)
	}
	consumes := parsed.GetConsumes(appsv1.SchemeGroupVersion.WithKind("Deployment"), "PATCH")
	if !strings.Contains(strings.Join(consumes, ","), "application/strategic-merge-patch+json") {
		t.Errorf("PATCH of deployments consumes %v, want strategic merge patch among them", consumes)
	}
	schema := validation.NewSchemaValidation(resourcesGetter{parsed})

	deployment := func(edit func(map[string]any)) []byte {
		d := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name: "web", Image: "nginx",
						Ports:     []corev1.ContainerPort{{ContainerPort: 80}},
						Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: mustQuantity(t, "64Mi")}},
					}}},
				},
			},
		}
		var m map[string]any
		b, _ := json.Marshal(d)
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(m)
		}
		b, _ = json.Marshal(m)
		return b
	}
	spec := func(m map[string]any) map[string]any { return m["spec"].(map[string]any) }
	container := func(m map[string]any) map[string]any {
		return spec(spec(m)["template"].(map[string]any))["containers"].([]any)[0].(map[string]any)
	}

	tests := []struct {
		name    string
		obj     []byte
		wantErr string
	}{
		{name: "valid deployment", obj: deployment(nil)},
		{name: "valid with int-or-string", obj: deployment(func(m map[string]any) {
			spec(m)["strategy"] = map[string]any{"rollingUpdate": map[string]any{"maxSurge": "25%", "maxUnavailable": 1}}
		})},
		{name: "valid configmap", obj: []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"},"binaryData":{"b":"aGk="}}`)},
		{name: "unknown field", obj: deployment(func(m map[string]any) { spec(m)["replica"] = 2 }), wantErr: `unknown field "replica"`},
		{name: "wrong type", obj: deployment(func(m map[string]any) { spec(m)["replicas"] = "two" }), wantErr: "replicas"},
		{name: "missing required field", obj: deployment(func(m map[string]any) { delete(container(m), "name") }), wantErr: `missing required field "name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.ValidateBytes(tt.obj)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateBytes = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ValidateBytes = %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
}

// TestLegacyV2Path_ServesProtobuf is where kubectl 1.20 looks when
// /openapi/v2 is missing.
func TestLegacyV2Path_ServesProtobuf(t *testing.T) {
	ts := newAPIServer(t, skiffResources(), newService(t))
	resp, err := http.Get(ts.URL + PathV2Legacy)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc openapi_v2.Document
	if err := proto.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if doc.GetSwagger() != "2.0" || len(doc.GetDefinitions().GetAdditionalProperties()) == 0 {
		t.Errorf("document: swagger %q with %d definitions", doc.GetSwagger(), len(doc.GetDefinitions().GetAdditionalProperties()))
	}
}

// TestTypeConverter_AcceptsComponents feeds the v3 schemas of every
// document to the type converter server-side apply uses, and converts
// objects through it: a consistency check of references, list types and
// map keys.
func TestTypeConverter_AcceptsComponents(t *testing.T) {
	svc := newService(t)
	ts := newAPIServer(t, skiffResources(), svc)
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig(ts))
	if err != nil {
		t.Fatal(err)
	}
	root := openapi3.NewRoot(dc.OpenAPIV3())
	gvs, err := root.GroupVersions()
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*spec.Schema{}
	for _, gv := range gvs {
		doc, err := root.GVSpec(gv)
		if err != nil {
			t.Fatalf("%v: %v", gv, err)
		}
		for name, s := range doc.Components.Schemas {
			schemas[name] = s
		}
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}

	pod := func(ports ...corev1.ContainerPort) *corev1.Pod {
		return &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i", Ports: ports}}},
		}
	}
	tests := []struct {
		name    string
		obj     runtime.Object
		wantErr bool
	}{
		{name: "pod", obj: pod()},
		{name: "ports keyed by port and protocol", obj: pod(
			corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolTCP},
			corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolUDP})},
		{name: "protocol defaults in the key", obj: pod(corev1.ContainerPort{ContainerPort: 80})},
		{name: "duplicate port key", obj: pod(
			corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolUDP},
			corev1.ContainerPort{ContainerPort: 53, Protocol: corev1.ProtocolUDP}), wantErr: true},
	}
	for _, r := range skiffResources() {
		obj := r.Object.DeepCopyObject()
		obj.GetObjectKind().SetGroupVersionKind(r.gvk())
		tests = append(tests, struct {
			name    string
			obj     runtime.Object
			wantErr bool
		}{name: "empty " + r.String(), obj: obj})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tc.ObjectToTyped(tt.obj)
			if (err != nil) != tt.wantErr {
				t.Errorf("ObjectToTyped: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
