package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/storage"
)

// freshTimeout bounds how long a read waits for the watch cache to catch
// up with a resourceVersion, as upstream's 3 s.
const freshTimeout = 3 * time.Second

func (q *request) get() {
	rv := q.query().Get("resourceVersion")
	key := q.ep.key(q.info.Namespace, q.info.Name)
	var obj runtime.Object
	if rv == "" {
		// A quorum read, as upstream: one in-process round trip.
		o, err := q.s.store.Get(q.ctx, key)
		if err != nil {
			q.fail(err)
			return
		}
		obj = o
	} else {
		n, err := storage.ParseResourceVersion(rv)
		if err != nil {
			q.fail(apierrors.NewBadRequest(err.Error()))
			return
		}
		if n > 0 {
			if err := q.ep.cache.WaitForRevision(q.ctx, n, freshTimeout); err != nil {
				q.fail(err)
				return
			}
		}
		it, ok := q.ep.cache.Get(key)
		if !ok {
			q.fail(apierrors.NewNotFound(q.ep.gr, q.info.Name))
			return
		}
		obj = it.Object
	}
	q.respond(http.StatusOK, obj)
}

// listOptions are the parsed query parameters of a list or watch.
type listOptions struct {
	labels   labels.Selector
	fields   fields.Selector
	rv       string
	rvMatch  metav1.ResourceVersionMatch
	limit    int64
	cont     string
	pred     storage.Predicate
	selected bool // a selector was given
	// watch only
	sendInitialEvents *bool
	bookmarks         bool
	timeout           time.Duration
}

func (q *request) parseListOptions(isWatch bool) (*listOptions, error) {
	v := q.query()
	o := &listOptions{labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if s := v.Get("labelSelector"); s != "" {
		if o.labels, err = labels.Parse(s); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		o.selected = true
	}
	if s := v.Get("fieldSelector"); s != "" {
		if o.fields, err = fields.ParseSelector(s); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		for _, r := range o.fields.Requirements() {
			if !q.ep.fieldLabels.Has(r.Field) {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", r.Field))
			}
		}
		o.selected = true
	}
	if o.selected {
		ls, fs := o.labels, o.fields
		o.pred = func(it *storage.Item) bool {
			return ls.Matches(it.Labels) && fs.Matches(it.Fields)
		}
	}
	o.rv = v.Get("resourceVersion")
	if o.rv != "" {
		if _, err := storage.ParseResourceVersion(o.rv); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}
	o.rvMatch = metav1.ResourceVersionMatch(v.Get("resourceVersionMatch"))
	if s := v.Get("limit"); s != "" {
		if o.limit, err = strconv.ParseInt(s, 10, 64); err != nil || o.limit < 0 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q", s))
		}
	}
	o.cont = v.Get("continue")
	if s := v.Get("sendInitialEvents"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid sendInitialEvents %q", s))
		}
		o.sendInitialEvents = &b
	}
	o.bookmarks = v.Get("allowWatchBookmarks") == "true"
	if s := v.Get("timeoutSeconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", s))
		}
		o.timeout = time.Duration(n) * time.Second
	}
	return o, o.validate(isWatch, q.ep.gvk.Kind)
}

// validate applies upstream's ValidateListOptions rules.
func (o *listOptions) validate(isWatch bool, kind string) error {
	var errs field.ErrorList
	if o.cont != "" && o.rv != "" && o.rv != "0" {
		return apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
	}
	if o.sendInitialEvents != nil {
		if !isWatch {
			errs = append(errs, field.Forbidden(field.NewPath("sendInitialEvents"), "sendInitialEvents is forbidden for list"))
		}
		if o.rvMatch != metav1.ResourceVersionMatchNotOlderThan {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
		}
		if *o.sendInitialEvents && !o.bookmarks {
			errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true"))
		}
	} else if o.rvMatch != "" {
		if isWatch {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		} else if o.rv == "" {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden unless resourceVersion is provided"))
		}
	}
	switch o.rvMatch {
	case "", metav1.ResourceVersionMatchNotOlderThan:
	case metav1.ResourceVersionMatchExact:
		if o.rv == "0" {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
		}
		if o.cont != "" {
			errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden when continue is provided"))
		}
	default:
		errs = append(errs, field.NotSupported(field.NewPath("resourceVersionMatch"), o.rvMatch, []string{string(metav1.ResourceVersionMatchExact), string(metav1.ResourceVersionMatchNotOlderThan)}))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(metav1.SchemeGroupVersion.WithKind("ListOptions").GroupKind(), "", errs)
	}
	return nil
}

// continueToken is upstream's continue format: where the next page starts
// (relative to the list's prefix) and the revision of the first page.
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

func encodeContinue(rev int64, nextKey, prefix string) string {
	data, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", ResourceVersion: rev, StartKey: strings.TrimPrefix(nextKey, prefix)})
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(token, prefix string) (int64, string, error) {
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", fmt.Errorf("continue key is not valid: %v", err)
	}
	var c continueToken
	if err := json.Unmarshal(data, &c); err != nil || c.APIVersion != "meta.k8s.io/v1" || c.ResourceVersion <= 0 {
		return 0, "", errors.New("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	if strings.Contains(c.StartKey, "..") || strings.HasPrefix(c.StartKey, "/") {
		return 0, "", errors.New("continue key is not valid: invalid start key")
	}
	return c.ResourceVersion, prefix + c.StartKey, nil
}

func (q *request) list() {
	o, err := q.parseListOptions(false)
	if err != nil {
		q.fail(err)
		return
	}
	prefix := q.ep.listPrefix(q.info.Namespace)
	var (
		objs     []runtime.Object
		listMeta metav1.ListMeta
	)
	fromEtcd := o.cont != "" || o.rvMatch == metav1.ResourceVersionMatchExact || (o.limit > 0 && o.rv != "0")
	if !fromEtcd {
		items, rev, err := q.listFromCache(o, prefix)
		if errors.Is(err, storage.ErrTooLargeResourceVersion) && o.rv == "" {
			fromEtcd = true // the cache lags: read etcd instead
		} else if err != nil {
			q.fail(err)
			return
		} else {
			listMeta.ResourceVersion = strconv.FormatInt(rev, 10)
			if q.writeCachedList(items, listMeta) {
				return
			}
			objs = make([]runtime.Object, len(items))
			for i, it := range items {
				objs[i] = it.Object
			}
		}
	}
	if fromEtcd {
		lo := storage.ListOptions{Limit: o.limit}
		if o.pred != nil {
			ep := q.ep
			lo.Filter = func(obj runtime.Object) bool {
				l, f := ep.attrs(obj)
				return o.labels.Matches(l) && o.fields.Matches(f)
			}
		}
		if o.cont != "" {
			rev, start, err := decodeContinue(o.cont, prefix)
			if err != nil {
				q.fail(apierrors.NewBadRequest(err.Error()))
				return
			}
			lo.Revision, lo.StartKey = rev, start
		} else if o.rvMatch == metav1.ResourceVersionMatchExact {
			lo.Revision, _ = storage.ParseResourceVersion(o.rv)
		}
		res, err := q.s.store.List(q.ctx, prefix, lo)
		if err != nil {
			if errors.Is(err, storage.ErrExpired) {
				if o.cont != "" {
					q.fail(apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."))
				} else {
					q.fail(apierrors.NewResourceExpired("The resourceVersion for the provided list is too old."))
				}
				return
			}
			q.fail(err)
			return
		}
		objs = res.Items
		listMeta.ResourceVersion = strconv.FormatInt(res.Revision, 10)
		if res.NextKey != "" {
			listMeta.Continue = encodeContinue(res.Revision, res.NextKey, prefix)
			if o.pred == nil && res.Remaining > 0 {
				n := res.Remaining
				listMeta.RemainingItemCount = &n
			}
		}
	}
	q.respondList(objs, listMeta)
}

// listFromCache serves a list from the watch cache: rv "" after proving the
// cache current, rv "0" at once, rv N once the cache reached N.
func (q *request) listFromCache(o *listOptions, prefix string) ([]*storage.Item, int64, error) {
	switch o.rv {
	case "":
		if err := q.ep.cache.WaitFresh(q.ctx, freshTimeout); err != nil {
			return nil, 0, err
		}
	case "0":
	default:
		n, _ := storage.ParseResourceVersion(o.rv)
		if err := q.ep.cache.WaitForRevision(q.ctx, n, freshTimeout); err != nil {
			return nil, 0, err
		}
	}
	items, rev := q.ep.cache.List(prefix, o.pred)
	return items, rev, nil
}

// respondList writes a list of (possibly shared) objects in the negotiated
// format.
func (q *request) respondList(objs []runtime.Object, listMeta metav1.ListMeta) {
	switch q.out.as {
	case asTable:
		t, err := q.toTable(objs, listMeta, true)
		if err != nil {
			q.fail(err)
			return
		}
		q.write(http.StatusOK, t)
		return
	case asPartialMetadata, asPartialMetadataList:
		l := &metav1.PartialObjectMetadataList{
			TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/" + q.out.tableVersion, Kind: "PartialObjectMetadataList"},
			ListMeta: listMeta,
			Items:    make([]metav1.PartialObjectMetadata, len(objs)),
		}
		for i, obj := range objs {
			p := meta.AsPartialObjectMetadata(accessor(obj))
			l.Items[i] = *p
		}
		q.write(http.StatusOK, l)
		return
	}
	list := q.ep.res.NewList()
	if err := setListItems(list, objs); err != nil {
		q.fail(err)
		return
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		q.fail(err)
		return
	}
	lm.SetResourceVersion(listMeta.ResourceVersion)
	lm.SetContinue(listMeta.Continue)
	lm.SetRemainingItemCount(listMeta.RemainingItemCount)
	q.write(http.StatusOK, list)
}

// setListItems fills list.Items with shallow copies of objs, without their
// apiVersion and kind (list items carry none, as upstream).
func setListItems(list runtime.Object, objs []runtime.Object) error {
	items := reflect.ValueOf(list).Elem().FieldByName("Items")
	if !items.IsValid() {
		return fmt.Errorf("%T has no Items", list)
	}
	slice := reflect.MakeSlice(items.Type(), len(objs), len(objs))
	for i, obj := range objs {
		el := slice.Index(i)
		el.Set(reflect.ValueOf(obj).Elem())
		if tm := el.FieldByName("TypeMeta"); tm.IsValid() {
			tm.Set(reflect.Zero(tm.Type()))
		}
	}
	items.Set(slice)
	return nil
}

func (q *request) watch() {
	o, err := q.parseListOptions(true)
	if err != nil {
		q.fail(err)
		return
	}
	if q.out.mediaType == mediaYAML {
		q.fail(errNotAcceptable())
		return
	}
	timeout := o.timeout
	if timeout == 0 {
		timeout = 30*time.Minute + time.Duration(rand.Int64N(int64(30*time.Minute)))
	}
	ctx, cancel := context.WithTimeout(q.ctx, timeout)
	defer cancel()

	wo := storage.WatchOptions{
		Prefix:    q.ep.listPrefix(q.info.Namespace),
		Predicate: o.pred,
		Bookmarks: o.bookmarks,
	}
	var startErr error
	switch {
	case o.sendInitialEvents != nil && *o.sendInitialEvents, o.sendInitialEvents == nil && (o.rv == "" || o.rv == "0"):
		wo.Initial = true
		wo.InitialEndBookmark = o.sendInitialEvents != nil && o.bookmarks
		switch o.rv {
		case "":
			startErr = q.ep.cache.WaitFresh(ctx, freshTimeout)
		case "0":
		default:
			n, _ := storage.ParseResourceVersion(o.rv)
			startErr = q.ep.cache.WaitForRevision(ctx, n, freshTimeout)
		}
	default:
		// Resume after rv; with no rv, start now without initial state.
		if o.rv == "" || o.rv == "0" {
			wo.FromRev = q.ep.cache.Revision()
		} else {
			wo.FromRev, _ = storage.ParseResourceVersion(o.rv)
			startErr = q.ep.cache.WaitForRevision(ctx, wo.FromRev, freshTimeout)
		}
	}
	var w *storage.Watcher
	if startErr == nil {
		w, startErr = q.ep.cache.Watch(wo)
	}
	if startErr != nil && !errors.Is(startErr, storage.ErrExpired) {
		q.fail(startErr)
		return
	}

	q.s.metrics.watchers.WithLabelValues(q.ep.gr.Group, q.ep.gvr.Version, q.ep.gr.Resource).Inc()
	defer q.s.metrics.watchers.WithLabelValues(q.ep.gr.Group, q.ep.gvr.Version, q.ep.gr.Resource).Dec()

	enc := q.newEventEncoder()
	h := q.w.Header()
	h.Set("Content-Type", q.out.mediaType+";stream=watch")
	h.Set("Cache-Control", "no-cache, private")
	h.Set("X-Content-Type-Options", "nosniff")
	q.setWarnings()
	q.w.WriteHeader(http.StatusOK)
	flusher, _ := q.w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	if startErr != nil {
		// Upstream answers a watch from a compacted revision with 200 and
		// a single ERROR event carrying 410 Expired; client-go relists.
		st := toAPIError(startErr, q.ep.gr, "").ErrStatus
		st.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}
		enc.writeStatus(&st)
		return
	}
	defer w.Stop()
	first := true
	for {
		ev, ok := w.Next(ctx)
		if !ok {
			return
		}
		if err := enc.write(ev, first); err != nil {
			q.s.log.Debug("watch write failed", "resource", q.ep.gr.String(), "err", err)
			return
		}
		first = false
		if w.Pending() == 0 && flusher != nil {
			flusher.Flush()
		}
	}
}

// eventEncoder writes watch events in the negotiated framing: JSON objects
// one after another, or length-prefixed protobuf WatchEvents.
type eventEncoder struct {
	q     *request
	proto bool
	buf   []byte
}

func (q *request) newEventEncoder() *eventEncoder {
	return &eventEncoder{q: q, proto: q.out.mediaType == mediaProtobuf}
}

// objectBytes encodes an event's object for this watcher. Plain objects
// come from the item's shared encoding cache.
func (e *eventEncoder) objectBytes(ev storage.Event, first bool) ([]byte, error) {
	q := e.q
	c := q.s.codecs
	if q.out.as == asObject || ev.Type == watch.Bookmark {
		if e.proto {
			return ev.Item.Encoded("proto", func(obj runtime.Object) ([]byte, error) { return encodeBytes(c.proto, withKind(c, obj)) })
		}
		return ev.Item.Encoded("json", func(obj runtime.Object) ([]byte, error) { return jsonBytes(c, withKind(c, obj)) })
	}
	out, err := q.transform(ev.Item.Object, first)
	if err != nil {
		return nil, err
	}
	if e.proto {
		return encodeBytes(c.proto, out)
	}
	return jsonBytes(c, out)
}

func (e *eventEncoder) write(ev storage.Event, first bool) error {
	obj, err := e.objectBytes(ev, first)
	if err != nil {
		return err
	}
	return e.frame(string(ev.Type), obj)
}

func (e *eventEncoder) frame(typ string, obj []byte) error {
	e.buf = e.buf[:0]
	if e.proto {
		we := metav1.WatchEvent{Type: typ, Object: runtime.RawExtension{Raw: obj}}
		data, err := we.Marshal()
		if err != nil {
			return err
		}
		e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(data)))
		e.buf = append(e.buf, data...)
	} else {
		e.buf = append(e.buf, `{"type":`...)
		e.buf = strconv.AppendQuote(e.buf, typ)
		e.buf = append(e.buf, `,"object":`...)
		e.buf = append(e.buf, obj...)
		e.buf = append(e.buf, "}\n"...)
	}
	_, err := e.q.w.Write(e.buf)
	return err
}

func (e *eventEncoder) writeStatus(st *metav1.Status) {
	var data []byte
	var err error
	if e.proto {
		data, err = encodeBytes(e.q.s.codecs.proto, st)
	} else {
		data, err = jsonBytes(e.q.s.codecs, st)
	}
	if err == nil {
		e.frame(string(watch.Error), data)
	}
}

func encodeBytes(enc runtime.Encoder, obj runtime.Object) ([]byte, error) {
	var b strings.Builder
	if err := enc.Encode(obj, &b); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
