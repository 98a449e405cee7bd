package core_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

// TestResources_Identity checks what discovery and the REST paths show
// for every resource, against upstream v1.37's `kubectl api-resources -o
// wide` and strategies.
func TestResources_Identity(t *testing.T) {
	type identity struct {
		GV                 schema.GroupVersion
		Kind               string
		Singular           string
		Namespaced         bool
		ShortNames         []string
		Categories         []string
		Verbs              []string
		Status             bool
		StatusOnCreate     bool
		CreateOnUpdate     bool
		ReturnDeleted      bool
		Generation         bool
		PathSegmentNames   bool
		FieldLabelsPresent bool
	}
	v1 := schema.GroupVersion{Version: "v1"}
	noDeleteCollection := []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	want := map[string]identity{
		"/namespaces":      {GV: v1, Kind: "Namespace", Singular: "namespace", ShortNames: []string{"ns"}, Verbs: noDeleteCollection, Status: true, ReturnDeleted: true, FieldLabelsPresent: true},
		"/nodes":           {GV: v1, Kind: "Node", Singular: "node", ShortNames: []string{"no"}, Status: true, StatusOnCreate: true, FieldLabelsPresent: true},
		"/services":        {GV: v1, Kind: "Service", Singular: "service", Namespaced: true, ShortNames: []string{"svc"}, Categories: []string{"all"}, Status: true, CreateOnUpdate: true, ReturnDeleted: true, FieldLabelsPresent: true},
		"/endpoints":       {GV: v1, Kind: "Endpoints", Singular: "endpoints", Namespaced: true, ShortNames: []string{"ep"}, CreateOnUpdate: true},
		"/configmaps":      {GV: v1, Kind: "ConfigMap", Singular: "configmap", Namespaced: true, ShortNames: []string{"cm"}},
		"/secrets":         {GV: v1, Kind: "Secret", Singular: "secret", Namespaced: true, FieldLabelsPresent: true},
		"/serviceaccounts": {GV: v1, Kind: "ServiceAccount", Singular: "serviceaccount", Namespaced: true, ShortNames: []string{"sa"}},
		"/events":          {GV: v1, Kind: "Event", Singular: "event", Namespaced: true, ShortNames: []string{"ev"}, CreateOnUpdate: true, PathSegmentNames: true, FieldLabelsPresent: true},
		"/limitranges":     {GV: v1, Kind: "LimitRange", Singular: "limitrange", Namespaced: true, ShortNames: []string{"limits"}, CreateOnUpdate: true},
		"/resourcequotas":  {GV: v1, Kind: "ResourceQuota", Singular: "resourcequota", Namespaced: true, ShortNames: []string{"quota"}, Status: true},
		"events.k8s.io/events": {GV: schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}, Kind: "Event", Singular: "event", Namespaced: true,
			ShortNames: []string{"ev"}, CreateOnUpdate: true, FieldLabelsPresent: true},
		"coordination.k8s.io/leases":        {GV: schema.GroupVersion{Group: "coordination.k8s.io", Version: "v1"}, Kind: "Lease", Singular: "lease", Namespaced: true, CreateOnUpdate: true},
		"discovery.k8s.io/endpointslices":   {GV: schema.GroupVersion{Group: "discovery.k8s.io", Version: "v1"}, Kind: "EndpointSlice", Singular: "endpointslice", Namespaced: true, Generation: true},
		"scheduling.k8s.io/priorityclasses": {GV: schema.GroupVersion{Group: "scheduling.k8s.io", Version: "v1"}, Kind: "PriorityClass", Singular: "priorityclass", ShortNames: []string{"pc"}},
		"rbac.authorization.k8s.io/roles":   {GV: schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}, Kind: "Role", Singular: "role", Namespaced: true, CreateOnUpdate: true, PathSegmentNames: true},
		"rbac.authorization.k8s.io/clusterroles": {GV: schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}, Kind: "ClusterRole", Singular: "clusterrole",
			CreateOnUpdate: true, PathSegmentNames: true},
		"rbac.authorization.k8s.io/rolebindings": {GV: schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}, Kind: "RoleBinding", Singular: "rolebinding",
			Namespaced: true, CreateOnUpdate: true, PathSegmentNames: true},
		"rbac.authorization.k8s.io/clusterrolebindings": {GV: schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}, Kind: "ClusterRoleBinding",
			Singular: "clusterrolebinding", CreateOnUpdate: true, PathSegmentNames: true},
	}
	got := map[string]identity{}
	for _, r := range core.Resources(core.Config{}) {
		pathSegment := r.NameValidation != nil && len(r.NameValidation("a:b", false)) == 0
		got[resourceKey(r)] = identity{
			GV: r.GroupVersion, Kind: r.Kind, Singular: r.SingularName, Namespaced: r.Namespaced,
			ShortNames: r.ShortNames, Categories: r.Categories, Verbs: r.Verbs,
			Status: r.Status != nil, StatusOnCreate: r.StatusOnCreate, CreateOnUpdate: r.AllowCreateOnUpdate,
			ReturnDeleted: r.ReturnDeletedObject, Generation: r.HasGeneration, PathSegmentNames: pathSegment,
			FieldLabelsPresent: len(r.FieldLabels) > 0,
		}
		t.Run(resourceKey(r), func(t *testing.T) {
			if r.ListKind != r.Kind+"List" {
				t.Errorf("ListKind = %q", r.ListKind)
			}
			if _, err := meta.Accessor(r.New()); err != nil {
				t.Errorf("New: %v", err)
			}
			if !meta.IsListType(r.NewList()) {
				t.Errorf("NewList returned %T", r.NewList())
			}
			if r.Validate == nil || r.ValidateUpdate == nil {
				t.Error("no validation")
			}
			if r.Table != nil {
				t.Error("Table must be left to the printers")
			}
			if (r.SelectableFields == nil) != (len(r.FieldLabels) == 0) {
				t.Error("SelectableFields and FieldLabels must come together")
			}
			if r.SelectableFields != nil {
				set := r.SelectableFields(r.New())
				var keys []string
				for k := range set {
					keys = append(keys, k)
				}
				if diff := cmp.Diff(r.FieldLabels, keys, cmpSortStrings); diff != "" {
					t.Errorf("SelectableFields keys differ from FieldLabels (-labels +fields):\n%s", diff)
				}
			}
		})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
}

// TestResources_NameValidation checks the name rules where upstream's
// differ from the default DNS-1123 subdomain.
func TestResources_NameValidation(t *testing.T) {
	cases := []struct {
		resource string
		name     string
		valid    bool
	}{
		{"/namespaces", "kube-system", true},
		{"/namespaces", "a.b", false}, // labels only
		{"/services", "web", true},
		{"/services", "1web", false}, // DNS-1035: starts with a letter
		{"/services", "a.b", false},
		{"/events", "web.17a9b2c3d4e5f6a7", true},
		{"/events", "a/b", false},
		{"rbac.authorization.k8s.io/clusterroles", "system:controller:job-controller", true},
		{"rbac.authorization.k8s.io/clusterroles", "..", false},
		{"/nodes", "node-1.example.com", true},
	}
	for _, tc := range cases {
		t.Run(tc.resource+"/"+tc.name, func(t *testing.T) {
			r := lookup(t, tc.resource)
			nameFn := r.NameValidation
			if nameFn == nil {
				nameFn = apimachineryvalidation.NameIsDNSSubdomain // the REST layer's default
			}
			msgs := nameFn(tc.name, false)
			if (len(msgs) == 0) != tc.valid {
				t.Errorf("valid = %v, want %v (%v)", len(msgs) == 0, tc.valid, msgs)
			}
		})
	}
}

// TestResources_EmptyObjects feeds every resource zero objects: the hooks
// must report errors, never panic.
func TestResources_EmptyObjects(t *testing.T) {
	ctx := context.Background()
	for _, r := range core.Resources(core.Config{}) {
		t.Run(resourceKey(r), func(t *testing.T) {
			obj := r.New()
			_ = create(t, r, obj)
			_ = update(t, r, r.New(), r.New())
			if r.Status != nil {
				_ = updateStatus(t, r, r.New(), r.New())
			}
			if r.BeforeCreate != nil {
				_ = r.BeforeCreate(ctx, r.New())
			}
			if r.BeforeUpdate != nil {
				_ = r.BeforeUpdate(ctx, r.New(), r.New())
			}
			if r.Rollback != nil {
				r.Rollback(ctx, r.New())
			}
			if r.AfterDelete != nil {
				_ = r.AfterDelete(ctx, r.New())
			}
		})
	}
}

func TestConfig_Validate(t *testing.T) {
	cases := []struct {
		name  string
		cfg   core.Config
		valid bool
	}{
		{"ZeroValueIsValid", core.Config{}, true},
		{"IPv6Range", core.Config{ServiceCIDR: netip.MustParsePrefix("fd00:43::/108")}, true},
		{"SmallestRange", core.Config{ServiceCIDR: netip.MustParsePrefix("10.0.0.0/30")}, true},
		{"RejectsHostAddress", core.Config{ServiceCIDR: netip.MustParsePrefix("10.43.0.1/16")}, false},
		{"RejectsTooLargeRange", core.Config{ServiceCIDR: netip.MustParsePrefix("10.0.0.0/8")}, false},
		{"RejectsTooLargeIPv6Range", core.Config{ServiceCIDR: netip.MustParsePrefix("fd00::/64")}, false},
		{"RejectsSingleAddress", core.Config{ServiceCIDR: netip.MustParsePrefix("10.0.0.0/32")}, false},
		{"RejectsMappedRange", core.Config{ServiceCIDR: netip.MustParsePrefix("::ffff:10.0.0.0/120")}, false},
		{"RejectsReversedPorts", core.Config{NodePortRange: core.PortRange{First: 32000, Last: 31000}}, false},
		{"RejectsPortZero", core.Config{NodePortRange: core.PortRange{First: 0, Last: 10}}, false},
		{"RejectsPortAbove65535", core.Config{NodePortRange: core.PortRange{First: 60000, Last: 70000}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.valid {
				t.Errorf("Validate() = %v, want valid=%v", err, tc.valid)
			}
		})
	}
}

func TestResources_PanicsOnInvalidConfig(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Resources accepted a /8 service CIDR")
		}
	}()
	core.Resources(core.Config{ServiceCIDR: netip.MustParsePrefix("10.0.0.0/8")})
}

func TestParsePortRange(t *testing.T) {
	cases := []struct {
		in   string
		want core.PortRange
		ok   bool
	}{
		{"30000-32767", core.PortRange{First: 30000, Last: 32767}, true},
		{" 8000 - 8100 ", core.PortRange{First: 8000, Last: 8100}, true},
		{"30080", core.PortRange{First: 30080, Last: 30080}, true},
		{"", core.PortRange{}, false},
		{"a-b", core.PortRange{}, false},
		{"100-50", core.PortRange{}, false},
		{"1-70000", core.PortRange{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := core.ParsePortRange(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParsePortRange(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if !tc.ok {
				return
			}
			if again, err := core.ParsePortRange(got.String()); err != nil || again != got {
				t.Errorf("String() = %q does not parse back: %v, %v", got.String(), again, err)
			}
		})
	}
}
