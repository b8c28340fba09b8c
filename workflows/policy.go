package workflows

import (
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names of the policy-run workflow (see PolicyRunWorkflow).
const (
	// PolicyRunWorkflowName is the registered name of PolicyRunWorkflow: the
	// workflow a policy's Temporal Schedule starts at each scheduled time.
	PolicyRunWorkflowName = "FerryPolicyRun"
	// ActivityPreparePolicyRun turns a policy document and a scheduled time
	// into the job to start (a local activity on the coordinator, registered
	// by package worker; package policies implements it).
	ActivityPreparePolicyRun = "PreparePolicyRun"
	// SearchAttrScheduledStartTime is set by Temporal's scheduler on every
	// workflow a schedule starts: the nominal time of that action (for a
	// trigger, the time of the trigger; for a backfill, the missed time).
	SearchAttrScheduledStartTime = "TemporalScheduledStartTime"
)

// Outcomes of a policy run.
const (
	// PolicyRunStarted: the run started its job and waited for it to end.
	PolicyRunStarted = "STARTED"
	// PolicyRunAlreadyRunning: the job's workflow ID was running already (a
	// hand-submitted job, or an earlier run under overlap allow-all), so this
	// run started nothing: two runs never write the same destination at once.
	PolicyRunAlreadyRunning = "ALREADY_RUNNING"
	// ErrTypePolicyJobFailed is the error type of a policy run whose job
	// ended FAILED; its details hold the PolicyRunResult.
	ErrTypePolicyJobFailed = "POLICY_JOB_FAILED"
)

// PolicyRunInput is the argument of a policy's schedule action.
type PolicyRunInput struct {
	// Policy is the policy's name.
	Policy string `json:"policy"`
	// Document is the policy as JSON (package policies' type). It is parsed
	// when the run starts, by the code of the coordinator that runs it.
	Document string `json:"document"`
}

// PreparePolicyRunInput asks for the job of one run.
type PreparePolicyRunInput struct {
	Document string `json:"document"`
	// ScheduledTime is the run's scheduled time: the reference of the age
	// filters for every page and every retry of the run.
	ScheduledTime time.Time `json:"scheduledTime"`
}

// PreparePolicyRunResult is the job a run starts.
type PreparePolicyRunResult struct {
	// WorkflowID is the job's usual workflow ID (JobWorkflowID).
	WorkflowID string   `json:"workflowId"`
	Job        JobInput `json:"job"`
}

// PolicyRunResult is what a policy run returns.
type PolicyRunResult struct {
	Policy        string    `json:"policy"`
	ScheduledTime time.Time `json:"scheduledTime"`
	// Outcome is PolicyRunStarted or PolicyRunAlreadyRunning.
	Outcome string `json:"outcome"`
	// JobWorkflowID and JobRunID name the job run (for ALREADY_RUNNING, the
	// workflow ID that was busy).
	JobWorkflowID string `json:"jobWorkflowId"`
	JobRunID      string `json:"jobRunId,omitempty"`
	// Job is the job's final state without its work lists.
	Job *JobState `json:"job,omitempty"`
}

// PolicyRunWorkflow is one run of a policy. It reads its scheduled time from
// the search attribute Temporal's scheduler sets, asks the coordinator (a
// local activity, recorded in history) for the job of that time — the
// policy's filter with its ages turned into cut-offs from the scheduled time
// — and runs that job as a child under the job's usual workflow ID, tagged
// with FerryPolicy, waiting for it so that the schedule's overlap policy
// covers the whole job. When the job's workflow ID is busy it starts
// nothing. Cancelled (overlap cancel-other), it asks the job to stop and
// waits for it, so two runs never write at once.
func PolicyRunWorkflow(ctx workflow.Context, in PolicyRunInput) (PolicyRunResult, error) {
	res := PolicyRunResult{Policy: in.Policy, ScheduledTime: scheduledTime(ctx)}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumAttempts:        3,
			NonRetryableErrorTypes: NonRetryableErrorTypes,
		},
	})
	var plan PreparePolicyRunResult
	if err := workflow.ExecuteLocalActivity(lctx, ActivityPreparePolicyRun,
		PreparePolicyRunInput{Document: in.Document, ScheduledTime: res.ScheduledTime}).Get(ctx, &plan); err != nil {
		return res, err
	}
	res.JobWorkflowID = plan.WorkflowID

	// The child starts from a disconnected context: cancelling this run must
	// stop the job gracefully (signal), not cancel its workflow.
	jobCtx, _ := workflow.NewDisconnectedContext(ctx)
	jobCtx = workflow.WithChildOptions(jobCtx, workflow.ChildWorkflowOptions{
		WorkflowID:            plan.WorkflowID,
		TaskQueue:             CoordinatorTaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(SearchAttrJobType).ValueSet(string(plan.Job.Type)),
			temporal.NewSearchAttributeKeyKeyword(SearchAttrJobPath).ValueSet(plan.Job.Path),
			temporal.NewSearchAttributeKeyKeyword(SearchAttrJobState).ValueSet(string(StatusRunning)),
			temporal.NewSearchAttributeKeyKeyword(SearchAttrPolicy).ValueSet(in.Policy),
		),
	})
	child := workflow.ExecuteChildWorkflow(jobCtx, JobWorkflowName, plan.Job)
	var exec workflow.Execution
	if err := child.GetChildWorkflowExecution().Get(jobCtx, &exec); err != nil {
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			res.Outcome = PolicyRunAlreadyRunning
			workflow.GetLogger(ctx).Info("policy run skipped: its job is already running", "job", plan.WorkflowID)
			return res, nil
		}
		return res, err
	}
	res.Outcome, res.JobRunID = PolicyRunStarted, exec.RunID

	cancelled := false
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(child, func(workflow.Future) {})
	sel.AddReceive(ctx.Done(), func(c workflow.ReceiveChannel, more bool) { cancelled = true })
	sel.Select(ctx)
	if cancelled {
		// Errors are ignored: a job that has just ended needs no stop.
		_ = workflow.SignalExternalWorkflow(jobCtx, exec.ID, exec.RunID, SignalStop, nil).Get(jobCtx, nil)
	}
	var st JobState
	err := child.Get(jobCtx, &st)
	// A FAILED or STOPPED job's run ends with an error carrying its state.
	ended := JobResult(err, &st)
	if ended {
		st.Carry = nil
		res.Job = &st
	}
	switch {
	case cancelled:
		return res, temporal.NewCanceledError(res)
	case ended && st.Status == StatusFailed:
		// A failed run fails the policy run, so that the schedule's
		// pauseOnFailure sees it; the details carry the result.
		return res, temporal.NewNonRetryableApplicationError("the policy's job failed: "+st.Reason, ErrTypePolicyJobFailed, nil, res)
	case ended:
		return res, nil
	}
	return res, err
}

// scheduledTime is the nominal time of the schedule action that started
// this run, to the second, or the run's start time when it was started by
// hand rather than by a schedule.
func scheduledTime(ctx workflow.Context) time.Time {
	key := temporal.NewSearchAttributeKeyTime(SearchAttrScheduledStartTime)
	if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(key); ok && !t.IsZero() {
		return t.UTC()
	}
	// The scheduler encodes the value without the type metadata the typed
	// view needs on some server versions; decode the raw payload then.
	if t, ok := rawTime(workflow.GetInfo(ctx).SearchAttributes, SearchAttrScheduledStartTime); ok { //nolint:staticcheck // SA1019: the raw payload is the fallback for when the typed view fails
		return t.UTC()
	}
	return workflow.Now(ctx).UTC().Truncate(time.Second)
}

func rawTime(sa *commonpb.SearchAttributes, name string) (time.Time, bool) {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if err := converter.GetDefaultDataConverter().FromPayload(p, &t); err != nil || t.IsZero() {
		return time.Time{}, false
	}
	return t, true
}
