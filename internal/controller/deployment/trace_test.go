package deployment

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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// nameGenerator makes the fake client honour generateName with
// predictable suffixes (00001, 00002, … in the order of the calls).
func nameGenerator(client *fake.Clientset) {
	n := 0
	client.PrependReactor("create", "*", func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.CreateAction).GetObject()
		m, err := metaOf(obj)
		if err != nil || m.GetName() != "" || m.GetGenerateName() == "" {
			return false, nil, nil
		}
		n++
		m.SetName(fmt.Sprintf("%s%05d", m.GetGenerateName(), n))
		return false, nil, nil
	})
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// eventLog is an EventRecorder that keeps what it is told.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	m, _ := metaOf(obj)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s %s/%s %s: %s", eventtype, m.GetNamespace(), m.GetName(), reason, fmt.Sprintf(messageFmt, args...)))
}

// formatTrace renders the client's write actions (reads are left out, but
// for the GETs that guard adoption) and the events as text for a golden
// file, in the order the controller issued them. Events are sorted.
func formatTrace(t *testing.T, actions []clienttesting.Action, events []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# actions\n")
	for _, a := range actions {
		verb := a.GetVerb()
		if verb == "list" || verb == "watch" {
			continue
		}
		res := a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			res += "/" + sub
		}
		b.WriteString(formatAction(t, a, res))
	}
	b.WriteString("# events\n")
	events = slices.Clone(events)
	slices.Sort(events)
	for _, e := range events {
		b.WriteString(e + "\n")
	}
	return b.String()
}

func formatAction(t *testing.T, a clienttesting.Action, res string) string {
	t.Helper()
	head := fmt.Sprintf("%s %s %s", a.GetVerb(), res, a.GetNamespace())
	// Create and update actions satisfy the same interface: tell them
	// apart by verb.
	if a, ok := a.(clienttesting.UpdateAction); ok && a.GetVerb() == "update" {
		if a.GetSubresource() == "status" {
			return head + "/" + nameOf(a.GetObject()) + "\n" + indentYAML(t, statusOf(t, a.GetObject()))
		}
		return head + "/" + nameOf(a.GetObject()) + "\n" + indentYAML(t, withoutTemplate(t, a.GetObject()))
	}
	switch a := a.(type) {
	case clienttesting.CreateAction:
		return head + "\n" + indentYAML(t, a.GetObject())
	case clienttesting.PatchAction:
		return fmt.Sprintf("%s/%s %s\n    %s\n", head, a.GetName(), a.GetPatchType(), a.GetPatch())
	case clienttesting.DeleteAction:
		opts := a.GetDeleteOptions()
		s := head + "/" + a.GetName()
		if opts.Preconditions != nil && opts.Preconditions.UID != nil {
			s += " uid=" + string(*opts.Preconditions.UID)
		}
		if opts.PropagationPolicy != nil {
			s += " propagation=" + string(*opts.PropagationPolicy)
		}
		return s + "\n"
	case clienttesting.GetAction:
		return head + "/" + a.GetName() + "\n"
	}
	return head + "\n"
}

func nameOf(obj runtime.Object) string {
	if m, err := metaOf(obj); err == nil {
		return m.GetName()
	}
	return ""
}

// statusOf returns obj's status field and annotations alone (upstream's
// Deployment status writes carry the revision annotation).
func statusOf(t *testing.T, obj runtime.Object) any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"status": u["status"]}
	if m, ok := u["metadata"].(map[string]any); ok && m["annotations"] != nil {
		out["metadata"] = map[string]any{"annotations": m["annotations"]}
	}
	return out
}

// withoutTemplate returns obj without the parts an update by this
// controller does not change: the pod template, the selector, the status.
func withoutTemplate(t *testing.T, obj runtime.Object) any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	if spec, ok := u["spec"].(map[string]any); ok {
		delete(spec, "template")
		delete(spec, "selector")
	}
	delete(u, "status")
	if m, ok := u["metadata"].(map[string]any); ok {
		delete(m, "creationTimestamp")
		delete(m, "ownerReferences")
		delete(m, "labels")
	}
	return u
}

func indentYAML(t *testing.T, obj any) string {
	t.Helper()
	y, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

// golden compares got with testdata/<name>.golden, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
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
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}
