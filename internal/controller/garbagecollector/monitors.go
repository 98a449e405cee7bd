package garbagecollector

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// resource is a kind the API serves, as discovery describes it.
type resource struct {
	gvr        schema.GroupVersionResource
	gvk        schema.GroupVersionKind
	namespaced bool
}

// catalog maps kinds to resources, from the last discovery. Its methods
// are safe for concurrent use.
type catalog struct {
	// mu guards byKind and deletable.
	mu        sync.RWMutex
	byKind    map[schema.GroupKind]resource
	deletable map[schema.GroupVersionResource]resource
}

// discover reads the preferred version of every resource from d. It
// returns the resources found even when some API groups failed, with
// partial set; err is only for a failure with nothing to show.
func discover(d Discovery, ignored []schema.GroupResource) (byKind map[schema.GroupKind]resource, deletable map[schema.GroupVersionResource]resource, partial bool, err error) {
	lists, err := d.ServerPreferredResources()
	if err != nil {
		if !discovery.IsGroupDiscoveryFailedError(err) {
			return nil, nil, false, fmt.Errorf("discover resources: %w", err)
		}
		partial = true
	}
	byKind = map[schema.GroupKind]resource{}
	deletable = map[schema.GroupVersionResource]resource{}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource
			}
			res := resource{
				gvr:        gv.WithResource(r.Name),
				gvk:        gv.WithKind(r.Kind),
				namespaced: r.Namespaced,
			}
			byKind[res.gvk.GroupKind()] = res
			verbs := metav1.Verbs(r.Verbs)
			if !slices.Contains(verbs, "delete") || !slices.Contains(verbs, "list") || !slices.Contains(verbs, "watch") {
				continue
			}
			if slices.Contains(ignored, res.gvr.GroupResource()) {
				continue
			}
			deletable[res.gvr] = res
		}
	}
	return byKind, deletable, partial, nil
}

func (c *catalog) set(byKind map[schema.GroupKind]resource, deletable map[schema.GroupVersionResource]resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKind, c.deletable = byKind, deletable
}

// lookup returns the resource serving kind gk.
func (c *catalog) lookup(gk schema.GroupKind) (resource, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.byKind[gk]
	return r, ok
}

// monitor watches one resource's metadata and feeds the graph.
type monitor struct {
	res      resource
	informer cache.SharedIndexInformer
	synced   cache.InformerSynced
	stop     chan struct{}
}

// syncMonitors starts a monitor for each deletable resource without one,
// and, unless keepOthers, stops those for resources no longer served. It
// runs informers only once started is set.
func (c *Collector) syncMonitors(deletable map[schema.GroupVersionResource]resource, keepOthers bool) error {
	c.monitorsMu.Lock()
	defer c.monitorsMu.Unlock()
	var added, removed int
	for gvr, res := range deletable {
		if _, ok := c.monitors[gvr]; ok {
			continue
		}
		inf := metadatainformer.NewFilteredMetadataInformer(c.cfg.Metadata, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
		reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.observe(addEvent, obj, res.gvk) },
			UpdateFunc: func(_, cur any) { c.observe(updateEvent, cur, res.gvk) },
			DeleteFunc: func(obj any) { c.observe(deleteEvent, obj, res.gvk) },
		})
		if err != nil {
			return fmt.Errorf("monitor %s: %w", gvr, err)
		}
		m := &monitor{res: res, informer: inf, synced: reg.HasSynced, stop: make(chan struct{})}
		c.monitors[gvr] = m
		if c.started {
			go inf.Run(m.stop)
		}
		added++
	}
	if !keepOthers {
		for gvr, m := range c.monitors {
			if _, ok := deletable[gvr]; ok {
				continue
			}
			close(m.stop)
			delete(c.monitors, gvr)
			removed++
		}
	}
	if added+removed > 0 {
		c.log.Info("monitors changed", "added", added, "removed", removed, "total", len(c.monitors))
	}
	return nil
}

// startMonitors runs every monitor's informer.
func (c *Collector) startMonitors() {
	c.monitorsMu.Lock()
	defer c.monitorsMu.Unlock()
	c.started = true
	for _, m := range c.monitors {
		go m.informer.Run(m.stop)
	}
}

// stopMonitors stops every monitor.
func (c *Collector) stopMonitors() {
	c.monitorsMu.Lock()
	defer c.monitorsMu.Unlock()
	for gvr, m := range c.monitors {
		close(m.stop)
		delete(c.monitors, gvr)
	}
}

// monitorsSynced reports whether every monitor has delivered its initial
// list.
func (c *Collector) monitorsSynced() bool {
	c.monitorsMu.Lock()
	defer c.monitorsMu.Unlock()
	for _, m := range c.monitors {
		if !m.synced() {
			return false
		}
	}
	return true
}

// observe turns an informer notification into a graph event.
func (c *Collector) observe(typ eventType, obj any, gvk schema.GroupVersionKind) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return
	}
	c.graphChanges.Add(&event{typ: typ, obj: m, gvk: gvk})
}
