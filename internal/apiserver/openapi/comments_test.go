package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata and "+generatedComments)

const generatedComments = "zz_generated.comments.go"

// scannedModules are the module roots and the directories below them
// whose types the generated table covers.
var scannedModules = []struct {
	module string
	dirs   []string // relative; "..." means every versioned package below
}{
	{"k8s.io/api", []string{"..."}},
	{"k8s.io/apimachinery", []string{"pkg/apis/meta/v1", "pkg/apis/meta/v1beta1", "pkg/version"}},
	{"k8s.io/metrics", []string{"pkg/apis/..."}},
}

var versionDir = regexp.MustCompile(`^v[0-9]+((alpha|beta)[0-9]+)?$`)

// TestUpstreamComments_TableIsCurrent regenerates the table of what the
// source comments of API types tell upstream's generator (+optional,
// +required, +listType, +listMapKey, +mapType, +structType, +default) from
// the sources of the modules in go.mod, and fails when the checked-in
// table is stale. Run it with -update after bumping k8s.io/api.
func TestUpstreamComments_TableIsCurrent(t *testing.T) {
	var packages []string
	table := map[string]*typeComments{}
	for _, m := range scannedModules {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", m.module).Output()
		if err != nil {
			t.Fatalf("locate module %s: %v", m.module, err)
		}
		root := strings.TrimSpace(string(out))
		for _, d := range m.dirs {
			dirs, err := expand(root, d)
			if err != nil {
				t.Fatalf("module %s: %v", m.module, err)
			}
			for _, dir := range dirs {
				rel, _ := filepath.Rel(root, dir)
				pkg := m.module + "/" + filepath.ToSlash(rel)
				packages = append(packages, pkg)
				if err := scanPackage(pkg, dir, table); err != nil {
					t.Fatalf("scan %s: %v", pkg, err)
				}
			}
		}
	}
	slices.Sort(packages)
	src, err := renderCommentTable(packages, table)
	if err != nil {
		t.Fatal(err)
	}

	if *update {
		if err := os.WriteFile(generatedComments, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(generatedComments)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(src), string(have)); diff != "" {
		t.Errorf("%s is stale; run go test -run TestUpstreamComments -update (-want +have):\n%s", generatedComments, diff)
	}
}

// expand lists the package directories d names below root.
func expand(root, d string) ([]string, error) {
	base, all := strings.CutSuffix(d, "...")
	start := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(base, "/")))
	if !all {
		return []string{start}, nil
	}
	var dirs []string
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && e.Name() == "testdata" {
			return filepath.SkipDir
		}
		if e.IsDir() && versionDir.MatchString(e.Name()) {
			if _, err := os.Stat(filepath.Join(p, "types.go")); err == nil {
				dirs = append(dirs, p)
			}
		}
		return nil
	})
	return dirs, err
}

// scanPackage records what the comments of the package's structs say
// beyond their Go types.
func scanPackage(pkg, dir string, out map[string]*typeComments) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok {
					continue
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				tc := &typeComments{fields: map[string]fieldComments{}}
				if v := commentTags(doc)["structType"]; len(v) > 0 {
					tc.structType = v[0]
				}
				for _, field := range st.Fields.List {
					name, fc, ok := scanField(field)
					if ok && !reflect.DeepEqual(fc, fieldComments{}) {
						tc.fields[name] = fc
					}
				}
				if tc.structType != "" || len(tc.fields) > 0 {
					out[pkg+"."+ts.Name.Name] = tc
				}
			}
		}
	}
	return nil
}

// scanField returns the JSON name of a field and what its comments say;
// false for fields JSON does not see or inlines.
func scanField(field *ast.Field) (string, fieldComments, bool) {
	tag := ""
	if field.Tag != nil {
		tag = reflect.StructTag(strings.Trim(field.Tag.Value, "`")).Get("json")
	}
	name, opts, _ := strings.Cut(tag, ",")
	switch {
	case name == "-":
		return "", fieldComments{}, false
	case len(field.Names) == 0:
		// Embedded: inlined unless its tag names it
		// (metav1.ObjectMeta `json:"metadata"`).
		if name == "" {
			return "", fieldComments{}, false
		}
	case !field.Names[0].IsExported():
		return "", fieldComments{}, false
	case name == "":
		name = field.Names[0].Name
	}
	tags := commentTags(field.Doc)
	omit := hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero")
	_, optional := tags["optional"]
	_, required := tags["required"]
	var fc fieldComments
	fc.optional = optional && !required && !omit
	fc.required = required && omit
	if v := tags["listType"]; len(v) > 0 {
		fc.listType = v[0]
	}
	fc.listMapKeys = tags["listMapKey"]
	if v := tags["mapType"]; len(v) > 0 {
		fc.mapType = v[0]
	}
	if v := tags["structType"]; len(v) > 0 {
		fc.mapType = v[0]
	}
	// +default=ref(Constant) names a Go constant; only literal JSON
	// values are kept.
	if v := tags["default"]; len(v) > 0 && !strings.HasPrefix(v[0], "ref(") && json.Valid([]byte(v[0])) {
		fc.defaultJSON = v[0]
	}
	return name, fc, true
}

// commentTags extracts the "+key=value" lines of a comment the way
// upstream's generator does: every value of every key, "" for a bare
// "+key".
func commentTags(doc *ast.CommentGroup) map[string][]string {
	out := map[string][]string{}
	if doc == nil {
		return out
	}
	for line := range strings.SplitSeq(doc.Text(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "+") {
			continue
		}
		k, v, _ := strings.Cut(line[1:], "=")
		out[k] = append(out[k], v)
	}
	return out
}

func renderCommentTable(packages []string, table map[string]*typeComments) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by TestUpstreamComments_TableIsCurrent -update; DO NOT EDIT.\n\n")
	b.WriteString("package openapi\n\n")
	b.WriteString("// coveredPackage reports whether upstreamComments knows the comments of\n// the package's types.\n")
	b.WriteString("func coveredPackage(path string) bool {\n\tswitch path {\n\tcase ")
	for i, p := range packages {
		if i > 0 {
			b.WriteString(",\n\t\t")
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString(":\n\t\treturn true\n\t}\n\treturn false\n}\n\n")
	b.WriteString("// upstreamComments returns what the source comments of a covered type\n// (package path, dot, name) say beyond its Go type; nil for nothing.\n")
	b.WriteString("func upstreamComments(typ string) *typeComments {\n\tswitch typ {\n")
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		tc := table[k]
		fmt.Fprintf(&b, "\tcase %q:\n\t\treturn &typeComments{", k)
		if tc.structType != "" {
			fmt.Fprintf(&b, "structType: %q, ", tc.structType)
		}
		if len(tc.fields) > 0 {
			b.WriteString("fields: map[string]fieldComments{\n")
			names := make([]string, 0, len(tc.fields))
			for n := range tc.fields {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintf(&b, "%q: %s,\n", n, fieldLiteral(tc.fields[n]))
			}
			b.WriteString("}")
		}
		b.WriteString("}\n")
	}
	b.WriteString("\t}\n\treturn nil\n}\n")
	return format.Source(b.Bytes())
}

func fieldLiteral(fc fieldComments) string {
	var parts []string
	if fc.optional {
		parts = append(parts, "optional: true")
	}
	if fc.required {
		parts = append(parts, "required: true")
	}
	if fc.listType != "" {
		parts = append(parts, fmt.Sprintf("listType: %q", fc.listType))
	}
	if len(fc.listMapKeys) > 0 {
		q := make([]string, len(fc.listMapKeys))
		for i, k := range fc.listMapKeys {
			q[i] = fmt.Sprintf("%q", k)
		}
		parts = append(parts, "listMapKeys: []string{"+strings.Join(q, ", ")+"}")
	}
	if fc.mapType != "" {
		parts = append(parts, fmt.Sprintf("mapType: %q", fc.mapType))
	}
	if fc.defaultJSON != "" {
		parts = append(parts, fmt.Sprintf("defaultJSON: %q", fc.defaultJSON))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
