package storage

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// reservationPrefix is where allocators keep their claims.
const reservationPrefix = "/registry/ranges/"

// Reservations are named claims in etcd (Service cluster IPs, node ports):
// a claim is a key that exists, held by the owner written in it, so every
// API server sharing the etcd sees the same allocations.
type Reservations struct {
	client *clientv3.Client
}

// NewReservations returns the claims kept in s's etcd.
func NewReservations(s *Store) *Reservations { return &Reservations{client: s.client} }

// Reserve claims key for owner. It returns false when someone holds it
// already (true if owner itself does: reserving is idempotent).
func (r *Reservations) Reserve(ctx context.Context, key, owner string) (bool, error) {
	k := reservationPrefix + key
	resp, err := r.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, owner)).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return false, etcdError(k, err)
	}
	if resp.Succeeded {
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	return len(kvs) > 0 && string(kvs[0].Value) == owner, nil
}

// Release drops owner's claim on key; it does nothing when the key is free
// or held by someone else.
func (r *Reservations) Release(ctx context.Context, key, owner string) error {
	k := reservationPrefix + key
	_, err := r.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(k), "=", owner)).
		Then(clientv3.OpDelete(k)).
		Commit()
	if err != nil {
		return etcdError(k, err)
	}
	return nil
}

// List returns the claims under prefix as key (relative, as passed to
// Reserve) to owner. The caller owns the map.
func (r *Reservations) List(ctx context.Context, prefix string) (map[string]string, error) {
	p := reservationPrefix + prefix
	resp, err := r.client.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, etcdError(p, err)
	}
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), reservationPrefix)] = string(kv.Value)
	}
	return out, nil
}
