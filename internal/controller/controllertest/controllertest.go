// Package controllertest runs a controller against a fake API server, one
// sync at a time, and records what it did as a trace compared with a
// golden file. It is test support for the controllers under
// internal/controller; nothing else should import it.
//
// A test builds a Fake, builds its controller on Fake.Client,
// Fake.Informers, Fake.Clock and Fake.Events, tells the Fake which
// informers to play with Watch, adds its objects and calls Refresh:
//
//	f := controllertest.New(t, controllertest.Config{Start: t0})
//	c, _ := New(Config{Client: f.Client, Informers: f.Informers, Clock: f.Clock, Recorder: f.Events})
//	f.Watch(controllertest.Watched{GVR: podsGVR, Kind: podKind, Indexer: ..., Handler: c.podHandler()})
//	f.Add(objs...)
//	f.Refresh()
//	f.Client.ClearActions()
//	after, err := c.sync(ctx, key)
//	f.Trace("first sync", after, err)
//	f.Golden()
//
// The fake stands in for the API server: it names objects created with
// generateName, gives them a UID, a creation time and a resourceVersion,
// and rejects updates that carry a stale resourceVersion. With
// Config.GracefulPodDeletion it also keeps pods with finalizers or a node
// with a deletionTimestamp until Refresh finds them free to go. Refresh
// plays the informers: it copies the fake's objects into the caches and
// calls the controller's handlers for every difference, as a watch would.
package controllertest

import (
	"crypto/sha256"
	"encoding/hex"
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

var podsGVR = corev1.SchemeGroupVersion.WithResource("pods")

// Config tunes a Fake. The zero value is a fake whose clock starts at the
// zero time, that deletes pods at once, and that traces status updates as
// whole objects.
type Config struct {
	// Start is the fake clock's start; traces show times relative to it.
	Start time.Time
	// Update makes Golden rewrite the golden file instead of comparing
	// with it (the test's -update flag).
	Update bool
	// GracefulPodDeletion makes deleting a pod with finalizers or a node
	// only set its deletionTimestamp; Refresh removes such pods once they
	// have neither.
	GracefulPodDeletion bool
	// AfterCreate, if set, is called by the create reactor on every
	// created object after it has a name, UID, creation time and
	// resourceVersion, to complete it further (as an API server's
	// defaulting would). It may change obj.
	AfterCreate func(obj runtime.Object)
	// Status, if set, returns the status of obj for tracing updates of
	// the status subresource; ok false traces the whole object.
	Status func(obj runtime.Object) (status any, ok bool)
}

// Watched is one informer the Fake plays: objects of GVR (items of Kind)
// are copied into Indexer, and Handler hears about each change.
type Watched struct {
	GVR     schema.GroupVersionResource
	Kind    schema.GroupVersionKind
	Indexer cache.Indexer
	Handler cache.ResourceEventHandler
}

// Fake is a fake API server with informers, a fake clock and an event
// recorder, and the trace of what a controller did with them. Its fields
// are for the controller under test and for the test to change the world
// (Client.Tracker()) or move time (Clock); they must not be replaced.
type Fake struct {
	Client    *fake.Clientset
	Informers informers.SharedInformerFactory
	Clock     *testingclock.FakeClock
	Events    *record.FakeRecorder

	t       testing.TB
	cfg     Config
	out     strings.Builder
	rv      atomic.Int64
	watched []Watched
	// mu guards names, the generated names handed out.
	mu    sync.Mutex
	names map[string]bool
}

// New returns a Fake with an empty clientset, its reactors installed, and
// an informer factory on it. Tests add objects with Add and watch with
// Watch before the first Refresh.
func New(t testing.TB, cfg Config) *Fake {
	t.Helper()
	f := &Fake{
		Clock:  testingclock.NewFakeClock(cfg.Start),
		Events: record.NewFakeRecorder(1000),
		t:      t,
		cfg:    cfg,
		names:  map[string]bool{},
	}
	f.Client = fake.NewSimpleClientset()
	f.Client.PrependReactor("create", "*", f.createReactor)
	f.Client.PrependReactor("update", "*", f.updateReactor)
	if cfg.GracefulPodDeletion {
		f.Client.PrependReactor("delete", "pods", f.deletePodReactor)
	}
	f.Informers = informers.NewSharedInformerFactory(f.Client, 0)
	return f
}

// Watch adds informers for Refresh to play, in order: Refresh updates
// them in the order they were added.
func (f *Fake) Watch(ws ...Watched) { f.watched = append(f.watched, ws...) }

// Add puts objects into the fake as they are, failing the test on error.
// It does not refresh the informers.
func (f *Fake) Add(objs ...runtime.Object) {
	f.t.Helper()
	for _, o := range objs {
		if err := f.Client.Tracker().Add(o); err != nil {
			f.t.Fatal(err)
		}
	}
}

// createReactor completes objects as the API server would: a name from
// generateName, a UID, a creation time and a resourceVersion, then
// whatever Config.AfterCreate adds. Generated names come from the object's
// content, so that objects created concurrently get the same names in
// every run.
func (f *Fake) createReactor(a clienttesting.Action) (bool, runtime.Object, error) {
	obj := a.(clienttesting.CreateAction).GetObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return false, nil, nil
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		content := toYAML(obj)
		f.mu.Lock()
		for i := 0; ; i++ {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s%d", content, i)))
			name := m.GetGenerateName() + hex.EncodeToString(sum[:])[:5]
			if !f.names[name] {
				f.names[name] = true
				m.SetName(name)
				break
			}
		}
		f.mu.Unlock()
	}
	if m.GetUID() == "" {
		m.SetUID(types.UID("uid-" + m.GetName()))
	}
	m.SetCreationTimestamp(metav1.NewTime(f.Clock.Now()))
	m.SetResourceVersion(f.NextRV())
	if f.cfg.AfterCreate != nil {
		f.cfg.AfterCreate(obj)
	}
	return false, nil, nil
}

// NextRV returns a new resourceVersion, higher than every one before. It
// is safe for concurrent use.
func (f *Fake) NextRV() string { return strconv.FormatInt(f.rv.Add(1)+100, 10) }

// updateReactor enforces optimistic concurrency: an update must carry the
// stored resourceVersion, and gets a new one.
func (f *Fake) updateReactor(a clienttesting.Action) (bool, runtime.Object, error) {
	u := a.(clienttesting.UpdateAction)
	m, err := meta.Accessor(u.GetObject())
	if err != nil {
		return false, nil, nil
	}
	stored, err := f.Client.Tracker().Get(u.GetResource(), u.GetNamespace(), m.GetName())
	if err != nil {
		return false, nil, nil
	}
	sm, _ := meta.Accessor(stored)
	if m.GetResourceVersion() != sm.GetResourceVersion() {
		return true, nil, apierrors.NewConflict(u.GetResource().GroupResource(), m.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	m.SetResourceVersion(f.NextRV())
	return false, nil, nil
}

// deletePodReactor marks pods that cannot go at once (finalizers, or bound
// to a node) instead of removing them.
func (f *Fake) deletePodReactor(a clienttesting.Action) (bool, runtime.Object, error) {
	d := a.(clienttesting.DeleteAction)
	obj, err := f.Client.Tracker().Get(podsGVR, d.GetNamespace(), d.GetName())
	if err != nil {
		return false, nil, nil
	}
	p := obj.(*corev1.Pod)
	if len(p.Finalizers) == 0 && p.Spec.NodeName == "" {
		return false, nil, nil
	}
	if p.DeletionTimestamp == nil {
		p = p.DeepCopy()
		ts := metav1.NewTime(f.Clock.Now())
		p.DeletionTimestamp = &ts
		if err := f.Client.Tracker().Update(podsGVR, p, p.Namespace); err != nil {
			return true, nil, err
		}
	}
	return true, nil, nil
}

// Refresh brings the watched informer caches up to the fake's state,
// calling the handlers for each change (informers in Watch order, objects
// in key order). With Config.GracefulPodDeletion it first removes pods
// the API server would have removed by now.
func (f *Fake) Refresh() {
	f.t.Helper()
	if f.cfg.GracefulPodDeletion {
		pods, err := f.Client.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), "")
		if err != nil {
			f.t.Fatal(err)
		}
		for _, p := range pods.(*corev1.PodList).Items {
			if p.DeletionTimestamp != nil && len(p.Finalizers) == 0 && p.Spec.NodeName == "" {
				if err := f.Client.Tracker().Delete(podsGVR, p.Namespace, p.Name); err != nil {
					f.t.Fatal(err)
				}
			}
		}
	}
	for _, w := range f.watched {
		list, err := f.Client.Tracker().List(w.GVR, w.Kind, "")
		if err != nil {
			f.t.Fatal(err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			f.t.Fatal(err)
		}
		seen := map[string]bool{}
		sort.Slice(items, func(i, j int) bool { return key(items[i]) < key(items[j]) })
		for _, obj := range items {
			k := key(obj)
			seen[k] = true
			old, exists, _ := w.Indexer.GetByKey(k)
			switch {
			case !exists:
				_ = w.Indexer.Add(obj)
				w.Handler.OnAdd(obj, false)
			case !equality.Semantic.DeepEqual(old, obj):
				_ = w.Indexer.Update(obj)
				w.Handler.OnUpdate(old, obj)
			}
		}
		for _, k := range w.Indexer.ListKeys() {
			if !seen[k] {
				old, _, _ := w.Indexer.GetByKey(k)
				_ = w.Indexer.Delete(old)
				w.Handler.OnDelete(old)
			}
		}
	}
}

func key(obj runtime.Object) string {
	k, _ := cache.MetaNamespaceKeyFunc(obj)
	return k
}

// Note adds a comment line to the trace.
func (f *Fake) Note(format string, args ...any) {
	fmt.Fprintf(&f.out, "# "+format+"\n", args...)
}

// Trace adds a step to the trace: its title and time, the client's
// actions since the last Client.ClearActions (except lists and watches),
// the events recorded since the last step, err, and after if positive.
func (f *Fake) Trace(title string, after time.Duration, err error) {
	fmt.Fprintf(&f.out, "=== %s (at +%v)\n", title, f.Clock.Since(f.cfg.Start))
	type item struct{ text, verb, resource, name string }
	var items []item
	for _, a := range f.Client.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		text := f.renderAction(a)
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
		f.out.WriteString(it.text)
	}
	var events []string
	for {
		select {
		case e := <-f.Events.Events:
			events = append(events, e)
			continue
		default:
		}
		break
	}
	sort.Strings(events)
	for _, e := range events {
		fmt.Fprintf(&f.out, "event: %s\n", e)
	}
	if err != nil {
		fmt.Fprintf(&f.out, "error: %v\n", err)
	}
	if after > 0 {
		fmt.Fprintf(&f.out, "requeue after %v\n", after)
	}
	f.out.WriteString("\n")
}

func (f *Fake) renderAction(a clienttesting.Action) string {
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
			b.WriteString(indent(f.statusYAML(obj)))
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

// statusYAML renders the status of obj as Config.Status finds it, or the
// whole object.
func (f *Fake) statusYAML(obj runtime.Object) string {
	if f.cfg.Status == nil {
		return toYAML(obj)
	}
	st, ok := f.cfg.Status(obj)
	if !ok {
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

// Golden compares the trace with testdata/<test name>.golden, or rewrites
// it when Config.Update is set.
func (f *Fake) Golden() {
	f.t.Helper()
	path := filepath.Join("testdata", f.t.Name()+".golden")
	got := f.out.String()
	if f.cfg.Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			f.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		f.t.Errorf("trace differs from %s (-want +got):\n%s", path, diff)
	}
}

// Get returns the fake's copy of an object, failing the test if it is
// missing. The caller must not change it; use Set.
func Get[T runtime.Object](f *Fake, gvr schema.GroupVersionResource, ns, name string) T {
	f.t.Helper()
	obj, err := f.Client.Tracker().Get(gvr, ns, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return obj.(T)
}

// List returns the fake's objects of gvr (items of kind) in ns ("" for
// all), by name. The caller owns the returned objects.
func List[T runtime.Object](f *Fake, gvr schema.GroupVersionResource, kind schema.GroupVersionKind, ns string) []T {
	f.t.Helper()
	list, err := f.Client.Tracker().List(gvr, kind, ns)
	if err != nil {
		f.t.Fatal(err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []T
	for _, o := range items {
		out = append(out, o.(T))
	}
	sort.Slice(out, func(i, j int) bool { return name(out[i]) < name(out[j]) })
	return out
}

func name(obj runtime.Object) string {
	m, _ := meta.Accessor(obj)
	return m.GetName()
}

// Set changes a copy of obj with change and stores it in the fake with a
// new resourceVersion, as a user, a kubelet or another controller would.
// obj itself is left alone.
func Set[T runtime.Object](f *Fake, gvr schema.GroupVersionResource, obj T, change func(T)) {
	f.t.Helper()
	obj = obj.DeepCopyObject().(T)
	change(obj)
	m, err := meta.Accessor(obj)
	if err != nil {
		f.t.Fatal(err)
	}
	m.SetResourceVersion(f.NextRV())
	if err := f.Client.Tracker().Update(gvr, obj, m.GetNamespace()); err != nil {
		f.t.Fatal(err)
	}
}
