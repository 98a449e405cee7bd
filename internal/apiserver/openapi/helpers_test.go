package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// newService builds the Service for skiffResources or fails the test.
func newService(t testing.TB) *Service {
	t.Helper()
	s, err := New(skiffResources(), Config{Version: "v1.37.2"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// newAPIServer serves svc plus the least discovery kubectl needs to map
// resource names to kinds: /api, /apis and the resource lists.
func newAPIServer(t testing.TB, resources []Resource, svc *Service) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	svc.Install(mux)

	lists := map[string]*metav1.APIResourceList{}
	var groups []metav1.APIGroup
	for _, r := range resources {
		gv := r.GroupVersion.String()
		path := "/" + documentKey(r.GroupVersion)
		if lists[path] == nil {
			lists[path] = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv}
			if r.GroupVersion.Group != "" {
				v := metav1.GroupVersionForDiscovery{GroupVersion: gv, Version: r.GroupVersion.Version}
				groups = append(groups, metav1.APIGroup{Name: r.GroupVersion.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
			}
		}
		list := lists[path]
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: r.Resource, Namespaced: r.Namespaced, Kind: r.Kind, Verbs: r.verbs(),
		})
		for _, sub := range r.Subresources {
			kind := r.Kind
			if sub.Object != nil {
				kind = sub.kind(&r).Kind
			}
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: r.Resource + "/" + sub.Name, Namespaced: r.Namespaced, Kind: kind, Verbs: sub.Verbs,
			})
		}
	}
	reply := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if err := json.NewEncoder(w).Encode(v); err != nil {
				t.Errorf("encode %s: %v", r.URL.Path, err)
			}
		}
	}
	mux.Handle("/api", reply(metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}}))
	mux.Handle("/apis", reply(metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: groups}))
	for path, list := range lists {
		mux.Handle(path, reply(list))
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func restConfig(ts *httptest.Server) *rest.Config {
	return &rest.Config{Host: ts.URL}
}

// kubectlFactory is the factory kubectl's commands get, pointed at ts,
// with its discovery cache in a temporary directory and no kubeconfig of
// the machine's.
func kubectlFactory(t testing.TB, ts *httptest.Server) cmdutil.Factory {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(true)
	server, cache := ts.URL, filepath.Join(dir, "cache")
	flags.KubeConfig = &kubeconfig
	flags.APIServer = &server
	flags.CacheDir = &cache
	return cmdutil.NewFactory(flags)
}

// resourceByKind finds a resource of skiffResources.
func resourceByKind(t testing.TB, group, kind string) Resource {
	t.Helper()
	rs := skiffResources()
	i := slices.IndexFunc(rs, func(r Resource) bool { return r.GroupVersion.Group == group && r.Kind == kind })
	if i < 0 {
		t.Fatalf("no resource %s %s", group, kind)
	}
	return rs[i]
}

func mustQuantity(t testing.TB, s string) resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
