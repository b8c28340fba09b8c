package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// writeDirs writes files[i] empty files under dir/d<i> (and top files at
// the top level) and returns the source URI and the number of files.
func writeDirs(t *testing.T, files []int, top int) (string, int64) {
	t.Helper()
	root := t.TempDir()
	var n int64
	for i, count := range files {
		d := filepath.Join(root, fmt.Sprintf("d%d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range count {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", j)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		n += int64(count)
	}
	for j := range top {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("top%d", j)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return "file://" + root, n + int64(top)
}

// A small tree lists in one page per partition: listParallel partitions,
// and one more for the top level's files only when there are some.
func TestSmallTreeListsInFewPages(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	ctx := context.Background()
	for _, top := range []int{0, 3} {
		src, files := writeDirs(t, []int{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, top)
		key := jobs.Key{Type: workflows.JobLoad, Path: src}
		if _, err := cl.Svc.Submit(ctx, key, workflows.Options{}.WithDefaults(workflows.JobLoad)); err != nil {
			t.Fatal(err)
		}
		st := cl.WaitEnd(key, time.Minute)
		enginetest.CheckExact(t, st, files, 0)
		want := 4
		if top > 0 {
			want++
		}
		if n := scheduledActivities(t, cl.Client, key.WorkflowID(), st.JobID)[workflows.ActivityListPage]; n != want || st.Partitions != want {
			t.Errorf("%d top-level files: %d pages over %d partitions, want %d of each", top, n, st.Partitions, want)
		}
	}
}

// splitGate holds the first page of the partition that starts with d0
// until every other partition is listed, so that its page comes back
// unfinished while three listing slots are idle.
func splitGate() *activityHook {
	var mu sync.Mutex
	others := 0
	done := make(chan struct{})
	return &activityHook{around: func(ctx context.Context, in *interceptor.ExecuteActivityInput, next func() (any, error)) (any, error) {
		if activity.GetInfo(ctx).ActivityType.Name != workflows.ActivityListPage || len(in.Args) == 0 {
			return next()
		}
		page, ok := in.Args[0].(workflows.ListPageInput)
		if !ok || len(page.Partition.Dirs) == 0 {
			return next()
		}
		if page.Partition.Seq == 0 && strings.HasSuffix(page.Partition.Dirs[0], "/d0") {
			select {
			case <-done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return next()
		}
		res, err := next()
		mu.Lock()
		defer mu.Unlock()
		if others++; others == 3 {
			close(done)
		}
		return res, err
	}}
}

// A partition whose page comes back unfinished while listing slots are
// idle gives its unstarted directories to new partitions: here d0 fills
// more than a page, and d1, in the same partition, is listed by a new one.
// Every file is listed once.
func TestUnfinishedPartitionSplitsForIdleListings(t *testing.T) {
	cl := enginetest.NewClusterIntercepted(t, 2, []interceptor.WorkerInterceptor{splitGate()})
	ctx := context.Background()
	src, files := writeDirs(t, []int{workflows.DefaultPageSize + 100, 30, 2, 2, 2, 2, 2, 2}, 0)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	if _, err := cl.Svc.Submit(ctx, key, workflows.Options{}.WithDefaults(workflows.JobLoad)); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 2*time.Minute)
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-split")
	enginetest.CheckExact(t, st, files, 0)
	// Four partitions of two directories; the first splits once: d0's
	// second page and d1's own page.
	if n := scheduledActivities(t, cl.Client, key.WorkflowID(), st.JobID)[workflows.ActivityListPage]; n != 6 || st.Partitions != 5 {
		t.Errorf("%d pages over %d partitions, want 6 over 5", n, st.Partitions)
	}
}
