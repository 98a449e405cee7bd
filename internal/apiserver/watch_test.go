package apiserver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// recorder collects informer notifications in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestInformer_SeesCreateUpdateDeleteInOrder(t *testing.T) {
	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		t.Run(ct, func(t *testing.T) {
			env := startTestServer(t)
			cfg := rest.CopyConfig(env.config)
			cfg.ContentType = ct
			c := kubernetes.NewForConfigOrDie(cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Something that exists before the informer starts.
			c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{})

			f := informers.NewSharedInformerFactory(c, 0)
			inf := f.Core().V1().ConfigMaps().Informer()
			rec := &recorder{}
			inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc: func(obj interface{}) { rec.add("add " + obj.(*corev1.ConfigMap).Name) },
				UpdateFunc: func(_, obj interface{}) {
					rec.add("update " + obj.(*corev1.ConfigMap).Name + " " + obj.(*corev1.ConfigMap).Data["k"])
				},
				DeleteFunc: func(obj interface{}) {
					if cm, ok := obj.(*corev1.ConfigMap); ok {
						rec.add("delete " + cm.Name)
					}
				},
			})
			f.Start(ctx.Done())
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				t.Fatal("informer did not sync")
			}
			cm, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Data: map[string]string{"k": "1"}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cm.Data["k"] = "2"
			if _, err := c.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := c.CoreV1().ConfigMaps("default").Delete(ctx, "x", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			want := []string{"add before", "add x", "update x 2", "delete x"}
			waitFor(t, "informer events", func() bool { return len(rec.snapshot()) >= len(want) })
			got := rec.snapshot()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("events %v, want %v", got, want)
			}
		})
	}
}

func TestWatch_ResumesFromResourceVersion(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	cms := env.client.CoreV1().ConfigMaps("default")
	first, _ := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
	cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{})
	cms.Delete(ctx, "a", metav1.DeleteOptions{})
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []string
	for ev := range w.ResultChan() {
		got = append(got, fmt.Sprintf("%s %s", ev.Type, ev.Object.(*corev1.ConfigMap).Name))
		if len(got) == 2 {
			break
		}
	}
	if fmt.Sprint(got) != "[ADDED b DELETED a]" {
		t.Fatalf("events after rv: %v", got)
	}
}

func TestWatch_ExpiredAfterCompactionIsAnErrorEvent(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	cms := env.client.CoreV1().ConfigMaps("default")
	old, _ := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
	newer, _ := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{})
	cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})
	// Compacting at the latest revision drops what a watch from "a"
	// would need (the change right after it).
	rev, _ := env.store.CurrentRevision(ctx)
	if err := env.store.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	env.server.Compacted(rev)
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: old.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	w.Stop()
	st, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
		t.Fatalf("got %s %#v", ev.Type, ev.Object)
	}
	// A list at the compacted revision is 410 as well.
	_, err = cms.List(ctx, metav1.ListOptions{ResourceVersion: old.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !isGone(err) {
		t.Fatalf("exact list at compacted rv: %v", err)
	}
	_ = newer
}

func TestWatchList_SendsInitialEventsThenEndBookmark(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	cms := env.client.CoreV1().ConfigMaps("default")
	for i := range 3 {
		cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("cm", i)}}, metav1.CreateOptions{})
	}
	yes := true
	w, err := cms.Watch(ctx, metav1.ListOptions{SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var adds int
	for ev := range w.ResultChan() {
		if ev.Type == watch.Added {
			adds++
			continue
		}
		if ev.Type != watch.Bookmark {
			t.Fatalf("unexpected %s", ev.Type)
		}
		cm := ev.Object.(*corev1.ConfigMap)
		if cm.Annotations["k8s.io/initial-events-end"] != "true" || cm.ResourceVersion == "" {
			t.Fatalf("bookmark without the end annotation: %+v", cm.ObjectMeta)
		}
		break
	}
	if adds != 3 {
		t.Fatalf("initial events: %d", adds)
	}
	// Without bookmarks, sendInitialEvents is invalid (client-go then
	// falls back to list+watch).
	_, err = cms.Watch(ctx, metav1.ListOptions{SendInitialEvents: &yes, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if !isInvalid(err) {
		t.Fatalf("sendInitialEvents without bookmarks: %v", err)
	}
}
