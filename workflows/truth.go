package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// How a job run ends in Temporal, so that Temporal's status never
// contradicts the job's (README "What Temporal shows"):
//
//   - SUCCEEDED: the run completes; its result is the JobState.
//   - FAILED: the run fails with a non-retryable application error of type
//     ErrTypeJobFailed whose details are the JobState.
//   - STOPPED (by the stop signal or by Temporal's "Request Cancellation"):
//     the run ends Canceled; the cancellation's details are the JobState,
//     with the Carry a resume continues from.
//   - continue-as-new: the closed run's FerryJobState is SearchStateContinued.
//
// Runs recorded before truthVersion end Completed whatever the state, with
// the JobState as their result: JobResult reads both.
const (
	// ErrTypeJobFailed is the error type of a FAILED job's run.
	ErrTypeJobFailed = "JOB_FAILED"
	// SearchStateContinued is the FerryJobState of a run that handed over
	// to the next by continue-as-new: it is neither running nor the job's
	// outcome.
	SearchStateContinued = "CONTINUED_AS_NEW"
	// truthChange is the workflow.GetVersion change ID of the behaviour
	// above, of stop cancelling batches in flight, of cancellation as stop
	// and of the runs' summaries and details.
	truthChange  = "truthful-status"
	truthVersion = 1
)

// JobResult reads the JobState a job run ended with from what its
// workflow returned: its result (err == nil), or the details of the
// failure (FAILED) or cancellation (STOPPED) that ended it. It reports
// false when the run ended without a state (terminated, timed out, or a
// failure outside Ferry's logic); err is then the run's error.
func JobResult(err error, st *JobState) bool {
	if err == nil {
		return true
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) && ce.HasDetails() {
		return ce.Details(st) == nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == ErrTypeJobFailed && ae.HasDetails() {
		return ae.Details(st) == nil
	}
	return false
}

// JobSummary is the one-line summary of a job that Temporal's UI shows in
// its workflow list and on the workflow's page (StaticSummary).
func JobSummary(t JobType, path, dst string) string {
	if dst == "" {
		return fmt.Sprintf("%s %s", t, path)
	}
	return fmt.Sprintf("%s %s → %s", t, path, dst)
}

// JobDetails is what the workflow's page shows about the job, in
// Markdown (StaticDetails): type, source, destination and the options
// that differ from the defaults.
func JobDetails(t JobType, path, dst string, o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Ferry %s job**\n\n- source: `%s`\n", t, path)
	if dst != "" {
		fmt.Fprintf(&b, "- destination: `%s`\n", dst)
	}
	fmt.Fprintf(&b, "- batch size: %d\n", o.BatchSize)
	if o.Bandwidth > 0 {
		fmt.Fprintf(&b, "- bandwidth: %s/s\n", humanBytes(o.Bandwidth))
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{o.Verify, "verify"}, {o.DryRun, "dry run"}, {o.CheckContent, "check content"}, {o.Overwrite, "overwrite"},
		{o.SkipIfExists, "skip if exists"}, {o.MetadataOnly, "metadata only"}, {o.PartialListing, "partial listing"}} {
		if f.on {
			fmt.Fprintf(&b, "- %s\n", f.name)
		}
	}
	if o.IndexFile != "" {
		fmt.Fprintf(&b, "- index file: `%s`\n", o.IndexFile)
	}
	if o.Policy != "" {
		fmt.Fprintf(&b, "- policy: %s\n", o.Policy)
	}
	return b.String()
}

// ProgressLine is the job's progress in one line: state, files and bytes
// done of the total, and the rate since the run started. The workflow keeps
// it as its current details (shown on the workflow's page of Temporal's
// UI); `ferry dev ui-shot` and the UI test look for it.
func ProgressLine(s JobState, now time.Time) string {
	total, totalBytes := s.Qualified, s.QualifiedSize
	if s.TotalsKnown {
		total, totalBytes = s.TotalFiles, s.TotalBytes
	}
	done := s.BytesDone + s.BytesSkipped
	line := fmt.Sprintf("%s: %d of %d files, %s of %s", s.Status, s.Processed(), total, humanBytes(done), humanBytes(totalBytes))
	if s.Failed > 0 {
		line += fmt.Sprintf(", %d failed", s.Failed)
	}
	if s.Stage != "" {
		line += fmt.Sprintf(", %s", s.Stage)
	}
	if el := now.Sub(s.RunStartTime); el > time.Second && !s.RunStartTime.IsZero() {
		line += fmt.Sprintf(", %s/s", humanBytes(int64(float64(s.BytesDone)/el.Seconds())))
	}
	return line
}

// humanBytes spells n in binary units with one decimal ("1.5 MiB").
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// showProgress keeps the run's current details (Temporal's UI shows them
// on the workflow's page) in step with its progress, and the
// FerryJobProgress search attribute (a column of the UI's workflow list)
// at most every progressEvery, so that it costs a few history events a
// minute at most.
func (r *jobRun) showProgress(ctx workflow.Context) {
	if r.version < truthVersion {
		return
	}
	now := workflow.Now(ctx)
	line := ProgressLine(r.counters(), now)
	workflow.SetCurrentDetails(ctx, line)
	if !r.keepsProgressAttribute(ctx) || line == r.progressShown || now.Sub(r.progressAt) < progressEvery {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, r.progressAttribute(line, now)); err != nil {
		r.log.Info("progress search attribute not updated", "error", err)
	}
}

// progressEvery is how often at most the FerryJobProgress search attribute
// changes while a job runs (setStatus sets it at every change of state).
const progressEvery = 10 * time.Second

// progressChange is the GetVersion change ID of the FerryJobProgress
// search attribute; runs recorded before it never set it.
const progressChange = "progress-attribute"

// keepsProgressAttribute reports whether this run sets FerryJobProgress,
// deciding it (a version marker) on the first call.
func (r *jobRun) keepsProgressAttribute(ctx workflow.Context) bool {
	return follows(ctx, progressChange)
}

// progressAttribute is the update of FerryJobProgress to line, noted as
// shown at now.
func (r *jobRun) progressAttribute(line string, now time.Time) temporal.SearchAttributeUpdate {
	r.progressShown, r.progressAt = line, now
	return temporal.NewSearchAttributeKeyKeyword(SearchAttrJobProgress).ValueSet(line)
}

// cancelForStop cancels the batches in flight once the job is stopping, so
// that a stop takes effect within seconds even when a batch is stuck in a
// read: each hands back the progress of its last heartbeat and the rest of
// it is queued again for the resume (onBatchDone).
func (r *jobRun) cancelForStop() {
	if r.version < truthVersion {
		return
	}
	for _, b := range r.running {
		if !b.stopped && !b.nodeLost {
			b.stopped = true
			b.cancel()
		}
	}
}

// batchOptions adds the summary Temporal's UI shows for a batch activity:
// its node and how many files.
func batchOptions(ctx workflow.Context, b BatchRef) workflow.ActivityOptions {
	o := workflow.GetActivityOptions(ctx)
	pass := b.Pass
	if pass == PassMain {
		pass = "main"
	}
	files := "files"
	if b.Count == 1 {
		files = "file"
	}
	o.Summary = fmt.Sprintf("%s: %d %s (%s pass, batch %s)", b.NodeID, b.Count, files, pass, b.Key)
	return o
}

// follows reports whether this run follows change, a workflow.GetVersion
// change ID whose versions are DefaultVersion and 1. The SDK records the
// answer at the first call in a run (a marker, when the run is new) and
// returns the same on every later call, so callers need not keep it.
func follows(ctx workflow.Context, change string) bool {
	return workflow.GetVersion(ctx, change, workflow.DefaultVersion, 1) >= 1
}
