package truth

import (
	"context"
	"fmt"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// TestTemporalUIShowsWhatAndHowFar is issue 12 case 7: what Temporal's UI
// shows without a click. The run carries what the job is (its static
// summary and details: type, source, options), how far it is (its current
// details, kept by the workflow: state, files and bytes of the total, rate),
// and each batch activity names its node and file count.
func TestTemporalUIShowsWhatAndHowFar(t *testing.T) {
	cl, f := newCluster(t)
	ctx := context.Background()
	src, total := enginetest.MakeTree(t, 6)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	// Six files in d0 … d5; the one in d0 is held.
	g := f.add(src, func(kind, uri string, _ int) bool { return kind == "load" && inDir(uri, 0) }, nil)
	submit(t, cl, key, map[string]any{"batchSize": "2"})
	waitFor(t, cl, key, "five files done", func(s workflows.JobState) bool { return s.Succeeded == 5 && f.heldReads(g) == 1 })

	desc, err := cl.Client.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
	if err != nil {
		t.Fatal(err)
	}
	dc := bytesjson.DataConverter()
	var summary, details string
	md := desc.GetExecutionConfig().GetUserMetadata()
	if err := dc.FromPayload(md.GetSummary(), &summary); err != nil || summary != "load "+src {
		t.Fatalf("static summary %q (%v), want %q", summary, err, "load "+src)
	}
	if err := dc.FromPayload(md.GetDetails(), &details); err != nil || !strings.Contains(details, "- source: `"+src+"`") || !strings.Contains(details, "batch size: 2") {
		t.Fatalf("static details:\n%s (%v)", details, err)
	}

	// The current details, as the UI reads them (the metadata query).
	var line string
	ferrytest.Eventually(t, jobTimeout, func() error {
		v, err := cl.Client.QueryWorkflow(ctx, key.WorkflowID(), "", "__temporal_workflow_metadata") // the SDK does not export the name
		if err != nil {
			return err
		}
		var meta sdkpb.WorkflowMetadata
		if err := v.Get(&meta); err != nil {
			return err
		}
		line = meta.GetCurrentDetails()
		if !strings.HasPrefix(line, "RUNNING: 5 of 6 files, ") {
			return errorf("current details %q", line)
		}
		return nil
	})
	t.Logf("current details: %s", line)

	// Batch activities name their node and file count.
	var summaries []string
	iter := cl.Client.GetWorkflowHistory(ctx, key.WorkflowID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			continue
		}
		a := ev.GetActivityTaskScheduledEventAttributes()
		if n := a.GetActivityType().GetName(); n != workflows.ActivityLoadBatch {
			continue
		}
		var s string
		if err := dc.FromPayload(ev.GetUserMetadata().GetSummary(), &s); err != nil {
			t.Fatalf("batch activity without a summary: %v", err)
		}
		summaries = append(summaries, s)
	}
	// Each batch names its node, its files (all 6 in all) and its batch.
	files := 0
	for _, s := range summaries {
		var n int
		var unit string
		if _, err := fmt.Sscanf(s, "node-1: %d %s (main pass, batch p00", &n, &unit); err != nil || !strings.HasPrefix(unit, "file") ||
			!strings.Contains(s, " (main pass, batch p00") {
			t.Fatalf("batch summary %q", s)
		}
		files += n
	}
	if files != 6 {
		t.Fatalf("batch summaries %q: %d files, want 6", summaries, files)
	}
	f.open(g)
	end := cl.WaitEnd(key, jobTimeout)
	enginetest.CheckExact(t, end, 6, total)
}
