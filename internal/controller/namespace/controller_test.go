package namespace

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type staticDiscovery struct {
	lists []*metav1.APIResourceList
	err   error
}

func (d staticDiscovery) ServerPreferredNamespacedResources() ([]*metav1.APIResourceList, error) {
	return d.lists, d.err
}

var allVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func served() staticDiscovery {
	return staticDiscovery{lists: []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Kind: "ConfigMap", Namespaced: true, Verbs: allVerbs},
			{Name: "pods", Kind: "Pod", Namespaced: true, Verbs: allVerbs},
			{Name: "pods/status", Kind: "Pod", Namespaced: true, Verbs: metav1.Verbs{"get", "patch", "update"}},
			{Name: "bindings", Kind: "Binding", Namespaced: true, Verbs: metav1.Verbs{"create"}},
		}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			// A kind without deletecollection: deleted one by one.
			{Name: "widgets", Kind: "Widget", Namespaced: true, Verbs: metav1.Verbs{"delete", "get", "list"}},
		}},
	}}
}

func terminatingNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: "uid-" + "ns", DeletionTimestamp: ptr.To(metav1.NewTime(t0.Add(-time.Minute)))},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	}
}

func partial(gvk, ns, name string, finalizers ...string) *metav1.PartialObjectMetadata {
	i := strings.LastIndex(gvk, "/")
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: gvk[:i], Kind: gvk[i+1:]},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Finalizers: finalizers},
	}
}

type harness struct {
	client  *fake.Clientset
	meta    *metadatafake.FakeMetadataClient
	ctrl    *Controller
	actions []clienttesting.Action
}

func newHarness(t *testing.T, disco staticDiscovery, ns *corev1.Namespace, typed []runtime.Object, content ...*metav1.PartialObjectMetadata) *harness {
	t.Helper()
	client := fake.NewClientset(append([]runtime.Object{ns}, typed...)...)
	scheme := metadatafake.NewTestScheme()
	metav1.AddMetaToScheme(scheme)
	var objs []runtime.Object
	for _, o := range content {
		objs = append(objs, o)
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme, objs...)
	// The fake does not know deletecollection; do it as the API would,
	// keeping objects held by finalizers.
	meta.PrependReactor("delete-collection", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetResource().Resource == "configmaps" && a.GetNamespace() == "broken" {
			return true, nil, apierrors.NewInternalError(errors.New("etcd is sad"))
		}
		return true, nil, deleteAllWithoutFinalizers(meta, a.GetResource(), a.GetNamespace())
	})
	meta.PrependReactor("delete", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		d := a.(clienttesting.DeleteAction)
		o, err := meta.Tracker().Get(d.GetResource(), d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		if p := o.(*metav1.PartialObjectMetadata); len(p.Finalizers) > 0 {
			p.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
			return true, nil, meta.Tracker().Update(d.GetResource(), p, d.GetNamespace())
		}
		return false, nil, nil
	})
	h := &harness{client: client, meta: meta}
	// One log for both clients, in the order the controller called them.
	record := func(a clienttesting.Action) (bool, runtime.Object, error) {
		h.actions = append(h.actions, a.DeepCopy())
		return false, nil, nil
	}
	meta.PrependReactor("*", "*", record)
	client.PrependReactor("*", "*", record)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(Config{Client: client, Metadata: meta, Discovery: disco, Informers: factory, Clock: clocktesting.NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctrl.queue.ShutDown)
	if err := factory.Core().V1().Namespaces().Informer().GetIndexer().Add(ns); err != nil {
		t.Fatal(err)
	}
	h.ctrl = ctrl
	return h
}

// deleteAllWithoutFinalizers removes the objects of gvr in ns that carry
// no finalizer, and marks the others terminating.
func deleteAllWithoutFinalizers(meta *metadatafake.FakeMetadataClient, gvr schema.GroupVersionResource, ns string) error {
	for _, o := range storedObjects(meta, gvr, ns) {
		if len(o.Finalizers) > 0 {
			o.DeletionTimestamp = ptr.To(metav1.NewTime(t0))
			if err := meta.Tracker().Update(gvr, o, ns); err != nil {
				return err
			}
			continue
		}
		if err := meta.Tracker().Delete(gvr, ns, o.Name); err != nil {
			return err
		}
	}
	return nil
}

// storedObjects lists the fake's objects of gvr in ns, through the list
// kind the fake registers for itself (the tracker appends "List").
func storedObjects(meta *metadatafake.FakeMetadataClient, gvr schema.GroupVersionResource, ns string) []*metav1.PartialObjectMetadata {
	o, err := meta.Tracker().List(gvr, schema.GroupVersionKind{Group: "fake-metadata-client-group", Version: "v1"}, ns)
	if err != nil {
		return nil
	}
	var out []*metav1.PartialObjectMetadata
	for _, it := range o.(*metav1.List).Items {
		if p, ok := it.Object.(*metav1.PartialObjectMetadata); ok {
			out = append(out, p.DeepCopy())
		}
	}
	return out
}

func (h *harness) trace(t *testing.T, wait time.Duration, err error) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# result: recheck after %v, error %v\n", wait, err)
	for _, a := range h.actions {
		res := a.GetResource().Resource
		if a.GetSubresource() != "" {
			res += "/" + a.GetSubresource()
		}
		line := fmt.Sprintf("%s %s %s", a.GetVerb(), res, a.GetNamespace())
		switch a := a.(type) {
		case clienttesting.DeleteAction:
			line += "/" + a.GetName()
		case clienttesting.UpdateAction:
			if a.GetVerb() != "update" {
				break
			}
			ns := a.GetObject().(*corev1.Namespace)
			y, err := yaml.Marshal(map[string]any{"spec": ns.Spec, "status": ns.Status})
			if err != nil {
				t.Fatal(err)
			}
			line += "/" + ns.Name + "\n    " + strings.ReplaceAll(strings.TrimSpace(string(y)), "\n", "\n    ")
		case clienttesting.GetAction:
			line += "/" + a.GetName()
		}
		b.WriteString(line + "\n")
	}
	return b.String()
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

func TestSync(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](45)}}
	for _, tc := range []struct {
		name    string
		ns      *corev1.Namespace
		disco   staticDiscovery
		typed   []runtime.Object
		content []*metav1.PartialObjectMetadata
	}{
		{
			name: "empties the namespace and finalizes it",
			ns:   terminatingNamespace("ns"),
			content: []*metav1.PartialObjectMetadata{
				partial("v1/ConfigMap", "ns", "a"), partial("v1/ConfigMap", "ns", "b"),
				partial("example.com/v1/Widget", "ns", "w"), partial("v1/ConfigMap", "other", "keep"),
			},
		},
		{
			name: "waits for content held by finalizers",
			ns:   terminatingNamespace("ns"),
			content: []*metav1.PartialObjectMetadata{
				partial("v1/ConfigMap", "ns", "held", "example.com/hold"), partial("example.com/v1/Widget", "ns", "w", "example.com/hold", "example.com/other"),
			},
		},
		{
			name:    "waits a pod's grace period for terminating pods",
			ns:      terminatingNamespace("ns"),
			typed:   []runtime.Object{pod},
			content: []*metav1.PartialObjectMetadata{partial("v1/Pod", "ns", "p", "example.com/node-says-wait")},
		},
		{
			name: "reports groups that discovery could not list and goes on",
			ns:   terminatingNamespace("ns"),
			disco: func() staticDiscovery {
				d := served()
				d.err = &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{{Group: "metrics.k8s.io", Version: "v1beta1"}: errors.New("unavailable")}}
				return d
			}(),
		},
		{
			name:  "retries when discovery fails outright",
			ns:    terminatingNamespace("ns"),
			disco: staticDiscovery{err: apierrors.NewServiceUnavailable("down")},
		},
		{
			name:    "reports content it could not delete",
			ns:      terminatingNamespace("broken"),
			content: []*metav1.PartialObjectMetadata{partial("v1/ConfigMap", "broken", "a")},
		},
		{
			name: "leaves a namespace that is not being deleted alone",
			ns:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}},
		},
		{
			name: "leaves a namespace already finalized alone",
			ns: func() *corev1.Namespace {
				ns := terminatingNamespace("ns")
				ns.Spec.Finalizers = []corev1.FinalizerName{"example.com/mine"}
				return ns
			}(),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disco := tc.disco
			if disco.lists == nil && disco.err == nil {
				disco = served()
			}
			h := newHarness(t, disco, tc.ns, tc.typed, tc.content...)
			wait, err := h.ctrl.sync(context.Background(), tc.ns.Name)
			golden(t, h.trace(t, wait, err))
		})
	}
}

func TestConditions_KeepTransitionTimesWhileStatusHolds(t *testing.T) {
	var st corev1.NamespaceStatus
	first := metav1.NewTime(t0)
	var cs conditions
	cs.remaining(leftovers{byResource: map[schema.GroupVersionResource]int{{Resource: "pods", Version: "v1"}: 2}, byFinalizer: map[string]int{}})
	if !cs.apply(&st, first) {
		t.Fatal("first apply changed nothing")
	}
	var cs2 conditions
	cs2.remaining(leftovers{byResource: map[schema.GroupVersionResource]int{{Resource: "pods", Version: "v1"}: 1}, byFinalizer: map[string]int{}})
	later := metav1.NewTime(t0.Add(time.Minute))
	if !cs2.apply(&st, later) {
		t.Fatal("a new message changed nothing")
	}
	for _, c := range st.Conditions {
		if c.LastTransitionTime != first {
			t.Errorf("%s moved its transition time to %v though its status held", c.Type, c.LastTransitionTime)
		}
	}
	if (&conditions{failed: cs2.failed}).apply(&st, later) {
		t.Error("the same conditions again changed the status")
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewClientset()
	meta := metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme())
	inf := informers.NewSharedInformerFactory(client, 0)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{Metadata: meta, Informers: inf}},
		{"no metadata client", Config{Client: client, Informers: inf}},
		{"no informers", Config{Client: client, Metadata: meta}},
		{"negative workers", Config{Client: client, Metadata: meta, Informers: inf, Workers: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
