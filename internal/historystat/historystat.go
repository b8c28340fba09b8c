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
	// MaxRunBytes and MaxRunEvents are the largest history of one run, in
	// bytes and in events.
	MaxRunBytes, MaxRunEvents int
	// Children, ChildEvents and ChildBytes are the histories of the child
	// workflows the runs started (the batches a run hands over at
	// continue-as-new), apart from the job's own.
	Children    int
	ChildEvents int
	ChildBytes  int
}

// PerThousand returns events and kilobytes per 1,000 of files.
func (s Stats) PerThousand(files int64) (events, kb float64) {
	if files <= 0 {
		return 0, 0
	}
	k := float64(files) / 1000
	return float64(s.Events) / k, float64(s.Bytes) / 1000 / k
}

// Of measures every run of workflowID (found through visibility) and, apart,
// the child workflows its runs started.
func Of(ctx context.Context, c client.Client, workflowID string) (Stats, error) {
	var s Stats
	err := each(ctx, c, fmt.Sprintf("WorkflowId = '%s'", workflowID), func(events, bytes int) {
		s.Runs++
		s.Events += events
		s.Bytes += bytes
		s.MaxRunBytes = max(s.MaxRunBytes, bytes)
		s.MaxRunEvents = max(s.MaxRunEvents, events)
	})
	if err != nil {
		return s, err
	}
	err = each(ctx, c, fmt.Sprintf("ParentWorkflowId = '%s'", workflowID), func(events, bytes int) {
		s.Children++
		s.ChildEvents += events
		s.ChildBytes += bytes
	})
	return s, err
}

// each measures the history of every execution query finds.
func each(ctx context.Context, c client.Client, query string, fn func(events, bytes int)) error {
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list %s: %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			events, bytes := 0, 0
			id := e.GetExecution().GetWorkflowId()
			iter := c.GetWorkflowHistory(ctx, id, e.GetExecution().GetRunId(), false, 0)
			for iter.HasNext() {
				ev, err := iter.Next()
				if err != nil {
					return fmt.Errorf("history of %s: %w", id, err)
				}
				events++
				bytes += proto.Size(ev)
			}
			fn(events, bytes)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}
