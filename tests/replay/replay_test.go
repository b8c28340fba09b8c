// Package replay replays recorded job histories against the current
// workflow code: a change that would break running workflows fails here and
// needs workflow.GetVersion. Re-record with
//
//	FERRY_RECORD_HISTORIES=$PWD/tests/replay/testdata go test ./worker -run 'Stop|Continue|EndToEnd|NodeLoss|Reported|JobCopies|MovesEverything|Passes|SecondLoad|TotalsWithoutASecondScan'
//
// and, for the runs' Temporal statuses (issue 12),
//
//	FERRY_RECORD_HISTORIES=$PWD/tests/replay/testdata go test ./tests/truth -run 'EveryStage|StatusSays'
//
// (v2-handover-* and v2-batch-* come from TestContinueAsNewWithoutPause:
// runs that hand their batches over at continue-as-new, and one of those
// batches, a FerryBatch child workflow; v2-node-replace-* and
// v2-node-join-* from TestNodeLossReplacesOnlyItsFiles and
// TestJoinedNodeTakesOnlyItsFiles; v2-load-cached-* from
// TestSecondLoadSendsNoBatchForCachedFiles: loads whose files their nodes
// already held, counted without batches; v2-local-steps-1..3 are v2-load,
// v2-failures and v2-copy recorded once partitioning, the last ring read
// and the job's end ran as local activities. The older v2-node-loss-* and
// v2-continue-as-new-* stay as recorded: they replay the runs from before
// those changes.)
//
// Files named v1-* are histories of the first engine (workflow type
// "FerryJob", package legacy); v2-* of the current one.
package replay

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/legacy"
)

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"v1-continue-as-new", "v1-stop-resume", "v2-load", "v2-continue-as-new", "v2-stop-resume",
		"v2-node-loss", "v2-failures", "v2-copy", "v2-move", "v2-dry-run", "v2-verify", "v2-retry", "v2-early-failure",
		"v2-truth-stop-loading", "v2-truth-stop-verifying", "v2-truth-stop-moving", "v2-truth-cancel", "v2-truth-failed", "v2-truth-terminated", "v2-truth-continue",
		"v2-handover", "v2-batch", "v2-node-replace", "v2-node-join", "v2-load-cached", "v2-stale-view", "v2-local-steps"} {
		if m, _ := filepath.Glob("testdata/" + want + "-*.json"); len(m) == 0 {
			t.Errorf("no recorded history %s-*.json: the corpus must cover every path of the job workflow", want)
		}
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.JobWorkflow, workflow.RegisterOptions{Name: workflows.JobWorkflowName})
			r.RegisterWorkflowWithOptions(workflows.BatchWorkflow, workflow.RegisterOptions{Name: workflows.BatchWorkflowName})
			r.RegisterWorkflowWithOptions(legacy.JobWorkflow, workflow.RegisterOptions{Name: legacy.WorkflowName})
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			h, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.ReplayWorkflowHistory(nil, h); err != nil {
				t.Fatalf("replay of %s: %v", f, err)
			}
		})
	}
}
