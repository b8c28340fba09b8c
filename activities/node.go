package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"golang.org/x/time/rate"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// CacheFile is a file to load, as the listing saw it. Size < 0 means unknown.
type CacheFile struct {
	URI     string
	Size    int64
	Version string
}

// Limiter paces bytes; WaitN is called with at most LimiterBurst bytes.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// heartbeatEvery is how often a batch heartbeats while a file is loading.
const heartbeatEvery = 2 * time.Second

// LimiterBurst is the largest n a Cache passes to Limiter.WaitN at once.
const LimiterBurst = 4 << 20

// CacheLoadOptions control one file's load.
type CacheLoadOptions struct {
	MetadataOnly bool
	SkipIfExists bool
	// Limiter, when set, paces the bytes read from storage.
	Limiter Limiter
}

// CacheLoadResult is what loading one file did.
type CacheLoadResult struct {
	// Skipped: every page was already cached for the current version.
	Skipped      bool
	BytesLoaded  int64
	BytesSkipped int64
}

// Cache is the part of a cache node that batch activities use.
type Cache interface {
	// Load brings the file into the node's cache (or only its metadata).
	// Errors wrap the storage sentinels.
	Load(ctx context.Context, f CacheFile, opts CacheLoadOptions) (CacheLoadResult, error)
}

// Replicator makes further copies of a loaded file on the other nodes that
// own it, for jobs with replicas > 1.
type Replicator interface {
	Replicate(ctx context.Context, f CacheFile, replicas int, opts CacheLoadOptions) error
}

// Node holds the dependencies of a cache node's activities.
type Node struct {
	Cache      Cache
	Replicator Replicator
	// Resolver reaches the storage systems, for copy and move.
	Resolver *storage.Resolver
	// FileAttempts is how many times a file with a retryable error is tried
	// within one batch. Default 3.
	FileAttempts int
}

// LoadBatch loads in.Entries into this node's cache, one by one (see
// runBatch for heartbeats and resumption).
func (n *Node) LoadBatch(ctx context.Context, in workflows.BatchInput) (workflows.BatchResult, error) {
	opts := CacheLoadOptions{MetadataOnly: in.MetadataOnly, SkipIfExists: in.SkipIfExists}
	if in.Bandwidth > 0 {
		opts.Limiter = rate.NewLimiter(rate.Limit(in.Bandwidth), LimiterBurst)
	}
	return runBatch(ctx, in.Entries, func(ctx context.Context, e workflows.FileEntry) (fileOutcome, error) {
		f := CacheFile{URI: e.URI, Size: e.Size, Version: e.Version}
		res, err := withRetries(ctx, n.FileAttempts, func() (CacheLoadResult, error) { return n.Cache.Load(ctx, f, opts) })
		if err == nil {
			err = n.replicate(ctx, f, in.Replicas, opts)
		}
		if res.Skipped {
			return fileOutcome{skipped: true, bytes: res.BytesSkipped}, err
		}
		return fileOutcome{bytes: res.BytesLoaded}, err
	})
}

// fileOutcome is what one entry of a batch came to, when it did not fail.
type fileOutcome struct {
	skipped bool
	bytes   int64
}

// runBatch processes entries in order with do and folds the outcomes. It
// heartbeats after each entry and on a ticker (one large or slow file must
// not look like a dead node), and a retried attempt resumes after the
// entries its last heartbeat reported done.
func runBatch(ctx context.Context, entries []workflows.FileEntry, do func(context.Context, workflows.FileEntry) (fileOutcome, error)) (workflows.BatchResult, error) {
	var p workflows.BatchProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &p)
	}
	var mu sync.Mutex
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				snapshot := p
				snapshot.Result.Failures = append([]workflows.Failure(nil), p.Result.Failures...)
				mu.Unlock()
				activity.RecordHeartbeat(ctx, snapshot)
			}
		}
	}()
	for p.Done < len(entries) {
		if err := ctx.Err(); err != nil {
			return p.Result, err
		}
		e := entries[p.Done]
		out, err := do(ctx, e)
		mu.Lock()
		switch {
		case err != nil:
			p.Result.Failures = append(p.Result.Failures, failure(e.URI, err))
		case out.skipped:
			p.Result.Skipped++
			p.Result.BytesSkipped += out.bytes
		default:
			p.Result.Succeeded++
			p.Result.BytesDone += out.bytes
		}
		p.Done++
		mu.Unlock()
		activity.RecordHeartbeat(ctx, p)
	}
	return p.Result, nil
}

// withRetries calls fn until it succeeds, fails for good, or has been tried
// attempts times (default 3), backing off between tries.
func withRetries[T any](ctx context.Context, attempts int, fn func() (T, error)) (T, error) {
	if attempts <= 0 {
		attempts = 3
	}
	backoff := 200 * time.Millisecond
	var res T
	var err error
	for i := 0; i < attempts; i++ {
		res, err = fn()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return res, err
		}
		if i+1 < attempts {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 4
		}
	}
	return res, err
}

// replicate makes the further copies a job with replicas > 1 asks for.
func (n *Node) replicate(ctx context.Context, f CacheFile, replicas int, opts CacheLoadOptions) error {
	if replicas <= 1 {
		return nil
	}
	if n.Replicator == nil {
		return fmt.Errorf("replicas=%d asked, but this node cannot reach its peers", replicas)
	}
	return n.Replicator.Replicate(ctx, f, replicas, opts)
}
