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

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// emptyFiles writes n empty files under dirs sub-directories of a new
// directory, with names of nameLen bytes, and returns its URI.
func emptyFiles(t *testing.T, n, dirs, nameLen int) string {
	t.Helper()
	root := t.TempDir()
	for d := 0; d < dirs; d++ {
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("d%02d", d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pad := strings.Repeat("x", max(nameLen-12, 0))
	for i := 0; i < n; i++ {
		p := filepath.Join(root, fmt.Sprintf("d%02d", i%dirs), fmt.Sprintf("%s-%08d.bin", pad, i))
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return "file://" + root
}

// TestBigBatchesThroughContinueAsNew is wedge 1 of issue 10: with
// batchSize=10000 the second continue-as-new used to carry 20,000 entries
// (3.4 MB, over Temporal's 2 MB payload limit) and the job stayed RUNNING
// forever. Entries now travel by reference: every run hands over a few
// hundred bytes.
func TestBigBatchesThroughContinueAsNew(t *testing.T) {
	// One node: 4 of its batches run at once, the others cross the
	// continue-as-new by reference. Four partitions of 10,500 files give
	// 8 batches (a batch never spans two pages).
	cl := enginetest.NewCluster(t, 1)
	// Loads that take a little time end the batches one by one (a batch
	// of 10,000 in about a second, one of 500 at once), so that each run
	// sees work left when a batch ends, whatever the order they finish in.
	for _, c := range cl.Caches {
		c.Delay = 100 * time.Microsecond
	}
	const n = 42_000
	src := emptyFiles(t, n, 12, 40)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10000", "partialListing": "true"})
	if err != nil {
		t.Fatal(err)
	}
	opts.TestContinueAsNewAfter = 1
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 3*time.Minute)
	enginetest.CheckExact(t, st, n, 0)
	if st.Runs < 3 {
		t.Fatalf("job took %d runs; want two continue-as-new at least", st.Runs)
	}
	hs, err := cl.History(context.Background(), key.WorkflowID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files, %d runs: %d events, %d bytes of history (%.1f KB per 1,000 files), largest run %d bytes",
		n, hs.Runs, hs.Events, hs.Bytes, float64(hs.Bytes)/float64(n), hs.MaxRunBytes)
	if hs.MaxRunBytes > 256<<10 {
		t.Fatalf("a run's history is %d bytes: entries are in history again", hs.MaxRunBytes)
	}
}

// TestListingPageOverPayloadLimit is wedge 2: one listing page of 10,000
// entries with long names (about 4 MB as JSON) used to exceed the payload
// limit, fail 10 times and fail the job. Pages now go to the manifest
// store; history holds their reference.
func TestListingPageOverPayloadLimit(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	const n = 10_000
	src := emptyFiles(t, n, 1, 200)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10000", "partialListing": "true"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 3*time.Minute)
	enginetest.CheckExact(t, st, n, 0)
}

// TestHistoryPerThousandFiles measures what a job costs in history with
// the default options: the target is at most 20 KB per 1,000 files.
func TestHistoryPerThousandFiles(t *testing.T) {
	cl := enginetest.NewCluster(t, 3)
	const n = 6000
	src := emptyFiles(t, n, 200, 20)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	if _, err := cl.Svc.Submit(context.Background(), key, workflows.Options{}); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 3*time.Minute)
	enginetest.CheckExact(t, st, n, 0)
	hs, err := cl.History(context.Background(), key.WorkflowID())
	if err != nil {
		t.Fatal(err)
	}
	perK := float64(hs.Bytes) / (n / 1000)
	t.Logf("%d files, batchSize %d: %d runs, %d events (%.0f per 1,000 files), %d bytes (%.1f KB per 1,000 files)",
		n, workflows.DefaultBatchSize, hs.Runs, hs.Events, float64(hs.Events)/(n/1000), hs.Bytes, perK/1000)
	if perK > 20_000 {
		t.Fatalf("%.0f bytes of history per 1,000 files; target 20 KB", perK)
	}
}

// TestBusyNodeNeverFailsFiles is point 3: three jobs on one healthy node
// whose batches take longer than 20 s. Batches queue on the node (8 slots
// for 12 batches) and used to fail with "ScheduleToStart timeout"; a busy
// node is not a dead one.
func TestBusyNodeNeverFailsFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	cl := enginetest.NewCluster(t, 1)
	cl.Caches["node-1"].Delay = 21 * time.Second
	var keys []jobs.Key
	for j := 0; j < 3; j++ {
		src, _ := enginetest.MakeTree(t, 4)
		key := jobs.Key{Type: workflows.JobLoad, Path: src}
		opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "1", "partialListing": "true"})
		if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	var wg sync.WaitGroup
	states := make([]workflows.JobState, len(keys))
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i] = cl.WaitEnd(k, 4*time.Minute)
		}()
	}
	wg.Wait()
	for i, st := range states {
		if st.Status != workflows.StatusSucceeded || st.Succeeded != 4 {
			t.Fatalf("job %d: %s %q succeeded %d failed %d %+v", i, st.Status, st.Reason, st.Succeeded, st.Failed, st.RecentFailures)
		}
	}
}

// TestRingBrieflyDownDoesNotFailTheJob: with the membership registry
// unreadable, listing goes on, the pages wait to be placed, and the job
// finishes once the ring is back.
func TestRingBrieflyDownDoesNotFailTheJob(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	src, total := enginetest.MakeTree(t, 50)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10"})
	cl.SetRingDown(true)
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, 60*time.Second, func() error {
		st, err := cl.Svc.Progress(context.Background(), key)
		if err != nil || st.Qualified != 50 || st.Status != workflows.StatusRunning {
			return fmt.Errorf("status %s, qualified %d, %w", st.Status, st.Qualified, err)
		}
		return nil
	})
	cl.SetRingDown(false)
	st := cl.WaitEnd(key, 90*time.Second)
	enginetest.CheckExact(t, st, 50, total)
}

// TestFailureListCompleteAcrossRuns is point 5: 600 failures over 5 runs
// used to leave 150 lines (the file sequence restarted every run and files
// were overwritten). Every line is kept, in the manifest store.
func TestFailureListCompleteAcrossRuns(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	src, _ := enginetest.MakeTree(t, 1)
	idx := filepath.Join(t.TempDir(), "index.txt")
	var lines []string
	for i := 0; i < 600; i++ {
		lines = append(lines, fmt.Sprintf("%s/missing/f%04d", src, i))
	}
	if err := os.WriteFile(idx, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"indexFile": "file://" + idx, "batchSize": "20", "partialListing": "true"})
	opts.TestContinueAsNewAfter = 1
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 3*time.Minute)
	if st.Status != workflows.StatusFailed || st.Failed != 600 || st.Qualified != 600 {
		t.Fatalf("%s %q: failed %d qualified %d", st.Status, st.Reason, st.Failed, st.Qualified)
	}
	if st.Runs < 5 {
		t.Fatalf("%d runs; want 5", st.Runs)
	}
	if !strings.HasPrefix(st.FailuresLocation, cl.Manifests.Root()) {
		t.Fatalf("failure list at %q, want in the manifest store %s", st.FailuresLocation, cl.Manifests.Root())
	}
	b, err := os.ReadFile(strings.TrimPrefix(st.FailuresLocation, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		seen[strings.SplitN(line, "\t", 2)[0]] = true
	}
	for _, l := range lines {
		if !seen[l] {
			t.Fatalf("%s is missing from the failure list (%d lines)", l, len(seen))
		}
	}
	// The job's working manifests are gone; the failure list stays.
	left, _ := filepath.Glob(filepath.Join(strings.TrimPrefix(cl.Manifests.JobDir(st.JobID), "file://"), "*"))
	if len(left) != 1 {
		t.Fatalf("after the job the manifest store holds %v", left)
	}
}

// TestPassesForReplayCorpus runs the job paths the other tests do not — dry
// run, verify pass, retry pass, early failure — checks their outcomes, and
// records their histories for tests/replay.
func TestPassesForReplayCorpus(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	ctx := context.Background()
	run := func(name string, key jobs.Key, raw map[string]any) workflows.JobState {
		t.Helper()
		opts, err := jobs.ParseOptions(key.Type, raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Svc.Submit(ctx, key, opts); err != nil {
			t.Fatal(err)
		}
		st := cl.WaitEnd(key, 90*time.Second)
		recordHistories(t, cl.Client, key.WorkflowID(), name)
		return st
	}

	src, _ := enginetest.MakeTree(t, 30)
	st := run("v2-dry-run", jobs.Key{Type: workflows.JobLoad, Path: src}, map[string]any{"dryRun": "true", "batchSize": "7"})
	if st.Status != workflows.StatusSucceeded || st.Qualified != 30 || st.Processed() != 0 || cl.Caches["node-1"].Loads()+cl.Caches["node-2"].Loads() != 0 {
		t.Fatalf("dry run: %s qualified %d processed %d", st.Status, st.Qualified, st.Processed())
	}

	src, total := enginetest.MakeTree(t, 30)
	st = run("v2-verify", jobs.Key{Type: workflows.JobLoad, Path: src}, map[string]any{"verify": "true", "batchSize": "7"})
	enginetest.CheckExact(t, st, 30, total)
	if st.VerifyPass != 1 || st.VerifyLoadedFiles != 0 {
		t.Fatalf("verify: passes %d, loaded again %d", st.VerifyPass, st.VerifyLoadedFiles)
	}

	// One file fails in a retryable way on every try inside its batch, then
	// loads in the retry pass.
	flaky, flakyTotal := enginetest.MakeTree(t, 12)
	var mu sync.Mutex
	tries := map[string]int{}
	for _, c := range cl.Caches {
		c.Fail = func(uri string) error {
			if !strings.HasSuffix(uri, "f 0003+x.bin") {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			tries[uri]++
			if tries[uri] <= 3 {
				return storage.NewError("load", uri, storage.ErrUnavailable, fmt.Errorf("flaky (try %d)", tries[uri]))
			}
			return nil
		}
	}
	st = run("v2-retry", jobs.Key{Type: workflows.JobLoad, Path: flaky}, map[string]any{"batchSize": "4"})
	enginetest.CheckExact(t, st, 12, flakyTotal)

	idx := filepath.Join(t.TempDir(), "index.txt")
	var lines []string
	for i := 0; i < 40; i++ {
		lines = append(lines, fmt.Sprintf("%s/missing/%02d", src, i))
	}
	if err := os.WriteFile(idx, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st = run("v2-early-failure", jobs.Key{Type: workflows.JobLoad, Path: src + "/d1"},
		map[string]any{"indexFile": "file://" + idx, "batchSize": "5", "failureCountThreshold": "5"})
	if st.Status != workflows.StatusFailed || !strings.Contains(st.Reason, "threshold") || st.Qualified != st.Processed() {
		t.Fatalf("early failure: %s %q qualified %d processed %d", st.Status, st.Reason, st.Qualified, st.Processed())
	}
}
