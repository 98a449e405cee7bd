package workload

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestResources_Identity checks what discovery and the REST paths show
// for every resource, and that the constructors return the right types.
func TestResources_Identity(t *testing.T) {
	type identity struct {
		GV         schema.GroupVersion
		Kind       string
		ShortNames []string
		All        bool
		Generation bool
		Status     bool
		Scale      bool
	}
	want := map[string]identity{
		"pods":                   {schema.GroupVersion{Version: "v1"}, "Pod", []string{"po"}, true, true, true, false},
		"podtemplates":           {schema.GroupVersion{Version: "v1"}, "PodTemplate", nil, false, false, false, false},
		"replicationcontrollers": {schema.GroupVersion{Version: "v1"}, "ReplicationController", []string{"rc"}, true, true, true, true},
		"deployments":            {schema.GroupVersion{Group: "apps", Version: "v1"}, "Deployment", []string{"deploy"}, true, true, true, true},
		"replicasets":            {schema.GroupVersion{Group: "apps", Version: "v1"}, "ReplicaSet", []string{"rs"}, true, true, true, true},
		"statefulsets":           {schema.GroupVersion{Group: "apps", Version: "v1"}, "StatefulSet", []string{"sts"}, true, true, true, true},
		"daemonsets":             {schema.GroupVersion{Group: "apps", Version: "v1"}, "DaemonSet", []string{"ds"}, true, true, true, false},
		"controllerrevisions":    {schema.GroupVersion{Group: "apps", Version: "v1"}, "ControllerRevision", nil, false, false, false, false},
		"jobs":                   {schema.GroupVersion{Group: "batch", Version: "v1"}, "Job", nil, true, true, true, false},
		"cronjobs":               {schema.GroupVersion{Group: "batch", Version: "v1"}, "CronJob", []string{"cj"}, true, true, true, false},
	}
	got := map[string]identity{}
	for _, r := range Resources(Config{}) {
		got[r.Resource] = identity{r.GroupVersion, r.Kind, r.ShortNames, contains(r.Categories, "all"), r.HasGeneration, r.Status != nil, r.Scale != nil}
		t.Run(r.Resource, func(t *testing.T) {
			if !r.Namespaced {
				t.Error("not namespaced")
			}
			if r.ListKind != r.Kind+"List" {
				t.Errorf("ListKind = %q", r.ListKind)
			}
			obj, list := r.New(), r.NewList()
			if k := obj.GetObjectKind(); k == nil {
				t.Fatal("New returned no object")
			}
			if _, err := meta.Accessor(obj); err != nil {
				t.Errorf("New: %v", err)
			}
			if !meta.IsListType(list) {
				t.Errorf("NewList returned %T", list)
			}
			if r.Validate == nil || r.ValidateUpdate == nil {
				t.Error("no validation")
			}
			if r.Table != nil {
				t.Error("Table must be left to the printers")
			}
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
}

// TestResources_EmptyObjects feeds every resource a zero object: the hooks
// must report errors, never panic.
func TestResources_EmptyObjects(t *testing.T) {
	ctx := context.Background()
	for _, r := range Resources(Config{}) {
		t.Run(r.Resource, func(t *testing.T) {
			obj := r.New()
			if r.PrepareForCreate != nil {
				r.PrepareForCreate(ctx, obj)
			}
			if r.Default != nil {
				r.Default(obj)
			}
			errs := r.Validate(ctx, obj)
			if len(errs) == 0 && r.Resource != "controllerrevisions" {
				t.Logf("an empty %s is valid", r.Kind)
			}
			old := r.New()
			if r.Default != nil {
				r.Default(old)
			}
			_ = r.ValidateUpdate(ctx, r.New(), old)
			if r.Status != nil && r.Status.ValidateUpdate != nil {
				_ = r.Status.ValidateUpdate(ctx, r.New(), r.New())
			}
			if r.Scale != nil {
				s := r.Scale.Get(r.New())
				r.Scale.Set(r.New(), s)
			}
			if r.SelectableFields != nil {
				_ = r.SelectableFields(r.New())
			}
			if r.GracefulDelete != nil {
				r.GracefulDelete(r.New(), nil)
			}
		})
	}
}
