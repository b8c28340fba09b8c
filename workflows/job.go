package workflows

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/internal/errtext"
)

// Tuning of the job workflow. They are part of its deterministic behaviour:
// changing one changes the commands a replay expects, so a change needs
// workflow.GetVersion.
const (
	// batchesPerNode is how many batches may be in flight on one node.
	batchesPerNode = 4
	// maxBatchAttempts bounds how often one piece of work is re-planned after
	// its node failed it as a whole (a node that left is not the work's
	// fault and does not count).
	maxBatchAttempts = 5
	// nodeHeartbeat is the batch heartbeat timeout: a node that dies
	// mid-batch is noticed within it. A batch waiting in its node's queue
	// has no timeout: a busy node is not a dead one; membership says which
	// nodes are gone.
	nodeHeartbeat = 15 * time.Second
	// livenessEvery is how often membership is read while batches are out.
	livenessEvery = 10 * time.Second
	// replanWait is how long work waits before it is planned again when
	// no cache node was live.
	replanWait = 5 * time.Second
	// listParallel is how many partitions are listed at once.
	listParallel = 4
	// maxPartitions bounds the partitions of a source in runs before
	// versionSplit (split.go).
	maxPartitions = 16
	// dirWindow is the most directories of a partition one listing page
	// is given (and may reach).
	dirWindow = 64
	// DefaultPageSize is the number of entries of one listing page, at least
	// the batch size. A page is one activity and one manifest, whatever the
	// batch size: pages are large so that history grows slowly.
	DefaultPageSize = 5000
	// dryRunPageSize is the page of a dry run, which only counts.
	dryRunPageSize = 20_000
	// countBudget is how many entries one count-only scan call covers
	// before it hands its cursor back, so the scan survives continue-as-new.
	countBudget = 200_000
	// historySizeLimit and historyLengthLimit end a run by continue-as-new
	// well inside Temporal's limits (50 MB, 51,200 events), whether or not
	// the server suggests it.
	historySizeLimit   = 8 << 20
	historyLengthLimit = 10_000
	// recentMessageMax bounds a failure message kept in the state.
	recentMessageMax = 300
)

// JobWorkflow runs one load, copy or move job (see the package comment).
func JobWorkflow(ctx workflow.Context, in JobInput) (JobState, error) {
	r, err := newJobRun(ctx, in)
	if err != nil {
		return JobState{}, err
	}
	if r.version >= truthVersion {
		// Temporal's "Request Cancellation" is a stop: the run's work goes
		// on in a context the request does not cancel, so that batches hand
		// back their progress and the run ends STOPPED, resumable, with its
		// counters (r.outer.Done() is watched as a stop signal).
		r.outer = ctx
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	return r.run(ctx)
}

// inflight is a dispatched batch: an activity (future), or a child
// workflow (child, see handover.go) whose outcome arrives as a signal.
type inflight struct {
	ref    BatchRef
	future workflow.Future
	cancel workflow.CancelFunc
	// child is the BatchWorkflow's ID; started resolves when it has
	// started (nil once it has).
	child   string
	started workflow.Future
	// nodeLost: the batch was cancelled because its node left the ring.
	nodeLost bool
	// stopped: the batch was cancelled because the job is stopping.
	stopped bool
}

// listing is a ListPage activity in flight for one partition.
type listing struct {
	idx    int
	out    ManifestRef
	future workflow.Future
}

// planning is a PlanRange activity in flight.
type planning struct {
	rng    PlanRange
	future workflow.Future
}

// saving is a SaveBatchFailures activity in flight.
type saving struct {
	batch  BatchRef
	future workflow.Future
}

// jobRun is one run of a job: the carried state c and what lives only
// while this run does (futures, timers, signals received).
type jobRun struct {
	in  JobInput
	c   JobCarry
	log interface{ Info(string, ...interface{}) }

	status           JobStatus
	reason           string
	endTime          time.Time
	failuresLocation string

	running      []*inflight
	perNode      map[string]int
	listings     []*listing
	plans        []*planning
	saves        []*saving
	partitioning workflow.Future
	counting     workflow.Future
	countCancel  workflow.CancelFunc
	liveTimer    workflow.Future
	liveCheck    workflow.Future
	replanTimer  workflow.Future

	stopReq     bool
	failEarly   string
	batchesDone int
	// ringChecked: this run read membership once more before ending;
	// ringSeenAt is when it last learnt the ring's members (workflow time).
	ringChecked bool
	ringSeenAt  time.Time

	// doneCh receives the outcomes of child batches; versionRead and
	// handover memoize handsOver.
	doneCh      workflow.ReceiveChannel
	versionRead bool
	handover    bool
	// countTimer runs until the count-only scan may start, countWaited
	// once it has fired.
	countWaited bool
	countTimer  workflow.Future

	// version is the truthChange version of this run (see truth.go);
	// outer is the workflow's own context when cancellation is a stop.
	version workflow.Version
	outer   workflow.Context
	// progressShown and progressAt are the last FerryJobProgress value
	// and when it was set.
	progressShown string
	progressAt    time.Time
}

func newJobRun(ctx workflow.Context, in JobInput) (*jobRun, error) {
	info := workflow.GetInfo(ctx)
	now := workflow.Now(ctx)
	r := &jobRun{in: in, log: workflow.GetLogger(ctx), perNode: map[string]int{}}
	r.version = workflow.GetVersion(ctx, truthChange, workflow.DefaultVersion, truthVersion)
	switch {
	case in.Carry != nil:
		r.c = *in.Carry
	case in.Resume != nil && in.Resume.Carry != nil:
		// A new run after a stop: the clock keeps the time already spent.
		r.c = *in.Resume.Carry
		if !in.Resume.EndTime.IsZero() {
			r.c.ElapsedBefore += in.Resume.EndTime.Sub(in.Resume.RunStartTime)
		}
		r.c.RunStartTime = now
	default:
		r.c = JobCarry{
			Type: in.Type, Path: in.Path, Dst: in.Dst, Options: in.Options.WithDefaults(in.Type),
			SubmitTime: now, RunStartTime: now, Stage: StageListing,
		}
		if in.Resume != nil {
			// A job stopped by the first engine: its work list is not
			// readable here, so it starts again under the same job ID.
			r.c.JobID = in.Resume.JobID
		}
	}
	if r.c.JobID == "" {
		r.c.JobID = info.WorkflowExecution.RunID
	}
	r.c.Runs++
	r.status = StatusRunning
	if r.c.Stage == StageVerifying {
		r.status = StatusVerifying
	}
	if err := workflow.UpsertMemo(ctx, map[string]interface{}{"jobId": r.c.JobID}); err != nil {
		return nil, err
	}
	if err := r.setStatus(ctx, r.status); err != nil {
		return nil, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (JobState, error) {
		return r.view(), nil
	}); err != nil {
		return nil, err
	}
	if err := r.registerBandwidth(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// view is the progress view of the job.
func (r *jobRun) view() JobState {
	c := &r.c
	v := r.counters()
	v.Options = c.Options
	v.RecentFailures = append([]Failure(nil), c.RecentFailures...)
	v.SkipReasons = append([]SkipCount(nil), c.SkipReasons...)
	v.SkippedEntries = append([]SkippedEntry(nil), c.SkippedEntries...)
	v.FailuresLocation = r.failuresLocation
	v.Nodes, v.LostNodes, v.Warnings = c.Nodes, c.LostNodes, c.Warnings
	return v
}

// counters is the view without its lists: what the progress line needs,
// cheap enough for every turn of the run's loop.
func (r *jobRun) counters() JobState {
	c := &r.c
	n := &c.Counters
	v := JobState{
		JobID: c.JobID, Type: c.Type, Path: c.Path, Dst: c.Dst,
		Status: r.status, Reason: r.reason, Stage: c.Stage,
		SubmitTime: c.SubmitTime, RunStartTime: c.RunStartTime, EndTime: r.endTime, ElapsedBefore: c.ElapsedBefore,
		ListingDone: r.listingDone(), PagesListed: n.PagesListed, Partitions: len(c.Partitions),
		TotalsKnown: n.TotalsKnown, TotalFiles: n.TotalFiles, TotalBytes: n.TotalBytes,
		Qualified: n.Qualified, QualifiedSize: n.QualifiedSize,
		Succeeded: n.Succeeded, Skipped: n.Skipped, Failed: n.Failed,
		BytesDone: n.BytesDone, BytesSkipped: n.BytesSkipped,
		InFlight: len(r.running), Queued: len(c.Queue),
		VerifyPass: c.VerifyPass, VerifyLoadedFiles: n.VerifyLoadedFiles, VerifyLoadedBytes: n.VerifyLoadedBytes,
		VerifyFailed: n.VerifyFailed, Runs: c.Runs,
	}
	if !r.status.Active() {
		v.Stage = ""
	}
	return v
}

func (r *jobRun) setStatus(ctx workflow.Context, s JobStatus) error {
	r.status = s
	updates := []temporal.SearchAttributeUpdate{temporal.NewSearchAttributeKeyKeyword(SearchAttrJobState).ValueSet(string(s))}
	if r.version >= truthVersion && r.keepsProgressAttribute(ctx) {
		now := workflow.Now(ctx)
		updates = append(updates, r.progressAttribute(ProgressLine(r.counters(), now), now))
	}
	return workflow.UpsertTypedSearchAttributes(ctx, updates...)
}

func (r *jobRun) workStage() Stage {
	switch r.c.Type {
	case JobCopy:
		return StageCopying
	case JobMove:
		return StageMoving
	}
	return StageLoading
}

func coordinatorOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           CoordinatorTaskQueue,
		StartToCloseTimeout: timeout,
		// A coordinator that dies mid-activity is noticed within this.
		HeartbeatTimeout: 30 * time.Second,
		RetryPolicy:      coordinatorRetries(),
	})
}

func coordinatorRetries() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        30 * time.Second,
		MaximumAttempts:        10,
		NonRetryableErrorTypes: NonRetryableErrorTypes,
	}
}

// coordinatorStep runs the coordinator activity name: for runs that follow
// versionLocalSteps, as a local activity, in the workflow task that asks
// for it (the coordinator's worker runs the job's workflow tasks); before,
// as an activity on the coordinator's task queue. A local activity saves
// the job one round through the server (an activity task, then another
// workflow task), about 10 ms on the embedded server, which a job of a
// few files or of cached files spends mostly in such rounds. It suits the
// steps that need no heartbeat and are idempotent: a worker lost in the
// middle of one is noticed by the workflow task's timeout, and the next
// worker runs the step again from the start.
func coordinatorStep(ctx workflow.Context, timeout time.Duration, name string, in any) workflow.Future {
	if follows(ctx, versionLocalSteps) {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: timeout,
			RetryPolicy:         coordinatorRetries(),
		})
		return workflow.ExecuteLocalActivity(lctx, name, in)
	}
	return workflow.ExecuteActivity(coordinatorOptions(ctx, timeout), name, in)
}

// versionLocalSteps marks the runs that partition the source, read the
// ring a last time and finish the job in local activities (coordinatorStep).
const versionLocalSteps = "local-partition-finish"

func (r *jobRun) run(ctx workflow.Context) (JobState, error) {
	stopCh := workflow.GetSignalChannel(ctx, SignalStop)
	r.doneCh = workflow.GetSignalChannel(ctx, SignalBatchDone)
	r.restoreRunning(ctx)
	for {
		// Drain stop signals and batch outcomes without blocking (also
		// before a continue-as-new, so that none is lost between runs).
		for stopCh.ReceiveAsync(nil) {
			r.stopReq = true
		}
		r.receiveBatchDone(ctx)
		if r.outer != nil && r.outer.Err() != nil {
			r.stopReq = true
		}
		if r.stopReq {
			r.cancelForStop()
		}
		r.showProgress(ctx)
		draining := r.stopReq || r.failEarly != "" || r.wantContinueAsNew(ctx)
		if draining && r.counting != nil {
			// The scan's progress up to its last budget is carried; the
			// call in flight is not worth delaying a stop for.
			r.countCancel()
			r.counting = nil
		}
		if !draining {
			r.startCounting(ctx)
			r.startPartitioning(ctx)
			r.startListing(ctx)
			r.dispatch(ctx)
			r.watchNodes(ctx)
			if len(r.c.Unplanned) > 0 {
				// Carried across continue-as-new or stop: place it again soon.
				r.armReplan(ctx)
			}
		}
		if draining && !r.stopReq && r.failEarly == "" && r.handsOver(ctx) {
			// Continue-as-new without a pause: the nodes' free slots take
			// batches that outlive this run, which ends once its own
			// activities are done; until then the listing keeps the queue
			// filled, so that the next run has work at hand.
			if r.activitiesRunning() {
				r.startListing(ctx)
			}
			r.dispatch(ctx)
			if !r.busyBesidesChildren() {
				return r.finishDraining(ctx)
			}
		} else if draining && !r.busy() {
			return r.finishDraining(ctx)
		}
		if !draining && r.idle() && r.listingDone() {
			if r.checkRingBeforeEnd(ctx) {
				continue
			}
			if r.nextPass(ctx) {
				continue
			}
			return r.finish(ctx)
		}
		r.wait(ctx, stopCh)
	}
}

// wait blocks until one thing in flight completes or a signal arrives.
func (r *jobRun) wait(ctx workflow.Context, stopCh workflow.ReceiveChannel) {
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(stopCh, func(c workflow.ReceiveChannel, more bool) {
		c.Receive(ctx, nil)
		r.stopReq = true
	})
	if r.outer != nil && !r.stopReq {
		sel.AddReceive(r.outer.Done(), func(workflow.ReceiveChannel, bool) { r.stopReq = true })
	}
	if r.partitioning != nil {
		sel.AddFuture(r.partitioning, func(f workflow.Future) { r.onPartitioned(ctx, f) })
	}
	if r.counting != nil {
		sel.AddFuture(r.counting, func(f workflow.Future) { r.onCounted(ctx, f) })
	}
	if r.countTimer != nil {
		sel.AddFuture(r.countTimer, func(workflow.Future) { r.onCountTimer() })
	}
	if r.liveTimer != nil {
		sel.AddFuture(r.liveTimer, func(workflow.Future) { r.onLiveTimer(ctx) })
	}
	if r.liveCheck != nil {
		sel.AddFuture(r.liveCheck, func(f workflow.Future) { r.onLiveNodes(ctx, f) })
	}
	if r.replanTimer != nil {
		sel.AddFuture(r.replanTimer, func(workflow.Future) { r.onReplanTimer(ctx) })
	}
	for _, l := range r.listings {
		l := l
		sel.AddFuture(l.future, func(workflow.Future) { r.onListed(ctx, l) })
	}
	for _, p := range r.plans {
		p := p
		sel.AddFuture(p.future, func(workflow.Future) { r.onPlanned(ctx, p) })
	}
	for _, s := range r.saves {
		s := s
		sel.AddFuture(s.future, func(workflow.Future) { r.onSaved(ctx, s) })
	}
	for _, b := range r.running {
		b := b
		switch {
		case b.child == "":
			sel.AddFuture(b.future, func(workflow.Future) { r.onBatchDone(ctx, b) })
		case b.started != nil:
			sel.AddFuture(b.started, func(workflow.Future) { r.onChildStarted(ctx, b) })
		}
	}
	if r.childrenPending() {
		sel.AddReceive(r.doneCh, func(workflow.ReceiveChannel, bool) { r.receiveBatchDone(ctx) })
	}
	sel.Select(ctx)
}

// busy reports whether an activity whose result matters is in flight.
// Timers do not count: they only pace retries.
func (r *jobRun) busy() bool {
	return r.partitioning != nil || r.counting != nil || r.liveCheck != nil ||
		len(r.listings) > 0 || len(r.plans) > 0 || len(r.saves) > 0 || len(r.running) > 0
}

// idle reports that nothing is in flight and no work waits.
func (r *jobRun) idle() bool {
	return !r.busy() && len(r.c.Queue) == 0 && len(r.c.Unplanned) == 0
}

func (r *jobRun) listingDone() bool {
	if !r.c.PassPartitioned {
		return false
	}
	for _, p := range r.c.Partitions {
		if !p.Done {
			return false
		}
	}
	return true
}

// wantContinueAsNew reports whether this run's history is large enough to
// hand over: when the server suggests it, or by its measured size and length.
func (r *jobRun) wantContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	if info.GetContinueAsNewSuggested() || info.GetCurrentHistorySize() > historySizeLimit || info.GetCurrentHistoryLength() > historyLengthLimit {
		return true
	}
	n := r.c.Options.TestContinueAsNewAfter
	return n > 0 && r.batchesDone >= n
}

// pageSize is the entries of one listing page. A dry run keeps no page, so
// its pages are larger: fewer round trips through Temporal.
func (r *jobRun) pageSize() int {
	if r.c.Options.DryRun {
		return max(dryRunPageSize, r.c.Options.BatchSize)
	}
	return max(DefaultPageSize, r.c.Options.BatchSize)
}

// startCounting runs the count-only scan for totals, a budget at a time.
func (r *jobRun) startCounting(ctx workflow.Context) {
	o := r.c.Options
	if r.counting != nil || o.PartialListing || r.c.Count.Done || r.c.Pass != PassMain || !r.countMayStart(ctx) {
		return
	}
	in := ListInput{
		JobID: r.c.JobID, Type: r.c.Type, Path: r.c.Path, IndexFile: o.IndexFile, Cursor: r.c.Count.Cursor,
		FileFilterRegx: o.FileFilterRegx, Filter: o.Filter, CountBudget: countBudget,
	}
	cctx, cancel := workflow.WithCancel(ctx)
	r.counting = workflow.ExecuteActivity(coordinatorOptions(cctx, time.Hour), ActivityCountSource, in)
	r.countCancel = cancel
}

func (r *jobRun) onCounted(ctx workflow.Context, f workflow.Future) {
	r.counting = nil
	var res CountResult
	if err := f.Get(ctx, &res); err != nil {
		// Totals are a nicety; the job goes on without them.
		r.log.Info("count-only scan failed", "error", err)
		r.warn("totals unknown: the count-only scan failed: " + rootMessage(err))
		r.c.Count.Done = true
		return
	}
	r.c.Count.Files += res.Files
	r.c.Count.Bytes += res.Bytes
	r.c.Count.Cursor = res.Cursor
	if res.Done {
		r.c.Count.Done = true
		n := &r.c.Counters
		n.TotalsKnown, n.TotalFiles, n.TotalBytes = true, r.c.Count.Files, r.c.Count.Bytes
	}
}

// startPartitioning splits the source for the main pass, once per job.
func (r *jobRun) startPartitioning(ctx workflow.Context) {
	if r.c.PassPartitioned || r.partitioning != nil {
		return
	}
	r.partitioning = coordinatorStep(ctx, 10*time.Minute, ActivityPartition, PartitionInput{
		JobID: r.c.JobID, Type: r.c.Type, Path: r.c.Path, IndexFile: r.c.Options.IndexFile, Max: r.partitionsWanted(ctx),
	})
}

func (r *jobRun) onPartitioned(ctx workflow.Context, f workflow.Future) {
	r.partitioning = nil
	var res PartitionResult
	if err := f.Get(ctx, &res); err != nil {
		r.failEarly = "listing failed: " + rootMessage(err)
		return
	}
	r.c.Partitions = res.Partitions
	r.c.PassPartitioned = true
}

// queuedEntries counts entries listed but not dispatched: planned, waiting
// for the ring, or being planned.
func (r *jobRun) queuedEntries() int {
	n := 0
	for _, b := range r.c.Queue {
		n += b.Count
	}
	for _, u := range r.c.Unplanned {
		n += u.Count
	}
	for _, p := range r.plans {
		n += p.rng.Count
	}
	return n
}

// window is how many entries the nodes can have in flight at once.
func (r *jobRun) window() int {
	return max(len(r.c.Nodes), 1) * batchesPerNode * r.c.Options.BatchSize
}

// startListing lists the next page of up to listParallel partitions while
// the queue holds less than one window of work, so the next page is ready
// when a batch ends and memory stays bounded whatever the source's size.
func (r *jobRun) startListing(ctx workflow.Context) {
	if !r.c.PassPartitioned {
		return
	}
	o := r.c.Options
	for i := range r.c.Partitions {
		if len(r.listings) >= listParallel {
			return
		}
		p := r.c.Partitions[i]
		if p.Done || r.isListing(i) {
			continue
		}
		if !o.DryRun && r.queuedEntries() >= r.window() {
			return
		}
		out := r.pageRef(p)
		if len(p.Dirs) > 0 {
			// Only the directories this page may reach travel in history.
			p.Dirs = p.Dirs[p.DirIndex:min(len(p.Dirs), p.DirIndex+dirWindow)]
			p.DirIndex = 0
		}
		in := ListPageInput{
			JobID: r.c.JobID, Type: r.c.Type, Path: r.c.Path, Dst: r.c.Dst, IndexFile: o.IndexFile, Partition: p, Out: out, Limit: r.pageSize(),
			FileFilterRegx: o.FileFilterRegx, Filter: o.Filter, CountOnly: o.DryRun,
		}
		if r.c.Pass != PassMain {
			// Retry and verify passes read back manifests already filtered.
			in.FileFilterRegx, in.Filter = "", Filter{}
		}
		in.CheckCached = r.checksCached(ctx)
		f := workflow.ExecuteActivity(coordinatorOptions(ctx, 10*time.Minute), ActivityListPage, in)
		r.listings = append(r.listings, &listing{idx: i, out: out, future: f})
	}
}

func (r *jobRun) isListing(i int) bool {
	for _, l := range r.listings {
		if l.idx == i {
			return true
		}
	}
	return false
}

// pageRef names the manifest a partition's next page is written to: the
// main pass writes pages (kept for verify passes), the others plans.
func (r *jobRun) pageRef(p Partition) ManifestRef {
	switch r.c.Pass {
	case PassRetry:
		return ManifestRef{Kind: ManifestPlans, Key: fmt.Sprintf("r%03d-%08d", p.ID, p.Seq)}
	case PassVerify:
		return ManifestRef{Kind: ManifestPlans, Key: fmt.Sprintf("v%d-%03d-%08d", r.c.VerifyPass, p.ID, p.Seq)}
	}
	return ManifestRef{Kind: ManifestPages, Key: fmt.Sprintf("p%03d-%08d", p.ID, p.Seq)}
}

func (r *jobRun) onListed(ctx workflow.Context, l *listing) {
	r.listings = removeItem(r.listings, l)
	var res ListPageResult
	if err := l.future.Get(ctx, &res); err != nil {
		// The listing itself failed after its retries: the job cannot go on.
		r.failEarly = "listing failed: " + rootMessage(err)
		r.c.Partitions[l.idx].Done = true
		return
	}
	old := r.c.Partitions[l.idx]
	part := res.Partition
	if len(old.Dirs) > 0 {
		// The activity saw a window of the directories from DirIndex on.
		part.Dirs = old.Dirs
		part.DirIndex = old.DirIndex + res.Partition.DirIndex
		part.Done = part.DirIndex >= len(old.Dirs)
	}
	part.ID, part.Kind, part.Seq = old.ID, old.Kind, old.Seq+1
	r.c.Partitions[l.idx] = part
	r.splitForIdleListings(ctx, l.idx)
	if r.c.Pass == PassMain {
		r.c.Counters.PagesListed++
		r.c.Counters.Qualified += res.Qualified
		r.c.Counters.QualifiedSize += res.QualifiedSize
		r.totalsFromListing(ctx)
	}
	if res.Unread > 0 && r.c.Options.DryRun && follows(ctx, dryRunUnreadChange) {
		// What the listing could not read, a run would fail: the dry run
		// says so, with the entries.
		r.c.Counters.Failed += res.Unread
		for _, f := range res.UnreadFailures {
			r.recordFailure(f)
		}
	}
	if r.c.Stage == StageListing {
		r.c.Stage = r.workStage()
	}
	if r.c.Options.DryRun || res.Qualified == 0 {
		return
	}
	rng := PlanRange{Src: l.out, Count: int(res.Qualified), Out: l.out, Pass: r.c.Pass}
	r.onPlan(ctx, rng, res.Plan)
}

// onPlan queues planned work, or keeps it for later when no node was live.
func (r *jobRun) onPlan(ctx workflow.Context, rng PlanRange, p Plan) {
	if !p.Planned {
		if rng.Out == rng.Src {
			// A page written unplanned: plan it later into its own object,
			// keeping the page for verify passes.
			rng.Out = r.nextPlanRef()
		}
		r.c.Unplanned = append(r.c.Unplanned, rng)
		r.armReplan(ctx)
		return
	}
	lost, joined, taken := r.noteNodes(ctx, p.Nodes, p.NodesAsOf)
	if taken {
		r.ringSeenAt = workflow.Now(ctx)
	}
	r.replaceAffected(ctx, lost, joined)
	r.foldCached(ctx, rng, p)
	size := r.c.Options.BatchSize
	ring := r.ringIndex(p.Nodes)
	for _, g := range p.Groups {
		for off := 0; off < g.Count; off += size {
			n := min(size, g.Count-off)
			start := g.Start + off
			r.c.Queue = append(r.c.Queue, BatchRef{
				Src: rng.Out, Start: start, Count: n, NodeID: g.NodeID, TaskQueue: g.TaskQueue,
				Key: rng.Out.Key + "-" + strconv.Itoa(start), Attempts: rng.Attempts, Pass: rng.Pass, Ring: ring,
			})
		}
	}
}

func (r *jobRun) nextPlanRef() ManifestRef {
	r.c.Seq++
	return ManifestRef{Kind: ManifestPlans, Key: fmt.Sprintf("q%08d", r.c.Seq)}
}

func (r *jobRun) armReplan(ctx workflow.Context) {
	if r.replanTimer == nil {
		r.replanTimer = workflow.NewTimer(ctx, replanWait)
	}
}

func (r *jobRun) onReplanTimer(ctx workflow.Context) {
	r.replanTimer = nil
	if r.stopReq || r.failEarly != "" {
		return
	}
	waiting := r.c.Unplanned
	r.c.Unplanned = nil
	for _, u := range waiting {
		r.startPlan(ctx, u)
	}
}

// startPlan groups a range of a manifest by node on the current ring.
func (r *jobRun) startPlan(ctx workflow.Context, rng PlanRange) {
	f := workflow.ExecuteActivity(coordinatorOptions(ctx, 10*time.Minute), ActivityPlanRange, PlanRangeInput{JobID: r.c.JobID, Type: r.c.Type, Range: rng})
	r.plans = append(r.plans, &planning{rng: rng, future: f})
}

func (r *jobRun) onPlanned(ctx workflow.Context, p *planning) {
	r.plans = removeItem(r.plans, p)
	var res Plan
	if err := p.future.Get(ctx, &res); err != nil {
		// The manifest store is unreachable or the manifest unreadable, after
		// the activity's retries: nothing can be placed any more.
		r.failEarly = "cannot plan work: " + rootMessage(err)
		return
	}
	r.onPlan(ctx, p.rng, res)
}

// dispatch starts queued batches within each node's window. Work for a
// node that left the ring is planned again instead.
func (r *jobRun) dispatch(ctx workflow.Context) {
	if r.c.Options.DryRun {
		r.c.Queue = nil
		return
	}
	rest := r.c.Queue[:0]
	var lost []BatchRef
	for _, b := range r.c.Queue {
		switch {
		case len(r.c.Nodes) > 0 && !contains(r.c.Nodes, b.NodeID):
			lost = append(lost, b)
		case r.perNode[b.NodeID] >= batchesPerNode:
			rest = append(rest, b)
		case r.handover && r.wantContinueAsNew(ctx):
			r.startChild(ctx, b)
		default:
			r.startBatch(ctx, b)
		}
	}
	r.c.Queue = rest
	for _, b := range lost {
		r.replan(ctx, b, 0, b.Attempts)
	}
}

// replan plans the entries of b from index done on again.
func (r *jobRun) replan(ctx workflow.Context, b BatchRef, done, attempts int) {
	r.startPlan(ctx, PlanRange{Src: b.Src, Start: b.Start + done, Count: b.Count - done, Out: r.nextPlanRef(), Attempts: attempts, Pass: b.Pass})
}

func (r *jobRun) batchInput(b BatchRef) BatchInput {
	o := r.c.Options
	ref := b
	in := BatchInput{
		JobID: r.c.JobID, Type: r.c.Type, Source: r.c.Path, Dst: r.c.Dst, Ref: &ref,
		MetadataOnly: o.MetadataOnly, SkipIfExists: o.SkipIfExists || b.Pass == PassVerify, Replicas: o.Replicas,
		CheckContent: o.CheckContent, Overwrite: o.Overwrite,
		LastAttempt: b.Pass != PassMain, Verify: b.Pass == PassVerify, Resumed: b.Attempts > 0,
	}
	if o.Bandwidth > 0 {
		// The nodes take every batch's bytes from one job-wide budget
		// (package bandwidth). Nodes of older builds pace each batch alone:
		// they get an equal share of every batch that may run at once, so
		// the job as a whole never exceeds its limit there either.
		in.JobBandwidth = o.Bandwidth
		in.BandwidthVersion = r.c.BandwidthVersion
		slots := int64(max(len(r.c.Nodes), 1) * batchesPerNode)
		in.Bandwidth = max(o.Bandwidth/slots, 1)
	}
	return in
}

func (r *jobRun) startBatch(ctx workflow.Context, b BatchRef) {
	name := ActivityLoadBatch
	if r.c.Type != JobLoad {
		name = ActivityCopyBatch
	}
	bctx, cancel := workflow.WithCancel(ctx)
	actx := workflow.WithActivityOptions(bctx, batchActivityOptions(b.TaskQueue))
	if r.version >= truthVersion {
		actx = workflow.WithActivityOptions(actx, batchOptions(actx, b))
	}
	f := workflow.ExecuteActivity(actx, name, r.batchInput(b))
	r.running = append(r.running, &inflight{ref: b, future: f, cancel: cancel})
	r.perNode[b.NodeID]++
}

func (r *jobRun) onBatchDone(ctx workflow.Context, b *inflight) {
	var res BatchResult
	err := b.future.Get(ctx, &res)
	r.batchEnded(ctx, b, res, err)
}

// batchEnded folds the outcome of a batch, activity or child: its result,
// or the progress the error that ended it reported, re-planning the rest.
func (r *jobRun) batchEnded(ctx workflow.Context, b *inflight, res BatchResult, err error) {
	r.running = removeItem(r.running, b)
	if r.perNode[b.ref.NodeID]--; r.perNode[b.ref.NodeID] <= 0 {
		delete(r.perNode, b.ref.NodeID)
	}
	r.batchesDone++
	r.tracksPlacement(ctx) // decided before the first batch is counted
	if err == nil {
		r.fold(b.ref.Pass, res)
		r.placed(ctx, b.ref.Src, b.ref.Start, b.ref.Count, b.ref.NodeID)
		r.placeOnJoined(ctx, b.ref, b.ref.Count)
		return
	}
	// The batch failed as a whole: its node died, timed out, or left.
	// Keep what its last heartbeat reported done and re-plan the rest.
	done := 0
	var p BatchProgress
	if progressOf(err, &p) {
		done = min(max(p.Done, 0), b.ref.Count)
		failures := p.Result.Failures
		p.Result.Failures = nil
		r.fold(b.ref.Pass, p.Result)
		r.placed(ctx, b.ref.Src, b.ref.Start, done, b.ref.NodeID)
		r.placeOnJoined(ctx, b.ref, done)
		if len(failures) > 0 {
			// The node could not write them: record them from here.
			r.startSave(ctx, SaveBatchFailuresInput{JobID: r.c.JobID, Batch: b.ref, Key: b.ref.Key + "-h", Failures: failures,
				LastAttempt: b.ref.Pass != PassMain})
		}
	}
	if done >= b.ref.Count {
		return
	}
	if b.stopped {
		// Stopped, not failed: the rest waits in the queue for a resume,
		// under a key of its own (its failures are recorded by key).
		rest := b.ref
		rest.Start, rest.Count = b.ref.Start+done, b.ref.Count-done
		rest.Key = fmt.Sprintf("%s-s%d", b.ref.Key, done)
		r.c.Queue = append(r.c.Queue, rest)
		return
	}
	attempts := b.ref.Attempts
	if !b.nodeLost {
		attempts++
	}
	if attempts >= maxBatchAttempts {
		rest := b.ref
		rest.Start, rest.Count = b.ref.Start+done, b.ref.Count-done
		r.startSave(ctx, SaveBatchFailuresInput{JobID: r.c.JobID, Batch: rest, Key: b.ref.Key + "-x", FailAll: true,
			Reason: ErrTypeUnavailable, Message: fmt.Sprintf("batch failed %d times: %s", maxBatchAttempts, rootMessage(err)), LastAttempt: true})
		return
	}
	r.log.Info("re-planning a failed batch", "node", b.ref.NodeID, "entries", b.ref.Count-done, "error", err)
	r.replan(ctx, b.ref, done, attempts)
}

// progressOf reads a batch's progress from the error that ended it: the
// last heartbeat of a timeout, or the details of a cancellation or of an
// error the node returned with its progress.
func progressOf(err error, p *BatchProgress) bool {
	var be *batchError
	if errors.As(err, &be) {
		if be.progress == nil {
			return false
		}
		*p = *be.progress
		return true
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) && te.HasLastHeartbeatDetails() {
		return te.LastHeartbeatDetails(p) == nil
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) && ce.HasDetails() {
		return ce.Details(p) == nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		return ae.Details(p) == nil
	}
	return false
}

func (r *jobRun) startSave(ctx workflow.Context, in SaveBatchFailuresInput) {
	f := workflow.ExecuteActivity(coordinatorOptions(ctx, 10*time.Minute), ActivitySaveBatchFailures, in)
	r.saves = append(r.saves, &saving{batch: in.Batch, future: f})
}

func (r *jobRun) onSaved(ctx workflow.Context, s *saving) {
	r.saves = removeItem(r.saves, s)
	var res SaveBatchFailuresResult
	if err := s.future.Get(ctx, &res); err != nil {
		// The files still failed; only their names could not be listed.
		r.warn(fmt.Sprintf("the failures of %d files could not be saved to the failure list: %s", s.batch.Count, rootMessage(err)))
		res = SaveBatchFailuresResult{Failed: int64(s.batch.Count)}
	}
	r.fold(s.batch.Pass, BatchResult{Failed: res.Failed, Retry: res.Retry, Failures: res.Failures})
}

// fold adds a batch result to the counters and records failures.
func (r *jobRun) fold(pass string, res BatchResult) {
	n := &r.c.Counters
	if pass == PassVerify {
		// A verify pass counts only what it had to load again, apart from
		// the main counters, which stay exact for the files of the job.
		n.VerifyLoadedFiles += res.Succeeded
		n.VerifyLoadedBytes += res.BytesDone
		n.VerifyFailed += res.Failed
		r.c.VerifyFound += res.Succeeded
		for _, f := range res.Failures {
			r.recordFailure(f)
		}
		return
	}
	n.Succeeded += res.Succeeded
	n.Skipped += res.Skipped
	r.c.SkipReasons = AddSkips(r.c.SkipReasons, res.SkipReasons)
	r.c.SkippedEntries = AddSkipped(r.c.SkippedEntries, res.SkippedEntries, RecentSkippedKept)
	n.BytesDone += res.BytesDone
	n.BytesSkipped += res.BytesSkipped
	n.Failed += res.Failed
	r.c.Retries += res.Retry
	for _, f := range res.Failures {
		if !f.Retryable || pass != PassMain {
			r.recordFailure(f)
		}
	}
	r.checkThresholds()
}

func (r *jobRun) recordFailure(f Failure) {
	if len(f.Message) > recentMessageMax {
		f.Message = f.Message[:recentMessageMax] + "…"
	}
	r.c.RecentFailures = append(r.c.RecentFailures, f)
	if n := len(r.c.RecentFailures) - RecentFailuresKept; n > 0 {
		r.c.RecentFailures = append([]Failure(nil), r.c.RecentFailures[n:]...)
	}
}

func (r *jobRun) warn(msg string) {
	if len(r.c.Warnings) < 20 {
		r.c.Warnings = append(r.c.Warnings, msg)
	}
}

func (r *jobRun) checkThresholds() {
	o := r.c.Options
	n := &r.c.Counters
	if r.failEarly != "" {
		return
	}
	if o.FailureCountThreshold > 0 && n.Failed >= o.FailureCountThreshold {
		r.failEarly = fmt.Sprintf("%d files failed, reaching the failure count threshold of %d", n.Failed, o.FailureCountThreshold)
	}
	done := n.Succeeded + n.Skipped + n.Failed
	if o.FailureRatioThreshold > 0 && done >= 10 && float64(n.Failed)/float64(done) >= o.FailureRatioThreshold {
		r.failEarly = fmt.Sprintf("%d of the first %d files done failed (%.2f%%), reaching the failure ratio threshold of %.2f%%",
			n.Failed, done, 100*float64(n.Failed)/float64(done), 100*o.FailureRatioThreshold)
	}
}

// watchNodes reads membership every livenessEvery while work is out, so
// that work for a node that left is re-planned at once and a busy node is
// never taken for a dead one.
func (r *jobRun) watchNodes(ctx workflow.Context) {
	if r.liveTimer != nil || r.liveCheck != nil || r.c.Options.DryRun {
		return
	}
	if len(r.running) == 0 && len(r.c.Queue) == 0 {
		return
	}
	r.liveTimer = workflow.NewTimer(ctx, livenessEvery)
}

func (r *jobRun) onLiveTimer(ctx workflow.Context) {
	r.liveTimer = nil
	if r.stopReq || r.failEarly != "" {
		return
	}
	r.startLiveCheck(ctx, false)
}

// startLiveCheck reads membership. last marks the check before the job
// ends, when nothing else is under way: for runs that follow
// versionLocalSteps it is a local activity (see coordinatorStep).
func (r *jobRun) startLiveCheck(ctx workflow.Context, last bool) {
	// An unreadable registry is answered by the next check.
	once := &temporal.RetryPolicy{MaximumAttempts: 1}
	if last && follows(ctx, versionLocalSteps) {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 30 * time.Second, RetryPolicy: once})
		r.liveCheck = workflow.ExecuteLocalActivity(lctx, ActivityLiveNodes)
		return
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           CoordinatorTaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         once,
	})
	r.liveCheck = workflow.ExecuteActivity(actx, ActivityLiveNodes)
}

func (r *jobRun) onLiveNodes(ctx workflow.Context, f workflow.Future) {
	r.liveCheck = nil
	var res LiveNodesResult
	if err := f.Get(ctx, &res); err != nil || !res.OK {
		return // the registry is briefly unavailable: keep the last view
	}
	lost, joined, _ := r.noteNodes(ctx, res.Nodes, res.AsOf)
	r.replaceAffected(ctx, lost, joined)
	for _, b := range r.running {
		if !contains(r.c.Nodes, b.ref.NodeID) && !b.nodeLost {
			b.nodeLost = true
			b.cancel()
		}
	}
}

// noteNodes records the ring's members and returns those that left and
// joined since last seen. A load whose ring changed places the files
// affected again (replace.go), or, when it does not track its placement,
// verifies at the end, so that every file is cached on its owner.
//
// A view older than one already taken (asOf, the registry's clock, before
// NodesAsOf) is left: a page planned before the ring changed can come back
// after the change was seen, and taking its view would bring back a node
// that left (and send its batches there) or drop one that joined. taken
// reports whether the view was taken.
func (r *jobRun) noteNodes(ctx workflow.Context, nodes []string, asOf int64) (lost, joined []string, taken bool) {
	if len(nodes) == 0 {
		return nil, nil, false
	}
	if asOf != 0 && asOf < r.c.NodesAsOf && follows(ctx, versionOrderedViews) {
		return nil, nil, false
	}
	r.c.NodesAsOf = max(r.c.NodesAsOf, asOf)
	nodes = append([]string(nil), nodes...)
	sort.Strings(nodes)
	for _, old := range r.c.Nodes {
		if !contains(nodes, old) {
			if !contains(r.c.LostNodes, old) {
				r.c.LostNodes = append(r.c.LostNodes, old)
			}
			r.c.NodesChanged = true
			lost = append(lost, old)
		}
	}
	if len(r.c.Nodes) > 0 {
		for _, n := range nodes {
			if !contains(r.c.Nodes, n) {
				r.c.NodesChanged = true
				joined = append(joined, n)
			}
		}
	}
	r.c.Nodes = nodes
	return lost, joined, true
}

// dryRunUnreadChange marks the runs whose dry run counts as failed the
// entries its listing could not read.
const dryRunUnreadChange = "dry-run-unread"

// versionOrderedViews marks the runs that leave a view of the ring older
// than one they already took.
const versionOrderedViews = "ordered-ring-views"

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func removeItem[T comparable](xs []T, x T) []T {
	for i, y := range xs {
		if y == x {
			return append(xs[:i], xs[i+1:]...)
		}
	}
	return xs
}

// nextPass starts the retry pass or a verify pass when one is due, and
// reports whether it did. Neither lists the source again: they read back
// the manifests.
func (r *jobRun) nextPass(ctx workflow.Context) bool {
	if r.failEarly != "" || r.c.Options.DryRun {
		return false
	}
	if r.c.Retries > 0 && r.c.Pass == PassMain {
		r.c.Pass = PassRetry
		r.c.Stage = StageRetrying
		r.c.Retries = 0
		r.c.Partitions = []Partition{{Kind: PartitionRetry}}
		return true
	}
	if r.c.NodesChanged && r.c.PlacedMode == placedTracked {
		// The ring's changes were answered as they came (replace.go).
		r.c.NodesChanged, r.c.LostNodes = false, nil
	}
	changed := r.c.NodesChanged && r.c.Type == JobLoad
	if (r.c.Options.Verify || changed) && r.c.Type == JobLoad {
		if r.c.VerifyPass > 0 && r.c.VerifyFound == 0 && !changed {
			return false
		}
		// A verify pass after the ring changed loads what the lost nodes
		// held onto the files' new owners; files cached there are skipped.
		r.c.NodesChanged = false
		r.c.LostNodes = nil
		if r.c.VerifyPass >= MaxVerifyPasses {
			return false
		}
		r.c.VerifyPass++
		r.c.VerifyFound = 0
		r.c.Pass = PassVerify
		r.c.Stage = StageVerifying
		if err := r.setStatus(ctx, StatusVerifying); err != nil {
			r.warn("search attribute: " + err.Error())
		}
		r.c.Partitions = []Partition{{Kind: PartitionPages}}
		return true
	}
	return false
}

// finish ends the run SUCCEEDED or FAILED by the terminal rule, after the
// failure list is written and the job's working manifests are removed.
// verifyFailsChange: from version 1, files a verify pass finds evicted
// make the job FAILED; runs recorded before ended SUCCEEDED.
const verifyFailsChange = "verify-failures-fail"

func (r *jobRun) finish(ctx workflow.Context) (JobState, error) {
	n := &r.c.Counters
	status := StatusSucceeded
	switch {
	case r.failEarly != "":
		status = StatusFailed
		r.reason = r.failEarly
	case n.Failed > 0 && r.c.Options.DryRun:
		status = StatusFailed
		r.reason = fmt.Sprintf("dry run: nothing was changed, but %d entries could not be read, which a run would fail (see the failures)", n.Failed)
	case n.Failed > 0:
		status = StatusFailed
		r.reason = "Job partially failed."
	case n.VerifyFailed > 0 && follows(ctx, verifyFailsChange):
		status = StatusFailed
		r.reason = fmt.Sprintf("%d loaded file(s) were no longer cached whole when verified (see the failure list).", n.VerifyFailed)
	case r.c.Options.DryRun:
		r.reason = "dry run: nothing was changed"
	}
	if !r.c.Options.DryRun {
		// Entries listed but never processed (an early failure) were not
		// qualified after all.
		n.Qualified = n.Succeeded + n.Skipped + n.Failed
		var res FinishJobResult
		f := coordinatorStep(ctx, time.Hour, ActivityFinishJob, FinishJobInput{JobID: r.c.JobID})
		if err := f.Get(ctx, &res); err != nil {
			r.warn("the failure list could not be written or the job's manifests removed: " + rootMessage(err))
		}
		r.failuresLocation = res.FailuresLocation
	}
	r.c.Queue, r.c.Unplanned = nil, nil
	if r.c.Type == JobMove && !r.c.Options.DryRun && r.c.Options.IndexFile == "" && n.Succeeded > 0 {
		// Directories are removed only when empty, i.e. when every file
		// under them moved; a failure here leaves directories, never data.
		f := workflow.ExecuteActivity(coordinatorOptions(ctx, time.Hour), ActivityRemoveEmptyDirs, RemoveEmptyDirsInput{Path: r.c.Path})
		if err := f.Get(ctx, nil); err != nil {
			r.warn("emptied source directories could not be removed: " + rootMessage(err))
		}
	}
	r.endTime = workflow.Now(ctx)
	if err := r.setStatus(ctx, status); err != nil {
		return r.view(), err
	}
	r.showProgress(ctx)
	if r.version >= truthVersion && status == StatusFailed {
		v := r.view()
		return v, temporal.NewNonRetryableApplicationError(r.reason, ErrTypeJobFailed, nil, v)
	}
	return r.view(), nil
}

// finishDraining ends a run that stopped dispatching: stop, early failure or
// continue-as-new. Work not dispatched is carried by reference.
func (r *jobRun) finishDraining(ctx workflow.Context) (JobState, error) {
	if r.failEarly != "" {
		return r.finish(ctx)
	}
	if r.stopReq {
		r.endTime = workflow.Now(ctx)
		r.reason = "stopped"
		if err := r.setStatus(ctx, StatusStopped); err != nil {
			return r.view(), err
		}
		r.showProgress(ctx)
		v := r.view()
		carry := r.c
		v.Carry = &carry
		if r.version >= truthVersion {
			return v, temporal.NewCanceledError(v)
		}
		return v, nil
	}
	if r.version >= truthVersion {
		// The closed run must not match FerryJobState = 'RUNNING'.
		if err := workflow.UpsertTypedSearchAttributes(ctx,
			temporal.NewSearchAttributeKeyKeyword(SearchAttrJobState).ValueSet(SearchStateContinued)); err != nil {
			return JobState{}, err
		}
	}
	in := r.in
	carry := r.c
	carry.Running = r.carriedRunning()
	in.Carry, in.Resume = &carry, nil
	return JobState{}, workflow.NewContinueAsNewError(ctx, JobWorkflowName, in)
}

// rootMessage is the innermost message of a Temporal error chain.
func rootMessage(err error) string {
	return errtext.Root(err)
}
