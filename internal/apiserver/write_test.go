package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// raw sends a request and returns the status code and decoded body.
func raw(t *testing.T, env *testEnv, method, path, contentType, body string) (int, map[string]interface{}, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, env.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]interface{}
	json.Unmarshal(data, &out)
	return resp.StatusCode, out, resp.Header
}

func TestPatch_AllTypes(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	pods := env.client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("p", map[string]string{"a": "1"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ   types.PatchType
		patch string
		check func(*corev1.Pod) bool
	}{
		{types.JSONPatchType, `[{"op":"add","path":"/metadata/labels/b","value":"2"}]`, func(p *corev1.Pod) bool { return p.Labels["b"] == "2" }},
		{types.MergePatchType, `{"metadata":{"labels":{"a":null,"c":"3"}}}`, func(p *corev1.Pod) bool { return p.Labels["a"] == "" && p.Labels["c"] == "3" }},
		{types.StrategicMergePatchType, `{"spec":{"containers":[{"name":"c","image":"img2"}]}}`, func(p *corev1.Pod) bool {
			return len(p.Spec.Containers) == 1 && p.Spec.Containers[0].Image == "img2"
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			got, err := pods.Patch(ctx, "p", tt.typ, []byte(tt.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Fatalf("patch not applied: %+v %+v", got.Labels, got.Spec.Containers)
			}
		})
	}
	t.Run("failed json patch test op is 422", func(t *testing.T) {
		_, err := pods.Patch(ctx, "p", types.JSONPatchType, []byte(`[{"op":"test","path":"/metadata/name","value":"other"}]`), metav1.PatchOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("patch of a missing object is 404", func(t *testing.T) {
		_, err := pods.Patch(ctx, "nope", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("immutable field is 422", func(t *testing.T) {
		_, err := pods.Patch(ctx, "p", types.MergePatchType, []byte(`{"spec":{"nodeName":"n1"}}`), metav1.PatchOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestServerSideApply_OwnershipAndConflicts(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	cms := env.client.CoreV1().ConfigMaps("default")
	apply := func(manager string, force bool, data string) (*corev1.ConfigMap, error) {
		body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":%s}`, data)
		return cms.Patch(ctx, "cfg", types.ApplyPatchType, []byte(body), metav1.PatchOptions{FieldManager: manager, Force: &force})
	}
	created, err := apply("alice", false, `{"a":"1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ManagedFields) != 1 || created.ManagedFields[0].Manager != "alice" || created.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("managed fields after apply-create: %+v", created.ManagedFields)
	}
	if _, err := apply("bob", false, `{"a":"2"}`); !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("conflicting apply: %v", err)
	}
	got, err := apply("bob", true, `{"a":"2"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "2" {
		t.Fatalf("forced apply: %v", got.Data)
	}
	// Re-applying alice's config without the field she lost leaves bob's.
	got, err = apply("alice", false, `{"b":"1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["a"] != "2" || got.Data["b"] != "1" {
		t.Fatalf("after re-apply: %v", got.Data)
	}
	code, body, _ := raw(t, env, "PATCH", "/api/v1/namespaces/default/configmaps/cfg", "application/apply-patch+yaml", "data: {c: '1'}")
	if code != 422 || !strings.Contains(fmt.Sprint(body["message"]), "fieldManager") {
		t.Fatalf("apply without fieldManager: %d %v", code, body)
	}
}

func TestBadInput_IsRejectedAndNothingChanges(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	if _, err := env.client.CoreV1().Pods("default").Create(ctx, pod("keep", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := env.client.CoreV1().Pods("default").Get(ctx, "keep", metav1.GetOptions{})
	tests := []struct {
		name, method, path, ct, body string
		code                         int
		reason                       metav1.StatusReason
		mentions                     string
	}{
		{"malformed json", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"metadata":`, 400, metav1.StatusReasonBadRequest, "Pod"},
		{"malformed yaml", "POST", "/api/v1/namespaces/default/pods", "application/yaml", "metadata: [\n", 400, metav1.StatusReasonBadRequest, ""},
		{"wrong kind", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest, "ConfigMap in version \"v1\" cannot be handled as a Pod"},
		{"wrong apiVersion", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest, "cannot be handled as a Pod"},
		{"invalid name", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, 422, metav1.StatusReasonInvalid, "metadata.name"},
		{"missing required", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{}}`, 422, metav1.StatusReasonInvalid, "spec.containers"},
		{"no name", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{"containers":[{"name":"c","image":"i"}]}}`, 422, metav1.StatusReasonInvalid, "name or generateName is required"},
		{"unknown field strict", "POST", "/api/v1/namespaces/default/pods?fieldValidation=Strict", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"bogus":1,"containers":[{"name":"c","image":"i"}]}}`, 400, metav1.StatusReasonBadRequest, `unknown field "spec.bogus"`},
		{"already exists", "POST", "/api/v1/namespaces/default/pods", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"keep"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, 409, metav1.StatusReasonAlreadyExists, `pods "keep" already exists`},
		{"stale resourceVersion", "PUT", "/api/v1/namespaces/default/pods/keep", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"keep","resourceVersion":"1"},"spec":{"containers":[{"name":"c","image":"i"}]}}`, 409, metav1.StatusReasonConflict, "the object has been modified"},
		{"immutable field", "PUT", "/api/v1/namespaces/default/pods/keep", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"keep"},"spec":{"nodeName":"n","containers":[{"name":"c","image":"i"}]}}`, 422, metav1.StatusReasonInvalid, "spec.nodeName"},
		{"name mismatch", "PUT", "/api/v1/namespaces/default/pods/keep", "application/json", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"other"}}`, 400, metav1.StatusReasonBadRequest, "does not match the name on the URL"},
		{"oversized body", "POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"data":{"a":"` + strings.Repeat("x", 3*1024*1024+10) + `"}}`, 413, metav1.StatusReasonRequestEntityTooLarge, ""},
		{"unknown resource", "GET", "/api/v1/namespaces/default/widgets", "", "", 404, metav1.StatusReasonNotFound, "could not find the requested resource"},
		{"unknown group", "GET", "/apis/example.com/v1/widgets", "", "", 404, metav1.StatusReasonNotFound, "could not find the requested resource"},
		{"not found", "GET", "/api/v1/namespaces/default/pods/nope", "", "", 404, metav1.StatusReasonNotFound, `pods "nope" not found`},
		{"missing namespace", "POST", "/api/v1/namespaces/nope/configmaps", "application/json", `{"metadata":{"name":"x"}}`, 404, metav1.StatusReasonNotFound, `namespaces "nope" not found`},
		{"unsupported media type", "POST", "/api/v1/namespaces/default/configmaps", "text/plain", `x`, 415, metav1.StatusReasonUnsupportedMediaType, ""},
		{"unknown subresource path", "POST", "/api/v1/namespaces/default/pods/keep/binding/x", "application/json", `{}`, 404, metav1.StatusReasonNotFound, ""},
		{"unsupported verb on a subresource", "PATCH", "/api/v1/namespaces/default/pods/keep/binding", "application/merge-patch+json", `{}`, 405, metav1.StatusReasonMethodNotAllowed, "not supported"},
		{"bad label selector", "GET", "/api/v1/pods?labelSelector=a%20in%20(", "", "", 400, metav1.StatusReasonBadRequest, ""},
		{"unsupported field selector", "GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx", "", "", 400, metav1.StatusReasonBadRequest, "field label not supported: spec.bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := raw(t, env, tt.method, tt.path, tt.ct, tt.body)
			if code != tt.code || body["kind"] != "Status" || body["reason"] != string(tt.reason) {
				t.Fatalf("got %d %v %v: %v", code, body["kind"], body["reason"], body["message"])
			}
			if tt.mentions != "" && !strings.Contains(fmt.Sprint(body["message"]), tt.mentions) {
				t.Fatalf("message %q does not mention %q", body["message"], tt.mentions)
			}
		})
	}
	after, err := env.client.CoreV1().Pods("default").Get(ctx, "keep", metav1.GetOptions{})
	if err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("stored object changed: %v %s -> %s", err, before.ResourceVersion, after.ResourceVersion)
	}
}

func TestDelete_GracefulFinalizersAndNamespaces(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	pods := env.client.CoreV1().Pods("default")

	// An unscheduled pod goes at once.
	pods.Create(ctx, pod("unbound", nil), metav1.CreateOptions{})
	if err := pods.Delete(ctx, "unbound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "unbound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unbound pod still there: %v", err)
	}

	// A bound pod is marked, then removed by a grace-0 delete.
	p := pod("bound", nil)
	pods.Create(ctx, p, metav1.CreateOptions{})
	b := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "bound"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx, b, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second binding: %v", err)
	}
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil || *got.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("graceful delete: %v %+v", err, got)
	}
	zero := int64(0)
	if err := pods.Delete(ctx, "bound", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "bound", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pod after grace-0 delete: %v", err)
	}

	// An object with a finalizer stays until it is removed.
	cms := env.client.CoreV1().ConfigMaps("default")
	cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fin", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{})
	cms.Delete(ctx, "fin", metav1.DeleteOptions{})
	cm, err := cms.Get(ctx, "fin", metav1.GetOptions{})
	if err != nil || cm.DeletionTimestamp == nil {
		t.Fatalf("finalized object: %v", err)
	}
	cm.Finalizers = append(cm.Finalizers, "example.com/more")
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("adding a finalizer while deleting: %v", err)
	}
	cm.Finalizers = nil
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "fin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("object after its last finalizer went: %v", err)
	}

	// A terminating namespace refuses new content.
	nss := env.client.CoreV1().Namespaces()
	nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{})
	if err := nss.Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, _ := nss.Get(ctx, "doomed", metav1.GetOptions{})
	if ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace phase %s", ns.Status.Phase)
	}
	_, err = env.client.CoreV1().ConfigMaps("doomed").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "being terminated") {
		t.Fatalf("create in terminating namespace: %v", err)
	}
	ns.Spec.Finalizers = nil
	if _, err := nss.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := nss.Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("finalized namespace: %v", err)
	}
}

func TestList_PaginationFieldSelectorsDryRunAndTable(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	pods := env.client.CoreV1().Pods("default")
	for i := range 7 {
		pods.Create(ctx, pod(fmt.Sprintf("p%d", i), nil), metav1.CreateOptions{})
	}
	var names []string
	opts := metav1.ListOptions{Limit: 3}
	for {
		l, err := pods.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if len(names) != 7 {
		t.Fatalf("paged: %v", names)
	}
	l, err := pods.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=p3"})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("field selector: %v %d", err, len(l.Items))
	}
	dry, err := pods.Create(ctx, pod("dry", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || dry.UID == "" {
		t.Fatalf("dry run: %v", err)
	}
	if _, err := pods.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run stored the pod: %v", err)
	}
	req, _ := http.NewRequest("GET", env.url+"/api/v1/namespaces/default/pods?limit=2", nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io, application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var table metav1.Table
	data, _ := io.ReadAll(resp.Body)
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&table); err != nil {
		t.Fatal(err)
	}
	if table.Kind != "Table" || len(table.Rows) != 2 || len(table.ColumnDefinitions) == 0 || table.Continue == "" {
		t.Fatalf("table: %s", data)
	}
	var meta metav1.PartialObjectMetadata
	if err := json.Unmarshal(table.Rows[0].Object.Raw, &meta); err != nil || meta.Name != "p0" {
		t.Fatalf("row object: %v %s", err, table.Rows[0].Object.Raw)
	}
}
