package workflows

import (
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The hand-over at continue-as-new (README "Jobs and Temporal"): a run that
// is about to continue as new keeps its nodes busy. Batches it dispatches
// from then on run as child workflows (BatchWorkflow) that outlive the run;
// the run ends once its own activities are done, and hands the children's
// references to the next run, which keeps counting them in its window and
// folds their outcomes when they signal SignalBatchDone. Batches of an
// ordinary stretch of a run stay plain activities: a child costs a few more
// Temporal round trips, and only the batches around a hand-over need to
// outlive their run.

const (
	// BatchWorkflowName is the registered name of BatchWorkflow.
	BatchWorkflowName = "FerryBatch"
	// SignalBatchDone is how a BatchWorkflow hands its outcome to the job
	// (to whichever run of it is current).
	SignalBatchDone = "batch-done"
	// versionHandover marks the runs that hand their in-flight batches
	// over at continue-as-new instead of waiting for them.
	versionHandover = "handover-batches"
)

// BatchWorkflowInput runs one batch activity as a child of a job.
type BatchWorkflowInput struct {
	// Activity is ActivityLoadBatch or ActivityCopyBatch.
	Activity string     `json:"activity"`
	Batch    BatchInput `json:"batch"`
}

// BatchDone is the outcome a BatchWorkflow signals to its job: the
// result, or the error that ended the batch with the progress it reported
// (its last heartbeat, or the details of its cancellation).
type BatchDone struct {
	WorkflowID string         `json:"workflowId"`
	Result     BatchResult    `json:"result"`
	Err        string         `json:"err,omitempty"`
	Progress   *BatchProgress `json:"progress,omitempty"`
}

// RunningBatch is a batch running as a child workflow, carried to the next
// run by continue-as-new.
type RunningBatch struct {
	Ref        BatchRef `json:"ref"`
	WorkflowID string   `json:"workflowId"`
	// NodeLost: its cancellation was asked because its node left.
	NodeLost bool `json:"nodeLost,omitempty"`
}

// batchActivityOptions are the options of a batch activity on the node
// queue q, whether the job or a BatchWorkflow runs it.
func batchActivityOptions(q string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:           q,
		StartToCloseTimeout: 6 * time.Hour,
		HeartbeatTimeout:    nodeHeartbeat,
		// A batch cancelled because its node left reports its progress
		// (or times out with its last heartbeat) before it is re-planned.
		WaitForCancellation: true,
		// The workflow re-plans a failed batch itself (its node may be gone),
		// so Temporal does not retry it on the same queue.
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	}
}

// BatchWorkflow runs one batch activity on its node and signals the
// outcome to the job that started it. Cancelling it cancels the batch,
// which then hands back its progress.
func BatchWorkflow(ctx workflow.Context, in BatchWorkflowInput) error {
	info := workflow.GetInfo(ctx)
	actx := workflow.WithActivityOptions(ctx, batchActivityOptions(in.Batch.Ref.TaskQueue))
	done := BatchDone{WorkflowID: info.WorkflowExecution.ID}
	if err := workflow.ExecuteActivity(actx, in.Activity, in.Batch).Get(ctx, &done.Result); err != nil {
		done.Result = BatchResult{}
		done.Err = rootMessage(err)
		var p BatchProgress
		if progressOf(err, &p) {
			done.Progress = &p
		}
	}
	if info.ParentWorkflowExecution == nil {
		return errors.New("a batch workflow runs as the child of a job")
	}
	// The signal goes out even when this workflow was cancelled: the job
	// waits for it.
	sctx, _ := workflow.NewDisconnectedContext(ctx)
	return workflow.SignalExternalWorkflow(sctx, info.ParentWorkflowExecution.ID, "", SignalBatchDone, done).Get(sctx, nil)
}

// batchError is the error a BatchWorkflow reported, as the job sees it.
type batchError struct {
	msg      string
	progress *BatchProgress
}

func (e *batchError) Error() string { return e.msg }

// handsOver reports whether this run hands its batches over at
// continue-as-new. Runs recorded before the hand-over existed replay
// without it (they waited for their batches).
func (r *jobRun) handsOver(ctx workflow.Context) bool {
	if !r.versionRead {
		r.versionRead = true
		r.handover = workflow.GetVersion(ctx, versionHandover, workflow.DefaultVersion, 1) >= 1
	}
	return r.handover
}

// restoreRunning takes over the batches the previous run handed over.
func (r *jobRun) restoreRunning(ctx workflow.Context) {
	for _, rb := range r.c.Running {
		b := &inflight{ref: rb.Ref, child: rb.WorkflowID, nodeLost: rb.NodeLost}
		b.cancel = r.cancelChild(ctx, rb.WorkflowID)
		r.running = append(r.running, b)
		r.perNode[rb.Ref.NodeID]++
	}
	r.c.Running = nil
}

// carriedRunning names the batches still running as children, for the
// next run.
func (r *jobRun) carriedRunning() []RunningBatch {
	var out []RunningBatch
	for _, b := range r.running {
		if b.child != "" {
			out = append(out, RunningBatch{Ref: b.ref, WorkflowID: b.child, NodeLost: b.nodeLost})
		}
	}
	return out
}

func (r *jobRun) cancelChild(ctx workflow.Context, id string) workflow.CancelFunc {
	return func() {
		// A child that already ended answers with an error; its outcome
		// is on its way as a signal either way.
		_ = workflow.RequestCancelExternalWorkflow(ctx, id, "")
	}
}

// startChild dispatches b as a BatchWorkflow, so that it outlives this run.
func (r *jobRun) startChild(ctx workflow.Context, b BatchRef) {
	name := ActivityLoadBatch
	if r.c.Type != JobLoad {
		name = ActivityCopyBatch
	}
	id := "ferry-batch:" + r.c.JobID + ":" + b.Key
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		TaskQueue:  CoordinatorTaskQueue,
		// The child outlives the run that started it: the next run folds
		// its outcome.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	f := workflow.ExecuteChildWorkflow(cctx, BatchWorkflowName, BatchWorkflowInput{Activity: name, Batch: r.batchInput(b)})
	r.running = append(r.running, &inflight{ref: b, child: id, started: f.GetChildWorkflowExecution(), cancel: r.cancelChild(ctx, id)})
	r.perNode[b.NodeID]++
}

// onChildStarted notes that a child batch runs, or fails it when it could
// not be started.
func (r *jobRun) onChildStarted(ctx workflow.Context, b *inflight) {
	f := b.started
	b.started = nil
	if err := f.Get(ctx, nil); err != nil {
		r.batchEnded(ctx, b, BatchResult{}, err)
	}
}

// receiveBatchDone folds the outcomes children have signalled so far.
func (r *jobRun) receiveBatchDone(ctx workflow.Context) {
	var d BatchDone
	for r.doneCh.ReceiveAsync(&d) {
		r.onChildDone(ctx, d)
		d = BatchDone{}
	}
}

func (r *jobRun) onChildDone(ctx workflow.Context, d BatchDone) {
	for _, b := range r.running {
		if b.child != d.WorkflowID {
			continue
		}
		if d.Err == "" {
			r.batchEnded(ctx, b, d.Result, nil)
		} else {
			r.batchEnded(ctx, b, BatchResult{}, &batchError{msg: d.Err, progress: d.Progress})
		}
		return
	}
	// An outcome already folded (a duplicate start that failed, whose
	// namesake ran): nothing is counted twice.
	r.log.Info("batch outcome of no running batch ignored", "workflowId", d.WorkflowID)
}

// childrenPending reports whether a child batch runs in this job.
func (r *jobRun) childrenPending() bool {
	for _, b := range r.running {
		if b.child != "" {
			return true
		}
	}
	return false
}

// activitiesRunning reports whether a batch runs as an activity of this
// run.
func (r *jobRun) activitiesRunning() bool {
	for _, b := range r.running {
		if b.child == "" {
			return true
		}
	}
	return false
}

// busyBesidesChildren is busy without the child batches that have
// started: what a run waits for before it hands over.
func (r *jobRun) busyBesidesChildren() bool {
	if r.partitioning != nil || r.counting != nil || r.liveCheck != nil ||
		len(r.listings) > 0 || len(r.plans) > 0 || len(r.saves) > 0 {
		return true
	}
	for _, b := range r.running {
		if b.child == "" || b.started != nil {
			return true
		}
	}
	return false
}
