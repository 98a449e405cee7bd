package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// Item is one object held by a Cache. Items are shared by every reader and
// must not be modified; copy Object before changing it.
type Item struct {
	Key    string
	Object runtime.Object
	Labels labels.Set
	Fields fields.Set
	// Rev is the object's resourceVersion.
	Rev int64

	enc encodings
}

// Encoded returns obj encoded by encode, computing it once per id: every
// watcher and list that asks for the same encoding of the same object shares
// the bytes. The caller must not modify the returned slice.
func (it *Item) Encoded(id string, encode func(runtime.Object) ([]byte, error)) ([]byte, error) {
	return it.enc.get(id, it.Object, encode)
}

type encodings struct {
	mu      sync.Mutex // guards entries
	entries []encoding
}

type encoding struct {
	id   string
	data []byte
	err  error
}

func (e *encodings) get(id string, obj runtime.Object, encode func(runtime.Object) ([]byte, error)) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range e.entries {
		if en.id == id {
			return en.data, en.err
		}
	}
	data, err := encode(obj)
	e.entries = append(e.entries, encoding{id: id, data: data, err: err})
	return data, err
}

// Predicate selects items for a list or a watch; nil selects everything.
type Predicate func(it *Item) bool

func (p Predicate) matches(it *Item) bool { return p == nil || p(it) }

// Event is what a Watcher delivers: an object that was added, modified or
// deleted, or a bookmark carrying only a resourceVersion.
type Event struct {
	Type watch.EventType
	// Item is the object after the change; for Deleted, the object as it
	// was, with the resourceVersion of the deletion. For Bookmark, Item
	// holds an empty object of the cache's kind with only the
	// resourceVersion set (and, at the end of the initial events, the
	// "k8s.io/initial-events-end" annotation).
	Item *Item
}

// change is an etcd change as the cache keeps it in its history.
type change struct {
	typ  watch.EventType
	item *Item // after the change (Deleted: before, at the deletion revision)
	prev *Item // before the change; nil for Added
	at   time.Time
}

// CacheConfig configures a Cache for one resource.
type CacheConfig struct {
	Store *Store
	// Prefix is the key prefix of the resource, ending in "/".
	Prefix string
	// Attrs returns the labels and selectable fields of an object.
	Attrs func(obj runtime.Object) (labels.Set, fields.Set)
	// NewObject returns an empty object of the resource's kind, for
	// bookmarks.
	NewObject func() runtime.Object
	// History is how long changes are kept for watches that resume from
	// an older resourceVersion; 0 means 5 minutes.
	History time.Duration
	// MaxHistory caps the number of changes kept; 0 means 50,000.
	MaxHistory int
	// WatcherBuffer is how many events a watcher may fall behind before it
	// is closed; 0 means 1,000.
	WatcherBuffer int
	// BookmarkInterval is how often watchers that asked for bookmarks get
	// one; 0 means 30 s.
	BookmarkInterval time.Duration
	Logger           *slog.Logger
}

func (c *CacheConfig) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("cache: Store is required")
	case !strings.HasSuffix(c.Prefix, "/"):
		return fmt.Errorf("cache: prefix %q must end in /", c.Prefix)
	case c.Attrs == nil || c.NewObject == nil:
		return errors.New("cache: Attrs and NewObject are required")
	}
	if c.History == 0 {
		c.History = 5 * time.Minute
	}
	if c.MaxHistory == 0 {
		c.MaxHistory = 50000
	}
	if c.WatcherBuffer == 0 {
		c.WatcherBuffer = 1000
	}
	if c.BookmarkInterval == 0 {
		c.BookmarkInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Cache mirrors every object under one key prefix in memory, fed by a single
// etcd watch, and serves lists and any number of watches from it (the
// Kubernetes watch cache). A watch may resume from any resourceVersion still
// in the cache's history; older ones get ErrExpired.
//
//	etcd watch ──► run ──► items (btree by key) + history (ring of changes)
//	                 └───► dispatch ──► each Watcher's buffered channel
//
// Slow watchers never block the others: a watcher whose buffer is full is
// closed, and its client resumes from the last resourceVersion it saw.
type Cache struct {
	cfg CacheConfig

	mu sync.RWMutex // guards everything below
	// items holds the current objects, ordered by key.
	items *btree.BTreeG[*Item]
	// rev is the revision the cache reflects: every change to the prefix
	// up to rev has been applied.
	rev int64
	// historyFrom: history holds every change after this revision.
	historyFrom int64
	history     []change
	watchers    map[*Watcher]struct{}
	// revChanged is closed and replaced whenever rev advances.
	revChanged chan struct{}
	// ready is closed once the first list has been loaded.
	ready    chan struct{}
	isReady  bool
	stopping bool
}

// NewCache returns a cache; Run fills it and keeps it current.
func NewCache(cfg CacheConfig) (*Cache, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Cache{
		cfg:        cfg,
		items:      btree.NewG(32, func(a, b *Item) bool { return a.Key < b.Key }),
		watchers:   map[*Watcher]struct{}{},
		revChanged: make(chan struct{}),
		ready:      make(chan struct{}),
	}, nil
}

// Ready is closed once the cache holds a complete list.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Run loads the prefix and follows etcd until ctx ends, reloading after a
// broken watch. It closes every watcher when it returns.
func (c *Cache) Run(ctx context.Context) {
	defer c.closeAll()
	go c.bookmarkLoop(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rev, err := c.load(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Logger.Warn("watch cache load failed", "prefix", c.cfg.Prefix, "err", err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, 5*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		if err := c.follow(ctx, rev); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("watch cache lost its etcd watch; reloading", "prefix", c.cfg.Prefix, "err", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Cache) newItem(key string, obj runtime.Object, rev int64) *Item {
	l, f := c.cfg.Attrs(obj)
	return &Item{Key: key, Object: obj, Labels: l, Fields: f, Rev: rev}
}

// load replaces the cache's contents with a fresh list from etcd. Watchers
// opened before cannot be continued across the gap and are closed.
func (c *Cache) load(ctx context.Context) (int64, error) {
	res, err := c.cfg.Store.List(ctx, c.cfg.Prefix, ListOptions{})
	if err != nil {
		return 0, err
	}
	items := btree.NewG(32, func(a, b *Item) bool { return a.Key < b.Key })
	for _, obj := range res.Items {
		it, err := c.itemFromObject(obj)
		if err != nil {
			return 0, err
		}
		items.ReplaceOrInsert(it)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.watchers {
		w.closeLocked()
	}
	c.items = items
	c.history = nil
	c.historyFrom = res.Revision
	c.setRevLocked(res.Revision)
	if !c.isReady {
		c.isReady = true
		close(c.ready)
	}
	return res.Revision, nil
}

func (c *Cache) itemFromObject(obj runtime.Object) (*Item, error) {
	key, rev, err := keyOf(c.cfg.Prefix, obj)
	if err != nil {
		return nil, err
	}
	return c.newItem(key, obj, rev), nil
}

// keyOf recovers the key of a listed object from its name and namespace
// (the store lists values, not keys).
func keyOf(prefix string, obj runtime.Object) (string, int64, error) {
	m, err := accessor(obj)
	if err != nil {
		return "", 0, err
	}
	rev, err := ParseResourceVersion(m.GetResourceVersion())
	if err != nil {
		return "", 0, err
	}
	if ns := m.GetNamespace(); ns != "" {
		return prefix + ns + "/" + m.GetName(), rev, nil
	}
	return prefix + m.GetName(), rev, nil
}

func (c *Cache) follow(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := c.cfg.Store.client
	wch := client.Watch(wctx, c.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.IsProgressNotify() {
			c.mu.Lock()
			if resp.Header.Revision > c.rev {
				c.setRevLocked(resp.Header.Revision)
			}
			c.mu.Unlock()
			continue
		}
		for _, ev := range resp.Events {
			if err := c.apply(ev); err != nil {
				// A value we cannot decode is skipped, not fatal: one
				// corrupt object must not take the resource down.
				c.cfg.Logger.Error("watch cache skipped an undecodable change", "key", string(ev.Kv.Key), "err", err)
			}
		}
	}
	return ctx.Err()
}

func (c *Cache) apply(ev *clientv3.Event) error {
	key := string(ev.Kv.Key)
	rev := ev.Kv.ModRevision
	var ch change
	switch ev.Type {
	case clientv3.EventTypePut:
		obj, err := c.cfg.Store.decode(ev.Kv, rev)
		if err != nil {
			c.advance(rev)
			return err
		}
		ch.item = c.newItem(key, obj, rev)
		ch.typ = watch.Added
		if ev.PrevKv != nil {
			ch.typ = watch.Modified
		}
	case clientv3.EventTypeDelete:
		if ev.PrevKv == nil {
			c.advance(rev)
			return nil
		}
		obj, err := c.cfg.Store.decode(ev.PrevKv, rev)
		if err != nil {
			c.advance(rev)
			return err
		}
		ch.item = c.newItem(key, obj, rev)
		ch.typ = watch.Deleted
	}
	ch.at = time.Now()

	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items.Get(&Item{Key: key}); ok {
		ch.prev = old
	}
	if ch.typ == watch.Deleted {
		c.items.Delete(ch.item)
		if ch.prev == nil {
			// Deleted before we saw it (cannot happen after a
			// consistent load, but never dispatch nothing).
			ch.prev = ch.item
		}
	} else {
		c.items.ReplaceOrInsert(ch.item)
		if ch.prev == nil {
			ch.typ = watch.Added
		}
	}
	c.appendHistoryLocked(ch)
	c.setRevLocked(rev)
	for w := range c.watchers {
		w.offerLocked(ch)
	}
	return nil
}

func (c *Cache) advance(rev int64) {
	c.mu.Lock()
	if rev > c.rev {
		c.setRevLocked(rev)
	}
	c.mu.Unlock()
}

func (c *Cache) setRevLocked(rev int64) {
	c.rev = rev
	close(c.revChanged)
	c.revChanged = make(chan struct{})
}

func (c *Cache) appendHistoryLocked(ch change) {
	c.history = append(c.history, ch)
	cut := 0
	if len(c.history) > c.cfg.MaxHistory {
		cut = len(c.history) - c.cfg.MaxHistory
	}
	limit := ch.at.Add(-c.cfg.History)
	for cut < len(c.history)-1 && c.history[cut].at.Before(limit) {
		cut++
	}
	if cut > 0 {
		c.historyFrom = c.history[cut-1].item.Rev
		// Copy so the dropped prefix can be collected.
		c.history = append([]change(nil), c.history[cut:]...)
	}
}

// Compacted tells the cache that etcd dropped history before rev: watches
// from older resourceVersions must now fail with ErrExpired, as they would
// against etcd.
func (c *Cache) Compacted(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.historyFrom {
		return
	}
	i := 0
	for i < len(c.history) && c.history[i].item.Rev < rev {
		i++
	}
	c.history = append([]change(nil), c.history[i:]...)
	c.historyFrom = rev - 1
	if c.historyFrom > c.rev {
		c.historyFrom = c.rev
	}
}

// Revision returns the revision the cache currently reflects.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// WaitForRevision waits until the cache reflects rev, asking etcd for a
// progress notification when no change of this prefix would otherwise
// advance it. It fails with ErrTooLargeResourceVersion after timeout.
func (c *Cache) WaitForRevision(ctx context.Context, rev int64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	asked := false
	for {
		c.mu.RLock()
		cur, changed := c.rev, c.revChanged
		ready := c.isReady
		c.mu.RUnlock()
		if ready && cur >= rev {
			return nil
		}
		if ready && !asked {
			// Progress notifications go to every watch on the client's
			// stream, so one request serves all caches waiting.
			if err := c.cfg.Store.client.RequestProgress(context.Background()); err != nil {
				c.cfg.Logger.Debug("request progress", "err", err)
			}
			asked = true
		}
		retry := time.NewTimer(50 * time.Millisecond)
		select {
		case <-changed:
		case <-retry.C:
			asked = false
		case <-deadline.C:
			retry.Stop()
			return &Error{Class: ErrTooLargeResourceVersion, Key: c.cfg.Prefix, Requested: rev, Current: cur}
		case <-ctx.Done():
			retry.Stop()
			return ctx.Err()
		}
		retry.Stop()
	}
}

// WaitFresh waits until the cache reflects everything etcd has committed
// now: the basis of consistent reads from the cache.
func (c *Cache) WaitFresh(ctx context.Context, timeout time.Duration) error {
	rev, err := c.cfg.Store.CurrentRevision(ctx)
	if err != nil {
		return err
	}
	return c.WaitForRevision(ctx, rev, timeout)
}

// List returns the items under prefix (a sub-prefix of the cache's, such
// as one namespace) that p selects, in key order, with the revision they
// reflect.
func (c *Cache) List(prefix string, p Predicate) ([]*Item, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*Item
	c.items.AscendGreaterOrEqual(&Item{Key: prefix}, func(it *Item) bool {
		if !strings.HasPrefix(it.Key, prefix) {
			return false
		}
		if p.matches(it) {
			out = append(out, it)
		}
		return true
	})
	return out, c.rev
}

// Get returns the item at key.
func (c *Cache) Get(key string) (*Item, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.items.Get(&Item{Key: key})
}

// Len returns the number of objects in the cache.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.items.Len()
}

// WatchOptions says where a watch starts and what it sees.
type WatchOptions struct {
	// Prefix restricts the watch to keys under it (a namespace); it must
	// begin with the cache's prefix.
	Prefix    string
	Predicate Predicate
	// FromRev resumes after that revision: every change after it is
	// delivered. Ignored when Initial is set.
	FromRev int64
	// Initial starts with the current objects as Added events. With
	// InitialEndBookmark, a bookmark annotated
	// "k8s.io/initial-events-end" follows them.
	Initial            bool
	InitialEndBookmark bool
	// Bookmarks asks for periodic bookmarks.
	Bookmarks bool
}

// Watch opens a watcher. It fails with ErrExpired if FromRev is older than
// the history kept. The caller must Stop the watcher.
func (c *Cache) Watch(opts WatchOptions) (*Watcher, error) {
	if opts.Prefix == "" {
		opts.Prefix = c.cfg.Prefix
	}
	w := &Watcher{
		cache:     c,
		prefix:    opts.Prefix,
		pred:      opts.Predicate,
		bookmarks: opts.Bookmarks,
		ch:        make(chan Event, c.cfg.WatcherBuffer),
		done:      make(chan struct{}),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, errors.New("watch cache is shutting down")
	}
	if opts.Initial {
		c.items.AscendGreaterOrEqual(&Item{Key: opts.Prefix}, func(it *Item) bool {
			if !strings.HasPrefix(it.Key, opts.Prefix) {
				return false
			}
			if w.pred.matches(it) {
				w.initial = append(w.initial, Event{Type: watch.Added, Item: it})
			}
			return true
		})
		if opts.InitialEndBookmark {
			w.initial = append(w.initial, Event{Type: watch.Bookmark, Item: c.bookmarkLocked(c.rev, true)})
		}
	} else {
		if opts.FromRev < c.historyFrom {
			return nil, &Error{Class: ErrExpired, Key: c.cfg.Prefix, Requested: opts.FromRev, Current: c.historyFrom + 1}
		}
		for _, ch := range c.history {
			if ch.item.Rev > opts.FromRev {
				if ev, ok := w.convert(ch); ok {
					w.initial = append(w.initial, ev)
				}
			}
		}
	}
	c.watchers[w] = struct{}{}
	return w, nil
}

func (c *Cache) bookmarkLocked(rev int64, initialEnd bool) *Item {
	obj := c.cfg.NewObject()
	if m, err := accessor(obj); err == nil {
		m.SetResourceVersion(formatRV(rev))
		if initialEnd {
			m.SetAnnotations(map[string]string{"k8s.io/initial-events-end": "true"})
		}
	}
	return &Item{Object: obj, Rev: rev}
}

func (c *Cache) bookmarkLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.BookmarkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		var bm *Item
		for w := range c.watchers {
			if !w.bookmarks {
				continue
			}
			if bm == nil {
				bm = c.bookmarkLocked(c.rev, false)
			}
			select {
			case w.ch <- Event{Type: watch.Bookmark, Item: bm}:
			default: // a full buffer already has newer news
			}
		}
		c.mu.Unlock()
	}
}

func (c *Cache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopping = true
	for w := range c.watchers {
		w.closeLocked()
	}
}

// Watcher receives a cache's changes. Its events arrive in revision order:
// first the initial ones (the current state, or the history after FromRev),
// then live changes.
type Watcher struct {
	cache     *Cache
	prefix    string
	pred      Predicate
	bookmarks bool
	initial   []Event // delivered first, by Next; owned by the reader
	ch        chan Event
	done      chan struct{} // closed when the watcher ends
	closed    bool          // guarded by cache.mu
	// Overflowed reports (after Next returns false) that the watcher was
	// closed because its reader fell behind.
	overflowed bool
}

// Next returns the next event. It returns false when the watcher was closed
// (stopped, fell too far behind, or the cache reloaded) or ctx ended.
func (w *Watcher) Next(ctx context.Context) (Event, bool) {
	if len(w.initial) > 0 {
		ev := w.initial[0]
		w.initial[0] = Event{}
		w.initial = w.initial[1:]
		return ev, true
	}
	select {
	case ev, ok := <-w.ch:
		return ev, ok
	case <-ctx.Done():
		return Event{}, false
	}
}

// Pending reports how many events are ready without blocking, so a writer
// can decide when to flush.
func (w *Watcher) Pending() int { return len(w.initial) + len(w.ch) }

// Stop ends the watcher. It is idempotent.
func (w *Watcher) Stop() {
	c := w.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	w.closeLocked()
}

// Overflowed reports whether the watcher was closed for falling behind.
func (w *Watcher) Overflowed() bool {
	w.cache.mu.RLock()
	defer w.cache.mu.RUnlock()
	return w.overflowed
}

func (w *Watcher) closeLocked() {
	if w.closed {
		return
	}
	w.closed = true
	delete(w.cache.watchers, w)
	close(w.ch)
	close(w.done)
}

func (w *Watcher) offerLocked(ch change) {
	if !strings.HasPrefix(ch.item.Key, w.prefix) {
		return
	}
	ev, ok := w.convert(ch)
	if !ok {
		return
	}
	select {
	case w.ch <- ev:
	default:
		w.overflowed = true
		w.cache.cfg.Logger.Info("closing a watcher that fell behind", "prefix", w.prefix, "buffer", cap(w.ch))
		w.closeLocked()
	}
}

// convert turns a change into what this watcher should see: an object that
// stops matching the predicate is Deleted for it, one that starts matching
// is Added.
func (w *Watcher) convert(ch change) (Event, bool) {
	if !strings.HasPrefix(ch.item.Key, w.prefix) {
		return Event{}, false
	}
	switch ch.typ {
	case watch.Added:
		return Event{Type: watch.Added, Item: ch.item}, w.pred.matches(ch.item)
	case watch.Deleted:
		return Event{Type: watch.Deleted, Item: ch.item}, w.pred.matches(ch.prev)
	}
	cur, old := w.pred.matches(ch.item), w.pred.matches(ch.prev)
	switch {
	case cur && old:
		return Event{Type: watch.Modified, Item: ch.item}, true
	case cur:
		return Event{Type: watch.Added, Item: ch.item}, true
	case old:
		// Upstream sends the previous content at the new revision.
		obj := ch.prev.Object.DeepCopyObject()
		setResourceVersion(obj, ch.item.Rev)
		return Event{Type: watch.Deleted, Item: &Item{Key: ch.item.Key, Object: obj, Labels: ch.prev.Labels, Fields: ch.prev.Fields, Rev: ch.item.Rev}}, true
	}
	return Event{}, false
}
