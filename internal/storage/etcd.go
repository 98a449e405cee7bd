package storage

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig configures an etcd member that runs inside the skiff
// process.
type EmbeddedConfig struct {
	// Dir holds etcd's data (member/ wal and snap). Required.
	Dir string
	// Logger receives etcd's warnings and errors. Nil discards them.
	Logger *slog.Logger
	// QuotaBackendBytes caps the backend size; 0 means etcd's default
	// (2 GiB).
	QuotaBackendBytes int64
}

func (c *EmbeddedConfig) validate() error {
	if c.Dir == "" {
		return errors.New("embedded etcd: Dir is required")
	}
	return nil
}

// Embedded is a running single-member etcd. It listens only on unix sockets
// inside its data dir; skiff talks to it through an in-process client that
// bypasses the network entirely.
type Embedded struct {
	etcd   *embed.Etcd
	client *clientv3.Client
	// closing quiets the errors etcd logs about its own listeners while
	// Close stops them.
	closing *atomic.Bool
}

// StartEmbedded starts (or restarts, keeping its data) an etcd member in
// cfg.Dir and waits until it serves. Close stops it.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "skiff"
	ec.Dir = filepath.Join(cfg.Dir, "data")
	// Unix sockets: no TCP port to collide with, nothing reachable from
	// outside the host. Stale sockets from a killed process are removed
	// first or the listen fails.
	peer := url.URL{Scheme: "unix", Path: filepath.Join(cfg.Dir, "peer.sock")}
	client := url.URL{Scheme: "unix", Path: filepath.Join(cfg.Dir, "client.sock")}
	for _, u := range []url.URL{peer, client} {
		os.Remove(u.Path)
	}
	ec.ListenPeerUrls = []url.URL{peer}
	ec.AdvertisePeerUrls = []url.URL{peer}
	ec.ListenClientUrls = []url.URL{client}
	ec.AdvertiseClientUrls = []url.URL{client}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	// A single member elects itself after one election timeout; short
	// ticks make that (and so server start) take tens of milliseconds.
	ec.TickMs = 20
	ec.ElectionMs = 200
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	// skiff compacts the history itself (see Compactor).
	ec.AutoCompactionRetention = "0"
	ec.Logger = "zap"
	closing := &atomic.Bool{}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(slogCore{logger: cfg.Logger, closing: closing}))

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", ctx.Err())
	}
	return &Embedded{etcd: e, client: v3client.New(e.Server), closing: closing}, nil
}

// Client returns an in-process client for the member. The caller must not
// close it; Close does.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// Close stops the member and waits for it to flush.
func (e *Embedded) Close() error {
	e.closing.Store(true)
	e.client.Close()
	e.etcd.Close()
	return nil
}

// ExternalConfig names an etcd cluster skiff does not run.
type ExternalConfig struct {
	Endpoints []string
	// TLS is used when the endpoints are https; nil means plain.
	TLS *tls.Config
}

// NewExternalClient connects to an external etcd cluster and checks that it
// answers.
func NewExternalClient(ctx context.Context, cfg ExternalConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("external etcd: no endpoints")
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("external etcd %v: %w", cfg.Endpoints, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Get(sctx, "health-check", clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("external etcd %v: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// slogCore passes etcd's zap records to slog: warnings at debug level (an
// embedded single member warns about its own harmless setup), errors as
// errors.
type slogCore struct {
	logger  *slog.Logger
	closing *atomic.Bool
	fields  []zapcore.Field
}

func (c slogCore) Enabled(l zapcore.Level) bool { return c.logger != nil && l >= zapcore.WarnLevel }

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{logger: c.logger, closing: c.closing, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, k, v)
	}
	level := slog.LevelDebug
	if e.Level >= zapcore.ErrorLevel && !c.closing.Load() && !harmlessEtcdErrors[e.Message] {
		level = slog.LevelError
	}
	c.logger.Log(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c slogCore) Sync() error { return nil }

// harmlessEtcdErrors are errors etcd logs in normal operation of an
// embedded member; they go to debug, not to a user's screen.
var harmlessEtcdErrors = map[string]bool{
	// A new member's storage-version monitor runs before the member has
	// a term; it tries again and succeeds.
	"failed to update storage version": true,
}
