package openapi

import (
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Objects JSON cannot describe, for the bad-input tests.
type chanObject struct {
	metav1.TypeMeta `json:",inline"`
	C               chan int `json:"c"`
}

func (o *chanObject) DeepCopyObject() runtime.Object { return o }

type intKeyObject struct {
	metav1.TypeMeta `json:",inline"`
	M               map[int]string `json:"m"`
}

func (o *intKeyObject) DeepCopyObject() runtime.Object { return o }

// clashObject claims the definition name of corev1.Pod.
type clashObject struct {
	metav1.TypeMeta `json:",inline"`
}

func (o *clashObject) DeepCopyObject() runtime.Object { return o }
func (clashObject) OpenAPIModelName() string          { return "io.k8s.api.core.v1.Pod" }

// mapObject is a runtime.Object that is not a struct.
type mapObject map[string]any

func (o mapObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (o mapObject) DeepCopyObject() runtime.Object   { return o }

func TestNew_RejectsBadInput(t *testing.T) {
	core := schema.GroupVersion{Version: "v1"}
	pods := func(edit func(*Resource)) []Resource {
		r := Resource{GroupVersion: core, Resource: "pods", Kind: "Pod", Namespaced: true, Object: &corev1.Pod{}, List: &corev1.PodList{}}
		edit(&r)
		return []Resource{r}
	}
	withSub := func(s Subresource) []Resource {
		return pods(func(r *Resource) { r.Subresources = []Subresource{s} })
	}
	tests := []struct {
		name      string
		resources []Resource
		cfg       Config
		wantIn    string // a word the message must carry, to be clear
	}{
		{name: "no version", resources: pods(func(r *Resource) { r.GroupVersion.Version = "" }), wantIn: "version"},
		{name: "bad group", resources: pods(func(r *Resource) { r.GroupVersion.Group = "Apps/x" }), wantIn: "group"},
		{name: "upper-case resource", resources: pods(func(r *Resource) { r.Resource = "Pods" }), wantIn: "Pods"},
		{name: "resource with slash", resources: pods(func(r *Resource) { r.Resource = "pods/status" }), wantIn: "pods/status"},
		{name: "lower-case kind", resources: pods(func(r *Resource) { r.Kind = "pod" }), wantIn: "kind"},
		{name: "unknown verb", resources: pods(func(r *Resource) { r.Verbs = []string{"get", "frobnicate"} }), wantIn: "frobnicate"},
		{name: "nil object", resources: pods(func(r *Resource) { r.Object = nil }), wantIn: "object"},
		{name: "object not a struct", resources: pods(func(r *Resource) { r.Object = mapObject{} }), wantIn: "mapObject"},
		{name: "list missing", resources: pods(func(r *Resource) { r.List = nil }), wantIn: "list"},
		{name: "listed twice", resources: append(pods(func(*Resource) {}), pods(func(*Resource) {})...), wantIn: "twice"},
		{name: "two resources one kind", resources: append(pods(func(*Resource) {}), pods(func(r *Resource) { r.Resource = "pods2" })...), wantIn: "listCoreV1NamespacedPod"},
		{name: "subresource without verbs", resources: withSub(Subresource{Name: "status", Object: &corev1.Pod{}}), wantIn: "verbs"},
		{name: "subresource bad name", resources: withSub(Subresource{Name: "Status", Object: &corev1.Pod{}, Verbs: []string{"get"}}), wantIn: "Status"},
		{name: "subresource bad verb", resources: withSub(Subresource{Name: "status", Object: &corev1.Pod{}, Verbs: []string{"list"}}), wantIn: "list"},
		{name: "subresource twice", resources: pods(func(r *Resource) {
			s := Subresource{Name: "status", Object: &corev1.Pod{}, Verbs: []string{"get"}}
			r.Subresources = []Subresource{s, s}
		}), wantIn: "twice"},
		{name: "other type without kind", resources: withSub(Subresource{Name: "scale", Object: &autoscalingv1.Scale{}, Verbs: []string{"get"}}), wantIn: "kind"},
		{name: "incomplete kind", resources: withSub(Subresource{Name: "scale", Object: &autoscalingv1.Scale{}, Kind: schema.GroupVersionKind{Kind: "Scale"}, Verbs: []string{"get"}}), wantIn: "kind"},
		{name: "connect with object", resources: withSub(Subresource{Name: "exec", Object: &corev1.Pod{}, Verbs: []string{"get"}, Connect: true}), wantIn: "connect"},
		{name: "path without connect", resources: withSub(Subresource{Name: "log", Verbs: []string{"get"}, WithPath: true}), wantIn: "Connect"},
		{name: "stream written to", resources: withSub(Subresource{Name: "log", Verbs: []string{"update"}}), wantIn: "get"},
		{name: "options not a struct", resources: withSub(Subresource{Name: "log", Verbs: []string{"get"}, Options: mapObject{}}), wantIn: "options"},
		{name: "channel field", resources: []Resource{{GroupVersion: core, Resource: "chans", Kind: "Chan", Object: &chanObject{}, Verbs: []string{"get"}}}, wantIn: "chanObject.C"},
		{name: "map with int keys", resources: []Resource{{GroupVersion: core, Resource: "maps", Kind: "Map", Object: &intKeyObject{}, Verbs: []string{"get"}}}, wantIn: "intKeyObject.M"},
		{name: "definition name taken", resources: append(pods(func(*Resource) {}),
			Resource{GroupVersion: core, Resource: "clashes", Kind: "Clash", Object: &clashObject{}, Verbs: []string{"get"}}), wantIn: "io.k8s.api.core.v1.Pod"},
		{name: "config with newline", resources: pods(func(*Resource) {}), cfg: Config{Version: "v1\n"}, wantIn: "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.resources, tt.cfg)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("New = %v, %v; want an error wrapping ErrInvalid", s, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not mention %q", err, tt.wantIn)
			}
		})
	}
}

func TestNew_AcceptsGoodInput(t *testing.T) {
	tests := []struct {
		name      string
		resources []Resource
	}{
		{name: "nothing", resources: nil},
		{name: "skiff's resources", resources: skiffResources()},
		{name: "read-only resource without list", resources: []Resource{{
			GroupVersion: appsv1.SchemeGroupVersion, Resource: "deployments", Kind: "Deployment", Namespaced: true,
			Object: &appsv1.Deployment{}, Verbs: []string{VerbGet},
		}}},
		{name: "one type in two versions", resources: []Resource{
			{GroupVersion: schema.GroupVersion{Group: "example.com", Version: "v1"}, Resource: "deployments", Kind: "Deployment", Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{}},
			{GroupVersion: schema.GroupVersion{Group: "example.com", Version: "v2"}, Resource: "deployments", Kind: "Deployment", Object: &appsv1.Deployment{}, List: &appsv1.DeploymentList{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.resources, Config{}); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

// TestNew_KeepsItsOwnCopy checks that a caller changing its slices after
// New changes nothing served.
func TestNew_KeepsItsOwnCopy(t *testing.T) {
	rs := []Resource{{
		GroupVersion: schema.GroupVersion{Version: "v1"}, Resource: "pods", Kind: "Pod", Namespaced: true,
		Object: &corev1.Pod{}, List: &corev1.PodList{}, Verbs: []string{VerbGet, VerbPatch},
	}}
	s, err := New(rs, Config{})
	if err != nil {
		t.Fatal(err)
	}
	before := renderV3(t, s, "api/v1")
	rs[0].Verbs[1] = VerbDelete
	rs[0].Resource = "other"
	if after := renderV3(t, s, "api/v1"); string(after) != string(before) {
		t.Error("changing the caller's resources changed the document")
	}
}

func renderV3(t *testing.T, s *Service, key string) []byte {
	t.Helper()
	d, ok := s.v3[key]
	if !ok {
		t.Fatalf("no document %q", key)
	}
	rep, err := d.json.get()
	if err != nil {
		t.Fatal(err)
	}
	return rep.body
}
