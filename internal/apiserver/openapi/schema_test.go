package openapi

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// v3Schemas renders the v3 document key and returns its component
// schemas as plain JSON values.
func v3Schemas(t *testing.T, s *Service, key string) map[string]map[string]any {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(renderV3(t, s, key), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}

// v2Definitions renders the v2 document and returns its definitions as
// plain JSON values.
func v2Definitions(t *testing.T, s *Service) map[string]map[string]any {
	t.Helper()
	rep, err := s.v2.json.get()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(rep.body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Definitions
}

// jsonValue turns a Go literal into what decoding JSON gives, for cmp.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRequired_MatchesUpstream compares the required fields of kinds
// clients validate with the lists upstream's generator makes from the
// same sources.
func TestRequired_MatchesUpstream(t *testing.T) {
	s := newService(t)
	tests := []struct {
		key, def string
		want     []string
	}{
		{"api/v1", "io.k8s.api.core.v1.Pod", nil},
		{"api/v1", "io.k8s.api.core.v1.PodSpec", []string{"containers"}},
		{"api/v1", "io.k8s.api.core.v1.Container", []string{"name"}},
		{"api/v1", "io.k8s.api.core.v1.ContainerPort", []string{"containerPort"}},
		{"api/v1", "io.k8s.api.core.v1.EnvVar", []string{"name"}},
		{"api/v1", "io.k8s.api.core.v1.Service", nil},
		{"api/v1", "io.k8s.api.core.v1.ServiceSpec", nil},
		{"api/v1", "io.k8s.api.core.v1.ServicePort", []string{"port"}},
		{"api/v1", "io.k8s.api.core.v1.PodList", []string{"items"}},
		{"api/v1", "io.k8s.api.core.v1.Event", []string{"metadata", "involvedObject"}},
		{"api/v1", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", nil},
		{"api/v1", "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", []string{"apiVersion", "kind", "name", "uid"}},
		{"apis/apps/v1", "io.k8s.api.apps.v1.Deployment", []string{"spec"}},
		{"apis/apps/v1", "io.k8s.api.apps.v1.DeploymentSpec", []string{"selector", "template"}},
		{"apis/apps/v1", "io.k8s.api.apps.v1.DeploymentCondition", nil},
		{"apis/apps/v1", "io.k8s.api.apps.v1.StatefulSetSpec", []string{"selector", "template"}},
		{"apis/rbac.authorization.k8s.io/v1", "io.k8s.api.rbac.v1.RoleRef", []string{"kind", "name"}},
		{"apis/events.k8s.io/v1", "io.k8s.api.events.v1.Event", []string{"eventTime"}},
	}
	for _, tt := range tests {
		t.Run(tt.def, func(t *testing.T) {
			def, ok := v3Schemas(t, s, tt.key)[tt.def]
			if !ok {
				t.Fatalf("%s lacks %s", tt.key, tt.def)
			}
			got, _ := def["required"].([]any)
			var names []string
			for _, g := range got {
				names = append(names, g.(string))
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("required (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSchemas_SpecialTypes checks the types that say how they serialize,
// in both versions.
func TestSchemas_SpecialTypes(t *testing.T) {
	s := newService(t)
	v3 := v3Schemas(t, s, "api/v1")
	v2 := v2Definitions(t, s)
	tests := []struct {
		def    string
		fields []string
		wantV2 map[string]any
		wantV3 map[string]any
	}{
		{
			def:    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
			wantV2: map[string]any{"type": "string", "format": "date-time"},
			wantV3: map[string]any{"type": "string", "format": "date-time"},
		},
		{
			def:    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
			wantV2: map[string]any{"type": "string", "format": "date-time"},
		},
		{
			def:    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
			wantV2: map[string]any{"type": "string", "format": "int-or-string"},
			wantV3: map[string]any{"format": "int-or-string", "oneOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}},
		},
		{
			def:    "io.k8s.apimachinery.pkg.api.resource.Quantity",
			wantV2: map[string]any{"type": "string"},
			wantV3: map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}},
		},
		{
			def:    "io.k8s.apimachinery.pkg.apis.meta.v1.Duration",
			wantV2: map[string]any{"type": "string"},
		},
		{
			def:    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
			wantV2: map[string]any{"type": "object"},
			wantV3: map[string]any{"type": "object"},
		},
		{
			def:    "io.k8s.apimachinery.pkg.runtime.RawExtension",
			wantV2: map[string]any{"type": "object"},
		},
	}
	strip := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if k != "description" {
				out[k] = v
			}
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.def, func(t *testing.T) {
			if diff := cmp.Diff(tt.wantV2, strip(v2[tt.def])); diff != "" {
				t.Errorf("v2 (-want +got):\n%s", diff)
			}
			if tt.wantV3 != nil {
				if diff := cmp.Diff(tt.wantV3, strip(v3[tt.def])); diff != "" {
					t.Errorf("v3 (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestSchemas_Properties checks how fields become properties.
func TestSchemas_Properties(t *testing.T) {
	s := newService(t)
	v3 := v3Schemas(t, s, "api/v1")
	v2 := v2Definitions(t, s)
	prop := func(defs map[string]map[string]any, def, name string) map[string]any {
		t.Helper()
		props, _ := defs[def]["properties"].(map[string]any)
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Fatalf("%s has no property %s", def, name)
		}
		out := map[string]any{}
		for k, v := range p {
			if k != "description" {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name string
		got  map[string]any
		want any
	}{
		{
			name: "v3 reference with siblings goes in allOf",
			got:  prop(v3, "io.k8s.api.core.v1.Pod", "spec"),
			want: map[string]any{"default": map[string]any{}, "allOf": []any{map[string]any{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}}},
		},
		{
			name: "v2 reference",
			got:  prop(v2, "io.k8s.api.core.v1.Pod", "spec"),
			want: map[string]any{"default": map[string]any{}, "$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"},
		},
		{
			name: "inlined TypeMeta",
			got:  prop(v3, "io.k8s.api.core.v1.Pod", "apiVersion"),
			want: map[string]any{"type": "string"},
		},
		{
			name: "merge list keyed by two fields with patch strategy",
			got:  prop(v3, "io.k8s.api.core.v1.Container", "ports"),
			want: map[string]any{
				"type":                         "array",
				"items":                        map[string]any{"default": map[string]any{}, "allOf": []any{map[string]any{"$ref": "#/components/schemas/io.k8s.api.core.v1.ContainerPort"}}},
				"x-kubernetes-list-type":       "map",
				"x-kubernetes-list-map-keys":   []any{"containerPort", "protocol"},
				"x-kubernetes-patch-strategy":  "merge",
				"x-kubernetes-patch-merge-key": "containerPort",
			},
		},
		{
			name: "literal default from a comment",
			got:  prop(v3, "io.k8s.api.core.v1.ContainerPort", "protocol"),
			want: map[string]any{"type": "string", "default": "TCP"},
		},
		{
			name: "map of quantities",
			got:  prop(v3, "io.k8s.api.core.v1.ResourceRequirements", "limits"),
			want: map[string]any{"type": "object", "additionalProperties": map[string]any{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}},
		},
		{
			name: "bytes",
			got:  prop(v3, "io.k8s.api.core.v1.Secret", "data"),
			want: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string", "format": "byte"}},
		},
		{
			name: "int32 with its zero default",
			got:  prop(v3, "io.k8s.api.core.v1.ContainerPort", "containerPort"),
			want: map[string]any{"type": "integer", "format": "int32", "default": float64(0)},
		},
		{
			name: "optional int64",
			got:  prop(v3, "io.k8s.api.core.v1.PodSpec", "activeDeadlineSeconds"),
			want: map[string]any{"type": "integer", "format": "int64"},
		},
		{
			name: "atomic map",
			got:  prop(v3, "io.k8s.api.core.v1.PodSpec", "nodeSelector"),
			want: map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string", "default": ""}, "x-kubernetes-map-type": "atomic"},
		},
		{
			name: "set",
			got:  prop(v3, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers"),
			want: map[string]any{"type": "array", "items": map[string]any{"type": "string", "default": ""}, "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(jsonValue(t, tt.want), jsonValue(t, tt.got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("descriptions from SwaggerDoc", func(t *testing.T) {
		pod := v3["io.k8s.api.core.v1.Pod"]
		doc := corev1.Pod{}.SwaggerDoc()
		if pod["description"] != doc[""] || doc[""] == "" {
			t.Errorf("Pod description %q, want %q", pod["description"], doc[""])
		}
		spec := pod["properties"].(map[string]any)["spec"].(map[string]any)
		if spec["description"] != doc["spec"] {
			t.Errorf("Pod spec description %q, want %q", spec["description"], doc["spec"])
		}
	})
	t.Run("atomic struct", func(t *testing.T) {
		if got := v3["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"]; got != "atomic" {
			t.Errorf("LabelSelector x-kubernetes-map-type = %v, want atomic", got)
		}
	})
	t.Run("kinds", func(t *testing.T) {
		want := []any{map[string]any{"group": "", "version": "v1", "kind": "Pod"}}
		if diff := cmp.Diff(want, v3["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"]); diff != "" {
			t.Errorf("Pod kinds (-want +got):\n%s", diff)
		}
		deleteOptions, _ := v3["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"].([]any)
		if len(deleteOptions) != 9 {
			t.Errorf("DeleteOptions has %d kinds, want one per group version served: %v", len(deleteOptions), deleteOptions)
		}
	})
}

// Edge types for reflection.
type EdgeObject struct {
	metav1.TypeMeta `json:",inline"`
	*EdgeEmbedded
	Anonymous struct {
		A string `json:"a"`
	} `json:"anonymous"`
	Count     int64       `json:"count,string"`
	NoTag     string      // named by Go, as encoding/json does
	Self      *EdgeObject `json:"self,omitempty"`
	Any       any         `json:"any,omitempty"`
	Raw       []byte      `json:"raw,omitempty"`
	Skipped   string      `json:"-"`
	unexposed string
	Zero      string            `json:"zero,omitzero"`
	Pointer   *string           `json:"pointer"`
	Flag      bool              `json:"flag"`
	Required  string            `json:"required"`
	Shadowed  string            `json:"inner"`
	Grid      [2][]float32      `json:"grid,omitempty"`
	Nested    map[string][]int8 `json:"nested,omitempty"`
}

type EdgeEmbedded struct {
	Inner string `json:"inner"`
	Outer string `json:"outer"`
}

func (o *EdgeObject) DeepCopyObject() runtime.Object { return o }

func TestSchemas_ReflectionEdges(t *testing.T) {
	s, err := New([]Resource{{
		GroupVersion: schema.GroupVersion{Group: "example.com", Version: "v1"},
		Resource:     "edges", Kind: "Edge", Object: &EdgeObject{}, Verbs: []string{VerbGet},
	}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	def := v3Schemas(t, s, "apis/example.com/v1")["com.github.skiff-sh.skiff.internal.apiserver.openapi.EdgeObject"]
	if def == nil {
		t.Fatalf("no definition for EdgeObject in %v", keys(v3Schemas(t, s, "apis/example.com/v1")))
	}
	want := map[string]any{
		"type":     "object",
		"required": []any{"anonymous", "count", "NoTag", "required", "inner", "outer"},
		"properties": map[string]any{
			"apiVersion": map[string]any{"type": "string", "description": (metav1.TypeMeta{}).SwaggerDoc()["apiVersion"]},
			"kind":       map[string]any{"type": "string", "description": (metav1.TypeMeta{}).SwaggerDoc()["kind"]},
			"anonymous": map[string]any{"type": "object", "default": map[string]any{}, "required": []any{"a"},
				"properties": map[string]any{"a": map[string]any{"type": "string", "default": ""}}},
			"count":    map[string]any{"type": "string"},
			"NoTag":    map[string]any{"type": "string", "default": ""},
			"self":     map[string]any{"$ref": "#/components/schemas/com.github.skiff-sh.skiff.internal.apiserver.openapi.EdgeObject"},
			"any":      map[string]any{"type": "object"},
			"raw":      map[string]any{"type": "string", "format": "byte"},
			"zero":     map[string]any{"type": "string"},
			"pointer":  map[string]any{"type": "string"},
			"flag":     map[string]any{"type": "boolean", "default": false},
			"required": map[string]any{"type": "string", "default": ""},
			"inner":    map[string]any{"type": "string", "default": ""},
			"outer":    map[string]any{"type": "string", "default": ""},
			"grid": map[string]any{"type": "array", "items": map[string]any{"type": "array",
				"items": map[string]any{"type": "number", "format": "float", "default": float64(0)}}},
			"nested": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "array",
				"items": map[string]any{"type": "integer", "format": "byte", "default": float64(0)}}},
		},
		"x-kubernetes-group-version-kind": []any{map[string]any{"group": "example.com", "version": "v1", "kind": "Edge"}},
	}
	if diff := cmp.Diff(want, def); diff != "" {
		t.Errorf("EdgeObject (-want +got):\n%s", diff)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
