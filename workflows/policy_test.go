package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// policyRunEnv is a test environment with a stand-in job workflow (the real
// one needs the coordinator's activities) and a PreparePolicyRun that
// records the scheduled time it was given.
func policyRunEnv(t *testing.T, job func(workflow.Context, JobInput) (JobState, error)) (*testsuite.TestWorkflowEnvironment, *time.Time) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(PolicyRunWorkflow, workflow.RegisterOptions{Name: PolicyRunWorkflowName})
	env.RegisterWorkflowWithOptions(job, workflow.RegisterOptions{Name: JobWorkflowName})
	seen := new(time.Time)
	env.RegisterActivityWithOptions(func(_ context.Context, in PreparePolicyRunInput) (PreparePolicyRunResult, error) {
		*seen = in.ScheduledTime
		o := Options{Policy: "p1"}
		o.Filter.OlderThan = time.Hour
		o.Filter.ReferenceTime = in.ScheduledTime
		return PreparePolicyRunResult{WorkflowID: "move:file:///a:file:///b", Job: JobInput{Type: JobMove, Path: "file:///a", Dst: "file:///b", Options: o}}, nil
	}, activity.RegisterOptions{Name: ActivityPreparePolicyRun})
	return env, seen
}

func TestPolicyRunUsesTheScheduledTime(t *testing.T) {
	var got JobInput
	env, seen := policyRunEnv(t, func(ctx workflow.Context, in JobInput) (JobState, error) {
		got = in
		return JobState{JobID: "j1", Status: StatusSucceeded, Qualified: 3, Succeeded: 3, Carry: &JobCarry{}}, nil
	})
	scheduled := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		temporal.NewSearchAttributeKeyTime(SearchAttrScheduledStartTime).ValueSet(scheduled)))
	env.ExecuteWorkflow(PolicyRunWorkflowName, PolicyRunInput{Policy: "p1", Document: "{}"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PolicyRunResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if !seen.Equal(scheduled) || !got.Options.Filter.ReferenceTime.Equal(scheduled) {
		t.Fatalf("scheduled time %v, job reference %v, want %v", *seen, got.Options.Filter.ReferenceTime, scheduled)
	}
	if res.Outcome != PolicyRunStarted || res.JobWorkflowID != "move:file:///a:file:///b" || res.Job == nil ||
		res.Job.Succeeded != 3 || res.Job.Carry != nil || !res.ScheduledTime.Equal(scheduled) {
		t.Fatalf("result %+v", res)
	}
}

func TestPolicyRunFailsWhenItsJobFails(t *testing.T) {
	env, _ := policyRunEnv(t, func(ctx workflow.Context, in JobInput) (JobState, error) {
		return JobState{JobID: "j1", Status: StatusFailed, Reason: "Job partially failed.", Failed: 1}, nil
	})
	env.ExecuteWorkflow(PolicyRunWorkflowName, PolicyRunInput{Policy: "p1", Document: "{}"})
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != ErrTypePolicyJobFailed {
		t.Fatalf("error %v, want %s", err, ErrTypePolicyJobFailed)
	}
	var res PolicyRunResult
	if err := ae.Details(&res); err != nil || res.Job == nil || res.Job.Failed != 1 {
		t.Fatalf("details %+v %v", res, err)
	}
}

func TestPolicyRunCancelledStopsItsJob(t *testing.T) {
	stopped := false
	env, _ := policyRunEnv(t, func(ctx workflow.Context, in JobInput) (JobState, error) {
		workflow.GetSignalChannel(ctx, SignalStop).Receive(ctx, nil)
		stopped = true
		return JobState{JobID: "j1", Status: StatusStopped}, nil
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(PolicyRunWorkflowName, PolicyRunInput{Policy: "p1", Document: "{}"})
	var ce *temporal.CanceledError
	if err := env.GetWorkflowError(); !errors.As(err, &ce) {
		t.Fatalf("error %v, want cancelled", err)
	}
	if !stopped {
		t.Fatal("the job was not asked to stop")
	}
}
