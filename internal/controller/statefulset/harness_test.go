package statefulset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	setsGVR = appsv1.SchemeGroupVersion.WithResource("statefulsets")
	revsGVR = appsv1.SchemeGroupVersion.WithResource("controllerrevisions")
	podsGVR = corev1.SchemeGroupVersion.WithResource("pods")
)

// harness runs the controller against a fake clientset, one sync at a
// time, and writes what it did (API calls, events, requeues) to a trace
// compared with a golden file. The fake stands in for the API server: it
// names objects created with generateName, and keeps pods with finalizers
// or a node (graceful deletion) with a deletionTimestamp until refresh
// finds them free to go. refresh plays the informers: it copies the fake's
// objects into the caches and calls the controller's handlers for every
// difference, as a watch would.
type harness struct {
	t       *testing.T
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	clock   *testingclock.FakeClock
	events  *record.FakeRecorder
	c       *Controller
	out     strings.Builder
	rv      atomic.Int64
	// mu guards names, the generated names handed out.
	mu      sync.Mutex
	names   map[string]bool
	watched []watched
}

type watched struct {
	gvr     schema.GroupVersionResource
	gvk     schema.GroupVersionKind
	indexer cache.Indexer
	handler cache.ResourceEventHandler
}

func newHarness(t *testing.T, tune func(*Config), objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{t: t, clock: testingclock.NewFakeClock(t0), events: record.NewFakeRecorder(1000), names: map[string]bool{}}
	h.client = fake.NewSimpleClientset()
	h.client.PrependReactor("create", "*", h.createReactor)
	h.client.PrependReactor("update", "*", h.updateReactor)
	h.client.PrependReactor("delete", "pods", h.deletePodReactor)
	h.factory = informers.NewSharedInformerFactory(h.client, 0)
	cfg := Config{Client: h.client, Informers: h.factory, Clock: h.clock, Recorder: h.events}
	if tune != nil {
		tune(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.queue.ShutDown)
	h.c = c
	h.watched = []watched{
		{setsGVR, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), h.factory.Apps().V1().StatefulSets().Informer().GetIndexer(), c.setHandler()},
		{revsGVR, appsv1.SchemeGroupVersion.WithKind("ControllerRevision"), h.factory.Apps().V1().ControllerRevisions().Informer().GetIndexer(), c.revisionHandler()},
		{podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), h.factory.Core().V1().Pods().Informer().GetIndexer(), c.podHandler()},
	}
	for _, o := range objs {
		if err := h.client.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	h.refresh()
	return h
}

// createReactor completes objects as the API server would: a name from
// generateName, a UID, a creation time, a resourceVersion, and phase
// Pending for pods. Generated
// names come from the object's content, so that objects created
// concurrently get the same names in every run.
func (h *harness) createReactor(a clienttesting.Action) (bool, runtime.Object, error) {
	obj := a.(clienttesting.CreateAction).GetObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return false, nil, nil
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		content := toYAML(obj)
		h.mu.Lock()
		for i := 0; ; i++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s%d", content, i)))
			name := m.GetGenerateName() + hex.EncodeToString(sum[:])[:5]
			if !h.names[name] {
				h.names[name] = true
				m.SetName(name)
				break
			}
		}
		h.mu.Unlock()
	}
	if m.GetUID() == "" {
		m.SetUID(types.UID("uid-" + m.GetName()))
	}
	m.SetCreationTimestamp(metav1.NewTime(h.clock.Now()))
	m.SetResourceVersion(h.nextRV())
	if p, ok := obj.(*corev1.Pod); ok && p.Status.Phase == "" {
		p.Status.Phase = corev1.PodPending
	}
	return false, nil, nil
}

func (h *harness) nextRV() string { return strconv.FormatInt(h.rv.Add(1)+100, 10) }

// updateReactor enforces optimistic concurrency: an update must carry the
// stored resourceVersion, and gets a new one.
func (h *harness) updateReactor(a clienttesting.Action) (bool, runtime.Object, error) {
	u := a.(clienttesting.UpdateAction)
	m, err := meta.Accessor(u.GetObject())
	if err != nil {
		return false, nil, nil
	}
	stored, err := h.client.Tracker().Get(u.GetResource(), u.GetNamespace(), m.GetName())
	if err != nil {
		return false, nil, nil
	}
	sm, _ := meta.Accessor(stored)
	if m.GetResourceVersion() != sm.GetResourceVersion() {
		return true, nil, apierrors.NewConflict(u.GetResource().GroupResource(), m.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	m.SetResourceVersion(h.nextRV())
	return false, nil, nil
}

// deletePodReactor marks pods that cannot go at once (finalizers, or bound
// to a node) instead of removing them.
func (h *harness) deletePodReactor(a clienttesting.Action) (bool, runtime.Object, error) {
	d := a.(clienttesting.DeleteAction)
	obj, err := h.client.Tracker().Get(podsGVR, d.GetNamespace(), d.GetName())
	if err != nil {
		return false, nil, nil
	}
	p := obj.(*corev1.Pod)
	if len(p.Finalizers) == 0 && p.Spec.NodeName == "" {
		return false, nil, nil
	}
	if p.DeletionTimestamp == nil {
		p = p.DeepCopy()
		ts := metav1.NewTime(h.clock.Now())
		p.DeletionTimestamp = &ts
		if err := h.client.Tracker().Update(podsGVR, p, p.Namespace); err != nil {
			return true, nil, err
		}
	}
	return true, nil, nil
}

// refresh brings the informer caches up to the fake's state, calling the
// controller's handlers for each change (objects in name order), and
// removes pods the API server would have removed by now.
func (h *harness) refresh() {
	h.t.Helper()
	pods, err := h.client.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), "")
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range pods.(*corev1.PodList).Items {
		if p.DeletionTimestamp != nil && len(p.Finalizers) == 0 && p.Spec.NodeName == "" {
			if err := h.client.Tracker().Delete(podsGVR, p.Namespace, p.Name); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	for _, w := range h.watched {
		list, err := h.client.Tracker().List(w.gvr, w.gvk, "")
		if err != nil {
			h.t.Fatal(err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			h.t.Fatal(err)
		}
		seen := map[string]bool{}
		sort.Slice(items, func(i, j int) bool { return key(items[i]) < key(items[j]) })
		for _, obj := range items {
			k := key(obj)
			seen[k] = true
			old, exists, _ := w.indexer.GetByKey(k)
			switch {
			case !exists:
				_ = w.indexer.Add(obj)
				w.handler.OnAdd(obj, false)
			case !equality.Semantic.DeepEqual(old, obj):
				_ = w.indexer.Update(obj)
				w.handler.OnUpdate(old, obj)
			}
		}
		for _, k := range w.indexer.ListKeys() {
			if !seen[k] {
				old, _, _ := w.indexer.GetByKey(k)
				_ = w.indexer.Delete(old)
				w.handler.OnDelete(old)
			}
		}
	}
}

func key(obj runtime.Object) string {
	k, _ := cache.MetaNamespaceKeyFunc(obj)
	return k
}

// sync runs one sync of key and traces it.
func (h *harness) sync(title, key string) {
	h.t.Helper()
	h.client.ClearActions()
	after, err := h.c.sync(context.Background(), key)
	h.trace(title, after, err)
}

func (h *harness) note(format string, args ...any) {
	fmt.Fprintf(&h.out, "# "+format+"\n", args...)
}

func (h *harness) trace(title string, after time.Duration, err error) {
	fmt.Fprintf(&h.out, "=== %s (at +%v)\n", title, h.clock.Since(t0))
	type item struct{ text, verb, resource, name string }
	var items []item
	for _, a := range h.client.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		text := renderAction(a)
		name := actionName(a)
		if name == "" {
			name = text
		}
		items = append(items, item{text, a.GetVerb(), a.GetResource().Resource, name})
	}
	// Calls made concurrently (a batch of creates, deletes or patches of
	// one resource) come in any order: sort each run of them by object,
	// keeping the order of the calls on one object.
	concurrent := func(it item) bool { return it.verb == "create" || it.verb == "delete" || it.verb == "patch" }
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && concurrent(items[i]) && concurrent(items[j]) && items[j].resource == items[i].resource {
			j++
		}
		sort.SliceStable(items[i:j], func(a, b int) bool { return items[i+a].name < items[i+b].name })
		i = j
	}
	for _, it := range items {
		h.out.WriteString(it.text)
	}
	var events []string
	for {
		select {
		case e := <-h.events.Events:
			events = append(events, e)
			continue
		default:
		}
		break
	}
	sort.Strings(events)
	for _, e := range events {
		fmt.Fprintf(&h.out, "event: %s\n", e)
	}
	if err != nil {
		fmt.Fprintf(&h.out, "error: %v\n", err)
	}
	if after > 0 {
		fmt.Fprintf(&h.out, "requeue after %v\n", after)
	}
	h.out.WriteString("\n")
}

func renderAction(a clienttesting.Action) string {
	var b strings.Builder
	res := a.GetResource().Resource
	if sub := a.GetSubresource(); sub != "" {
		res += "/" + sub
	}
	switch a.GetVerb() {
	case "create":
		obj := a.(clienttesting.CreateAction).GetObject()
		m, _ := meta.Accessor(obj)
		name := m.GetName()
		if name == "" {
			name = m.GetGenerateName() + "*"
		}
		fmt.Fprintf(&b, "create %s %s/%s\n", res, a.GetNamespace(), name)
		b.WriteString(indent(toYAML(obj)))
	case "update":
		obj := a.(clienttesting.UpdateAction).GetObject()
		m, _ := meta.Accessor(obj)
		fmt.Fprintf(&b, "update %s %s/%s\n", res, a.GetNamespace(), m.GetName())
		if a.GetSubresource() == "status" {
			b.WriteString(indent(statusYAML(obj)))
		} else {
			b.WriteString(indent(toYAML(obj)))
		}
	case "patch":
		a := a.(clienttesting.PatchAction)
		fmt.Fprintf(&b, "patch %s %s/%s (%s)\n    %s\n", res, a.GetNamespace(), a.GetName(), a.GetPatchType(), a.GetPatch())
	case "delete":
		a := a.(clienttesting.DeleteAction)
		fmt.Fprintf(&b, "delete %s %s/%s", res, a.GetNamespace(), a.GetName())
		o := a.GetDeleteOptions()
		if o.PropagationPolicy != nil {
			fmt.Fprintf(&b, " propagation=%s", *o.PropagationPolicy)
		}
		if p := o.Preconditions; p != nil {
			if p.UID != nil {
				fmt.Fprintf(&b, " precondition-uid=%s", *p.UID)
			}
			if p.ResourceVersion != nil {
				fmt.Fprintf(&b, " precondition-rv=%q", *p.ResourceVersion)
			}
		}
		b.WriteString("\n")
	case "get":
		a := a.(clienttesting.GetAction)
		fmt.Fprintf(&b, "get %s %s/%s\n", res, a.GetNamespace(), a.GetName())
	default:
		fmt.Fprintf(&b, "%s %s %s\n", a.GetVerb(), res, a.GetNamespace())
	}
	return b.String()
}

// actionName is the name of the object an action is about, if it has one.
func actionName(a clienttesting.Action) string {
	switch a := a.(type) {
	case clienttesting.CreateAction:
		if m, err := meta.Accessor(a.GetObject()); err == nil {
			return m.GetName()
		}
	case clienttesting.PatchAction:
		return a.GetName()
	case clienttesting.DeleteAction:
		return a.GetName()
	}
	return ""
}

func toYAML(obj runtime.Object) string {
	out, err := yaml.Marshal(obj)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

func statusYAML(obj runtime.Object) string {
	var st any
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		st = o.Status
	default:
		return toYAML(obj)
	}
	out, err := yaml.Marshal(map[string]any{"status": st})
	if err != nil {
		return err.Error()
	}
	return string(out)
}

func indent(s string) string {
	var b strings.Builder
	for l := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    ")
		b.WriteString(l)
		b.WriteString("\n")
	}
	return b.String()
}

// golden compares the trace with testdata/<test name>.golden, or rewrites
// it with -update.
func (h *harness) golden() {
	h.t.Helper()
	path := filepath.Join("testdata", h.t.Name()+".golden")
	got := h.out.String()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		h.t.Errorf("trace differs from %s (-want +got):\n%s", path, diff)
	}
}

// pod returns the fake's copy of a pod.
func (h *harness) pod(ns, name string) *corev1.Pod {
	h.t.Helper()
	obj, err := h.client.Tracker().Get(podsGVR, ns, name)
	if err != nil {
		h.t.Fatal(err)
	}
	return obj.(*corev1.Pod)
}

// set returns the fake's copy of a StatefulSet.
func (h *harness) set(ns, name string) *appsv1.StatefulSet {
	h.t.Helper()
	obj, err := h.client.Tracker().Get(setsGVR, ns, name)
	if err != nil {
		h.t.Fatal(err)
	}
	return obj.(*appsv1.StatefulSet)
}

// pods returns the fake's pods in ns, by name.
func (h *harness) pods(ns string) []*corev1.Pod {
	h.t.Helper()
	list, err := h.client.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), ns)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*corev1.Pod
	for i := range list.(*corev1.PodList).Items {
		out = append(out, &list.(*corev1.PodList).Items[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// setPod changes a pod in the fake (as a kubelet would).
func (h *harness) setPod(p *corev1.Pod, change func(*corev1.Pod)) {
	h.t.Helper()
	p = p.DeepCopy()
	change(p)
	p.ResourceVersion = h.nextRV()
	if err := h.client.Tracker().Update(podsGVR, p, p.Namespace); err != nil {
		h.t.Fatal(err)
	}
}

// setSet changes a StatefulSet in the fake (as a user and the API
// server would).
func (h *harness) setSet(set *appsv1.StatefulSet, change func(*appsv1.StatefulSet)) {
	h.t.Helper()
	set = set.DeepCopy()
	change(set)
	set.ResourceVersion = h.nextRV()
	if err := h.client.Tracker().Update(setsGVR, set, set.Namespace); err != nil {
		h.t.Fatal(err)
	}
}

// revisions returns the fake's ControllerRevisions in ns, by name.
func (h *harness) revisions(ns string) []*appsv1.ControllerRevision {
	h.t.Helper()
	list, err := h.client.Tracker().List(revsGVR, appsv1.SchemeGroupVersion.WithKind("ControllerRevision"), ns)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*appsv1.ControllerRevision
	for i := range list.(*appsv1.ControllerRevisionList).Items {
		out = append(out, &list.(*appsv1.ControllerRevisionList).Items[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
