// Package historystat measures what a job costs in Temporal history: the
// events and encoded bytes of every run of a workflow ID. The engine's tests
// and `ferry bench` print it per 1,000 files.
package historystat

import (
	"context"
	"fmt"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
)

// Stats are the size of a workflow ID's histories, all runs together.
type Stats struct {
	Runs   int
	Events int
	Bytes  int
	// MaxRunBytes is the largest history of one run.
	MaxRunBytes int
}

// PerThousand returns events and kilobytes per 1,000 of files.
func (s Stats) PerThousand(files int64) (events, kb float64) {
	if files <= 0 {
		return 0, 0
	}
	k := float64(files) / 1000
	return float64(s.Events) / k, float64(s.Bytes) / 1000 / k
}

// Of measures every run of workflowID (found through visibility).
func Of(ctx context.Context, c client.Client, workflowID string) (Stats, error) {
	var s Stats
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'", workflowID),
	})
	if err != nil {
		return s, fmt.Errorf("list runs of %s: %w", workflowID, err)
	}
	for _, e := range resp.GetExecutions() {
		run := 0
		iter := c.GetWorkflowHistory(ctx, workflowID, e.GetExecution().GetRunId(), false, 0)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				return s, fmt.Errorf("history of %s: %w", workflowID, err)
			}
			s.Events++
			run += proto.Size(ev)
		}
		s.Runs++
		s.Bytes += run
		s.MaxRunBytes = max(s.MaxRunBytes, run)
	}
	return s, nil
}
