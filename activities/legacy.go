package activities

import (
	"context"
	"fmt"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// The activities below serve only the frozen first engine (package
// workflows/legacy), so that jobs it started before the cut-over finish.
// They carry file lists in their payloads; nothing new calls them.

// ListAndPlan lists one page of the job's source and groups it by node (v1).
func (c *Coordinator) ListAndPlan(ctx context.Context, in workflows.ListInput) (workflows.ListResult, error) {
	sel, err := compileFilter(in.FileFilterRegx, in.Filter)
	if err != nil {
		return workflows.ListResult{}, toTemporal(err)
	}
	l := &lister{resolver: c.Resolver}
	var p page
	src := in.Path
	if in.IndexFile != "" {
		src = in.IndexFile
		p, err = l.indexPage(ctx, in.IndexFile, in.Cursor, sel, max(in.Limit, 1))
	} else {
		p, err = l.page(ctx, in.Path, "", in.Cursor, sel, max(in.Limit, 1), true)
	}
	if err != nil {
		return workflows.ListResult{}, toTemporal(fmt.Errorf("list %s: %w", src, err))
	}
	res := workflows.ListResult{Cursor: p.cursor, Done: p.done, Qualified: int64(len(p.entries)), QualifiedSize: p.size}
	plan, err := c.Plan(ctx, workflows.PlanInput{Type: in.Type, Entries: p.entries})
	if err != nil {
		return workflows.ListResult{}, err
	}
	res.Batches, res.LiveNodes, res.Nodes = plan.Batches, plan.LiveNodes, plan.Nodes
	return res, nil
}

// Plan groups entries by owning node on the current ring (v1).
func (c *Coordinator) Plan(ctx context.Context, in workflows.PlanInput) (workflows.PlanResult, error) {
	grouped, plan, err := c.plan(ctx, in.Type, in.Entries, false)
	if err != nil {
		return workflows.PlanResult{}, toTemporal(fmt.Errorf("%w: %s", storage.ErrUnavailable, err.Error()))
	}
	res := workflows.PlanResult{LiveNodes: len(plan.Nodes), Nodes: plan.Nodes}
	for _, g := range plan.Groups {
		res.Batches = append(res.Batches, workflows.NodeBatch{NodeID: g.NodeID, TaskQueue: g.TaskQueue, Entries: grouped[g.Start : g.Start+g.Count]})
	}
	return res, nil
}

// SaveFailures writes one list of failed files (v1) to the manifest store,
// named by job and sequence so that a retried call rewrites the same object.
func (c *Coordinator) SaveFailures(ctx context.Context, in workflows.SaveFailuresInput) (workflows.SaveFailuresResult, error) {
	if c.Manifests == nil {
		return workflows.SaveFailuresResult{}, errNoManifests
	}
	if err := c.Manifests.WriteFailures(ctx, in.JobID, fmt.Sprintf("v1-%06d", in.Seq), in.Failures); err != nil {
		return workflows.SaveFailuresResult{}, toTemporal(err)
	}
	return workflows.SaveFailuresResult{Location: c.Manifests.JobDir(in.JobID)}, nil
}
