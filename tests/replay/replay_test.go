// Package replay replays recorded job histories against the current
// workflow code: a change that would break running workflows fails here and
// needs workflow.GetVersion. Re-record with
//
//	FERRY_RECORD_HISTORIES=$PWD/tests/replay/testdata go test ./worker -run 'Stop|Continue'
package replay

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/workflows"
)

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d recorded histories; want at least a continue-as-new and a stop/resume", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.JobWorkflow, workflow.RegisterOptions{Name: workflows.JobWorkflowName})
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
