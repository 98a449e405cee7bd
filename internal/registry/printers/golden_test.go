package printers

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	cliprinters "k8s.io/cli-runtime/pkg/printers"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// now is the fixed clock every test prints against.
var now = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

// ago returns the time d before now.
func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

// agoPtr is ago as a pointer.
func agoPtr(d time.Duration) *metav1.Time {
	t := ago(d)
	return &t
}

// microAgo is ago as a MicroTime.
func microAgo(d time.Duration) metav1.MicroTime { return metav1.NewMicroTime(now.Add(-d)) }

// objectMeta names an object created age ago.
func objectMeta(name string, age time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(age)}
}

func ptrTo[T any](v T) *T { return &v }

// renderGolden prints what a person reads for objs: the column
// definitions, then "kubectl get" and "kubectl get -o wide" exactly as
// kubectl's table printer lays out the Table this server would send, then
// the row conditions.
func renderGolden(t *testing.T, gr schema.GroupResource, table *Table, objs []runtime.Object) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# columns: name | type | format | priority | description (quoted)\n")
	for _, c := range table.Columns {
		fmt.Fprintf(&b, "%s | %s | %s | %d | %q\n", c.Name, c.Type, c.Format, c.Priority, c.Description)
	}

	var rows []metav1.TableRow
	for _, obj := range objs {
		r, err := table.Rows(obj)
		if err != nil {
			t.Fatalf("Rows(%T): %v", obj, err)
		}
		rows = append(rows, r...)
	}
	wire, err := json.Marshal(&metav1.Table{ColumnDefinitions: table.Columns, Rows: rows})
	if err != nil {
		t.Fatalf("encode table: %v", err)
	}

	resource := gr.Resource
	if gr.Group != "" {
		resource += "." + gr.Group
	}
	for _, wide := range []bool{false, true} {
		// Decode afresh each time, as kubectl does: the printer rewrites
		// the table it is given.
		var got metav1.Table
		if err := utiljson.Unmarshal(wire, &got); err != nil {
			t.Fatalf("decode table: %v", err)
		}
		cmd := "kubectl get " + resource
		if wide {
			cmd += " -o wide"
		}
		fmt.Fprintf(&b, "\n$ %s\n", cmd)
		var out bytes.Buffer
		if err := cliprinters.NewTablePrinter(cliprinters.PrintOptions{Wide: wide}).PrintObj(&got, &out); err != nil {
			t.Fatalf("print table: %v", err)
		}
		b.Write(out.Bytes())
	}

	first := true
	for _, r := range rows {
		for _, c := range r.Conditions {
			if first {
				b.WriteString("\n# row conditions\n")
				first = false
			}
			fmt.Fprintf(&b, "%v: %s=%s reason=%s message=%q\n", r.Cells[0], c.Type, c.Status, c.Reason, c.Message)
		}
	}
	return b.String()
}

// checkGolden compares got with testdata/name, or rewrites the file with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got); run with -update if the change is intended:\n%s", path, diff)
	}
}
