package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/pagestore"
)

// PageStoreCache lets the batch activities load into a node's page store.
type PageStoreCache struct {
	Store *pagestore.Store
}

var (
	_ activities.Cache   = PageStoreCache{}
	_ activities.Durable = PageStoreCache{}
)

// Load loads one file. A file whose size the listing did not know (< 0) is
// stat'ed by the page store first.
func (c PageStoreCache) Load(ctx context.Context, f activities.CacheFile, o activities.CacheLoadOptions) (activities.CacheLoadResult, error) {
	ref := pagestore.FileRef{URI: f.URI, Size: f.Size, Version: f.Version}
	if f.Size < 0 {
		ref.Version = ""
	}
	opts := pagestore.LoadOptions{MetadataOnly: o.MetadataOnly, SkipIfExists: o.SkipIfExists, FailIfEvicted: o.FailIfEvicted}
	if o.Limiter != nil {
		opts.Limiter = o.Limiter
	}
	res, err := c.Store.LoadFile(ctx, ref, opts, o.Progress)
	if errors.Is(err, pagestore.ErrTooLarge) || errors.Is(err, pagestore.ErrEvicted) {
		err = fmt.Errorf("%w: %w", activities.ErrCacheTooSmall, err)
	}
	if err != nil {
		return activities.CacheLoadResult{}, err
	}
	return activities.CacheLoadResult{
		Skipped:      res.Outcome == pagestore.Skipped || res.Outcome == pagestore.AlreadyCached,
		BytesLoaded:  res.BytesLoaded,
		BytesSkipped: res.BytesSkipped,
	}, nil
}

// WriteMark, Durable and SyncTo tell a batch when what its loads wrote to
// the page store's index survives a kill of the process (the index is
// synced periodically, not per write): a batch reports a file done only
// then.

// WriteMark returns a mark after every index write of the loads so far.
func (c PageStoreCache) WriteMark() uint64 { return c.Store.WriteMark() }

// Durable reports whether the index writes before mark are on disk.
func (c PageStoreCache) Durable(mark uint64) bool { return c.Store.Durable(mark) }

// SyncTo makes the index writes before mark durable.
func (c PageStoreCache) SyncTo(mark uint64) error { return c.Store.SyncTo(mark) }
