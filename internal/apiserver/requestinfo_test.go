package apiserver

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseRequestInfo(t *testing.T) {
	tests := []struct {
		method, url string
		want        requestInfo
	}{
		{"GET", "/api/v1/pods", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Resource: "pods", Verb: "list"}},
		{"GET", "/api/v1/namespaces/default/pods?watch=true", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods", Verb: "watch"}},
		{"GET", "/api/v1/namespaces/default/pods/web", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods", Name: "web", Verb: "get"}},
		{"PUT", "/api/v1/namespaces/default/pods/web/status", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Namespace: "default", Resource: "pods", Name: "web", Subresource: "status", Verb: "update"}},
		{"GET", "/api/v1/namespaces", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Resource: "namespaces", Verb: "list"}},
		{"GET", "/api/v1/namespaces/kube-system", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Resource: "namespaces", Name: "kube-system", Verb: "get"}},
		{"PUT", "/api/v1/namespaces/x/finalize", requestInfo{IsResource: true, APIPrefix: "api", Version: "v1", Resource: "namespaces", Name: "x", Subresource: "finalize", Verb: "update"}},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments", requestInfo{IsResource: true, APIPrefix: "apis", Group: "apps", Version: "v1", Namespace: "ns", Resource: "deployments", Verb: "deletecollection"}},
		{"PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", requestInfo{IsResource: true, APIPrefix: "apis", Group: "apps", Version: "v1", Namespace: "ns", Resource: "deployments", Name: "d", Subresource: "scale", Verb: "patch"}},
		{"GET", "/apis/apps/v1", requestInfo{Verb: "get"}},
		{"GET", "/healthz", requestInfo{Verb: "get"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.url, func(t *testing.T) {
			got := parseRequestInfo(httptest.NewRequest(tt.method, tt.url, nil))
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(requestInfo{}, "Parts")); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
