package apiserver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// countingLW is a ListerWatcher for configmaps in default whose watches end
// after a second (so the reflector keeps re-watching from its last
// resourceVersion), counting full loads: lists, and WatchList watches
// (sendInitialEvents), which client-go 0.37 reflectors use by default.
type countingLW struct {
	env   *testEnv
	lists atomic.Int32
	// staleRV, when set, replaces the next watch's resourceVersion: a
	// reflector that was away while history it needs was compacted.
	staleRV atomic.Value
}

func (l *countingLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	l.lists.Add(1)
	return l.env.client.CoreV1().ConfigMaps("default").List(context.Background(), opts)
}

func (l *countingLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		l.lists.Add(1)
	}
	if rv, ok := l.staleRV.Swap("").(string); ok && rv != "" {
		opts.ResourceVersion = rv
	}
	one := int64(1)
	opts.TimeoutSeconds = &one
	return l.env.client.CoreV1().ConfigMaps("default").Watch(context.Background(), opts)
}

func TestReflector_RewatchesWithoutLosingEventsAndRelistsAfterCompaction(t *testing.T) {
	env := startTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lw := &countingLW{env: env}
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	r := cache.NewReflectorWithOptions(lw, &corev1.ConfigMap{}, store, cache.ReflectorOptions{})
	go r.Run(ctx.Done())
	waitFor(t, "first list", func() bool { return lw.lists.Load() >= 1 && r.LastSyncResourceVersion() != "" })

	cms := env.client.CoreV1().ConfigMaps("default")
	// Writes across several watch restarts: none may be lost.
	for i := range 40 {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			// Let the current watch time out so the next writes land
			// while the reflector re-watches.
			waitFor(t, "items", func() bool { return len(store.List()) == i+1 })
		}
	}
	waitFor(t, "all 40 items", func() bool { return len(store.List()) == 40 })
	listsBefore := lw.lists.Load()
	if listsBefore != 1 {
		t.Fatalf("the reflector relisted %d times while only re-watching", listsBefore-1)
	}

	// A reflector that resumes from a resourceVersion whose history is
	// compacted gets 410 Expired and relists.
	first, _ := cms.Get(ctx, "cm-00", metav1.GetOptions{})
	for i := range 3 {
		cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("late-%d", i)}}, metav1.CreateOptions{})
	}
	waitFor(t, "late items", func() bool { return len(store.List()) == 43 })
	rev, _ := env.store.CurrentRevision(ctx)
	if err := env.store.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	env.server.Compacted(rev)
	lw.staleRV.Store(first.ResourceVersion)
	waitFor(t, "relist after compaction", func() bool { return lw.lists.Load() > listsBefore })
	cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
	waitFor(t, "item after relist", func() bool { return len(store.List()) == 44 })
}
