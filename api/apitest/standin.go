package apitest

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/workflows"
)

// SignalFinish tells a StandInJobWorkflow run to complete.
const SignalFinish = "standin-finish"

// The stand-in's pretend source: StandInFiles files of StandInFileSize
// bytes each, one of them already done when a run starts.
const (
	StandInFiles    = 4
	StandInFileSize = 1 << 20
)

// StandInJobWorkflow is a STAND-IN for the real job workflow
// (workflows.JobWorkflowName), for testing the API and CLI alone. It keeps
// the contract they rely on and does no work at all:
//
//   - its state is a workflows.JobState, answered to the QueryProgress query,
//     with the job id kept across a resume (memo "jobId" too) and the
//     FerryJobState search attribute kept current;
//   - on SignalStop it ends STOPPED and returns its state;
//   - on SignalFinish it ends SUCCEEDED with exact counters (qualified =
//     succeeded + failed), or FAILED with one failure ("Job partially
//     failed.") when its path contains "fail";
//   - a resumed run (JobInput.Resume) keeps counters and adds the stopped
//     run's time to ElapsedBefore.
func StandInJobWorkflow(ctx workflow.Context, in workflows.JobInput) (workflows.JobState, error) {
	now := workflow.Now(ctx)
	var st workflows.JobState
	if in.Resume != nil {
		st = *in.Resume
		if !st.EndTime.IsZero() {
			st.ElapsedBefore += st.EndTime.Sub(st.RunStartTime)
		}
		st.EndTime, st.Reason = time.Time{}, ""
		st.RunStartTime = now
	} else {
		st = workflows.JobState{
			Type: in.Type, Path: in.Path, Dst: in.Dst, Options: in.Options,
			SubmitTime: now, RunStartTime: now,
			ListingDone: true, Qualified: StandInFiles, QualifiedSize: StandInFiles * StandInFileSize,
			Succeeded: 1, BytesDone: StandInFileSize,
		}
		if !in.Options.PartialListing {
			st.TotalsKnown, st.TotalFiles, st.TotalBytes = true, StandInFiles, StandInFiles*StandInFileSize
		}
	}
	if st.JobID == "" {
		st.JobID = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	st.Runs++
	st.Status = workflows.StatusRunning
	st.Stage = workflows.StageLoading
	if in.Type != workflows.JobLoad {
		st.Stage = workflows.StageCopying
	}
	setStatus := func(s workflows.JobStatus) error {
		st.Status = s
		return workflow.UpsertTypedSearchAttributes(ctx,
			temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrJobState).ValueSet(string(s)))
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{"jobId": st.JobID}); err != nil {
		return st, err
	}
	if err := setStatus(workflows.StatusRunning); err != nil {
		return st, err
	}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryProgress, func() (workflows.JobState, error) {
		return st, nil
	}); err != nil {
		return st, err
	}
	// The bandwidth update, as the job workflow takes it.
	var bwVersion int64
	if err := workflow.SetUpdateHandler(ctx, workflows.UpdateBandwidth, func(_ workflow.Context, limit int64) (workflows.BandwidthSetting, error) {
		st.Options.Bandwidth = limit
		bwVersion++
		return workflows.BandwidthSetting{Limit: limit, Version: bwVersion}, nil
	}); err != nil {
		return st, err
	}

	stopped := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, workflows.SignalStop), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		stopped = true
	})
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalFinish), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
	})
	sel.Select(ctx)

	st.EndTime = workflow.Now(ctx)
	st.Stage = ""
	switch {
	case stopped:
		return st, setStatus(workflows.StatusStopped)
	case strings.Contains(in.Path, "fail"):
		st.Succeeded, st.Failed = StandInFiles-1, 1
		st.BytesDone = (StandInFiles - 1) * StandInFileSize
		st.RecentFailures = []workflows.Failure{{
			Path: strings.TrimSuffix(in.Path, "/") + "/broken", Reason: "PERMISSION_DENIED", Message: "open broken: permission denied",
		}}
		st.FailuresLocation = "file:///tmp/ferry-failures/" + st.JobID + ".txt"
		st.Reason = "Job partially failed."
		return st, setStatus(workflows.StatusFailed)
	default:
		st.Succeeded, st.BytesDone = StandInFiles, StandInFiles*StandInFileSize
		return st, setStatus(workflows.StatusSucceeded)
	}
}
