package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-sh/skiff/internal/registry/core"
	"github.com/skiff-sh/skiff/internal/registry/core/reservationstest"
)

const prefix = "/registry/configmaps/"

func newTestStore(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s, err := NewStore(e.Client(), NewProtobufCodec(scheme.Scheme), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cm(ns, name string, data string, lbls map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Data:       map[string]string{"k": data},
	}
}

func key(ns, name string) string { return prefix + ns + "/" + name }

func rvOf(t *testing.T, obj runtime.Object) int64 {
	t.Helper()
	m, _ := accessor(obj)
	rv, err := ParseResourceVersion(m.GetResourceVersion())
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

func newTestCache(t *testing.T, s *Store) *Cache {
	t.Helper()
	c, err := NewCache(CacheConfig{
		Store:  s,
		Prefix: prefix,
		Attrs: func(obj runtime.Object) (labels.Set, fields.Set) {
			m, _ := accessor(obj)
			return m.GetLabels(), fields.Set{"metadata.name": m.GetName()}
		},
		NewObject:     func() runtime.Object { return &corev1.ConfigMap{} },
		WatcherBuffer: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Ready()
	return c
}

func TestStore_CreateGetUpdateDelete(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	created, err := s.Create(ctx, key("a", "one"), cm("a", "one", "1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, key("a", "one"), cm("a", "one", "1", nil)); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	got, err := s.Get(ctx, key("a", "one"))
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, got) != rvOf(t, created) {
		t.Fatalf("get rv %d, create rv %d", rvOf(t, got), rvOf(t, created))
	}
	updated, err := s.GuaranteedUpdate(ctx, key("a", "one"), nil, func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["k"] = "2"
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, updated) <= rvOf(t, created) {
		t.Fatal("update did not advance the resource version")
	}
	// A no-op update writes nothing, even from a stale hint.
	same, err := s.GuaranteedUpdate(ctx, key("a", "one"), created, func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Data["k"] = "2"
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rvOf(t, same) != rvOf(t, updated) {
		t.Fatalf("no-op update changed rv %d -> %d", rvOf(t, updated), rvOf(t, same))
	}
	deleted, err := s.Delete(ctx, key("a", "one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if deleted.(*corev1.ConfigMap).Data["k"] != "2" {
		t.Fatal("delete did not return the last state")
	}
	if _, err := s.Get(ctx, key("a", "one")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := s.Delete(ctx, key("a", "one"), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestStore_ListPages(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	for i := range 25 {
		l := map[string]string{"even": fmt.Sprint(i%2 == 0)}
		if _, err := s.Create(ctx, key("ns", fmt.Sprintf("cm-%02d", i)), cm("ns", fmt.Sprintf("cm-%02d", i), "x", l)); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	start, rev := "", int64(0)
	for {
		res, err := s.List(ctx, prefix, ListOptions{Limit: 4, StartKey: start, Revision: rev, Filter: func(obj runtime.Object) bool {
			return obj.(*corev1.ConfigMap).Labels["even"] == "true"
		}})
		if err != nil {
			t.Fatal(err)
		}
		rev = res.Revision
		for _, o := range res.Items {
			names = append(names, o.(*corev1.ConfigMap).Name)
		}
		if res.NextKey == "" {
			break
		}
		start = res.NextKey
	}
	if len(names) != 13 || names[0] != "cm-00" || names[12] != "cm-24" {
		t.Fatalf("paged filtered list: %v", names)
	}
}

func collect(t *testing.T, w *Watcher, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		ev, ok := w.Next(ctx)
		if !ok {
			t.Fatalf("watcher ended after %v", out)
		}
		m, _ := accessor(ev.Item.Object)
		out = append(out, fmt.Sprintf("%s %s", ev.Type, m.GetName()))
	}
	return out
}

func TestCache_WatchFromRevisionAndSelectors(t *testing.T) {
	s := newTestStore(t)
	c := newTestCache(t, s)
	ctx := context.Background()
	first, _ := s.Create(ctx, key("a", "x"), cm("a", "x", "1", map[string]string{"app": "web"}))
	s.Create(ctx, key("b", "y"), cm("b", "y", "1", map[string]string{"app": "web"}))
	// Relabel x so it leaves the selector: a selected watcher sees DELETED.
	s.GuaranteedUpdate(ctx, key("a", "x"), nil, func(cur runtime.Object) (runtime.Object, error) {
		cur.(*corev1.ConfigMap).Labels["app"] = "db"
		return cur, nil
	})
	s.Delete(ctx, key("b", "y"), nil)

	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	w, err := c.Watch(WatchOptions{FromRev: rvOf(t, first) - 1, Predicate: func(it *Item) bool { return web.Matches(it.Labels) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got := collect(t, w, 4)
	want := []string{"ADDED x", "ADDED y", "DELETED x", "DELETED y"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}

	ns, err := c.Watch(WatchOptions{Prefix: prefix + "a/", Initial: true, InitialEndBookmark: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Stop()
	s.Create(ctx, key("a", "z"), cm("a", "z", "1", nil))
	s.Create(ctx, key("b", "z"), cm("b", "z", "1", nil))
	got = collect(t, ns, 3)
	want = []string{"ADDED x", "BOOKMARK ", "ADDED z"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("namespace watch (-want +got):\n%s", diff)
	}
}

func TestCache_ExpiredAfterCompaction(t *testing.T) {
	s := newTestStore(t)
	c := newTestCache(t, s)
	ctx := context.Background()
	a, _ := s.Create(ctx, key("a", "1"), cm("a", "1", "1", nil))
	b, _ := s.Create(ctx, key("a", "2"), cm("a", "2", "1", nil))
	if err := c.WaitForRevision(ctx, rvOf(t, b), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, rvOf(t, b)); err != nil {
		t.Fatal(err)
	}
	c.Compacted(rvOf(t, b))
	if _, err := c.Watch(WatchOptions{FromRev: rvOf(t, a) - 1}); !errors.Is(err, ErrExpired) {
		t.Fatalf("watch from compacted rev: %v, want ErrExpired", err)
	}
	if _, err := s.List(ctx, prefix, ListOptions{Revision: rvOf(t, a)}); !errors.Is(err, ErrExpired) {
		t.Fatalf("list at compacted rev: %v, want ErrExpired", err)
	}
	w, err := c.Watch(WatchOptions{FromRev: rvOf(t, b)})
	if err != nil {
		t.Fatalf("watch from the compaction point: %v", err)
	}
	w.Stop()
}

func TestCache_FreshReadWithoutChanges(t *testing.T) {
	s := newTestStore(t)
	c := newTestCache(t, s)
	ctx := context.Background()
	// Writes under another prefix advance etcd's revision but not this
	// cache's; a consistent read must still complete (progress notify).
	for i := range 3 {
		if _, err := s.Create(ctx, fmt.Sprintf("/registry/secrets/a/%d", i), cm("a", fmt.Sprint(i), "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitFresh(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cur, _ := s.CurrentRevision(ctx)
	if c.Revision() < cur {
		t.Fatalf("cache at %d, etcd at %d", c.Revision(), cur)
	}
}

func TestCache_SlowWatcherIsClosedOthersContinue(t *testing.T) {
	s := newTestStore(t)
	c := newTestCache(t, s)
	ctx := context.Background()
	slow, _ := c.Watch(WatchOptions{FromRev: c.Revision()})
	fast, _ := c.Watch(WatchOptions{FromRev: c.Revision()})
	defer fast.Stop()
	defer slow.Stop()
	done := make(chan []string)
	go func() { done <- collect(t, fast, 30) }()
	for i := range 30 {
		if _, err := s.Create(ctx, key("a", fmt.Sprint(i)), cm("a", fmt.Sprint(i), "", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if got := <-done; len(got) != 30 {
		t.Fatalf("fast watcher got %d events", len(got))
	}
	n := 0
	for {
		if _, ok := slow.Next(ctx); !ok {
			break
		}
		n++
	}
	if !slow.Overflowed() || n > 10 {
		t.Fatalf("slow watcher: overflowed=%v after %d events", slow.Overflowed(), n)
	}
}

func TestReservations_ClaimReleaseList(t *testing.T) {
	s := newTestStore(t)
	r := NewReservations(s)
	ctx := context.Background()
	ok, err := r.Reserve(ctx, "serviceips/10.43.0.5", "default/a")
	if err != nil || !ok {
		t.Fatalf("first reserve: %v %v", ok, err)
	}
	if ok, _ := r.Reserve(ctx, "serviceips/10.43.0.5", "default/b"); ok {
		t.Fatal("a second owner got the same key")
	}
	if ok, _ := r.Reserve(ctx, "serviceips/10.43.0.5", "default/a"); !ok {
		t.Fatal("reserving again as the owner should succeed")
	}
	r.Release(ctx, "serviceips/10.43.0.5", "default/b")
	keys, _ := r.List(ctx, "serviceips/")
	if len(keys) != 1 || keys["serviceips/10.43.0.5"] != "default/a" {
		t.Fatalf("a stranger released the claim: %v", keys)
	}
	r.Release(ctx, "serviceips/10.43.0.5", "default/a")
	if keys, _ := r.List(ctx, "serviceips/"); len(keys) != 0 {
		t.Fatalf("after release: %v", keys)
	}
}

func TestReservations_Conformance(t *testing.T) {
	reservationstest.Run(t, func(t *testing.T) core.Reservations {
		return NewReservations(newTestStore(t))
	})
}
