package internal_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/skiff-sh/skiff"

type pkg struct {
	ImportPath string
	Imports    []string
}

// TestImportGraph keeps the layering DESIGN.md asks for: components reach
// each other through the API or CRI, never through each other's internals.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	rules := []struct {
		name string
		// applies says whether the rule constrains package p.
		applies func(p string) bool
		// forbidden says whether p may not import imp.
		forbidden func(imp string) bool
	}{
		{
			name: "only the API server and the server assembly use the storage layer",
			applies: func(p string) bool {
				// Benchmarks compare the API with raw etcd in one process.
				return !under(p, "internal/apiserver") && !under(p, "internal/server") && !under(p, "internal/storage") && !under(p, "bench")
			},
			forbidden: func(imp string) bool { return under(imp, "internal/storage") },
		},
		{
			name:      "Linux primitives import nothing else from skiff",
			applies:   func(p string) bool { return under(p, "internal/sys") },
			forbidden: func(imp string) bool { return strings.HasPrefix(imp, module+"/") && !under(imp, "internal/sys") },
		},
		{
			name:    "the container runtime does not depend on the control plane",
			applies: func(p string) bool { return under(p, "internal/container") },
			forbidden: func(imp string) bool {
				return under(imp, "internal/apiserver") || under(imp, "internal/registry") || under(imp, "internal/server")
			},
		},
		{
			name:      "registry rules do not reach into the REST layer",
			applies:   func(p string) bool { return under(p, "internal/registry") },
			forbidden: func(imp string) bool { return under(imp, "internal/apiserver") || under(imp, "internal/server") },
		},
		{
			// go list's Imports leave out test files, so this allows the
			// controllers' tests and nothing else. (internal/testutil has
			// no such rule: the benchmarks under bench use it.)
			name:      "the controllers' test harness is for tests only",
			applies:   func(p string) bool { return !under(p, "internal/controller/controllertest") },
			forbidden: func(imp string) bool { return under(imp, "internal/controller/controllertest") },
		},
	}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if !r.applies(p.ImportPath) {
				continue
			}
			for _, imp := range p.Imports {
				if r.forbidden(imp) {
					t.Errorf("%s: %s imports %s", r.name, p.ImportPath, imp)
				}
			}
		}
	}
}

func under(p, dir string) bool {
	full := module + "/" + dir
	return p == full || strings.HasPrefix(p, full+"/")
}
