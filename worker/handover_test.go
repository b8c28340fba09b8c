package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// batchSpan is one batch as the job's histories show it: the run that
// dispatched it, when, and when its outcome reached the job.
type batchSpan struct {
	run        int
	child      string
	start, end time.Time
}

// runHistories returns the histories of every run of workflowID, oldest
// first.
func runHistories(t *testing.T, c client.Client, workflowID string) [][]*historypb.HistoryEvent {
	t.Helper()
	ctx := context.Background()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", workflowID)})
	if err != nil {
		t.Fatal(err)
	}
	execs := resp.GetExecutions()
	sort.Slice(execs, func(i, j int) bool { return execs[i].GetStartTime().AsTime().Before(execs[j].GetStartTime().AsTime()) })
	var runs [][]*historypb.HistoryEvent
	for _, e := range execs {
		var evs []*historypb.HistoryEvent
		iter := c.GetWorkflowHistory(ctx, workflowID, e.GetExecution().GetRunId(), false, 0)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		runs = append(runs, evs)
	}
	return runs
}

// batchSpans reads every batch of a job from its runs' histories: batch
// activities (scheduled and closed in one run) and batch child workflows
// (started in one run, their outcome signalled to the run then current).
func batchSpans(t *testing.T, runs [][]*historypb.HistoryEvent) []batchSpan {
	t.Helper()
	var spans []*batchSpan
	children := map[string]*batchSpan{}
	for k, evs := range runs {
		acts := map[int64]*batchSpan{}
		for _, ev := range evs {
			at := ev.GetEventTime().AsTime()
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				n := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
				if n == workflows.ActivityLoadBatch || n == workflows.ActivityCopyBatch {
					s := &batchSpan{run: k, start: at}
					acts[ev.GetEventId()] = s
					spans = append(spans, s)
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				if s := acts[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; s != nil {
					s.end = at
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
				if s := acts[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()]; s != nil {
					s.end = at
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
				if s := acts[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()]; s != nil {
					s.end = at
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
				if s := acts[ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()]; s != nil {
					s.end = at
				}
			case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
				a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes()
				if a.GetWorkflowType().GetName() == workflows.BatchWorkflowName {
					s := &batchSpan{run: k, child: a.GetWorkflowId(), start: at}
					children[a.GetWorkflowId()] = s
					spans = append(spans, s)
				}
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				a := ev.GetWorkflowExecutionSignaledEventAttributes()
				if a.GetSignalName() != workflows.SignalBatchDone {
					continue
				}
				var d workflows.BatchDone
				if err := json.Unmarshal(a.GetInput().GetPayloads()[0].GetData(), &d); err != nil {
					t.Fatal(err)
				}
				s := children[d.WorkflowID]
				if s == nil {
					t.Fatalf("run %d: outcome of a batch %s no run started", k+1, d.WorkflowID)
				}
				s.end = at
			}
		}
	}
	out := make([]batchSpan, 0, len(spans))
	for _, s := range spans {
		if s.end.IsZero() {
			t.Fatalf("a batch of run %d started at %s never ended", s.run+1, s.start)
		}
		out = append(out, *s)
	}
	return out
}

// TestContinueAsNewWithoutPause is point 1 of issue 10's remainder: a job
// crossing several continue-as-news keeps its nodes busy across each. The
// batches a run dispatches once it wants to continue as new run as child
// workflows that outlive it; the next run takes them over. The histories
// show, at every boundary after which work remained, a batch of the new
// run dispatched before the last batch of the run before ended, and the
// counters and the loads are exact (no batch lost or done twice).
func TestContinueAsNewWithoutPause(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	for _, c := range cl.Caches {
		// A batch of 20 takes ~1.25 s, so that each run lives over 1 s:
		// Temporal delays the first task of a run that follows one shorter
		// than that (history.workflowIdReuseMinimalInterval), a pause of
		// the server's own that only such short test runs meet.
		c.Delay = 250 * time.Millisecond
	}
	const n = 1000
	src, total := enginetest.MakeTree(t, n)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "20"})
	if err != nil {
		t.Fatal(err)
	}
	opts.TestContinueAsNewAfter = 5
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 3*time.Minute)
	enginetest.CheckExact(t, st, n, total)
	var loads int64
	for _, c := range cl.Caches {
		loads += c.Loads()
	}
	if loads != n {
		t.Fatalf("%d loads for %d files: a batch was lost or redone", loads, n)
	}
	runs := runHistories(t, cl.Client, key.WorkflowID())
	if len(runs) < 4 || st.Runs != len(runs) {
		t.Fatalf("%d runs (state says %d); want several continue-as-new", len(runs), st.Runs)
	}
	spans := batchSpans(t, runs)
	handed, checked := 0, 0
	for k := 1; k < len(runs); k++ {
		var first, last time.Time
		for _, s := range spans {
			if s.run == k && (first.IsZero() || s.start.Before(first)) {
				first = s.start
			}
			if s.run == k-1 && s.end.After(last) {
				last = s.end
			}
			if s.run == k-1 && s.end.After(runs[k][0].GetEventTime().AsTime()) {
				handed++
			}
		}
		if first.IsZero() || last.IsZero() {
			continue // no work remained for run k, or run k-1 had none
		}
		checked++
		if !first.Before(last) {
			t.Errorf("run %d dispatched its first batch at %s, after the last batch of run %d ended (%s): dispatch paused",
				k+1, first.Format(time.StampMicro), k, last.Format(time.StampMicro))
		}
	}
	if checked < 3 || handed < checked {
		t.Fatalf("%d boundaries with work on both sides, %d batches handed over: the test did not exercise the hand-over", checked, handed)
	}
	hs, err := cl.History(context.Background(), key.WorkflowID())
	if err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, s := range spans {
		if s.child != "" {
			children++
		}
	}
	if hs.Children != children {
		t.Fatalf("visibility lists %d batch workflows, the job's histories %d", hs.Children, children)
	}
	t.Logf("%d runs, %d batches, %d boundaries checked, %d batches handed over; history: job %d events %d bytes, batch workflows %d events %d bytes",
		len(runs), len(spans), checked, handed, hs.Events, hs.Bytes, hs.ChildEvents, hs.ChildBytes)
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-handover")
	for _, s := range spans {
		if s.child != "" {
			recordHistories(t, cl.Client, s.child, "v2-batch")
			break
		}
	}
}
