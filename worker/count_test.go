package worker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// scheduledActivities counts the activities of one run by type.
func scheduledActivities(t *testing.T, c client.Client, workflowID, runID string) map[string]int {
	t.Helper()
	n := map[string]int{}
	iter := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			n[a.GetActivityType().GetName()]++
		}
	}
	return n
}

// countGate holds the listing until the count-only scan has started, and
// can hold the scan until it is cancelled: a listing that outlasts the
// scan's delay, and a scan that outlasts the listing. With grow, the
// listing waits for the scan to end and grow changes the source between
// the two.
type countGate struct {
	interceptor.WorkerInterceptorBase
	holdCount bool
	grow      func()
	counted   chan struct{}
	once      sync.Once
	started   chan struct{}
	release   chan struct{} // ends a held scan (at the test's end)
	mu        sync.Mutex
	calls     int
}

func (g *countGate) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &countGateInbound{g: g}
	i.Next = next
	return i
}

type countGateInbound struct {
	interceptor.ActivityInboundInterceptorBase
	g *countGate
}

func (i *countGateInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	g := i.g
	switch activity.GetInfo(ctx).ActivityType.Name {
	case workflows.ActivityCountSource:
		g.mu.Lock()
		g.calls++
		g.mu.Unlock()
		g.once.Do(func() { close(g.started) })
		if g.holdCount {
			// A scan slower than the whole job.
			select {
			case <-g.release:
			case <-ctx.Done():
			}
			return nil, errors.New("the held scan was released")
		}
		if g.grow != nil {
			res, err := i.Next.ExecuteActivity(ctx, in)
			g.grow()
			close(g.counted)
			return res, err
		}
	case workflows.ActivityListPage:
		wait := g.started
		if g.grow != nil {
			wait = g.counted
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return i.Next.ExecuteActivity(ctx, in)
}

// A job does not list its source twice for totals when it does not need
// to: a listing that ends before the count-only scan's delay gives the
// totals itself (and a dry run, which only counts, never scans twice); a
// longer listing starts the scan after the delay; a scan still running
// when the listing ends is cancelled, never waited for. Totals are exact
// in every case.
func TestTotalsWithoutASecondScan(t *testing.T) {
	ctx := context.Background()
	const files = 300

	t.Run("short listing", func(t *testing.T) {
		cl := enginetest.NewCluster(t, 2)
		src, total := enginetest.MakeTree(t, files)
		for _, opt := range []map[string]any{{}, {"dryRun": "true"}} {
			key := jobs.Key{Type: workflows.JobLoad, Path: src}
			opts, err := jobs.ParseOptions(workflows.JobLoad, opt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Svc.Submit(ctx, key, opts); err != nil {
				t.Fatal(err)
			}
			st := cl.WaitEnd(key, time.Minute)
			if st.Status != workflows.StatusSucceeded || !st.TotalsKnown || st.TotalFiles != files || st.TotalBytes != total {
				t.Fatalf("%v: %s, totals known %v: %d files, %d bytes; want %d, %d", opt, st.Status, st.TotalsKnown, st.TotalFiles, st.TotalBytes, files, total)
			}
			if _, dry := opt["dryRun"]; dry {
				recordHistories(t, cl.Client, key.WorkflowID(), "v2-count-short")
			}
			if n := scheduledActivities(t, cl.Client, key.WorkflowID(), st.JobID)[workflows.ActivityCountSource]; n != 0 {
				t.Errorf("%v: the source was scanned %d times for totals besides its listing", opt, n)
			}
		}
	})

	for _, tc := range []struct {
		name      string
		holdCount bool
		grow      bool
		record    string
	}{
		{"long listing", false, false, "v2-count-long"},
		{"scan outlasts the listing", true, false, "v2-count-cancel"},
		{"source grows after the scan", false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := &countGate{holdCount: tc.holdCount, started: make(chan struct{}), release: make(chan struct{}), counted: make(chan struct{})}
			cl := enginetest.NewClusterIntercepted(t, 2, []interceptor.WorkerInterceptor{gate})
			t.Cleanup(func() { close(gate.release) }) // before the cluster stops
			src, total := enginetest.MakeTree(t, files)
			files := int64(files)
			if tc.grow {
				// 50 files of 7 bytes appear after the scan counted 300:
				// the job lists 350, and its totals say so.
				gate.grow = func() {
					dir := filepath.Join(strings.TrimPrefix(src, "file://"), "d0")
					if err := os.MkdirAll(dir, 0o755); err != nil {
						panic(err)
					}
					for i := range 50 {
						if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("late%02d", i)), []byte("0123456"), 0o644); err != nil {
							panic(err)
						}
					}
				}
				files, total = files+50, total+50*7
			}
			key := jobs.Key{Type: workflows.JobLoad, Path: src}
			start := time.Now()
			if _, err := cl.Svc.Submit(ctx, key, workflows.Options{}.WithDefaults(workflows.JobLoad)); err != nil {
				t.Fatal(err)
			}
			st := cl.WaitEnd(key, time.Minute)
			if tc.record != "" {
				recordHistories(t, cl.Client, key.WorkflowID(), tc.record)
			}
			enginetest.CheckExact(t, st, files, total)
			if !st.TotalsKnown || st.TotalFiles != files || st.TotalBytes != total {
				t.Fatalf("totals known %v: %d files, %d bytes; want %d, %d", st.TotalsKnown, st.TotalFiles, st.TotalBytes, files, total)
			}
			if took := time.Since(start); took < time.Second {
				t.Fatalf("the job took %v, less than the scan's delay it waited for", took)
			}
			gate.mu.Lock()
			calls := gate.calls
			gate.mu.Unlock()
			if calls != 1 {
				t.Errorf("the count-only scan ran %d times, want once", calls)
			}
			if !tc.holdCount {
				return
			}
			// The job ended while the scan was held: it asked for the
			// scan's cancellation instead of waiting for it.
			cancelled := false
			iter := cl.Client.GetWorkflowHistory(ctx, key.WorkflowID(), st.JobID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for iter.HasNext() {
				ev, err := iter.Next()
				if err != nil {
					t.Fatal(err)
				}
				cancelled = cancelled || ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
			}
			if !cancelled {
				t.Error("the job ended without cancelling the scan still running")
			}
		})
	}
}
