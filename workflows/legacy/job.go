// Package legacy keeps the first version of the job workflow, frozen, so
// that jobs started before the cut-over to workflows.JobWorkflow (type
// "FerryJob2") finish on the code that recorded their histories, and so that
// tests/replay can replay those histories. It carries every file list in
// history (see README "Jobs and Temporal"); no new job starts on it. Delete
// it once no "FerryJob" run is left in any namespace.
package legacy

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/internal/errtext"
	"github.com/ferryio/ferry/workflows"
)

// WorkflowName is the registered name of the v1 job workflow.
const WorkflowName = "FerryJob"

// Input starts a run of JobWorkflow.
type Input struct {
	Type    workflows.JobType `json:"type"`
	Path    string            `json:"path"`
	Dst     string            `json:"dst,omitempty"`
	Options workflows.Options `json:"options"`
	// Resume is the state to continue from: set by continue-as-new, and by
	// a submit that resumes a STOPPED job.
	Resume *State `json:"resume,omitempty"`
}

// State is a job's whole state: what the progress query returns, what a
// run returns when it ends, and what continue-as-new carries.
type State struct {
	// JobID is the UUID of the job: the run ID of its first run, kept
	// across continue-as-new and across a resume after STOPPED.
	JobID   string            `json:"jobId"`
	Type    workflows.JobType `json:"type"`
	Path    string            `json:"path"`
	Dst     string            `json:"dst,omitempty"`
	Options workflows.Options `json:"options"`

	Status workflows.JobStatus `json:"status"`
	// Reason explains FAILED or STOPPED ("Job partially failed.").
	Reason string          `json:"reason,omitempty"`
	Stage  workflows.Stage `json:"stage"`

	// SubmitTime is when the job was first submitted; RunStartTime when the
	// current run (after a resume) started; EndTime when it ended.
	SubmitTime   time.Time `json:"submitTime"`
	RunStartTime time.Time `json:"runStartTime"`
	EndTime      time.Time `json:"endTime,omitempty"`
	// ElapsedBefore is the running time of earlier runs (before a stop).
	ElapsedBefore time.Duration `json:"elapsedBefore,omitempty"`

	// Listing progress.
	Cursor      string `json:"cursor,omitempty"`
	ListingDone bool   `json:"listingDone,omitempty"`
	PagesListed int64  `json:"pagesListed,omitempty"`
	// Totals from the count-only scan; TotalsKnown is false with
	// partialListing or until the scan ends.
	TotalsKnown bool  `json:"totalsKnown,omitempty"`
	TotalFiles  int64 `json:"totalFiles,omitempty"`
	TotalBytes  int64 `json:"totalBytes,omitempty"`

	// Counters. Qualified = listed entries that passed the filters; when
	// the job has ended, Qualified == Succeeded + Skipped + Failed.
	Qualified     int64 `json:"qualified"`
	QualifiedSize int64 `json:"qualifiedSize"`
	Succeeded     int64 `json:"succeeded"`
	Skipped       int64 `json:"skipped"`
	Failed        int64 `json:"failed"`
	// BytesDone is bytes loaded, copied or moved; BytesSkipped bytes of
	// skipped files.
	BytesDone    int64 `json:"bytesDone"`
	BytesSkipped int64 `json:"bytesSkipped"`

	// RecentFailures are the latest workflows.RecentFailuresKept permanent failures.
	RecentFailures []workflows.Failure `json:"recentFailures,omitempty"`
	// FailuresLocation is where the full list of failed files is saved.
	FailuresLocation string `json:"failuresLocation,omitempty"`

	// Work carried across continue-as-new and stop/resume: entries listed
	// but not yet finished, and entries to retry after the listing.
	Pending []workflows.FileEntry `json:"pending,omitempty"`
	Retry   []workflows.FileEntry `json:"retry,omitempty"`
	// VerifyPass counts verify passes done; VerifyLoadedFiles and
	// VerifyLoadedBytes what they found missing and loaded again.
	VerifyPass        int   `json:"verifyPass,omitempty"`
	VerifyLoadedFiles int64 `json:"verifyLoadedFiles,omitempty"`
	VerifyLoadedBytes int64 `json:"verifyLoadedBytes,omitempty"`
	// Nodes are the cache nodes of the ring last seen; LostNodes those that
	// left it while the job ran. A load whose nodes left verifies at the end,
	// so that files finished on a lost node are cached on their new owner.
	Nodes     []string `json:"nodes,omitempty"`
	LostNodes []string `json:"lostNodes,omitempty"`
	// Runs counts the workflow runs this job took (continue-as-new, resume).
	Runs int `json:"runs"`
}

// Processed is the number of files finished, whatever the outcome.
func (s *State) Processed() int64 { return s.Succeeded + s.Skipped + s.Failed }

// Tuning of the job workflow. They are part of its deterministic behaviour:
// changing one changes the commands a replay expects, so a change needs
// workflow.GetVersion.
const (
	// batchesPerNode is how many batches may be in flight on one node.
	batchesPerNode = 4
	// maxBatchAttempts bounds how often one piece of work is re-planned after
	// its node failed it as a whole.
	maxBatchAttempts = 5
	// maxRetryKept bounds the retry set carried in state; failures beyond it
	// are final at once.
	maxRetryKept = 5000
	// nodeScheduleToStart is how long a batch may wait for its node to pick
	// it up before the node is taken as gone and the work re-planned.
	nodeScheduleToStart = 20 * time.Second
	// nodeHeartbeat is the batch heartbeat timeout: a node that dies
	// mid-batch is noticed within it.
	nodeHeartbeat = 15 * time.Second
)

// JobWorkflow runs one load, copy or move job (see the package comment).
func JobWorkflow(ctx workflow.Context, in Input) (State, error) {
	r, err := newJobRun(ctx, in)
	if err != nil {
		return State{}, err
	}
	return r.run(ctx)
}

// work is a batch waiting to be dispatched, with how often it was tried.
type work struct {
	batch    workflows.NodeBatch
	attempts int
	// retry marks the job's retry pass: failures are final.
	retry bool
	// verify marks a verify pass: files found cached are not counted again.
	verify bool
}

// inflight is a dispatched batch.
type inflight struct {
	w      work
	future workflow.Future
}

type jobRun struct {
	in    Input
	st    State
	log   interface{ Info(string, ...interface{}) }
	queue []work // planned, not dispatched; kept sorted by node for fairness
	// open buffers fill per node across listing pages so batches are full.
	open        map[string]*work
	running     []*inflight
	perNode     map[string]int
	listing     workflow.Future
	side        []*sideActivity
	counting    workflow.Future
	countCancel workflow.CancelFunc
	stopReq     bool
	failEarly   string
	liveNodes   int
	failSeq     int64
	batchesDone int
	verifyFound int64
}

// sideActivity is a Plan or SaveFailures activity in flight, with what it
// was started for.
type sideActivity struct {
	future        workflow.Future
	plan          bool
	retry, verify bool
	attempts      int
	entries       []workflows.FileEntry
}

func newJobRun(ctx workflow.Context, in Input) (*jobRun, error) {
	info := workflow.GetInfo(ctx)
	now := workflow.Now(ctx)
	r := &jobRun{in: in, log: workflow.GetLogger(ctx), open: map[string]*work{}, perNode: map[string]int{}}
	if in.Resume != nil {
		r.st = *in.Resume
		if r.st.Status == workflows.StatusStopped {
			// A new run after a stop: the clock keeps the time already spent.
			if !r.st.EndTime.IsZero() {
				r.st.ElapsedBefore += r.st.EndTime.Sub(r.st.RunStartTime)
			}
			r.st.RunStartTime = now
			r.st.EndTime = time.Time{}
			r.st.Reason = ""
		}
	} else {
		r.st = State{
			Type: in.Type, Path: in.Path, Dst: in.Dst, Options: in.Options.WithDefaults(in.Type),
			SubmitTime: now, RunStartTime: now,
		}
	}
	if r.st.JobID == "" {
		r.st.JobID = info.WorkflowExecution.RunID
	}
	r.st.Runs++
	r.st.Status = workflows.StatusRunning
	if r.st.Stage == workflows.StageVerifying {
		r.st.Status = workflows.StatusVerifying
	}
	if r.st.Stage == "" {
		r.st.Stage = workflows.StageListing
	}
	// Carried work goes back to planning: its node may be gone.
	carried := r.st.Pending
	r.st.Pending = nil
	if len(carried) > 0 {
		r.startPlan(ctx, carried, false, false)
	}
	if err := workflow.UpsertMemo(ctx, map[string]interface{}{"jobId": r.st.JobID}); err != nil {
		return nil, err
	}
	if err := r.setStatus(ctx, r.st.Status); err != nil {
		return nil, err
	}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryProgress, func() (State, error) {
		return r.snapshot(), nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// snapshot is the state a progress query returns: everything but the work
// lists, which can be large.
func (r *jobRun) snapshot() State {
	s := r.st
	s.Pending, s.Retry = nil, nil
	s.RecentFailures = append([]workflows.Failure(nil), r.st.RecentFailures...)
	return s
}

func (r *jobRun) setStatus(ctx workflow.Context, s workflows.JobStatus) error {
	r.st.Status = s
	return workflow.UpsertTypedSearchAttributes(ctx,
		temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrJobState).ValueSet(string(s)))
}

func (r *jobRun) workStage() workflows.Stage {
	switch r.st.Type {
	case workflows.JobCopy:
		return workflows.StageCopying
	case workflows.JobMove:
		return workflows.StageMoving
	}
	return workflows.StageLoading
}

func coordinatorOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           workflows.CoordinatorTaskQueue,
		StartToCloseTimeout: timeout,
		// A coordinator that dies mid-activity is noticed within this.
		HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: workflows.NonRetryableErrorTypes,
		},
	})
}

func (r *jobRun) run(ctx workflow.Context) (State, error) {
	stopCh := workflow.GetSignalChannel(ctx, workflows.SignalStop)
	o := r.st.Options
	if !o.PartialListing && !r.st.TotalsKnown && !r.st.ListingDone && r.st.VerifyPass == 0 {
		cctx, cancel := workflow.WithCancel(ctx)
		r.counting = workflow.ExecuteActivity(coordinatorOptions(cctx, 24*time.Hour), workflows.ActivityCountSource, r.listInput())
		r.countCancel = cancel
	}
	for {
		// Drain stop signals without blocking.
		for stopCh.ReceiveAsync(nil) {
			r.stopReq = true
		}
		draining := r.stopReq || r.failEarly != "" || r.wantContinueAsNew(ctx)
		if draining && r.counting != nil {
			// Totals are not worth delaying a stop for; a later run counts
			// again.
			r.countCancel()
			r.counting = nil
		}
		if !draining {
			r.startListing(ctx)
			r.dispatch(ctx)
		}
		if draining && !r.inFlight() {
			return r.finishDraining(ctx)
		}
		if !draining && r.idle() {
			if r.st.ListingDone {
				if next := r.nextPass(ctx); next {
					continue
				}
				return r.finish(ctx)
			}
		}
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(stopCh, func(c workflow.ReceiveChannel, more bool) {
			c.Receive(ctx, nil)
			r.stopReq = true
		})
		if r.listing != nil {
			f := r.listing
			sel.AddFuture(f, func(f workflow.Future) { r.listing = nil; r.onListed(ctx, f) })
		}
		if r.counting != nil {
			sel.AddFuture(r.counting, func(f workflow.Future) { r.onCounted(ctx, f) })
		}
		for _, a := range r.side {
			a := a
			sel.AddFuture(a.future, func(workflow.Future) { r.onSideDone(ctx, a) })
		}
		for _, b := range r.running {
			b := b
			sel.AddFuture(b.future, func(f workflow.Future) { r.onBatchDone(ctx, b) })
		}
		sel.Select(ctx)
	}
}

// inFlight reports whether any activity is still running.
func (r *jobRun) inFlight() bool {
	return r.listing != nil || r.counting != nil || len(r.side) > 0 || len(r.running) > 0
}

// idle reports that nothing is in flight and nothing is queued.
func (r *jobRun) idle() bool {
	return !r.inFlight() && len(r.queue) == 0 && len(r.open) == 0
}

func (r *jobRun) wantContinueAsNew(ctx workflow.Context) bool {
	if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return true
	}
	n := r.st.Options.TestContinueAsNewAfter
	return n > 0 && r.batchesDone >= n
}

func (r *jobRun) listInput() workflows.ListInput {
	o := r.st.Options
	return workflows.ListInput{
		JobID: r.st.JobID, Type: r.st.Type, Path: r.st.Path, IndexFile: o.IndexFile,
		Cursor: r.st.Cursor, Limit: o.BatchSize, FileFilterRegx: o.FileFilterRegx, Filter: o.Filter,
	}
}

// queuedEntries counts entries listed but not dispatched.
func (r *jobRun) queuedEntries() int {
	n := 0
	for _, w := range r.queue {
		n += len(w.batch.Entries)
	}
	//workflowcheck:ignore a sum does not depend on the order
	for _, w := range r.open {
		n += len(w.batch.Entries)
	}
	return n
}

// startListing fetches the next page when the queue runs low, so memory stays
// bounded by the window whatever the size of the source.
func (r *jobRun) startListing(ctx workflow.Context) {
	if r.listing != nil || r.st.ListingDone {
		return
	}
	nodes := max(r.liveNodes, 1)
	if r.queuedEntries() >= 2*nodes*r.st.Options.BatchSize {
		return
	}
	r.listing = workflow.ExecuteActivity(coordinatorOptions(ctx, 10*time.Minute), workflows.ActivityListAndPlan, r.listInput())
}

func (r *jobRun) onListed(ctx workflow.Context, f workflow.Future) {
	var res workflows.ListResult
	if err := f.Get(ctx, &res); err != nil {
		// The listing itself failed after its retries: the job cannot go on.
		r.failEarly = "listing failed: " + rootMessage(err)
		r.st.ListingDone = true
		return
	}
	r.st.PagesListed++
	r.st.Cursor = res.Cursor
	r.liveNodes = res.LiveNodes
	r.noteNodes(res.Nodes)
	if res.Done {
		r.st.ListingDone = true
		r.st.Cursor = ""
	}
	if r.st.Stage != workflows.StageVerifying {
		r.st.Qualified += res.Qualified
		r.st.QualifiedSize += res.QualifiedSize
	}
	if r.st.Stage == workflows.StageListing {
		r.st.Stage = r.workStage()
	}
	verify := r.st.Stage == workflows.StageVerifying
	for _, b := range res.Batches {
		r.enqueue(work{batch: b, verify: verify})
	}
	if r.st.ListingDone {
		r.flushOpen()
	}
}

func (r *jobRun) onCounted(ctx workflow.Context, f workflow.Future) {
	r.counting = nil
	var res workflows.CountResult
	if err := f.Get(ctx, &res); err != nil {
		// Totals are a nicety; the job goes on without them.
		r.log.Info("count-only scan failed", "error", err)
		return
	}
	r.st.TotalsKnown, r.st.TotalFiles, r.st.TotalBytes = true, res.Files, res.Bytes
}

// enqueue adds planned work: merged into the node's open batch until that
// holds BatchSize entries, so pages split over many nodes still make full
// batches.
func (r *jobRun) enqueue(w work) {
	if w.attempts > 0 || w.retry {
		r.queue = append(r.queue, w)
		return
	}
	size := r.st.Options.BatchSize
	key := w.batch.NodeID
	if w.verify {
		key += "\x00verify"
	}
	ob := r.open[key]
	if ob == nil {
		ob = &work{batch: workflows.NodeBatch{NodeID: w.batch.NodeID, TaskQueue: w.batch.TaskQueue}, verify: w.verify}
		r.open[key] = ob
	}
	for _, e := range w.batch.Entries {
		ob.batch.Entries = append(ob.batch.Entries, e)
		if len(ob.batch.Entries) >= size {
			r.queue = append(r.queue, *ob)
			ob.batch.Entries = nil
		}
	}
	if len(ob.batch.Entries) == 0 {
		delete(r.open, key)
	}
}

// flushOpen queues every partly filled batch.
func (r *jobRun) flushOpen() {
	keys := make([]string, 0, len(r.open))
	//workflowcheck:ignore the keys are sorted below
	for k := range r.open {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r.queue = append(r.queue, *r.open[k])
		delete(r.open, k)
	}
}

// dispatch starts queued batches within each node's window.
func (r *jobRun) dispatch(ctx workflow.Context) {
	if r.st.Options.DryRun {
		// A dry run lists and plans, counts what qualifies, changes nothing.
		r.queue = nil
		r.open = map[string]*work{}
		return
	}
	if len(r.open) > 0 && r.listing == nil && len(r.queue) == 0 && len(r.running) == 0 {
		// Nothing else to wait for: do not hold a partial batch back.
		r.flushOpen()
	}
	rest := r.queue[:0]
	for _, w := range r.queue {
		if r.perNode[w.batch.NodeID] >= batchesPerNode {
			rest = append(rest, w)
			continue
		}
		r.startBatch(ctx, w)
	}
	r.queue = rest
}

func (r *jobRun) batchInput(w work) workflows.BatchInput {
	o := r.st.Options
	in := workflows.BatchInput{
		JobID: r.st.JobID, Type: r.st.Type, Source: r.st.Path, Dst: r.st.Dst, Entries: w.batch.Entries,
		MetadataOnly: o.MetadataOnly, SkipIfExists: o.SkipIfExists || w.verify, Replicas: o.Replicas,
		CheckContent: o.CheckContent, Overwrite: o.Overwrite, LastAttempt: w.retry,
	}
	if o.Bandwidth > 0 {
		// Every batch that may run at once gets an equal share, so the job as
		// a whole never exceeds its limit.
		slots := int64(max(r.liveNodes, 1) * batchesPerNode)
		in.Bandwidth = max(o.Bandwidth/slots, 1)
	}
	return in
}

func (r *jobRun) startBatch(ctx workflow.Context, w work) {
	name := workflows.ActivityLoadBatch
	if r.st.Type != workflows.JobLoad {
		name = workflows.ActivityCopyBatch
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              w.batch.TaskQueue,
		ScheduleToStartTimeout: nodeScheduleToStart,
		StartToCloseTimeout:    6 * time.Hour,
		HeartbeatTimeout:       nodeHeartbeat,
		// The workflow re-plans a failed batch itself (its node may be gone),
		// so Temporal does not retry it on the same queue.
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	f := workflow.ExecuteActivity(actx, name, r.batchInput(w))
	r.running = append(r.running, &inflight{w: w, future: f})
	r.perNode[w.batch.NodeID]++
}

func (r *jobRun) removeRunning(b *inflight) {
	for i, x := range r.running {
		if x == b {
			r.running = append(r.running[:i], r.running[i+1:]...)
			break
		}
	}
	r.perNode[b.w.batch.NodeID]--
	if r.perNode[b.w.batch.NodeID] <= 0 {
		delete(r.perNode, b.w.batch.NodeID)
	}
}

func (r *jobRun) onBatchDone(ctx workflow.Context, b *inflight) {
	r.removeRunning(b)
	r.batchesDone++
	var res workflows.BatchResult
	err := b.future.Get(ctx, &res)
	if err == nil {
		r.fold(ctx, b.w, res)
		return
	}
	// The batch failed as a whole: its node died, timed out, or is gone.
	// Keep what its last heartbeat reported done and re-plan the rest.
	done := 0
	var p workflows.BatchProgress
	var te *temporal.TimeoutError
	if errors.As(err, &te) && te.HasLastHeartbeatDetails() && te.LastHeartbeatDetails(&p) == nil {
		done = min(p.Done, len(b.w.batch.Entries))
		r.fold(ctx, b.w, p.Result)
	}
	rest := b.w.batch.Entries[done:]
	if len(rest) == 0 {
		return
	}
	if b.w.attempts+1 >= maxBatchAttempts {
		r.failEntries(ctx, b.w, rest, workflows.ErrTypeUnavailable, "batch failed "+fmt.Sprint(maxBatchAttempts)+" times: "+rootMessage(err))
		return
	}
	r.log.Info("re-planning a failed batch", "node", b.w.batch.NodeID, "entries", len(rest), "error", err)
	r.startPlanAttempt(ctx, rest, b.w.retry, b.w.verify, b.w.attempts+1)
}

// fold adds a batch result to the counters and records failures.
func (r *jobRun) fold(ctx workflow.Context, w work, res workflows.BatchResult) {
	if w.verify {
		// A verify pass counts only what it had to load again, apart from
		// the main counters, which stay exact for the files of the job.
		r.st.VerifyLoadedFiles += res.Succeeded
		r.st.VerifyLoadedBytes += res.BytesDone
		r.verifyFound += res.Succeeded
		for _, f := range res.Failures {
			r.recordFailure(f)
		}
		r.saveFailures(ctx, res.Failures)
		return
	}
	r.st.Succeeded += res.Succeeded
	r.st.Skipped += res.Skipped
	r.st.BytesDone += res.BytesDone
	r.st.BytesSkipped += res.BytesSkipped
	var final []workflows.Failure
	var byURI map[string]workflows.FileEntry
	for _, f := range res.Failures {
		if f.Retryable && !w.retry && len(r.st.Retry) < maxRetryKept {
			if byURI == nil {
				byURI = make(map[string]workflows.FileEntry, len(w.batch.Entries))
				for _, e := range w.batch.Entries {
					byURI[e.URI] = e
				}
			}
			if e, ok := byURI[f.Path]; ok {
				r.st.Retry = append(r.st.Retry, e)
				continue
			}
		}
		r.st.Failed++
		r.recordFailure(f)
		final = append(final, f)
	}
	r.saveFailures(ctx, final)
	r.checkThresholds()
}

func (r *jobRun) failEntries(ctx workflow.Context, w work, entries []workflows.FileEntry, reason, msg string) {
	var res workflows.BatchResult
	for _, e := range entries {
		res.Failures = append(res.Failures, workflows.Failure{Path: e.URI, Reason: reason, Message: msg})
	}
	w.retry = true // final
	r.fold(ctx, w, res)
}

func (r *jobRun) recordFailure(f workflows.Failure) {
	if len(f.Message) > 500 {
		f.Message = f.Message[:500] + "…"
	}
	r.st.RecentFailures = append(r.st.RecentFailures, f)
	if n := len(r.st.RecentFailures) - workflows.RecentFailuresKept; n > 0 {
		r.st.RecentFailures = append([]workflows.Failure(nil), r.st.RecentFailures[n:]...)
	}
}

// saveFailures appends final failures to the job's failure list. It is fire
// and forget for the job's outcome: a failure list that cannot be written
// does not change what happened to the files.
func (r *jobRun) saveFailures(ctx workflow.Context, failures []workflows.Failure) {
	if len(failures) == 0 {
		return
	}
	r.failSeq++
	f := workflow.ExecuteActivity(coordinatorOptions(ctx, 5*time.Minute), workflows.ActivitySaveFailures,
		workflows.SaveFailuresInput{JobID: r.st.JobID, Seq: r.failSeq, Failures: failures})
	r.side = append(r.side, &sideActivity{future: f})
}

func (r *jobRun) checkThresholds() {
	o := r.st.Options
	if r.failEarly != "" {
		return
	}
	if o.FailureCountThreshold > 0 && r.st.Failed >= o.FailureCountThreshold {
		r.failEarly = fmt.Sprintf("%d files failed, reaching the failure count threshold of %d", r.st.Failed, o.FailureCountThreshold)
	}
	done := r.st.Processed()
	if o.FailureRatioThreshold > 0 && done >= 10 && float64(r.st.Failed)/float64(done) >= o.FailureRatioThreshold {
		r.failEarly = fmt.Sprintf("%.2f%% of files failed, reaching the failure ratio threshold of %.2f%%",
			100*float64(r.st.Failed)/float64(done), 100*o.FailureRatioThreshold)
	}
}

// startPlan groups entries by node on the current ring.
func (r *jobRun) startPlan(ctx workflow.Context, entries []workflows.FileEntry, retry, verify bool) {
	r.startPlanAttempt(ctx, entries, retry, verify, 0)
}

func (r *jobRun) startPlanAttempt(ctx workflow.Context, entries []workflows.FileEntry, retry, verify bool, attempts int) {
	f := workflow.ExecuteActivity(coordinatorOptions(ctx, 5*time.Minute), workflows.ActivityPlan, workflows.PlanInput{Type: r.st.Type, Entries: entries})
	r.side = append(r.side, &sideActivity{future: f, plan: true, retry: retry, verify: verify, attempts: attempts, entries: entries})
}

func (r *jobRun) onSideDone(ctx workflow.Context, a *sideActivity) {
	for i, x := range r.side {
		if x == a {
			r.side = append(r.side[:i], r.side[i+1:]...)
			break
		}
	}
	if !a.plan {
		var res workflows.SaveFailuresResult
		if err := a.future.Get(ctx, &res); err == nil && res.Location != "" {
			r.st.FailuresLocation = res.Location
		}
		return
	}
	var res workflows.PlanResult
	if err := a.future.Get(ctx, &res); err != nil {
		r.failEntries(ctx, work{retry: true}, a.entries, workflows.ErrTypeNoNodes, "cannot place files on the cache: "+rootMessage(err))
		return
	}
	r.liveNodes = res.LiveNodes
	r.noteNodes(res.Nodes)
	for _, b := range res.Batches {
		r.queue = append(r.queue, work{batch: b, attempts: a.attempts, retry: a.retry, verify: a.verify})
	}
}

// noteNodes records the ring's members and which ones left since last seen.
func (r *jobRun) noteNodes(nodes []string) {
	if len(nodes) == 0 {
		return
	}
	for _, old := range r.st.Nodes {
		if !contains(nodes, old) && !contains(r.st.LostNodes, old) {
			r.st.LostNodes = append(r.st.LostNodes, old)
		}
	}
	r.st.Nodes = append([]string(nil), nodes...)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// nextPass starts the retry pass or a verify pass when one is due, and
// reports whether it did.
func (r *jobRun) nextPass(ctx workflow.Context) bool {
	if r.failEarly != "" || r.st.Options.DryRun {
		return false
	}
	if len(r.st.Retry) > 0 {
		r.st.Stage = workflows.StageRetrying
		retry := r.st.Retry
		r.st.Retry = nil
		r.startPlan(ctx, retry, true, false)
		return true
	}
	lost := len(r.st.LostNodes) > 0 && r.st.Type == workflows.JobLoad
	if (r.st.Options.Verify || lost) && r.st.Type == workflows.JobLoad {
		if r.st.VerifyPass > 0 && r.verifyFound == 0 && !lost {
			return false
		}
		// A verify pass after lost nodes reloads what they held onto the
		// files' new owners; files cached there already are skipped.
		r.st.LostNodes = nil
		if r.st.VerifyPass >= workflows.MaxVerifyPasses {
			return false
		}
		r.st.VerifyPass++
		r.verifyFound = 0
		r.st.Stage = workflows.StageVerifying
		_ = r.setStatus(ctx, workflows.StatusVerifying)
		r.st.ListingDone = false
		r.st.Cursor = ""
		return true
	}
	return false
}

// finish ends the run SUCCEEDED or FAILED by the terminal rule.
func (r *jobRun) finish(ctx workflow.Context) (State, error) {
	r.st.EndTime = workflow.Now(ctx)
	status := workflows.StatusSucceeded
	switch {
	case r.failEarly != "":
		status = workflows.StatusFailed
		r.st.Reason = r.failEarly
		// Entries listed but never processed were not qualified after all.
		r.st.Qualified = r.st.Processed()
	case r.st.Failed > 0:
		status = workflows.StatusFailed
		r.st.Reason = "Job partially failed."
	case r.st.Options.DryRun:
		r.st.Reason = "dry run: nothing was changed"
	}
	if !r.st.Options.DryRun {
		r.st.Qualified = r.st.Processed()
	}
	r.st.Stage = ""
	r.st.Pending, r.st.Retry = nil, nil
	if r.st.Type == workflows.JobMove && !r.st.Options.DryRun && r.st.Options.IndexFile == "" && r.st.Succeeded > 0 {
		// Directories are removed only when empty, i.e. when every file
		// under them moved; a failure here leaves directories, never data.
		f := workflow.ExecuteActivity(coordinatorOptions(ctx, time.Hour), workflows.ActivityRemoveEmptyDirs, workflows.RemoveEmptyDirsInput{Path: r.st.Path})
		if err := f.Get(ctx, nil); err != nil {
			r.log.Info("removing emptied source directories failed", "error", err)
		}
	}
	if err := r.setStatus(ctx, status); err != nil {
		return r.st, err
	}
	return r.st, nil
}

// finishDraining ends a run that stopped dispatching: stop, early failure or
// continue-as-new.
func (r *jobRun) finishDraining(ctx workflow.Context) (State, error) {
	if r.failEarly != "" {
		r.st.Pending = nil
		return r.finish(ctx)
	}
	r.flushOpen()
	var pending []workflows.FileEntry
	for _, w := range r.queue {
		pending = append(pending, w.batch.Entries...)
	}
	r.queue = nil
	r.st.Pending = pending
	if r.stopReq {
		r.st.EndTime = workflow.Now(ctx)
		r.st.Reason = "stopped"
		if err := r.setStatus(ctx, workflows.StatusStopped); err != nil {
			return r.st, err
		}
		return r.st, nil
	}
	in := r.in
	in.Resume = &r.st
	return State{}, workflow.NewContinueAsNewError(ctx, WorkflowName, in)
}

// rootMessage is the innermost message of a Temporal error chain.
func rootMessage(err error) string {
	return errtext.Root(err)
}
