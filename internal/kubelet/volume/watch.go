package volume

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// objectKey names a ConfigMap or Secret that volumes read.
type objectKey struct {
	secret          bool
	namespace, name string
}

// objectWatch is one watch on one object, shared by the pods that read it.
type objectWatch struct {
	pods   map[types.UID]bool
	cancel context.CancelFunc // nil until started
}

// referencedObjects lists the ConfigMaps and Secrets the pod's volumes
// read.
func referencedObjects(pod *v1.Pod) map[objectKey]bool {
	out := map[objectKey]bool{}
	add := func(secret bool, name string) {
		if name != "" {
			out[objectKey{secret: secret, namespace: pod.Namespace, name: name}] = true
		}
	}
	for _, vol := range pod.Spec.Volumes {
		switch src := vol.VolumeSource; {
		case src.ConfigMap != nil:
			add(false, src.ConfigMap.Name)
		case src.Secret != nil:
			add(true, src.Secret.SecretName)
		case src.Projected != nil:
			for _, p := range src.Projected.Sources {
				if p.ConfigMap != nil {
					add(false, p.ConfigMap.Name)
				}
				if p.Secret != nil {
					add(true, p.Secret.Name)
				}
			}
		}
	}
	return out
}

// releaseLocked drops uid's interest in key and stops the watch when no
// pod is left. m.mu must be held.
func (m *Manager) releaseLocked(key objectKey, uid types.UID) {
	w := m.watches[key]
	if w == nil {
		return
	}
	delete(w.pods, uid)
	if len(w.pods) == 0 {
		if w.cancel != nil {
			w.cancel()
		}
		delete(m.watches, key)
	}
}

// startWatchLocked starts the watch of key under Run's context; before
// Run it does nothing (Run starts it). m.mu must be held.
func (m *Manager) startWatchLocked(key objectKey, w *objectWatch) {
	if m.runCtx == nil || w.cancel != nil || m.cfg.Client == nil {
		return
	}
	ctx, cancel := context.WithCancel(m.runCtx)
	w.cancel = cancel
	core := m.cfg.Client.CoreV1()
	selector := fields.OneTermEqualSelector("metadata.name", key.name).String()
	var lw *cache.ListWatch
	var obj runtime.Object
	if key.secret {
		obj = &v1.Secret{}
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.FieldSelector = selector
				return core.Secrets(key.namespace).List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = selector
				return core.Secrets(key.namespace).Watch(ctx, o)
			},
		}
	} else {
		obj = &v1.ConfigMap{}
		lw = &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.FieldSelector = selector
				return core.ConfigMaps(key.namespace).List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.FieldSelector = selector
				return core.ConfigMaps(key.namespace).Watch(ctx, o)
			},
		}
	}
	changed := func(o any) {
		if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = d.Obj
		}
		if mo, ok := o.(metav1.Object); ok && mo.GetName() != key.name {
			return // a client that ignores the field selector
		}
		m.mu.Lock()
		var uids []types.UID
		if cur := m.watches[key]; cur != nil {
			for uid := range cur.pods {
				uids = append(uids, uid)
			}
		}
		m.mu.Unlock()
		for _, uid := range uids {
			m.queue.Add(uid)
		}
	}
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		// The typed client says whether it streams lists (WatchList);
		// a fake one does not.
		ListerWatcher: cache.ToListWatcherWithWatchListSemantics(lw, m.cfg.Client),
		ObjectType:    obj,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, o any) { changed(o) },
			DeleteFunc: changed,
		},
	})
	go ctrl.RunWithContext(ctx)
}
