package openapi

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGolden_Excerpts compares excerpts people read (definitions and the
// operations of one path) with testdata/golden; -update rewrites them.
func TestGolden_Excerpts(t *testing.T) {
	s := newService(t)
	v2 := func(def string) func(*testing.T) any {
		return func(t *testing.T) any { return v2Definitions(t, s)[def] }
	}
	v3 := func(key, def string) func(*testing.T) any {
		return func(t *testing.T) any { return v3Schemas(t, s, key)[def] }
	}
	v3Path := func(key, path string) func(*testing.T) any {
		return func(t *testing.T) any {
			var doc struct {
				Paths map[string]any `json:"paths"`
			}
			if err := json.Unmarshal(renderV3(t, s, key), &doc); err != nil {
				t.Fatal(err)
			}
			return doc.Paths[path]
		}
	}
	tests := []struct {
		file    string
		excerpt func(*testing.T) any
	}{
		{"v3-pod.json", v3("api/v1", "io.k8s.api.core.v1.Pod")},
		{"v3-container.json", v3("api/v1", "io.k8s.api.core.v1.Container")},
		{"v3-deployment.json", v3("apis/apps/v1", "io.k8s.api.apps.v1.Deployment")},
		{"v3-deploymentspec.json", v3("apis/apps/v1", "io.k8s.api.apps.v1.DeploymentSpec")},
		{"v2-deployment.json", v2("io.k8s.api.apps.v1.Deployment")},
		{"v3-deployment-item-path.json", v3Path("apis/apps/v1", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")},
		{"v3-pod-exec-path.json", v3Path("api/v1", "/api/v1/namespaces/{namespace}/pods/{name}/exec")},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			v := tt.excerpt(t)
			if v == nil {
				t.Fatal("excerpt missing from the document")
			}
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tt.file)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs; run with -update and review the diff (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
			}
		})
	}
}
