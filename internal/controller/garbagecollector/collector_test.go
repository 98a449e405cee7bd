package garbagecollector

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// staticDiscovery serves a fixed list of resources.
type staticDiscovery struct {
	lists []*metav1.APIResourceList
	err   error
}

func (d staticDiscovery) ServerPreferredResources() ([]*metav1.APIResourceList, error) {
	return d.lists, d.err
}

var allVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func servedResources() staticDiscovery {
	return staticDiscovery{lists: []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: allVerbs},
			{Name: "secrets", Kind: "Secret", Namespaced: true, Verbs: allVerbs},
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: allVerbs},
			{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "patch", "update"}},
			{Name: "events", Kind: "Event", Namespaced: true, Verbs: allVerbs},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
			{Name: "nodes", Kind: "Node", Namespaced: false, Verbs: allVerbs},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "replicasets", Kind: "ReplicaSet", Namespaced: true, Verbs: allVerbs},
		}},
	}}
}

// obj is a PartialObjectMetadata of kind ("v1/ConfigMap") named
// ns/name (or name for cluster-scoped kinds), with UID "uid-<name>".
func obj(kind, nsName string, mods ...func(*metav1.PartialObjectMetadata)) *metav1.PartialObjectMetadata {
	gv, k, _ := strings.Cut(kind, "/")
	if k == "" || strings.Contains(k, "/") {
		i := strings.LastIndex(kind, "/")
		gv, k = kind[:i], kind[i+1:]
	}
	ns, name, ok := strings.Cut(nsName, "/")
	if !ok {
		ns, name = "", nsName
	}
	o := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: gv, Kind: k},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7"},
	}
	for _, m := range mods {
		m(o)
	}
	return o
}

func ownedBy(owner *metav1.PartialObjectMetadata, block bool) func(*metav1.PartialObjectMetadata) {
	return func(o *metav1.PartialObjectMetadata) {
		o.OwnerReferences = append(o.OwnerReferences, metav1.OwnerReference{
			APIVersion: owner.APIVersion, Kind: owner.Kind, Name: owner.Name, UID: owner.UID, BlockOwnerDeletion: ptr.To(block),
		})
	}
}

func deleting(finalizers ...string) func(*metav1.PartialObjectMetadata) {
	return func(o *metav1.PartialObjectMetadata) {
		o.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
		o.Finalizers = finalizers
	}
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(o runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	m := o.(metav1.Object)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s %s %s: %s", eventtype, m.GetName(), reason, fmt.Sprintf(messageFmt, args...)))
}

type harness struct {
	t        *testing.T
	client   *metadatafake.FakeMetadataClient
	gc       *Collector
	events   *eventLog
	sections []section
}

// section is where a titled part of the trace starts.
type section struct {
	title           string
	actions, events int
}

// newHarness builds a collector on a fake metadata client holding objs
// (the API's state) and a graph fed with objs (what the monitors saw).
// Nothing runs in the background: step drives it.
func newHarness(t *testing.T, objs ...*metav1.PartialObjectMetadata) *harness {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	metav1.AddMetaToScheme(scheme)
	var robjs []runtime.Object
	for _, o := range objs {
		robjs = append(robjs, o)
	}
	client := metadatafake.NewSimpleMetadataClient(scheme, robjs...)
	events := &eventLog{}
	gc, err := New(Config{Metadata: client, Discovery: servedResources(), Clock: clocktesting.NewFakeClock(t0), Events: events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gc.shutdown)
	if err := gc.rediscover(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, client: client, gc: gc, events: events}
	for _, o := range objs {
		h.see(addEvent, o)
	}
	h.step()
	return h
}

// see delivers an event as a monitor would.
func (h *harness) see(typ eventType, o *metav1.PartialObjectMetadata) {
	h.gc.graphChanges.Add(&event{typ: typ, obj: o, gvk: o.GroupVersionKind()})
}

// step runs the queues until they are empty (rate-limited retries wait on
// the fake clock, which does not move, and are not run).
func (h *harness) step() {
	ctx := context.Background()
	for range 100 {
		switch {
		case h.gc.graphChanges.Len() > 0:
			h.gc.processGraphChange()
		case h.gc.attemptToDelete.Len() > 0:
			h.gc.processAttemptToDelete(ctx)
		case h.gc.attemptToOrphan.Len() > 0:
			h.gc.processAttemptToOrphan(ctx)
		default:
			return
		}
	}
	h.t.Fatal("the collector did not settle")
}

func (h *harness) gvr(o *metav1.PartialObjectMetadata) schema.GroupVersionResource {
	h.t.Helper()
	res, ok := h.gc.catalog.lookup(o.GroupVersionKind().GroupKind())
	if !ok {
		h.t.Fatalf("kind %s not served", o.GroupVersionKind())
	}
	return res.gvr
}

// remove deletes o from the API's state (if the collector's own delete
// has not already: the fake client deletes at once) and tells the graph.
func (h *harness) remove(o *metav1.PartialObjectMetadata) {
	h.t.Helper()
	if err := h.client.Tracker().Delete(h.gvr(o), o.Namespace, o.Name); err != nil && !apierrors.IsNotFound(err) {
		h.t.Fatal(err)
	}
	h.see(deleteEvent, o)
}

// change replaces o in the API's state and tells the graph. An object
// the collector deleted comes back: that is how the API server answers a
// foreground deletion, which the fake client does not know.
func (h *harness) change(o *metav1.PartialObjectMetadata) {
	h.t.Helper()
	err := h.client.Tracker().Update(h.gvr(o), o, o.Namespace)
	if apierrors.IsNotFound(err) {
		err = h.client.Tracker().Add(o)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	h.see(updateEvent, o)
}

// linger makes the API answer a delete of the named objects by marking
// them terminating (as a finalizer or a grace period would) rather than
// removing them.
func (h *harness) linger(names ...string) {
	h.client.PrependReactor("delete", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		d := a.(clienttesting.DeleteAction)
		if !slices.Contains(names, d.GetName()) {
			return false, nil, nil
		}
		o, err := h.client.Tracker().Get(d.GetResource(), d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		m := o.(*metav1.PartialObjectMetadata)
		m.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
		m.Finalizers = append(m.Finalizers, "example.com/hold")
		return true, nil, h.client.Tracker().Update(d.GetResource(), m, d.GetNamespace())
	})
}

// mark starts a new section of the trace.
func (h *harness) mark(title string) {
	h.sections = append(h.sections, section{title: title, actions: len(h.client.Actions()), events: len(h.events.events)})
}

func (h *harness) trace() string {
	var b strings.Builder
	actions := h.client.Actions()
	sections := append([]section{{title: "setup"}}, h.sections...)
	for i, sec := range sections {
		end := section{actions: len(actions), events: len(h.events.events)}
		if i+1 < len(sections) {
			end = sections[i+1]
		}
		fmt.Fprintf(&b, "# %s\n", sec.title)
		h.formatActions(&b, actions[sec.actions:end.actions])
		for _, e := range h.events.events[sec.events:end.events] {
			b.WriteString("event " + e + "\n")
		}
	}
	return b.String()
}

func (h *harness) formatActions(b *strings.Builder, actions []clienttesting.Action) {
	for _, a := range actions {
		res := a.GetResource().Resource
		where := a.GetNamespace()
		// Patch and delete actions have names too: match them first.
		switch a := a.(type) {
		case clienttesting.PatchAction:
			fmt.Fprintf(b, "patch %s %s/%s %s\n    %s\n", res, where, a.GetName(), a.GetPatchType(), a.GetPatch())
		case clienttesting.DeleteAction:
			o := a.GetDeleteOptions()
			fmt.Fprintf(b, "delete %s %s/%s propagation=%s uid=%s resourceVersion=%s\n", res, where, a.GetName(),
				*o.PropagationPolicy, *o.Preconditions.UID, *o.Preconditions.ResourceVersion)
		case clienttesting.GetAction:
			fmt.Fprintf(b, "get %s %s/%s\n", res, where, a.GetName())
		default:
			fmt.Fprintf(b, "%s %s %s\n", a.GetVerb(), res, where)
		}
	}
}

func golden(t *testing.T, got string) {
	t.Helper()
	path := filepath.Join("testdata", t.Name()+".golden")
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

func TestCollector(t *testing.T) {
	owner := obj("v1/ConfigMap", "ns/owner")
	other := obj("v1/ConfigMap", "ns/other")
	for _, tc := range []struct {
		name string
		objs []*metav1.PartialObjectMetadata
		// then happens after the initial state has settled.
		then func(h *harness)
	}{
		{
			name: "deleting an owner in the background deletes its dependents",
			objs: []*metav1.PartialObjectMetadata{owner,
				obj("v1/Secret", "ns/dep-a", ownedBy(owner, false)),
				obj("v1/Pod", "ns/dep-b", ownedBy(owner, true), func(o *metav1.PartialObjectMetadata) { o.Finalizers = []string{orphanFinalizer} })},
			then: func(h *harness) { h.mark("owner deleted"); h.remove(owner) },
		},
		{
			name: "a dependent of an owner that does not exist is deleted",
			objs: []*metav1.PartialObjectMetadata{obj("v1/Secret", "ns/dep", ownedBy(obj("apps/v1/ReplicaSet", "ns/gone"), true))},
		},
		{
			name: "a dependent keeps its live owner and drops the dead one",
			objs: []*metav1.PartialObjectMetadata{owner, other,
				obj("v1/Secret", "ns/dep", ownedBy(owner, false), ownedBy(other, false))},
			then: func(h *harness) { h.mark("owner deleted"); h.remove(owner) },
		},
		{
			name: "foreground deletion deletes dependents and waits for the blocking one",
			objs: []*metav1.PartialObjectMetadata{owner,
				obj("v1/Secret", "ns/blocking", ownedBy(owner, true)),
				obj("v1/Secret", "ns/free", ownedBy(owner, false))},
			then: func(h *harness) {
				h.linger("blocking")
				h.mark("owner deleted in the foreground")
				h.change(obj("v1/ConfigMap", "ns/owner", deleting(foregroundFinalizer)))
				h.step()
				h.mark("the free dependent is gone, the blocking one terminating: the owner still waits")
				h.remove(obj("v1/Secret", "ns/free", ownedBy(owner, false)))
				h.see(updateEvent, obj("v1/Secret", "ns/blocking", ownedBy(owner, true), deleting("example.com/hold")))
				h.step()
				h.mark("the blocking dependent is gone")
				h.remove(obj("v1/Secret", "ns/blocking", ownedBy(owner, true)))
			},
		},
		{
			name: "foreground deletion passes down to dependents with dependents",
			objs: []*metav1.PartialObjectMetadata{owner,
				obj("apps/v1/ReplicaSet", "ns/mid", ownedBy(owner, true)),
				obj("v1/Pod", "ns/leaf", ownedBy(obj("apps/v1/ReplicaSet", "ns/mid"), true))},
			then: func(h *harness) {
				h.mark("owner deleted in the foreground")
				h.change(obj("v1/ConfigMap", "ns/owner", deleting(foregroundFinalizer)))
			},
		},
		{
			name: "a foreground cycle is broken by unblocking",
			objs: []*metav1.PartialObjectMetadata{
				obj("v1/ConfigMap", "ns/a", ownedBy(obj("v1/ConfigMap", "ns/b"), true)),
				obj("v1/ConfigMap", "ns/b", ownedBy(obj("v1/ConfigMap", "ns/a"), true)),
			},
			then: func(h *harness) {
				h.mark("a deleted in the foreground")
				h.change(obj("v1/ConfigMap", "ns/a", ownedBy(obj("v1/ConfigMap", "ns/b"), true), deleting(foregroundFinalizer)))
				h.step()
				h.mark("b, unblocking and deleted in the foreground by the collector, is seen so")
				h.change(obj("v1/ConfigMap", "ns/b", ownedBy(obj("v1/ConfigMap", "ns/a"), false), deleting(foregroundFinalizer)))
				h.step()
				h.mark("a, its finalizer removed, is gone")
				h.remove(obj("v1/ConfigMap", "ns/a"))
			},
		},
		{
			name: "orphan deletion removes the owner from its dependents then the finalizer",
			objs: []*metav1.PartialObjectMetadata{owner,
				obj("v1/Secret", "ns/dep-a", ownedBy(owner, true)),
				obj("v1/Secret", "ns/dep-b", ownedBy(owner, false), ownedBy(other, false)), other},
			then: func(h *harness) {
				h.mark("owner deleted with orphan")
				h.change(obj("v1/ConfigMap", "ns/owner", deleting(orphanFinalizer)))
			},
		},
		{
			name: "a cluster-scoped object owned by a namespaced kind is kept",
			objs: []*metav1.PartialObjectMetadata{owner, obj("v1/Node", "node-1", ownedBy(owner, false))},
		},
		{
			name: "a dependent in another namespace than its owner is deleted",
			objs: []*metav1.PartialObjectMetadata{owner, obj("v1/Secret", "elsewhere/dep", ownedBy(owner, false))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.objs...)
			if tc.then != nil {
				tc.then(h)
				h.step()
			}
			golden(t, h.trace())
		})
	}
}

func TestCollector_RetriesAnUnknownKind(t *testing.T) {
	h := newHarness(t, obj("example.com/v1/Widget", "ns/w"), obj("v1/Secret", "ns/dep", ownedBy(obj("example.com/v1/Widget", "ns/w"), true)))
	n := h.gc.graph.lookup("uid-dep")
	err := h.gc.attemptDelete(context.Background(), n)
	if !errors.Is(err, errUnknownKind) {
		t.Fatalf("attemptDelete = %v, want errUnknownKind", err)
	}
}

func TestDiscover_KeepsOnlyDeletableResources(t *testing.T) {
	_, deletable, partial, err := discover(servedResources(), []schema.GroupResource{{Resource: "events"}})
	if err != nil || partial {
		t.Fatalf("discover: %v, partial %v", err, partial)
	}
	var got []string
	for gvr := range deletable {
		got = append(got, gvr.String())
	}
	slices.Sort(got)
	want := []string{"/v1, Resource=configmaps", "/v1, Resource=nodes", "/v1, Resource=pods", "/v1, Resource=secrets", "apps/v1, Resource=replicasets"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deletable (-want +got):\n%s", diff)
	}
}

func TestDiscover_UsesWhatAPartialFailureReturns(t *testing.T) {
	d := servedResources()
	d.err = &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{{Group: "metrics.k8s.io", Version: "v1beta1"}: errors.New("unavailable")}}
	_, deletable, partial, err := discover(d, nil)
	if err != nil || !partial || len(deletable) == 0 {
		t.Fatalf("discover = %d resources, partial %v, %v", len(deletable), partial, err)
	}
	d.err = apierrors.NewServiceUnavailable("down")
	if _, _, _, err := discover(d, nil); err == nil {
		t.Fatal("a total failure was not reported")
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no metadata client", Config{Discovery: servedResources()}},
		{"no discovery", Config{Metadata: client}},
		{"negative workers", Config{Metadata: client, Discovery: servedResources(), Workers: -1}},
		{"negative resync", Config{Metadata: client, Discovery: servedResources(), ResyncPeriod: -time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

// countingDiscovery fails and says so on calls.
type countingDiscovery struct{ calls chan struct{} }

func (d countingDiscovery) ServerPreferredResources() ([]*metav1.APIResourceList, error) {
	d.calls <- struct{}{}
	return nil, apierrors.NewServiceUnavailable("starting")
}

func TestRun_WaitsOutAFailingDiscovery(t *testing.T) {
	d := countingDiscovery{calls: make(chan struct{}, 10)}
	gc, err := New(Config{Metadata: metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), Discovery: d,
		Clock: clocktesting.NewFakeClock(t0), Events: &eventLog{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gc.Run(ctx) }()
	<-d.calls
	select {
	case err := <-done:
		t.Fatalf("Run gave up after a failed discovery: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after cancel, want nil", err)
	}
}
