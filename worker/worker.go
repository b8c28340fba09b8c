// Package worker wires Ferry's workflows and activities to Temporal workers:
// which worker kind registers what, under which names, on which task queue,
// and with which options. It is the only place that knows the mapping, so the
// coordinator process, each cache node and the tests register exactly the same
// thing.
package worker

import (
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/policies"
	"github.com/ferryio/ferry/workflows"
)

// RegisterCoordinator registers the job workflow and the coordinator's
// activities (listing, planning, counting, failure lists) on r. The worker
// runs on workflows.CoordinatorTaskQueue.
func RegisterCoordinator(r sdkworker.Registry, c *activities.Coordinator) {
	r.RegisterWorkflowWithOptions(workflows.JobWorkflow, workflow.RegisterOptions{Name: workflows.JobWorkflowName})
	r.RegisterActivityWithOptions(c.ListAndPlan, activity.RegisterOptions{Name: workflows.ActivityListAndPlan})
	r.RegisterActivityWithOptions(c.Plan, activity.RegisterOptions{Name: workflows.ActivityPlan})
	r.RegisterActivityWithOptions(c.CountSource, activity.RegisterOptions{Name: workflows.ActivityCountSource})
	r.RegisterActivityWithOptions(c.SaveFailures, activity.RegisterOptions{Name: workflows.ActivitySaveFailures})
	r.RegisterActivityWithOptions(c.RemoveEmptyDirs, activity.RegisterOptions{Name: workflows.ActivityRemoveEmptyDirs})
	// Policy runs: the workflow a policy's schedule starts, and the local
	// activity that turns the policy into its job.
	r.RegisterWorkflowWithOptions(workflows.PolicyRunWorkflow, workflow.RegisterOptions{Name: workflows.PolicyRunWorkflowName})
	r.RegisterActivityWithOptions(policies.PrepareRun, activity.RegisterOptions{Name: workflows.ActivityPreparePolicyRun})
}

// RegisterNode registers a cache node's batch activities on r. The worker
// runs on the node's own task queue, so host-local work never lands on
// another host.
func RegisterNode(r sdkworker.Registry, n *activities.Node) {
	r.RegisterActivityWithOptions(n.LoadBatch, activity.RegisterOptions{Name: workflows.ActivityLoadBatch})
	r.RegisterActivityWithOptions(n.CopyBatch, activity.RegisterOptions{Name: workflows.ActivityCopyBatch})
}

// BuildID names this build of Ferry's workers. Without one the SDK hashes
// the whole executable at start-up (~0.5 s of CPU for a 200 MB binary).
const BuildID = "ferry"

// CoordinatorOptions are the worker options of the coordinator.
func CoordinatorOptions() sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentActivityExecutionSize:     16,
		MaxConcurrentWorkflowTaskExecutionSize: 16,
		BuildID:                                BuildID,
	}
}

// NodeOptions are the worker options of a cache node's own queue: enough
// concurrent batches for the workflow's per-node window.
func NodeOptions() sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentActivityExecutionSize: 8,
		BuildID:                            BuildID,
	}
}
