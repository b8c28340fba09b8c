package activities

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// NodeRef is a live cache node as the planner sees it.
type NodeRef struct {
	ID        string
	TaskQueue string
}

// Placement answers which live cache node owns a URI, on the same ring the
// readers use.
type Placement interface {
	// Owners returns the k distinct nodes that own uri, primary first.
	Owners(ctx context.Context, uri string, k int) ([]NodeRef, error)
	// LiveNodes returns the nodes currently on the ring.
	LiveNodes(ctx context.Context) ([]NodeRef, error)
}

// Coordinator holds the dependencies of the coordinator's activities.
type Coordinator struct {
	Resolver  *storage.Resolver
	Placement Placement
	// FailuresDir is a directory URI where failure lists are written, one
	// directory per job.
	FailuresDir string
}

// ListAndPlan lists one page of the job's source and groups it by node.
func (c *Coordinator) ListAndPlan(ctx context.Context, in workflows.ListInput) (workflows.ListResult, error) {
	l := &lister{resolver: c.Resolver}
	p, err := l.page(ctx, in, max(in.Limit, 1))
	if err != nil {
		return workflows.ListResult{}, toTemporal(fmt.Errorf("list %s: %w", sourceOf(in), err))
	}
	res := workflows.ListResult{Cursor: p.cursor, Done: p.done, Qualified: int64(len(p.entries)), QualifiedSize: p.size}
	plan, err := c.plan(ctx, in.Type, p.entries)
	if err != nil {
		return workflows.ListResult{}, err
	}
	res.Batches, res.LiveNodes, res.Nodes = plan.Batches, plan.LiveNodes, plan.Nodes
	return res, nil
}

func sourceOf(in workflows.ListInput) string {
	if in.IndexFile != "" {
		return in.IndexFile
	}
	return in.Path
}

// Plan groups entries by owning node on the current ring.
func (c *Coordinator) Plan(ctx context.Context, in workflows.PlanInput) (workflows.PlanResult, error) {
	return c.plan(ctx, in.Type, in.Entries)
}

// plan groups entries into one batch per node. A load goes to the owners of
// its files on the ring, where readers will look. Copy and move have no
// cache locality, so their entries are dealt round-robin over the live
// nodes, starting at a node picked by the first entry, which spreads them
// evenly whatever the ring's shares (with five points per node the ring
// can give one node most of the keys).
func (c *Coordinator) plan(ctx context.Context, typ workflows.JobType, entries []workflows.FileEntry) (workflows.PlanResult, error) {
	nodes, err := c.Placement.LiveNodes(ctx)
	if err != nil {
		return workflows.PlanResult{}, temporal.NewApplicationErrorWithCause("read the cache ring: "+err.Error(), workflows.ErrTypeUnavailable, err)
	}
	if len(nodes) == 0 {
		return workflows.PlanResult{}, temporal.NewApplicationError("no cache node is live", workflows.ErrTypeNoNodes)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	start := 0
	if len(entries) > 0 {
		h := fnv.New32a()
		h.Write([]byte(entries[0].URI))
		start = int(h.Sum32() % uint32(len(nodes)))
	}
	byNode := map[string]*workflows.NodeBatch{}
	for i, e := range entries {
		var o NodeRef
		if typ == workflows.JobLoad {
			owners, err := c.Placement.Owners(ctx, e.URI, 1)
			if err != nil || len(owners) == 0 {
				return workflows.PlanResult{}, temporal.NewApplicationError(fmt.Sprintf("no owner for %s: %v", e.URI, err), workflows.ErrTypeNoNodes)
			}
			o = owners[0]
		} else {
			o = nodes[(start+i)%len(nodes)]
		}
		b := byNode[o.ID]
		if b == nil {
			b = &workflows.NodeBatch{NodeID: o.ID, TaskQueue: o.TaskQueue}
			byNode[o.ID] = b
		}
		b.Entries = append(b.Entries, e)
	}
	res := workflows.PlanResult{LiveNodes: len(nodes)}
	for _, n := range nodes {
		res.Nodes = append(res.Nodes, n.ID)
	}
	sort.Strings(res.Nodes)
	for _, b := range byNode {
		res.Batches = append(res.Batches, *b)
	}
	sort.Slice(res.Batches, func(i, j int) bool { return res.Batches[i].NodeID < res.Batches[j].NodeID })
	return res, nil
}

// countProgress is CountSource's heartbeat.
type countProgress struct {
	Cursor string
	Files  int64
	Bytes  int64
	Done   bool
}

// CountSource counts the qualifying files and bytes of the source without
// keeping entries, heartbeating its cursor so a retry resumes.
func (c *Coordinator) CountSource(ctx context.Context, in workflows.ListInput) (workflows.CountResult, error) {
	var p countProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &p)
	}
	l := &lister{resolver: c.Resolver}
	in.Cursor = p.Cursor
	for !p.Done {
		if err := ctx.Err(); err != nil {
			return workflows.CountResult{}, err
		}
		pg, err := l.page(ctx, in, 5000)
		if err != nil {
			return workflows.CountResult{}, toTemporal(fmt.Errorf("count %s: %w", sourceOf(in), err))
		}
		p.Files += int64(len(pg.entries))
		p.Bytes += pg.size
		p.Cursor, p.Done = pg.cursor, pg.done
		in.Cursor = pg.cursor
		activity.RecordHeartbeat(ctx, p)
	}
	return workflows.CountResult{Files: p.Files, Bytes: p.Bytes}, nil
}

// SaveFailures writes one list of failed files, named by job and sequence
// so that a retried call rewrites the same file.
func (c *Coordinator) SaveFailures(ctx context.Context, in workflows.SaveFailuresInput) (workflows.SaveFailuresResult, error) {
	if c.FailuresDir == "" {
		return workflows.SaveFailuresResult{}, nil
	}
	dir := storage.Join(c.FailuresDir, in.JobID)
	uri := storage.Join(dir, fmt.Sprintf("failures-%06d.txt", in.Seq))
	st, err := c.Resolver.For(uri)
	if err != nil {
		return workflows.SaveFailuresResult{}, toTemporal(err)
	}
	var b strings.Builder
	for _, f := range in.Failures {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", f.Path, f.Reason, strings.ReplaceAll(f.Message, "\n", " "))
	}
	w, err := st.Create(ctx, uri, storage.CreateOptions{Overwrite: true, Size: int64(b.Len())})
	if err != nil {
		return workflows.SaveFailuresResult{}, toTemporal(err)
	}
	if _, err := w.Write([]byte(b.String())); err != nil {
		_ = w.Abort(ctx)
		return workflows.SaveFailuresResult{}, toTemporal(err)
	}
	if _, err := w.Commit(ctx); err != nil && !errors.Is(err, storage.ErrExists) {
		return workflows.SaveFailuresResult{}, toTemporal(err)
	}
	return workflows.SaveFailuresResult{Location: dir}, nil
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
