package nodelifecycle

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// trace is a readable transcript of what a controller did, step by step:
// the requests it sent to the API (but lists and watches, which only
// informers make) and the events it recorded. Tests compare it with a
// golden file.
type trace struct {
	b strings.Builder
}

// step starts a new section of the transcript.
func (tr *trace) step(format string, args ...any) {
	fmt.Fprintf(&tr.b, "== "+format+"\n", args...)
}

// note adds a free-form line.
func (tr *trace) note(format string, args ...any) {
	fmt.Fprintf(&tr.b, format+"\n", args...)
}

// actions adds the client's write actions.
func (tr *trace) actions(actions []k8stesting.Action) {
	for _, a := range actions {
		line := formatAction(a)
		if line != "" {
			tr.b.WriteString(line)
		}
	}
}

func formatAction(a k8stesting.Action) string {
	verb := a.GetVerb()
	if verb == "list" || verb == "watch" {
		return ""
	}
	res := a.GetResource().Resource
	if sub := a.GetSubresource(); sub != "" {
		res += "/" + sub
	}
	key := func(name string) string {
		if ns := a.GetNamespace(); ns != "" {
			return ns + "/" + name
		}
		return name
	}
	switch a := a.(type) {
	case k8stesting.CreateAction:
		return fmt.Sprintf("%s %s %s\n%s", verb, res, key(objectName(a.GetObject())), renderObject(a.GetObject()))
	case k8stesting.UpdateAction:
		return fmt.Sprintf("%s %s %s\n%s", verb, res, key(objectName(a.GetObject())), renderObject(a.GetObject()))
	case k8stesting.PatchAction:
		return fmt.Sprintf("%s %s %s (%s)\n  %s\n", verb, res, key(a.GetName()), a.GetPatchType(), a.GetPatch())
	case k8stesting.GetAction:
		return fmt.Sprintf("%s %s %s\n", verb, res, key(a.GetName()))
	case k8stesting.DeleteAction:
		opts := ""
		if o := a.GetDeleteOptions(); o.GracePeriodSeconds != nil {
			opts = fmt.Sprintf(" gracePeriodSeconds=%d", *o.GracePeriodSeconds)
		}
		return fmt.Sprintf("%s %s %s%s\n", verb, res, key(a.GetName()), opts)
	default:
		return fmt.Sprintf("%s %s\n", verb, res)
	}
}

func objectName(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "?"
	}
	if m.GetName() == "" {
		return m.GetGenerateName() + "*"
	}
	return m.GetName()
}

// indentYAML renders obj as YAML indented by two spaces, without the
// fields that only the storage layer sets.
func indentYAML(obj runtime.Object) string {
	obj = obj.DeepCopyObject()
	if m, err := meta.Accessor(obj); err == nil {
		m.SetResourceVersion("")
		m.SetManagedFields(nil)
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return "  <" + err.Error() + ">\n"
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// checkGolden compares got with testdata/name, or rewrites the file with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; -update rewrites it):\n%s", path, diff)
	}
}

// goldenName turns a subtest name into a file name.
func goldenName(t *testing.T) string {
	name := t.Name()
	if i := strings.Index(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return strings.ReplaceAll(name, "/", "_") + ".txt"
}

// events adds the recorder's events.
func (tr *trace) events(r *fakeRecorder) {
	for _, e := range r.drain() {
		tr.note("%s", e)
	}
}

// fakeRecorder keeps events as lines "Type Reason Kind ns/name: message".
type fakeRecorder struct {
	mu     sync.Mutex
	events []string
}

func (r *fakeRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	kind := fmt.Sprintf("%T", obj)
	kind = kind[strings.LastIndex(kind, ".")+1:]
	name := "?"
	if m, err := meta.Accessor(obj); err == nil {
		name = m.GetName()
		if ns := m.GetNamespace(); ns != "" {
			name = ns + "/" + name
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("event %s %s %s %s: %s", eventtype, reason, kind, name, fmt.Sprintf(messageFmt, args...)))
}

// drain returns the events recorded since the last drain, sorted.
func (r *fakeRecorder) drain() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	slices.Sort(out)
	return out
}
