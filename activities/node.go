package activities

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/time/rate"

	"github.com/ferryio/ferry/bandwidth"
	"github.com/ferryio/ferry/manifest"
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

// cancelGrace is how long a cancelled batch waits for the entries in
// flight to end before it returns without them.
const cancelGrace = time.Second

// LimiterBurst is the largest n a Cache passes to Limiter.WaitN at once.
const LimiterBurst = 4 << 20

// CacheLoadOptions control one file's load.
type CacheLoadOptions struct {
	MetadataOnly bool
	SkipIfExists bool
	// Limiter, when set, paces the bytes read from storage.
	Limiter Limiter
	// FailIfEvicted (a verify pass): a file this node had cached whole at
	// this version but of which pages were evicted since is a failure, not
	// loaded again (the job's working set does not fit the cache).
	FailIfEvicted bool
	// Progress, when set, is called with the bytes read from storage as
	// they arrive, so that the batch's heartbeat shows files in flight.
	Progress func(bytes int64)
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

// Durable is a Cache whose loads become durable only some time after they
// return: a file it loaded may be lost to a kill of the process until
// then. A batch reports an entry done (in a heartbeat, in its result) only
// once what its load wrote is durable, since a batch resumed after a kill
// skips what was reported, and a job must never count a file that is not
// in the cache. Marks are ordered: a later mark is durable only when the
// earlier ones are.
type Durable interface {
	// WriteMark returns a mark after every write of the loads that have
	// returned so far.
	WriteMark() uint64
	// Durable reports whether everything written before mark survives a
	// kill of the process.
	Durable(mark uint64) bool
	// SyncTo makes everything written before mark durable.
	SyncTo(mark uint64) error
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
	// Manifests is the durable store batches are read from and their
	// failures written to (the coordinator's store).
	Manifests *manifest.Store
	// FileAttempts is how many times a file with a retryable error is tried
	// within one batch. Default 3.
	FileAttempts int
	// FileParallelism is how many files of one batch are worked on at once.
	// Default DefaultFileParallelism.
	FileParallelism int
	// Pacer paces the batches of jobs with a bandwidth limit, all the
	// batches of a job together (package bandwidth). Nil: one pacer shared
	// by the process, whose jobs' budgets are kept in the process.
	Pacer *bandwidth.Pacer
	// SourceBytes, when set, is told the bytes copy and move batches read
	// from their sources (a metric).
	SourceBytes func(n int64)
}

// processPacer paces the jobs of Nodes without a Pacer: every node of the
// process shares it, so a job's limit holds across them.
var processPacer bandwidth.Pacer

// limiter returns what paces a batch's reads from its source: its job's
// limiter, shared by every batch of the job; for a batch of the first
// engine, which gives each batch a share of the job's limit, a limiter of
// its own; nil for an unlimited job.
func (n *Node) limiter(ctx context.Context, in workflows.BatchInput) Limiter {
	switch {
	case in.JobBandwidth > 0:
		p := n.Pacer
		if p == nil {
			p = &processPacer
		}
		workflowID := ""
		if activity.IsActivity(ctx) {
			workflowID = activity.GetInfo(ctx).WorkflowExecution.ID
		}
		return p.Limiter(in.JobID, workflowID, in.JobBandwidth, in.BandwidthVersion)
	case in.Bandwidth > 0:
		return rate.NewLimiter(rate.Limit(in.Bandwidth), LimiterBurst)
	}
	return nil
}

func (n *Node) countRead(b int64) {
	if n.SourceBytes != nil && b > 0 {
		n.SourceBytes(b)
	}
}

// DefaultFileParallelism lets a batch overlap the I/O of a few files: a
// large file no longer holds up the rest of its batch.
const DefaultFileParallelism = 4

// LoadBatch loads the batch's entries into this node's cache (see
// runInput for how entries arrive and outcomes leave).
func (n *Node) LoadBatch(ctx context.Context, in workflows.BatchInput) (workflows.BatchResult, error) {
	opts := CacheLoadOptions{MetadataOnly: in.MetadataOnly, SkipIfExists: in.SkipIfExists, FailIfEvicted: in.Verify, Limiter: n.limiter(ctx, in)}
	return n.runInput(ctx, in, func(ctx context.Context, e workflows.FileEntry) (fileOutcome, error) {
		if err := unreadError(e); err != nil {
			return fileOutcome{}, err
		}
		if e.Irregular != "" {
			return skipIrregular(ctx, e.URI, e.Irregular), nil
		}
		f := CacheFile{URI: e.URI, Size: e.Size, Version: e.Version}
		opts := opts
		opts.Progress = readProgress(ctx)
		res, err := withRetries(ctx, n.FileAttempts, func() (CacheLoadResult, error) {
			res, err := n.Cache.Load(ctx, f, opts)
			if err != nil {
				// A retried attempt loads the file as it is then: its size
				// and version are asked again, so that a file rewritten
				// since its listing is loaded at its new version (and
				// checked unchanged while it is read) instead of failing
				// against the listed one on every attempt.
				f.Size, f.Version = -1, ""
			}
			return res, err
		})
		if err == nil {
			err = n.replicate(ctx, f, in.Replicas, opts)
		}
		if res.Skipped {
			return fileOutcome{skipped: true, bytes: res.BytesSkipped, reason: SkipCached}, err
		}
		return fileOutcome{bytes: res.BytesLoaded}, err
	})
}

// runInput reads a batch's entries (from the manifest store by reference,
// or inline from a v1 workflow), processes them with do, and reports: with
// a reference, permanent failures and the entries to retry are written to
// the manifest store under the batch's key and the result carries counts
// and the first failures only. A batch cancelled (its node left the ring)
// returns its progress as the cancellation's details; one whose failures
// cannot be written returns them, with its progress, in its error, so the
// workflow records them from the coordinator. The outcomes wait for
// n.durability(in) before they are reported (see runBatch).
func (n *Node) runInput(ctx context.Context, in workflows.BatchInput, do func(context.Context, workflows.FileEntry) (fileOutcome, error)) (workflows.BatchResult, error) {
	entries := in.Entries
	if in.Ref != nil {
		if n.Manifests == nil {
			return workflows.BatchResult{}, errNoManifests
		}
		var err error
		entries, err = n.Manifests.ReadEntries(ctx, in.JobID, in.Ref.Src.Kind, in.Ref.Src.Key, in.Ref.Start, in.Ref.Count)
		if err != nil {
			return workflows.BatchResult{}, toTemporal(err)
		}
	}
	p, err := runBatch(withReadCounter(ctx, new(atomic.Int64)), entries, n.parallelism(), n.durability(in), do)
	if err != nil {
		if ctx.Err() != nil {
			return p.Result, temporal.NewCanceledError(p)
		}
		return p.Result, err
	}
	if in.Ref == nil {
		return p.Result, nil
	}
	rec, err := recordFailures(ctx, n.Manifests, in.JobID, in.Ref.Key, entries, p.Result.Failures, in.LastAttempt, in.Verify)
	if err != nil {
		return workflows.BatchResult{}, temporal.NewApplicationErrorWithCause("record the batch's failures: "+err.Error(), workflows.ErrTypeUnavailable, err, p)
	}
	res := p.Result
	res.Failed, res.Retry, res.Failures = rec.Failed, rec.Retry, rec.Failures
	return res, nil
}

// durability is what a batch's outcomes wait for before they are
// reported: for a load, the cache's durability when it has one (its loads
// become durable some time after they return); nothing for a copy or a
// move, whose transfer returns once the destination is committed in its
// storage system (a local file written to the kernel and renamed), which a
// kill of this process does not undo.
func (n *Node) durability(in workflows.BatchInput) Durable {
	if in.Type == workflows.JobCopy || in.Type == workflows.JobMove {
		return nil
	}
	d, _ := n.Cache.(Durable)
	return d
}

func (n *Node) parallelism() int {
	if n.FileParallelism > 0 {
		return n.FileParallelism
	}
	return DefaultFileParallelism
}

// fileOutcome is what one entry of a batch came to, when it did not fail.
type fileOutcome struct {
	skipped bool
	bytes   int64
	// reason says why a skipped entry was skipped; irregular marks an
	// entry that is not a regular file, listed by path in the result.
	reason    string
	irregular bool
}

// runBatch processes entries with do, up to parallel at a time, and folds
// the outcomes. Its heartbeat reports the longest finished prefix of the
// entries with their outcomes, so a retried attempt resumes exactly after it
// (redoing at most the entries that were in flight). It heartbeats when that
// prefix grows and on a ticker, so that one large or slow file does not look
// like a dead node. An entry interrupted by cancellation is not an outcome:
// it stays outside the prefix, to be done again.
//
// With dur, a prefix is reported only once what its entries wrote is
// durable (Durable): the heartbeat carries the prefix as it stood at the
// latest mark dur says is durable, which lags the finished prefix by about
// the cache's sync interval. A prefix still waiting at the next tick after
// one whole heartbeat interval is synced by the ticker (at most one sync per
// interval), and the batch syncs once before it returns its result. A kill
// of the process then loses nothing the batch reported; the resumed attempt
// redoes the entries after the reported prefix and finds those that were
// durable already cached.
func runBatch(ctx context.Context, entries []workflows.FileEntry, parallel int, dur Durable, do func(context.Context, workflows.FileEntry) (fileOutcome, error)) (workflows.BatchProgress, error) {
	var p workflows.BatchProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			// Starting over redoes finished files; it never skips one.
			activity.GetLogger(ctx).Warn("heartbeat details unreadable; the batch starts over", "error", err)
			p = workflows.BatchProgress{}
		}
	}
	if parallel < 1 {
		parallel = 1
	}
	type slot struct {
		out  fileOutcome
		err  error
		done bool
	}
	slots := make([]slot, len(entries))
	var mu sync.Mutex
	// Bytes in flight: what the entries read beyond the reported prefix's
	// bytes of this attempt, within the sizes of the entries after it.
	read := readCounter(ctx)
	startBytes := p.Result.BytesDone
	var remaining int64
	for _, e := range entries[min(max(p.Done, 0), len(entries)):] {
		remaining += max(e.Size, 0)
	}
	// current is the finished prefix (p) as it stands, with the size of
	// the entries after it.
	current := func() finishedPrefix {
		s := p
		s.Result.Failures = append([]workflows.Failure(nil), p.Result.Failures...)
		s.Result.SkipReasons = append([]workflows.SkipCount(nil), p.Result.SkipReasons...)
		s.Result.SkippedEntries = append([]workflows.SkippedEntry(nil), p.Result.SkippedEntries...)
		return finishedPrefix{p: s, remaining: remaining}
	}
	// reported is what heartbeats carry; waiting, with dur, the latest
	// finished prefix not yet known durable. Both are guarded by mu.
	reported := current()
	var waiting *finishedPrefix
	// settle moves reported on, to the finished prefix (without dur) or to
	// the waiting one once durable, and reports whether it moved.
	settle := func() bool {
		if dur == nil {
			reported = current()
			return true
		}
		moved := false
		if waiting != nil && dur.Durable(waiting.mark) {
			reported, waiting, moved = *waiting, nil, true
		}
		if waiting == nil && p.Done > reported.p.Done {
			w := current()
			w.mark = dur.WriteMark() // after the writes of every entry in p
			waiting = &w
		}
		return moved
	}
	details := func(r finishedPrefix) workflows.BatchProgress {
		s := r.p
		if read != nil {
			s.BytesInFlight = inFlight(read.Load(), r.p.Result.BytesDone-startBytes, r.remaining)
		}
		return s
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		var seen *finishedPrefix // waiting at the previous tick
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			settle()
			w := waiting
			mu.Unlock()
			if w != nil && w == seen {
				if err := dur.SyncTo(w.mark); err != nil {
					activity.GetLogger(ctx).Warn("the cache could not make the batch's loads durable; their progress is not reported yet", "error", err)
				}
				mu.Lock()
				settle()
				w = waiting
				mu.Unlock()
			}
			seen = w
			mu.Lock()
			s := details(reported)
			mu.Unlock()
			activity.RecordHeartbeat(ctx, s)
		}
	}()
	next := p.Done
	// abandoned: the batch returned while an entry was still in do (see
	// below); that entry's outcome comes too late to count.
	abandoned := false
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(entries) || ctx.Err() != nil {
					return
				}
				out, err := do(ctx, entries[i])
				if err != nil && ctx.Err() != nil {
					return // cancelled, not failed
				}
				mu.Lock()
				if abandoned {
					mu.Unlock()
					return
				}
				slots[i] = slot{out: out, err: err, done: true}
				for p.Done < len(entries) && slots[p.Done].done {
					sl := slots[p.Done]
					switch {
					case sl.err != nil:
						p.Result.Failures = append(p.Result.Failures, failure(entries[p.Done].URI, sl.err))
					case sl.out.skipped:
						p.Result.Skipped++
						p.Result.BytesSkipped += sl.out.bytes
						p.Result.SkipReasons = workflows.AddSkips(p.Result.SkipReasons, []workflows.SkipCount{{Reason: sl.out.reason, Count: 1}})
						if sl.out.irregular && len(p.Result.SkippedEntries) < workflows.MaxResultSkipped {
							p.Result.SkippedEntries = append(p.Result.SkippedEntries, workflows.SkippedEntry{Path: entries[p.Done].URI, Reason: sl.out.reason})
						}
					default:
						p.Result.Succeeded++
						p.Result.BytesDone += sl.out.bytes
					}
					remaining -= max(entries[p.Done].Size, 0)
					p.Done++
				}
				moved := settle()
				s := details(reported)
				mu.Unlock()
				if moved {
					activity.RecordHeartbeat(ctx, s)
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		// Cancelled (the job stops, the node left): an entry stuck in a
		// read that ignores cancellation (a hung mount, a store that never
		// answers) must not hold the batch. Entries that are just finishing
		// get a moment to count; then the batch returns its finished prefix
		// and a stuck entry, outside it, is done again on resume.
		t := time.NewTimer(cancelGrace)
		select {
		case <-finished:
		case <-t.C:
		}
		t.Stop()
	}
	mu.Lock()
	abandoned = true
	final := current()
	unsynced := dur != nil && final.p.Done > reported.p.Done
	mu.Unlock()
	// What the batch returns (its result, or its progress when cancelled)
	// is reported too: durable first.
	if unsynced {
		if err := dur.SyncTo(dur.WriteMark()); err != nil {
			mu.Lock()
			s := details(reported)
			mu.Unlock()
			return s, fmt.Errorf("make the batch's loads durable: %w", err)
		}
	}
	return details(final), ctx.Err()
}

// finishedPrefix is a finished prefix of a batch's entries: its progress,
// the size of the entries after it, and with a Durable cache the mark taken
// once it had finished.
type finishedPrefix struct {
	p         workflows.BatchProgress
	remaining int64
	mark      uint64
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
