package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// recordHistories saves the history of every run of workflowID as
// <name>-<n>.json under $FERRY_RECORD_HISTORIES, for the replay tests in
// tests/replay. Without the variable it does nothing.
//
//	FERRY_RECORD_HISTORIES=$PWD/tests/replay/testdata go test ./worker -run 'Stop|Continue|EndToEnd|NodeLoss|Reported|JobCopies|MovesEverything|Passes'
func recordHistories(t *testing.T, c client.Client, workflowID, name string) {
	dir := os.Getenv("FERRY_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	ctx := context.Background()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'", workflowID),
	})
	if err != nil {
		t.Fatal(err)
	}
	execs := resp.GetExecutions()
	sort.Slice(execs, func(i, j int) bool { return execs[i].GetStartTime().AsTime().Before(execs[j].GetStartTime().AsTime()) })
	for i, e := range execs {
		h := &historypb.History{}
		iter := c.GetWorkflowHistory(ctx, workflowID, e.GetExecution().GetRunId(), false, 0)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.json", name, i+1))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events)", p, len(h.Events))
	}
}
