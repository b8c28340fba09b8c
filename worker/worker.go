// Package worker wires Ferry's workflows and activities to Temporal workers:
// which worker kind registers what, under which names, on which task queue,
// and with which options. It is the only place that knows the mapping, so the
// coordinator process, each cache node and the tests register exactly the same
// thing.
package worker

import (
	"runtime/debug"
	"time"

	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/policies"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/legacy"
)

// RegisterCoordinator registers the job workflow and the coordinator's
// activities (partitioning, listing, planning, membership, counting,
// failure lists) on r, and the frozen first engine (package legacy) with
// the activities it calls, so that its jobs still running finish. The
// worker runs on workflows.CoordinatorTaskQueue.
func RegisterCoordinator(r sdkworker.Registry, c *activities.Coordinator) {
	r.RegisterWorkflowWithOptions(workflows.JobWorkflow, workflow.RegisterOptions{Name: workflows.JobWorkflowName})
	r.RegisterWorkflowWithOptions(workflows.BatchWorkflow, workflow.RegisterOptions{Name: workflows.BatchWorkflowName})
	for name, fn := range map[string]any{
		workflows.ActivityPartition:         c.Partition,
		workflows.ActivityListPage:          c.ListPage,
		workflows.ActivityPlanRange:         c.PlanRange,
		workflows.ActivityLiveNodes:         c.LiveNodes,
		workflows.ActivitySaveBatchFailures: c.SaveBatchFailures,
		workflows.ActivityFinishJob:         c.FinishJob,
		workflows.ActivityCountSource:       c.CountSource,
		workflows.ActivityRemoveEmptyDirs:   c.RemoveEmptyDirs,
		// v1 only.
		workflows.ActivityListAndPlan:  c.ListAndPlan,
		workflows.ActivityPlan:         c.Plan,
		workflows.ActivitySaveFailures: c.SaveFailures,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	r.RegisterWorkflowWithOptions(legacy.JobWorkflow, workflow.RegisterOptions{Name: legacy.WorkflowName})
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

// BuildID names this build of Ferry's workers: the module version and VCS
// revision the binary was built from ("ferry-dev" when the build carries
// neither, as in tests). It is read from the binary's build information, so
// every release has its own, without the SDK hashing the whole executable
// at start-up (~0.5 s of CPU for a 200 MB binary).
func BuildID() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "ferry-dev"
	}
	id := ""
	if v := info.Main.Version; v != "" && v != "(devel)" {
		id = v
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			id += "+" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			id += "-dirty"
		}
	}
	if id == "" {
		return "ferry-dev"
	}
	return "ferry-" + id
}

// CoordinatorOptions are the worker options of the coordinator.
func CoordinatorOptions() sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentActivityExecutionSize:     16,
		MaxConcurrentWorkflowTaskExecutionSize: 16,
		BuildID:                                BuildID(),
	}
}

// NodeOptions are the worker options of a cache node's own queue: enough
// concurrent batches for the workflow's per-node window.
func NodeOptions() sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentActivityExecutionSize: 8,
		BuildID:                            BuildID(),
		// A batch learns that it is cancelled (the job stops, its node
		// left) from a heartbeat's answer: heartbeats are sent at least
		// every second instead of every 12 s (0.8 × the 15 s timeout), so a
		// stop takes effect within a few seconds.
		MaxHeartbeatThrottleInterval: time.Second,
	}
}
