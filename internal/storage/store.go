package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// Store keeps objects in etcd under string keys. It knows nothing about
// kinds: the Codec does the encoding, the caller picks the keys. Every
// object read from the Store carries its etcd modification revision as
// metadata.resourceVersion; objects are written without one.
//
// Store is safe for concurrent use.
type Store struct {
	client  *clientv3.Client
	codec   Codec
	metrics *storeMetrics
}

// NewStore returns a Store on client. reg, when not nil, receives the etcd
// request latency histogram.
func NewStore(client *clientv3.Client, codec Codec, reg prometheus.Registerer) (*Store, error) {
	m, err := newStoreMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Store{client: client, codec: codec, metrics: m}, nil
}

// Client returns the etcd client the store uses.
func (s *Store) Client() *clientv3.Client { return s.client }

// Codec returns the store's codec.
func (s *Store) Codec() Codec { return s.codec }

func formatRV(rev int64) string { return strconv.FormatInt(rev, 10) }

// ParseResourceVersion parses a resourceVersion string; "" is 0.
func ParseResourceVersion(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid resource version %q", rv)
	}
	return n, nil
}

// encode encodes obj without its resourceVersion. obj must be the
// caller's own: its resourceVersion is cleared for the encoding, then put
// back.
func (s *Store) encode(obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	return s.codec.Encode(obj)
}

func (s *Store) decode(kv *mvccpb.KeyValue, rev int64) (runtime.Object, error) {
	obj, err := s.codec.Decode(kv.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kv.Key, err)
	}
	if err := setResourceVersion(obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

// Create stores obj at key if the key does not exist, and returns the stored
// object with its resourceVersion. It fails with ErrExists otherwise.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object) (runtime.Object, error) {
	data, err := s.encode(obj)
	if err != nil {
		return nil, err
	}
	defer s.metrics.observe("create", time.Now())
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, etcdError(key, err)
	}
	if !resp.Succeeded {
		return nil, &Error{Class: ErrExists, Key: key}
	}
	out := obj.DeepCopyObject()
	if err := setResourceVersion(out, resp.Header.Revision); err != nil {
		return nil, err
	}
	return out, nil
}

// Get reads the object at key, or fails with ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (runtime.Object, error) {
	defer s.metrics.observe("get", time.Now())
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, etcdError(key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, &Error{Class: ErrNotFound, Key: key}
	}
	return s.decode(resp.Kvs[0], resp.Kvs[0].ModRevision)
}

// UpdateFunc computes the next version of an object from the current one.
// cur is the caller's own copy. Returning an error aborts the update with
// that error.
type UpdateFunc func(cur runtime.Object) (runtime.Object, error)

// GuaranteedUpdate reads the object at key, applies update and writes the
// result if the object did not change in between, retrying with the fresh
// object when it did. hint, when not nil, is a recent copy of the object
// (from a cache) tried first to save a read; a stale hint only costs a
// retry. When update returns an object that encodes to the stored bytes,
// nothing is written and the current object is returned.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, hint runtime.Object, update UpdateFunc) (runtime.Object, error) {
	var (
		cur    runtime.Object
		curRev int64
		curRaw []byte
	)
	if hint != nil {
		if m, err := meta.Accessor(hint); err == nil {
			if rev, err := ParseResourceVersion(m.GetResourceVersion()); err == nil && rev > 0 {
				// The hint is shared (a cache object): work on a copy.
				own := hint.DeepCopyObject()
				if raw, err := s.encode(own); err == nil {
					cur, curRev, curRaw = own, rev, raw
				}
			}
		}
	}
	for attempt := 0; ; attempt++ {
		if cur == nil {
			start := time.Now()
			resp, err := s.client.Get(ctx, key)
			s.metrics.observe("get", start)
			if err != nil {
				return nil, etcdError(key, err)
			}
			if len(resp.Kvs) == 0 {
				return nil, &Error{Class: ErrNotFound, Key: key}
			}
			kv := resp.Kvs[0]
			if cur, err = s.decode(kv, kv.ModRevision); err != nil {
				return nil, err
			}
			curRev, curRaw = kv.ModRevision, kv.Value
		}
		next, err := update(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		data, err := s.encode(next)
		if err != nil {
			return nil, err
		}
		if curRaw != nil && bytes.Equal(data, curRaw) {
			return cur, nil
		}
		start := time.Now()
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", curRev)).
			Then(clientv3.OpPut(key, string(data))).
			Else(clientv3.OpGet(key)).
			Commit()
		s.metrics.observe("update", start)
		if err != nil {
			return nil, etcdError(key, err)
		}
		if resp.Succeeded {
			out := next
			if err := setResourceVersion(out, resp.Header.Revision); err != nil {
				return nil, err
			}
			return out, nil
		}
		// Lost the race (or the hint was stale): retry on what is there.
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return nil, &Error{Class: ErrNotFound, Key: key}
		}
		if cur, err = s.decode(kvs[0], kvs[0].ModRevision); err != nil {
			return nil, err
		}
		curRev, curRaw = kvs[0].ModRevision, kvs[0].Value
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Precondition checks the current object before a delete; an error aborts
// the delete with that error.
type Precondition func(cur runtime.Object) error

// Delete removes the object at key if check accepts it, retrying if the
// object changes in between. It returns the deleted object, whose
// resourceVersion is that of the deletion. It fails with ErrNotFound when
// there is nothing to delete.
func (s *Store) Delete(ctx context.Context, key string, check Precondition) (runtime.Object, error) {
	for {
		start := time.Now()
		resp, err := s.client.Get(ctx, key)
		s.metrics.observe("get", start)
		if err != nil {
			return nil, etcdError(key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, &Error{Class: ErrNotFound, Key: key}
		}
		kv := resp.Kvs[0]
		cur, err := s.decode(kv, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(cur); err != nil {
				return nil, err
			}
		}
		start = time.Now()
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).
			Commit()
		s.metrics.observe("delete", start)
		if err != nil {
			return nil, etcdError(key, err)
		}
		if txn.Succeeded {
			if err := setResourceVersion(cur, txn.Header.Revision); err != nil {
				return nil, err
			}
			return cur, nil
		}
	}
}

// ListOptions selects a page of objects under a key prefix straight from
// etcd.
type ListOptions struct {
	// Revision reads at that etcd revision; 0 reads the latest.
	Revision int64
	// StartKey begins the page (inclusive); "" begins at the prefix.
	StartKey string
	// Limit caps the number of objects that pass Filter; 0 means all.
	Limit int64
	// Filter, when set, keeps only the objects it accepts.
	Filter func(obj runtime.Object) bool
}

// ListResult is a page of objects.
type ListResult struct {
	Items []runtime.Object
	// Revision is the etcd revision the page was read at.
	Revision int64
	// NextKey is where the next page starts; "" when this is the last.
	NextKey string
	// Remaining estimates the objects after this page (exact when no
	// Filter was given), for metadata.remainingItemCount.
	Remaining int64
}

// List reads the objects under prefix (which should end in "/") in key
// order. With a Filter and a Limit it keeps reading until Limit objects
// passed or the prefix is exhausted, all at one revision.
func (s *Store) List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	start := prefix
	if opts.StartKey != "" {
		start = opts.StartKey
	}
	out := &ListResult{Revision: opts.Revision}
	batch := opts.Limit
	if opts.Filter != nil && batch > 0 && batch < 100 {
		batch = 100
	}
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end)}
		if batch > 0 {
			ops = append(ops, clientv3.WithLimit(batch))
		}
		if out.Revision > 0 {
			ops = append(ops, clientv3.WithRev(out.Revision))
		}
		t := time.Now()
		resp, err := s.client.Get(ctx, start, ops...)
		s.metrics.observe("list", t)
		if err != nil {
			return nil, etcdError(prefix, err)
		}
		if out.Revision == 0 {
			out.Revision = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			obj, err := s.decode(kv, kv.ModRevision)
			if err != nil {
				return nil, err
			}
			if opts.Filter != nil && !opts.Filter(obj) {
				continue
			}
			out.Items = append(out.Items, obj)
			if opts.Limit > 0 && int64(len(out.Items)) == opts.Limit {
				if i+1 < len(resp.Kvs) || resp.More {
					out.NextKey = string(kv.Key) + "\x00"
					out.Remaining = resp.Count - int64(i+1)
				}
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// CurrentRevision returns etcd's latest revision, with one cheap request.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	t := time.Now()
	resp, err := s.client.Get(ctx, "/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	s.metrics.observe("revision", t)
	if err != nil {
		return 0, etcdError("/", err)
	}
	return resp.Header.Revision, nil
}

// Count returns how many keys are under prefix.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, etcdError(prefix, err)
	}
	return resp.Count, nil
}

// Compact discards etcd's history before rev.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	_, err := s.client.Compact(ctx, rev)
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return etcdError("compact", err)
	}
	return nil
}

func etcdError(key string, err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return &Error{Class: ErrExpired, Key: key, Cause: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("etcd %s: %w", key, err)
}

type storeMetrics struct {
	latency *prometheus.HistogramVec
}

func newStoreMetrics(reg prometheus.Registerer) (*storeMetrics, error) {
	m := &storeMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcd_request_duration_seconds",
			Help:    "Etcd request latency in seconds for each operation.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"operation"}),
	}
	if reg != nil {
		if err := reg.Register(m.latency); err != nil {
			return nil, fmt.Errorf("register etcd metrics: %w", err)
		}
	}
	return m, nil
}

func (m *storeMetrics) observe(op string, start time.Time) {
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
