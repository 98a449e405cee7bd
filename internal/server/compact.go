package server

import (
	"context"
	"time"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/storage"
)

// compactLoop discards etcd history older than one interval, as upstream's
// API server does: every interval it compacts to the revision it saw one
// interval before, and tells the watch caches.
func (s *Server) compactLoop(ctx context.Context, store *storage.Store, api *apiserver.Server) {
	if s.cfg.CompactionInterval < 0 {
		return
	}
	t := time.NewTicker(s.cfg.CompactionInterval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := store.CurrentRevision(ctx)
		if err != nil {
			s.log.Warn("compaction: read revision", "err", err)
			continue
		}
		if last > 0 {
			if err := store.Compact(ctx, last); err != nil {
				s.log.Warn("compaction", "revision", last, "err", err)
			} else {
				api.Compacted(last)
				s.log.Debug("compacted etcd history", "revision", last)
			}
		}
		last = cur
	}
}
