package workflows

import "go.temporal.io/sdk/workflow"

// Loads that skip what is already cached before dispatch (issue 17): a
// load's listing asks each owner node which of the page's files it holds
// complete at the listed version (ListPageInput.CheckCached), and those
// files never become batches. They are counted as their node would have
// counted them (skipped, already cached) and recorded as placed on it, so
// that a node that leaves has them placed again; they stay in the page's
// manifest, so that a verify pass checks them like every other file.

// versionCheckCached marks the runs whose listing asks for it.
const versionCheckCached = "check-cached"

// checksCached reports whether this run's listing pages are to be checked
// against the owners' caches: a load that reads file contents into one
// node per file, in its main or verify pass. The version is read once per
// run, at its first such page.
func (r *jobRun) checksCached(ctx workflow.Context) bool {
	o := r.c.Options
	if r.c.Type != JobLoad || o.MetadataOnly || o.DryRun || o.Replicas > 1 || r.c.Pass == PassRetry {
		return false
	}
	return follows(ctx, versionCheckCached)
}

// foldCached counts the files of a plan that their node already holds, as
// a batch of that node would have, and records them as placed there.
func (r *jobRun) foldCached(ctx workflow.Context, rng PlanRange, p Plan) {
	if p.CachedResult == nil && len(p.Cached) == 0 {
		return
	}
	r.tracksPlacement(ctx) // decided before anything is counted
	for _, g := range p.Cached {
		r.placed(ctx, rng.Out, g.Start, g.Count, g.NodeID)
	}
	if p.CachedResult != nil {
		r.fold(rng.Pass, *p.CachedResult)
	}
}
