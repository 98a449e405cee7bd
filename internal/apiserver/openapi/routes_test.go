package openapi

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// v3Operations renders every v3 document and returns its operations by
// "METHOD path".
func v3Operations(t *testing.T, s *Service) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, key := range s.model.keys {
		var doc struct {
			Paths map[string]map[string]any `json:"paths"`
		}
		if err := json.Unmarshal(renderV3(t, s, key), &doc); err != nil {
			t.Fatal(err)
		}
		for path, item := range doc.Paths {
			for method, op := range item {
				if m, ok := op.(map[string]any); ok && method != "parameters" {
					out[method+" "+path] = m
				}
			}
		}
	}
	return out
}

func paramNames(op map[string]any) []string {
	var names []string
	ps, _ := op["parameters"].([]any)
	for _, p := range ps {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	return names
}

// TestOperations_AsUpstream checks operation IDs, actions, tags and kinds
// against the names upstream gives them.
func TestOperations_AsUpstream(t *testing.T) {
	ops := v3Operations(t, newService(t))
	gvk := func(group, version, kind string) map[string]any {
		return map[string]any{"group": group, "version": version, "kind": kind}
	}
	tests := []struct {
		op, id, action, tag string
		gvk                 map[string]any
	}{
		{"get /api/v1/namespaces/{namespace}/pods", "listCoreV1NamespacedPod", "list", "core_v1", gvk("", "v1", "Pod")},
		{"post /api/v1/namespaces/{namespace}/pods", "createCoreV1NamespacedPod", "post", "core_v1", gvk("", "v1", "Pod")},
		{"delete /api/v1/namespaces/{namespace}/pods", "deleteCoreV1CollectionNamespacedPod", "deletecollection", "core_v1", gvk("", "v1", "Pod")},
		{"get /api/v1/namespaces/{namespace}/pods/{name}", "readCoreV1NamespacedPod", "get", "core_v1", gvk("", "v1", "Pod")},
		{"put /api/v1/namespaces/{namespace}/pods/{name}", "replaceCoreV1NamespacedPod", "put", "core_v1", gvk("", "v1", "Pod")},
		{"patch /api/v1/namespaces/{namespace}/pods/{name}", "patchCoreV1NamespacedPod", "patch", "core_v1", gvk("", "v1", "Pod")},
		{"delete /api/v1/namespaces/{namespace}/pods/{name}", "deleteCoreV1NamespacedPod", "delete", "core_v1", gvk("", "v1", "Pod")},
		{"get /api/v1/pods", "listCoreV1PodForAllNamespaces", "list", "core_v1", gvk("", "v1", "Pod")},
		{"patch /api/v1/namespaces/{namespace}/pods/{name}/status", "patchCoreV1NamespacedPodStatus", "patch", "core_v1", gvk("", "v1", "Pod")},
		{"get /api/v1/namespaces/{namespace}/pods/{name}/log", "readCoreV1NamespacedPodLog", "get", "core_v1", gvk("", "v1", "Pod")},
		{"get /api/v1/namespaces/{namespace}/pods/{name}/exec", "connectCoreV1GetNamespacedPodExec", "connect", "core_v1", gvk("", "v1", "PodExecOptions")},
		{"post /api/v1/namespaces/{namespace}/pods/{name}/portforward", "connectCoreV1PostNamespacedPodPortforward", "connect", "core_v1", gvk("", "v1", "PodPortForwardOptions")},
		{"patch /api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}", "connectCoreV1PatchNamespacedPodProxyWithPath", "connect", "core_v1", gvk("", "v1", "PodProxyOptions")},
		{"post /api/v1/namespaces/{namespace}/pods/{name}/binding", "createCoreV1NamespacedPodBinding", "post", "core_v1", gvk("", "v1", "Binding")},
		{"post /api/v1/namespaces/{namespace}/pods/{name}/eviction", "createCoreV1NamespacedPodEviction", "post", "core_v1", gvk("policy", "v1", "Eviction")},
		{"patch /api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers", "patchCoreV1NamespacedPodEphemeralcontainers", "patch", "core_v1", gvk("", "v1", "Pod")},
		{"post /api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", "createCoreV1NamespacedServiceAccountToken", "post", "core_v1", gvk("authentication.k8s.io", "v1", "TokenRequest")},
		{"put /api/v1/namespaces/{name}/finalize", "replaceCoreV1NamespaceFinalize", "put", "core_v1", gvk("", "v1", "Namespace")},
		{"get /api/v1/nodes/{name}/proxy", "connectCoreV1GetNodeProxy", "connect", "core_v1", gvk("", "v1", "NodeProxyOptions")},
		{"get /api/v1/nodes", "listCoreV1Node", "list", "core_v1", gvk("", "v1", "Node")},
		{"get /apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "readAppsV1NamespacedDeploymentScale", "get", "apps_v1", gvk("autoscaling", "v1", "Scale")},
		{"patch /apis/apps/v1/namespaces/{namespace}/deployments/{name}", "patchAppsV1NamespacedDeployment", "patch", "apps_v1", gvk("apps", "v1", "Deployment")},
		{"get /apis/rbac.authorization.k8s.io/v1/clusterroles", "listRbacAuthorizationV1ClusterRole", "list", "rbacAuthorization_v1", gvk("rbac.authorization.k8s.io", "v1", "ClusterRole")},
		{"get /apis/events.k8s.io/v1/events", "listEventsV1EventForAllNamespaces", "list", "events_v1", gvk("events.k8s.io", "v1", "Event")},
		{"get /apis/metrics.k8s.io/v1beta1/nodes", "listMetricsV1beta1NodeMetrics", "list", "metrics_v1beta1", gvk("metrics.k8s.io", "v1beta1", "NodeMetrics")},
		{"get /apis/apps/v1/", "getAppsV1APIResources", "", "apps_v1", nil},
		{"get /apis/apps/", "getAppsAPIGroup", "", "apps", nil},
		{"get /apis/rbac.authorization.k8s.io/", "getRbacAuthorizationAPIGroup", "", "rbacAuthorization", nil},
		{"get /api/", "getCoreAPIVersions", "", "core", nil},
		{"get /apis/", "getAPIVersions", "", "apis", nil},
		{"get /version/", "getCodeVersion", "", "version", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			op, ok := ops[tt.op]
			if !ok {
				t.Fatalf("no operation %s", tt.op)
			}
			got := map[string]any{"id": op["operationId"], "action": op["x-kubernetes-action"], "tags": op["tags"], "gvk": op["x-kubernetes-group-version-kind"]}
			want := map[string]any{"id": tt.id, "action": tt.action, "tags": []any{tt.tag}, "gvk": tt.gvk}
			if tt.action == "" {
				want["action"] = nil
			}
			if tt.gvk == nil {
				want["gvk"] = nil
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("metrics are read-only", func(t *testing.T) {
		for _, op := range []string{"post /apis/metrics.k8s.io/v1beta1/nodes", "patch /apis/metrics.k8s.io/v1beta1/nodes/{name}", "delete /apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"} {
			if _, ok := ops[op]; ok {
				t.Errorf("%s is documented", op)
			}
		}
	})
}

// TestOperations_Parameters checks the query parameters clients look for.
func TestOperations_Parameters(t *testing.T) {
	ops := v3Operations(t, newService(t))
	t.Run("every patch advertises fieldValidation and its kind", func(t *testing.T) {
		n := 0
		for name, op := range ops {
			if name[:6] != "patch " {
				continue
			}
			n++
			if op["x-kubernetes-action"] == "connect" {
				continue
			}
			if !slices.Contains(paramNames(op), "fieldValidation") {
				t.Errorf("%s lacks fieldValidation: %v", name, paramNames(op))
			}
			if op["x-kubernetes-group-version-kind"] == nil {
				t.Errorf("%s has no kind", name)
			}
		}
		if n < 20 {
			t.Errorf("only %d patch operations", n)
		}
	})
	tests := []struct {
		op   string
		want []string
	}{
		{"patch /apis/apps/v1/namespaces/{namespace}/deployments/{name}", []string{"dryRun", "force", "fieldManager", "fieldValidation"}},
		{"post /apis/apps/v1/namespaces/{namespace}/deployments", []string{"dryRun", "fieldManager", "fieldValidation"}},
		{"delete /apis/apps/v1/namespaces/{namespace}/deployments/{name}", []string{"gracePeriodSeconds", "preconditions", "orphanDependents", "propagationPolicy", "dryRun", "ignoreStoreReadErrorWithClusterBreakingPotential"}},
		{"get /api/v1/pods", []string{"labelSelector", "fieldSelector", "watch", "allowWatchBookmarks", "resourceVersion", "resourceVersionMatch", "timeoutSeconds", "limit", "continue", "sendInitialEvents"}},
		{"get /apis/metrics.k8s.io/v1beta1/nodes", []string{"labelSelector", "fieldSelector", "resourceVersion", "resourceVersionMatch", "timeoutSeconds", "limit", "continue"}},
		{"get /api/v1/namespaces/{namespace}/pods/{name}/log", []string{"container", "follow", "previous", "sinceSeconds", "tailLines", "timestamps", "limitBytes", "insecureSkipTLSVerifyBackend", "stream"}},
		{"post /api/v1/namespaces/{namespace}/pods/{name}/exec", []string{"stdin", "stdout", "stderr", "tty", "container", "command"}},
	}
	t.Run("no watch parameters where watch is not served", func(t *testing.T) {
		got := paramNames(ops["get /apis/metrics.k8s.io/v1beta1/nodes"])
		for _, p := range []string{"watch", "allowWatchBookmarks", "sendInitialEvents"} {
			if slices.Contains(got, p) {
				t.Errorf("metrics list documents %s", p)
			}
		}
	})
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			op, ok := ops[tt.op]
			if !ok {
				t.Fatalf("no operation %s", tt.op)
			}
			got := paramNames(op)
			for _, w := range tt.want {
				if w == "preconditions" {
					if slices.Contains(got, w) {
						t.Errorf("%s documents the struct field preconditions as a query parameter", tt.op)
					}
					continue
				}
				if !slices.Contains(got, w) {
					t.Errorf("%s lacks %s: %v", tt.op, w, got)
				}
			}
		})
	}
}
