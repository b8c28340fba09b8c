package workflows

import (
	"slices"
	"sort"

	"go.temporal.io/sdk/workflow"
)

// Re-placement after the ring changed (README "Jobs and Temporal"): a load
// records which node finished which range of its manifests (JobCarry.Placed).
// When a node leaves, only the ranges it had finished are planned again, on
// the files' current owners; when a node joins, only the files it now owns
// are (PlanRange with Only). Both run as verify-pass work: skip-if-exists,
// counted apart from the job's counters. Jobs that did not track their
// placement from their first batch on (recorded before this existed, or
// upgraded mid-way) keep the verify pass over every manifest at the end.

// versionReplace marks the runs that re-place only what a ring change
// affects.
const versionReplace = "replace-affected"

// PlacedRange is a range of a manifest finished on one node.
type PlacedRange struct {
	Src   ManifestRef `json:"src"`
	Start int         `json:"start"`
	Count int         `json:"count"`
	Node  string      `json:"node"`
}

// Values of JobCarry.PlacedMode.
const (
	placedUndecided = iota
	placedTracked
	placedUntracked
)

// tracksPlacement reports whether this load records its placement, and
// decides it the first time: only a job that has processed nothing yet
// can start tracking, or its earlier files would be missed.
func (r *jobRun) tracksPlacement(ctx workflow.Context) bool {
	if r.c.Type != JobLoad {
		return false
	}
	if r.c.PlacedMode == placedUndecided {
		n := r.c.Counters
		r.c.PlacedMode = placedUntracked
		if n.Succeeded+n.Skipped+n.Failed+n.VerifyLoadedFiles == 0 &&
			follows(ctx, versionReplace) {
			r.c.PlacedMode = placedTracked
		}
	}
	return r.c.PlacedMode == placedTracked
}

// placed records that node finished [start, start+count) of src, or, when
// node has already left, places those files again at once.
func (r *jobRun) placed(ctx workflow.Context, src ManifestRef, start, count int, node string) {
	if count <= 0 || !r.tracksPlacement(ctx) {
		return
	}
	if len(r.c.Nodes) > 0 && !contains(r.c.Nodes, node) {
		r.startPlan(ctx, PlanRange{Src: src, Start: start, Count: count, Out: r.nextPlanRef(), Pass: PassVerify})
		return
	}
	for i := range r.c.Placed {
		p := &r.c.Placed[i]
		if p.Src == src && p.Node == node {
			switch {
			case p.Start+p.Count == start:
				p.Count += count
				return
			case start+count == p.Start:
				p.Start, p.Count = start, p.Count+count
				return
			}
		}
	}
	r.c.Placed = append(r.c.Placed, PlacedRange{Src: src, Start: start, Count: count, Node: node})
}

// replaceAffected plans again what nodes that left held and what nodes
// that joined now own. A job that does not track its placement leaves it
// to a verify pass at the end.
func (r *jobRun) replaceAffected(ctx workflow.Context, lost, joined []string) {
	if len(lost)+len(joined) == 0 || !r.tracksPlacement(ctx) {
		return
	}
	kept := r.c.Placed[:0]
	var again []PlacedRange
	for _, p := range r.c.Placed {
		if contains(lost, p.Node) {
			again = append(again, p)
		} else {
			kept = append(kept, p)
		}
	}
	r.c.Placed = kept
	for _, p := range again {
		r.startPlan(ctx, PlanRange{Src: p.Src, Start: p.Start, Count: p.Count, Out: r.nextPlanRef(), Pass: PassVerify})
	}
	if len(joined) > 0 {
		for _, p := range r.c.Placed {
			r.startPlan(ctx, PlanRange{Src: p.Src, Start: p.Start, Count: p.Count, Out: r.nextPlanRef(), Pass: PassVerify,
				Only: append([]string(nil), joined...)})
		}
	}
}

// checkRingBeforeEnd reads membership once more when a load that tracks
// its placement has nothing left to do, so that a node that left or joined
// since the last check has its files placed before the job ends. It
// reports whether it started the check.
//
// A run that learnt the ring in this very workflow task (the last page's
// plan read it) needs no second read: it would only be a few milliseconds
// newer (versionRingFresh; runs before it read it again). Unless the ring
// changed during the job: pages planned in parallel may then come back out
// of order, the last one with the ring as it was before the change.
func (r *jobRun) checkRingBeforeEnd(ctx workflow.Context) bool {
	if r.ringChecked || r.c.PlacedMode != placedTracked || r.c.Options.DryRun {
		return false
	}
	r.ringChecked = true
	if !r.c.NodesChanged && r.ringSeenAt.Equal(workflow.Now(ctx)) &&
		follows(ctx, versionRingFresh) {
		return false
	}
	r.startLiveCheck(ctx, true)
	return true
}

// versionRingFresh marks the runs that skip the last membership read when
// the ring was read in the same workflow task.
const versionRingFresh = "ring-fresh-at-end"

// Batches planned before a node joined (issue 10, fresh-user run): when a
// join is noticed, the ranges already finished are planned again for the
// nodes that joined (replaceAffected), but batches then queued or running
// were planned on the old ring and finish later, on the files' old owners.
// Each batch records the ring it was planned on; one that finishes on a
// ring that has gained nodes since has its range planned again for them.

// versionLateJoin marks the runs that place finished batches on the nodes
// that joined after the batches were planned.
const versionLateJoin = "place-late-batches-on-joined"

// ringIndex is 1 + the index of nodes in JobCarry.Rings, added if new
// (0 for no nodes).
func (r *jobRun) ringIndex(nodes []string) int {
	if len(nodes) == 0 || r.c.Type != JobLoad {
		return 0
	}
	sorted := append([]string(nil), nodes...)
	sort.Strings(sorted)
	for i, ring := range r.c.Rings {
		if slices.Equal(ring, sorted) {
			return i + 1
		}
	}
	r.c.Rings = append(r.c.Rings, sorted)
	return len(r.c.Rings)
}

// placeOnJoined plans the first done entries of a finished batch again for
// the nodes that joined the ring after the batch was planned.
func (r *jobRun) placeOnJoined(ctx workflow.Context, b BatchRef, done int) {
	if done <= 0 || b.Ring <= 0 || b.Ring > len(r.c.Rings) || r.c.PlacedMode != placedTracked {
		return
	}
	planned := r.c.Rings[b.Ring-1]
	var joined []string
	for _, n := range r.c.Nodes {
		if !contains(planned, n) {
			joined = append(joined, n)
		}
	}
	if len(joined) == 0 || !contains(r.c.Nodes, b.NodeID) ||
		!follows(ctx, versionLateJoin) {
		return
	}
	r.startPlan(ctx, PlanRange{Src: b.Src, Start: b.Start, Count: done, Out: r.nextPlanRef(), Pass: PassVerify, Only: joined})
}
