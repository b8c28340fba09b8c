package activities

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// NodeRef is a live cache node as the planner sees it.
type NodeRef struct {
	ID        string
	TaskQueue string
	// Addr is the node's gRPC address (host:port), empty when unknown.
	Addr string
}

// Members are the nodes of one view of the ring.
type Members struct {
	Nodes []NodeRef
	// AsOf is when the view was current (zero when not known): a view
	// with an earlier AsOf than one already seen is stale.
	AsOf time.Time
}

// asOf is AsOf as the workflows carry it: Unix nanoseconds, 0 when not
// known.
func (m Members) asOf() int64 {
	if m.AsOf.IsZero() {
		return 0
	}
	return m.AsOf.UnixNano()
}

// Placement answers which live cache node owns a URI, on the same ring the
// readers use.
type Placement interface {
	// Primaries returns the nodes currently on the ring and, for each of
	// uris, the ID of the node that owns it first, read from one view of
	// the ring.
	Primaries(ctx context.Context, uris []string) (Members, []string, error)
	// LiveNodes returns the nodes currently on the ring.
	LiveNodes(ctx context.Context) (Members, error)
}

// CacheIndex tells which files a cache node already holds complete, at
// exactly the size and version their listing gave, without loading them.
type CacheIndex interface {
	// Cached reports, in the order of files, whether node holds each one
	// complete at its Size and Version. An error means the node could not
	// answer: every file is then taken as not cached.
	Cached(ctx context.Context, node NodeRef, files []CacheFile) ([]bool, error)
}

// ErrNotAsked is what a CacheIndex returns for a node it did not ask (it
// failed to answer shortly before): not worth logging again.
var ErrNotAsked = errors.New("not asked")

// Coordinator holds the dependencies of the coordinator's activities.
type Coordinator struct {
	Resolver  *storage.Resolver
	Placement Placement
	// Manifests is the durable store of the jobs' file lists; every
	// coordinator and cache node must reach the same one.
	Manifests *manifest.Store
	// Cached, when set, is asked which files of a listed page their owner
	// already holds, for the loads that ask for it (ListPageInput.
	// CheckCached): those are counted skipped and never become batches.
	// Nil: every file goes to its node, which skips it there.
	Cached CacheIndex
}

// Partition splits a job's source into listing partitions.
func (c *Coordinator) Partition(ctx context.Context, in workflows.PartitionInput) (workflows.PartitionResult, error) {
	l := &lister{resolver: c.Resolver}
	parts, err := l.partition(ctx, in)
	if err != nil {
		src := in.Path
		if in.IndexFile != "" {
			src = in.IndexFile
		}
		return workflows.PartitionResult{}, toTemporal(fmt.Errorf("list %s: %w", src, err))
	}
	return workflows.PartitionResult{Partitions: parts}, nil
}

// ListPage lists the next page of one partition, writes it to the manifest
// store grouped by owning node, and returns the grouping. A page listed
// while no node is live is written as listed and returned unplanned: the
// workflow plans it when the ring is back.
//
// A retry lists nothing an earlier attempt listed: a complete page's
// result is recorded beside its manifest and returned again as it was, and
// a page is listed in pieces, each stored before the next is listed, so
// that an attempt cut in the middle of its page is continued after its
// last piece (see listPartition). The read-back passes (retry, verify)
// list nothing: they read manifests again, from the page's cursor, unless
// the page's result was recorded.
func (c *Coordinator) ListPage(ctx context.Context, in workflows.ListPageInput) (workflows.ListPageResult, error) {
	if in.CountOnly {
		return c.countPage(ctx, in)
	}
	if c.Manifests == nil {
		return workflows.ListPageResult{}, errNoManifests
	}
	name := manifest.PageName(in.Out)
	fp, err := manifest.Fingerprint(in)
	if err != nil {
		return workflows.ListPageResult{}, toTemporal(err)
	}
	if res, ok, err := c.Manifests.ReadPageResult(ctx, in.JobID, name, fp); err != nil || ok {
		if ok {
			activity.GetLogger(ctx).Info("page listed by an earlier attempt: its recorded result is returned", "page", name)
		}
		return res, toTemporal(err)
	}
	var p page
	var part workflows.Partition
	var log *pieceLog
	switch in.Partition.Kind {
	case workflows.PartitionPages, workflows.PartitionRetry:
		p, part, err = c.readBack(ctx, in)
	default:
		if in.Partition.Kind == workflows.PartitionIndex {
			in.Path = in.IndexFile
		}
		log = &pieceLog{m: c.Manifests, jobID: in.JobID, page: name, fingerprint: fp, attempt: int(activity.GetInfo(ctx).Attempt)}
		p, part, err = (&lister{resolver: c.Resolver}).listPartition(ctx, in, log)
	}
	if err != nil {
		return workflows.ListPageResult{}, toTemporal(fmt.Errorf("list %s: %w", in.Path, err))
	}
	part.Dirs = nil // the workflow has them
	res := workflows.ListPageResult{Partition: part, Qualified: int64(p.count), QualifiedSize: p.size}
	if log != nil {
		res.Fetched = log.fetched
	}
	if len(p.entries) > 0 {
		if res.Plan, err = c.planAndWrite(ctx, in.JobID, in.Type, in.Out, p.entries, true, in.CheckCached); err != nil {
			return workflows.ListPageResult{}, err
		}
	}
	if err := c.Manifests.WritePageResult(ctx, in.JobID, name, fp, res); err != nil {
		return workflows.ListPageResult{}, toTemporal(err)
	}
	if log != nil {
		// The result stands for the pieces' entries now; what each attempt
		// listed stays on record until the job ends.
		if err := c.Manifests.StripPieces(ctx, in.JobID, name, fp, log.pieces); err != nil {
			activity.GetLogger(ctx).Warn("the pieces of a listed page keep their entries until the job ends", "page", name, "error", err)
		}
	}
	return res, nil
}

// countPage counts the next page of a partition for a dry run. It writes
// nothing (a dry run changes nothing, and has no manifests to remove at its
// end): its progress, the partition's position and the counts so far, is
// heartbeated after each piece, and a retry continues from there.
func (c *Coordinator) countPage(ctx context.Context, in workflows.ListPageInput) (workflows.ListPageResult, error) {
	if in.Partition.Kind == workflows.PartitionIndex {
		in.Path = in.IndexFile
	}
	p, part, err := (&lister{resolver: c.Resolver, countOnly: true}).listPartition(ctx, in, nil)
	if err != nil {
		return workflows.ListPageResult{}, toTemporal(fmt.Errorf("list %s: %w", in.Path, err))
	}
	part.Dirs = nil // the workflow has them
	return workflows.ListPageResult{Partition: part, Qualified: int64(p.count), QualifiedSize: p.size, Unread: p.unread, UnreadFailures: p.unreadFailures}, nil
}

// readBack reads the next manifests of a retry or verify pass: the cursor
// is the key of the last object read. A verify pass leaves out the files
// the job already failed: they were counted and reported once, and are not
// the job's to check (a file the main pass failed as evicted would
// otherwise be found evicted again, and one it could not read be read
// again).
func (c *Coordinator) readBack(ctx context.Context, in workflows.ListPageInput) (page, workflows.Partition, error) {
	part := in.Partition
	kind := workflows.ManifestRetry
	var failed map[string]struct{}
	if part.Kind == workflows.PartitionPages {
		kind = workflows.ManifestPages
		var err error
		if failed, err = c.failedFiles(ctx, in.JobID); err != nil {
			return page{}, part, err
		}
	}
	var p page
	for len(p.entries) < max(in.Limit, 1) {
		keys, err := c.Manifests.Keys(ctx, in.JobID, kind, part.Cursor, 1)
		if err != nil {
			return page{}, part, err
		}
		if len(keys) == 0 {
			part.Done = true
			break
		}
		es, err := c.Manifests.ReadEntries(ctx, in.JobID, kind, keys[0], 0, -1)
		if err != nil {
			return page{}, part, err
		}
		for _, e := range withoutFailed(es, failed) {
			p.add(e, false)
		}
		part.Cursor = keys[0]
		activity.RecordHeartbeat(ctx, part.Cursor)
	}
	return p, part, nil
}

// failedFiles is the set of files the job has failed so far, from its
// failures objects.
func (c *Coordinator) failedFiles(ctx context.Context, jobID string) (map[string]struct{}, error) {
	keys, err := c.Manifests.Keys(ctx, jobID, workflows.ManifestFailures, "", 0)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	set := make(map[string]struct{})
	for _, k := range keys {
		fs, err := c.Manifests.ReadFailures(ctx, jobID, k)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			set[f.Path] = struct{}{}
		}
	}
	return set, nil
}

// withoutFailed drops from entries, in place, the files in failed.
func withoutFailed(entries []workflows.FileEntry, failed map[string]struct{}) []workflows.FileEntry {
	if len(failed) == 0 {
		return entries
	}
	kept := entries[:0]
	for _, e := range entries {
		if _, ok := failed[e.URI]; !ok {
			kept = append(kept, e)
		}
	}
	return kept
}

// PlanRange groups a range of a manifest by owning node on the current
// ring into a new manifest.
func (c *Coordinator) PlanRange(ctx context.Context, in workflows.PlanRangeInput) (workflows.Plan, error) {
	r := in.Range
	entries, err := c.Manifests.ReadEntries(ctx, in.JobID, r.Src.Kind, r.Src.Key, r.Start, r.Count)
	if err != nil {
		return workflows.Plan{}, toTemporal(err)
	}
	if r.Pass == workflows.PassVerify {
		// Files placed again (their node left, or another joined) are
		// checked like a verify pass's: not those the job already failed.
		failed, err := c.failedFiles(ctx, in.JobID)
		if err != nil {
			return workflows.Plan{}, toTemporal(err)
		}
		entries = withoutFailed(entries, failed)
	}
	if len(r.Only) > 0 {
		if entries, err = c.ownedBy(ctx, entries, r.Only); err != nil {
			// The ring cannot be read now: the workflow plans it again.
			activity.GetLogger(ctx).Info("cannot place entries now; the workflow plans them again", "error", err)
			return workflows.Plan{}, nil
		}
	}
	return c.planAndWrite(ctx, in.JobID, in.Type, r.Out, entries, false, false)
}

// ownedBy keeps the entries whose owner on the current ring is one of
// nodes: the files whose owner changed when those nodes joined.
func (c *Coordinator) ownedBy(ctx context.Context, entries []workflows.FileEntry, nodes []string) ([]workflows.FileEntry, error) {
	_, owners, err := c.Placement.Primaries(ctx, uris(entries))
	if err != nil {
		return nil, fmt.Errorf("read the cache ring: %w", err)
	}
	kept := entries[:0]
	for i, e := range entries {
		if slices.Contains(nodes, owners[i]) {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// planAndWrite groups entries by node and writes them, grouped, to out.
// When no node is live (or the ring cannot be read) it returns an unplanned
// Plan, after writing the entries as they are if writeUnplanned. With
// checkCached, the files their node already holds are set apart (see plan).
func (c *Coordinator) planAndWrite(ctx context.Context, jobID string, typ workflows.JobType, out workflows.ManifestRef, entries []workflows.FileEntry, writeUnplanned, checkCached bool) (workflows.Plan, error) {
	grouped, plan, err := c.plan(ctx, typ, entries, checkCached)
	if err != nil {
		activity.GetLogger(ctx).Info("cannot place entries now; the workflow plans them again", "error", err)
		if writeUnplanned {
			if err := c.Manifests.WriteEntries(ctx, jobID, out.Kind, out.Key, entries); err != nil {
				return workflows.Plan{}, toTemporal(err)
			}
		}
		return workflows.Plan{}, nil
	}
	if err := c.Manifests.WriteEntries(ctx, jobID, out.Kind, out.Key, grouped); err != nil {
		return workflows.Plan{}, toTemporal(err)
	}
	return plan, nil
}

// plan orders entries by the node that gets them and returns the groups. A
// load goes to the owners of its files on the ring, where readers will look.
// Copy and move have no cache locality, so their entries are dealt
// round-robin over the live nodes, starting at a node picked by the first
// entry, which spreads them evenly whatever the ring's shares.
//
// With checkCached (a load), each node is asked once which of its files it
// already holds complete at the listed version: those follow the node's
// group in the output, in Plan.Cached, counted in Plan.CachedResult, and
// are not part of any group to dispatch. Every entry is still written, so
// that a verify pass reads them back.
func (c *Coordinator) plan(ctx context.Context, typ workflows.JobType, entries []workflows.FileEntry, checkCached bool) ([]workflows.FileEntry, workflows.Plan, error) {
	var view Members
	var owners []string
	var err error
	if typ == workflows.JobLoad {
		view, owners, err = c.Placement.Primaries(ctx, uris(entries))
	} else {
		view, err = c.Placement.LiveNodes(ctx)
	}
	if err != nil {
		return nil, workflows.Plan{}, fmt.Errorf("read the cache ring: %w", err)
	}
	nodes := view.Nodes
	if len(nodes) == 0 {
		return nil, workflows.Plan{}, errors.New("no cache node is live")
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		index[n.ID] = i
	}
	start := 0
	if len(entries) > 0 {
		h := fnv.New32a()
		h.Write([]byte(entries[0].URI))
		start = int(h.Sum32() % uint32(len(nodes)))
	}
	byNode := make([][]workflows.FileEntry, len(nodes))
	for i, e := range entries {
		k := (start + i) % len(nodes)
		if typ == workflows.JobLoad {
			var ok bool
			if k, ok = index[owners[i]]; !ok {
				return nil, workflows.Plan{}, fmt.Errorf("no live owner for %s", e.URI)
			}
		}
		byNode[k] = append(byNode[k], e)
	}
	var cached [][]workflows.FileEntry
	if checkCached && typ == workflows.JobLoad && c.Cached != nil {
		byNode, cached = c.setCachedApart(ctx, nodes, byNode)
	}
	plan := workflows.Plan{Planned: true, NodesAsOf: view.asOf()}
	grouped := make([]workflows.FileEntry, 0, len(entries))
	for i, n := range nodes {
		plan.Nodes = append(plan.Nodes, n.ID)
		if len(byNode[i]) > 0 {
			plan.Groups = append(plan.Groups, workflows.NodeGroup{NodeID: n.ID, TaskQueue: n.TaskQueue, Start: len(grouped), Count: len(byNode[i])})
			grouped = append(grouped, byNode[i]...)
		}
		if cached != nil && len(cached[i]) > 0 {
			plan.Cached = append(plan.Cached, workflows.NodeGroup{NodeID: n.ID, TaskQueue: n.TaskQueue, Start: len(grouped), Count: len(cached[i])})
			grouped = append(grouped, cached[i]...)
			if plan.CachedResult == nil {
				plan.CachedResult = &workflows.BatchResult{}
			}
			r := plan.CachedResult
			for _, e := range cached[i] {
				r.Skipped++
				r.BytesSkipped += e.Size
			}
		}
	}
	if r := plan.CachedResult; r != nil {
		r.SkipReasons = []workflows.SkipCount{{Reason: SkipCached, Count: r.Skipped}}
	}
	return grouped, plan, nil
}

// cachedCheckTimeout bounds one node's answer to which files it holds: a
// node slower than that has its files planned as if it held none.
const cachedCheckTimeout = 10 * time.Second

// setCachedApart asks every node, at once, which of its entries it already
// holds complete at the listed version, and returns per node the entries
// still to load and those it holds. Only regular files with a listed size
// and version are asked about; a node that cannot answer keeps them all.
func (c *Coordinator) setCachedApart(ctx context.Context, nodes []NodeRef, byNode [][]workflows.FileEntry) (load, cached [][]workflows.FileEntry) {
	load = make([][]workflows.FileEntry, len(byNode))
	cached = make([][]workflows.FileEntry, len(byNode))
	ctx, cancel := context.WithTimeout(ctx, cachedCheckTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, entries := range byNode {
		load[i] = entries
		var asked []int
		var files []CacheFile
		for j, e := range entries {
			if e.Irregular == "" && e.Version != "" && e.Size >= 0 {
				asked = append(asked, j)
				files = append(files, CacheFile{URI: e.URI, Size: e.Size, Version: e.Version})
			}
		}
		if len(files) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			held, err := c.Cached.Cached(ctx, nodes[i], files)
			if err != nil || len(held) != len(files) {
				if !errors.Is(err, ErrNotAsked) {
					activity.GetLogger(ctx).Info("a cache node could not say which files it holds; they are sent to it", "node", nodes[i].ID, "error", err)
				}
				return
			}
			isCached := make([]bool, len(entries))
			for k, j := range asked {
				isCached[j] = held[k]
			}
			var l, h []workflows.FileEntry
			for j, e := range entries {
				if isCached[j] {
					h = append(h, e)
				} else {
					l = append(l, e)
				}
			}
			load[i], cached[i] = l, h
		}()
	}
	wg.Wait()
	return load, cached
}

// LiveNodes reads the ring's members. An unreadable ring is not an error:
// the answer says so and the workflow keeps its last view.
func (c *Coordinator) LiveNodes(ctx context.Context) (workflows.LiveNodesResult, error) {
	view, err := c.Placement.LiveNodes(ctx)
	if err != nil {
		activity.GetLogger(ctx).Info("membership unavailable", "error", err)
		return workflows.LiveNodesResult{}, nil
	}
	res := workflows.LiveNodesResult{OK: true, AsOf: view.asOf()}
	for _, n := range view.Nodes {
		res.Nodes = append(res.Nodes, n.ID)
	}
	sort.Strings(res.Nodes)
	return res, nil
}

// SaveBatchFailures records the failures of a batch that its node could
// not record (see workflows.SaveBatchFailuresInput).
func (c *Coordinator) SaveBatchFailures(ctx context.Context, in workflows.SaveBatchFailuresInput) (workflows.SaveBatchFailuresResult, error) {
	b := in.Batch
	entries, err := c.Manifests.ReadEntries(ctx, in.JobID, b.Src.Kind, b.Src.Key, b.Start, b.Count)
	if err != nil {
		return workflows.SaveBatchFailuresResult{}, toTemporal(err)
	}
	failures := in.Failures
	if in.FailAll {
		failures = make([]workflows.Failure, len(entries))
		for i, e := range entries {
			failures[i] = workflows.Failure{Path: e.URI, Reason: in.Reason, Message: in.Message}
		}
	}
	res, err := recordFailures(ctx, c.Manifests, in.JobID, in.Key, entries, failures, in.LastAttempt, b.Pass == workflows.PassVerify)
	return res, toTemporal(err)
}

// recordFailures writes a batch's permanent failures to its failures object
// and the entries of its retryable ones (unless lastAttempt) to its retry
// object. A verify pass retries nothing; its failures go to the failure
// list like the others (a verify pass checks no file the job had failed
// already, so none is listed twice). The result carries the counts and
// the first failures.
func recordFailures(ctx context.Context, m *manifest.Store, jobID, key string, entries []workflows.FileEntry, failures []workflows.Failure, lastAttempt, verify bool) (workflows.SaveBatchFailuresResult, error) {
	var final []workflows.Failure
	var retry []workflows.FileEntry
	byURI := make(map[string]int, len(entries))
	for i, e := range entries {
		byURI[e.URI] = i
	}
	for _, f := range failures {
		if i, ok := byURI[f.Path]; ok && f.Retryable && !lastAttempt && !verify {
			retry = append(retry, entries[i])
			continue
		}
		final = append(final, f)
	}
	res := workflows.SaveBatchFailuresResult{Failed: int64(len(final)), Retry: int64(len(retry))}
	res.Failures = append(res.Failures, final[:min(len(final), workflows.MaxResultFailures)]...)
	if m == nil {
		return res, nil
	}
	if len(final) > 0 {
		if err := m.WriteFailures(ctx, jobID, key, final); err != nil {
			return res, err
		}
	}
	if len(retry) > 0 {
		if err := m.WriteEntries(ctx, jobID, workflows.ManifestRetry, key, retry); err != nil {
			return res, err
		}
	}
	return res, nil
}

// FinishJob writes the job's failure list and removes its working
// manifests.
func (c *Coordinator) FinishJob(ctx context.Context, in workflows.FinishJobInput) (workflows.FinishJobResult, error) {
	loc, lines, err := c.Manifests.WriteFailureList(ctx, in.JobID)
	if err != nil {
		return workflows.FinishJobResult{}, toTemporal(err)
	}
	if !in.KeepWork {
		if err := c.Manifests.DeleteWork(ctx, in.JobID); err != nil {
			return workflows.FinishJobResult{}, toTemporal(err)
		}
	}
	return workflows.FinishJobResult{FailuresLocation: loc, FailureLines: lines}, nil
}

// countProgress is CountSource's heartbeat.
type countProgress struct {
	Cursor string
	Files  int64
	Bytes  int64
	Done   bool
}

// CountSource counts the qualifying files and bytes of the source without
// keeping entries, heartbeating its cursor so a retry resumes. With a
// budget it returns after about that many entries, with its cursor.
func (c *Coordinator) CountSource(ctx context.Context, in workflows.ListInput) (workflows.CountResult, error) {
	var p countProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			activity.GetLogger(ctx).Warn("heartbeat details unreadable; counting from the cursor given", "error", err)
			p = countProgress{}
		}
	}
	sel, err := compileFilter(in.FileFilterRegx, in.Filter)
	if err != nil {
		return workflows.CountResult{}, toTemporal(err)
	}
	l := &lister{resolver: c.Resolver, countOnly: true}
	if p.Cursor == "" && p.Files == 0 {
		p.Cursor = in.Cursor
	}
	var scanned int64
	for !p.Done {
		if err := ctx.Err(); err != nil {
			return workflows.CountResult{}, err
		}
		if in.CountBudget > 0 && scanned >= int64(in.CountBudget) {
			break
		}
		var pg page
		if in.IndexFile != "" {
			pg, err = l.indexPage(ctx, in.IndexFile, p.Cursor, sel, 5000)
		} else {
			pg, err = l.page(ctx, in.Path, "", p.Cursor, sel, 5000, true)
		}
		if err != nil {
			return workflows.CountResult{}, toTemporal(fmt.Errorf("count %s: %w", in.Path, err))
		}
		p.Files += int64(pg.count)
		p.Bytes += pg.size
		scanned += max(pg.scanned, int64(pg.count)) + 1
		p.Cursor, p.Done = pg.cursor, pg.done
		activity.RecordHeartbeat(ctx, p)
	}
	return workflows.CountResult{Files: p.Files, Bytes: p.Bytes, Cursor: p.Cursor, Done: p.Done}, nil
}

// RemoveEmptyDirs is kept for the workflows that call it at the end of a
// move, and removes nothing: a move removes only the directories it emptied
// itself, as each batch deletes the last moved file of a directory (see
// removeEmptiedDirs). Sweeping the whole source here would also remove
// empty directories the move never touched (ones that were empty before,
// or that an --include filter left alone).
func (c *Coordinator) RemoveEmptyDirs(ctx context.Context, in workflows.RemoveEmptyDirsInput) error {
	return nil
}

// errNoManifests is returned by activities that need the manifest store
// when the process has none.
var errNoManifests = temporal.NewNonRetryableApplicationError("no manifest store configured (--manifest-store)", workflows.ErrTypeInvalidInput, nil)

// uris are the URIs of entries.
func uris(entries []workflows.FileEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.URI
	}
	return out
}
