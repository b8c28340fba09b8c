package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// Totals without a second scan (issue 17): the count-only scan lists the
// whole source a second time, only to show totals while the job lists.
// A job whose listing ends early never needs it: the entries listed are the
// totals (and once the listing is complete they are the totals in every
// case, whatever the scan counted). So a job lists for countDelay before it starts the scan; a
// listing that ends first (or overtakes a scan in flight) gives the totals
// and the scan is not run (or cancelled): a job never waits for it. A dry
// run only counts anyway: its listing is the count, it never scans twice.

// versionCountLater marks the runs that start the count-only scan only
// after countDelay and take the totals from a finished listing.
const versionCountLater = "count-after-listing"

// countDelay is how long a job lists before it starts the count-only scan.
const countDelay = time.Second

// countsLater reports whether this run follows versionCountLater (read
// once per run, when it first decides about the scan).
func (r *jobRun) countsLater(ctx workflow.Context) bool {
	return follows(ctx, versionCountLater)
}

// countMayStart reports whether the count-only scan may start now; if not
// yet, it arms the timer after which it may.
func (r *jobRun) countMayStart(ctx workflow.Context) bool {
	if !r.countsLater(ctx) {
		return true
	}
	if r.c.Options.DryRun {
		return false
	}
	if r.countWaited || r.c.Count.Cursor != "" {
		// Waited already, in this run or (the scan made progress) in an
		// earlier one.
		return true
	}
	if r.countTimer == nil {
		r.countTimer = workflow.NewTimer(ctx, countDelay)
	}
	return false
}

// onCountTimer lets the count-only scan start.
func (r *jobRun) onCountTimer() {
	r.countTimer = nil
	r.countWaited = true
}

// totalsFromListing makes the totals what the main pass listed once its
// listing is complete, ending the count-only scan if it still runs. The
// listing is the job's own view of the source: a scan that finished
// earlier, before files were added or removed, would show other totals
// than the job's counters.
func (r *jobRun) totalsFromListing(ctx workflow.Context) {
	if r.c.Pass != PassMain || !r.listingDone() || !r.countsLater(ctx) {
		return
	}
	if r.counting != nil {
		r.countCancel()
		r.counting = nil
	}
	n := &r.c.Counters
	r.c.Count = CountProgress{Files: n.Qualified, Bytes: n.QualifiedSize, Done: true}
	n.TotalsKnown, n.TotalFiles, n.TotalBytes = true, n.Qualified, n.QualifiedSize
}
