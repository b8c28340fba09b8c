package worker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

func TestLoadJobEndToEnd(t *testing.T) {
	cl := enginetest.NewCluster(t, 3)
	src, total := enginetest.MakeTree(t, 300)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "50"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.Svc.Submit(context.Background(), key, opts)
	if err != nil || res.Outcome != jobs.Started || res.JobID == "" {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	st := cl.WaitEnd(key, 60*time.Second)
	enginetest.CheckExact(t, st, 300, total)
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-load")
	if !st.TotalsKnown || st.TotalFiles != 300 || st.TotalBytes != total {
		t.Errorf("totals from the count-only scan: known %v, %d files, %d bytes", st.TotalsKnown, st.TotalFiles, st.TotalBytes)
	}
	if st.JobID != res.JobID {
		t.Errorf("job id %q, submit said %q", st.JobID, res.JobID)
	}
	// Every file is cached on its owner, and only there.
	r, _ := cl.Ring(context.Background())
	for id, c := range cl.Caches {
		for _, uri := range c.Files() {
			if o, _ := r.Owner(uri); o.ID != id {
				t.Fatalf("%s cached on %s, owner is %s", uri, id, o.ID)
			}
		}
	}
	// A new submit after SUCCEEDED starts a new run with a new job id.
	res2, err := cl.Svc.Submit(context.Background(), key, opts)
	if err != nil || res2.Outcome != jobs.Started || res2.JobID == res.JobID {
		t.Fatalf("resubmit after success: %+v, %v", res2, err)
	}
	cl.WaitEnd(key, 60*time.Second)
}

func TestStopAndResumeKeepsJobIDAndExactCounters(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	gate := make(chan struct{})
	for _, c := range cl.Caches {
		c.Gate = gate
	}
	// Batches of one file: each token below finishes exactly one batch.
	src, total := enginetest.MakeTree(t, 60)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "1"})
	ctx := context.Background()
	res, err := cl.Svc.Submit(ctx, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cl.Svc.Submit(ctx, key, opts)
	if err != nil || again.Outcome != jobs.AlreadyRunning {
		t.Fatalf("second submit while running: %+v, %v", again, err)
	}
	// Let 15 files through, then stop.
	for i := 0; i < 15; i++ {
		gate <- struct{}{}
	}
	ferrytest.Eventually(t, 30*time.Second, func() error {
		st, err := cl.Svc.Progress(ctx, key)
		if err != nil || st.Processed() < 15 {
			return fmt.Errorf("processed %d, %w", st.Processed(), err)
		}
		return nil
	})
	if err := cl.Svc.Stop(ctx, key); err != nil {
		t.Fatal(err)
	}
	// In-flight batches finish: feed them until the job reports STOPPED.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case gate <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	var stopped workflows.JobState
	ferrytest.Eventually(t, 30*time.Second, func() error {
		var err error
		stopped, err = cl.Svc.Progress(ctx, key)
		if err != nil || stopped.Status != workflows.StatusStopped {
			return fmt.Errorf("status %s, %w", stopped.Status, err)
		}
		return nil
	})
	close(done)
	if stopped.Processed() >= 60 {
		t.Fatalf("stop came too late to test resume: %d processed", stopped.Processed())
	}
	if err := cl.Svc.Stop(ctx, key); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("stop of a stopped job: %v, want ErrNotFound", err)
	}

	for _, c := range cl.Caches {
		c.Gate = nil
	}
	resumed, err := cl.Svc.Submit(ctx, key, opts)
	if err != nil || resumed.Outcome != jobs.Resumed || resumed.JobID != res.JobID {
		t.Fatalf("resubmit of a stopped job: %+v (first job id %s), %v", resumed, res.JobID, err)
	}
	st := cl.WaitEnd(key, 60*time.Second)
	enginetest.CheckExact(t, st, 60, total)
	if st.JobID != res.JobID || st.Runs < 2 {
		t.Fatalf("resumed job: id %s runs %d", st.JobID, st.Runs)
	}
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-stop-resume")
	var loads int64
	for _, c := range cl.Caches {
		loads += c.Loads()
	}
	if loads != 60 {
		t.Fatalf("%d file loads for 60 files: work was redone or lost", loads)
	}
}

func TestContinueAsNewKeepsCounting(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	for _, c := range cl.Caches {
		// Batches end one by one, not all within the first run's drain:
		// every run sees work left.
		c.Delay = 20 * time.Millisecond
	}
	src, total := enginetest.MakeTree(t, 200)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10"})
	opts.TestContinueAsNewAfter = 1
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 90*time.Second)
	enginetest.CheckExact(t, st, 200, total)
	if st.Runs < 3 {
		t.Fatalf("job took %d runs; want several continue-as-new", st.Runs)
	}
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-continue-as-new")
	var loads int64
	for _, c := range cl.Caches {
		loads += c.Loads()
	}
	if loads != 200 {
		t.Fatalf("%d loads for 200 files", loads)
	}
}

func TestNodeLossReplansWork(t *testing.T) {
	cl := enginetest.NewCluster(t, 3)
	gate := make(chan struct{})
	cl.Caches["node-2"].Gate = gate // node-2 hangs until killed
	src, total := enginetest.MakeTree(t, 150)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10", "partialListing": "true"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, 30*time.Second, func() error {
		st, err := cl.Svc.Progress(context.Background(), key)
		if err != nil || st.Processed() < 30 {
			return fmt.Errorf("processed %d, %w", st.Processed(), err)
		}
		return nil
	})
	cl.KillNode("node-2")
	st := cl.WaitEnd(key, 120*time.Second)
	enginetest.CheckExact(t, st, 150, total)
	// node-2's unfinished work was planned again onto the files' new
	// owners as node-2 left, without a verify pass over every manifest:
	// every file is cached where readers will look.
	if st.VerifyPass != 0 || len(st.LostNodes) != 0 {
		t.Fatalf("verify passes %d, lost nodes %v", st.VerifyPass, st.LostNodes)
	}
	r, _ := cl.Ring(context.Background())
	cached := map[string]bool{}
	for _, id := range []string{"node-1", "node-3"} {
		for _, uri := range cl.Caches[id].Files() {
			cached[uri+"@"+id] = true
		}
	}
	entries, err := os.ReadDir(strings.TrimPrefix(src, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range entries {
		files, _ := os.ReadDir(filepath.Join(strings.TrimPrefix(src, "file://"), d.Name()))
		for _, f := range files {
			uri := src + "/" + d.Name() + "/" + f.Name()
			o, _ := r.Owner(uri)
			if !cached[uri+"@"+o.ID] {
				t.Fatalf("%s is not cached on its owner %s", uri, o.ID)
			}
			n++
		}
	}
	if n != 150 {
		t.Fatalf("checked %d files", n)
	}
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-node-loss")
}

func TestFailuresAreReportedAndSaved(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything; make the failure a vanished file instead.
		t.Log("running as root: using a file removed after listing")
	}
	cl := enginetest.NewCluster(t, 1)
	src, _ := enginetest.MakeTree(t, 20)
	dir := strings.TrimPrefix(src, "file://")
	idx := filepath.Join(t.TempDir(), "index.txt")
	var lines []string
	for i := 0; i < 5; i++ {
		lines = append(lines, src+fmt.Sprintf("/d%d/f %04d+x.bin", i%7, i))
	}
	lines = append(lines, src+"/no/such/file")
	if err := os.WriteFile(idx, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = dir
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"indexFile": "file://" + idx})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 60*time.Second)
	if st.Status != workflows.StatusFailed || st.Reason != "Job partially failed." {
		t.Fatalf("status %s reason %q", st.Status, st.Reason)
	}
	if st.Succeeded != 5 || st.Failed != 1 || st.Qualified != 6 {
		t.Fatalf("succeeded %d failed %d qualified %d", st.Succeeded, st.Failed, st.Qualified)
	}
	if len(st.RecentFailures) != 1 || st.RecentFailures[0].Reason != workflows.ErrTypeNotFound {
		t.Fatalf("recent failures %+v", st.RecentFailures)
	}
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-failures")
	if !strings.HasPrefix(st.FailuresLocation, cl.Manifests.Root()) {
		t.Fatalf("failures saved to %q, want under %s", st.FailuresLocation, cl.Manifests.Root())
	}
	b, err := os.ReadFile(strings.TrimPrefix(st.FailuresLocation, "file://"))
	if err != nil || !strings.HasPrefix(string(b), src+"/no/such/file\tNOT_FOUND\t") || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("failure list: %q, %v", b, err)
	}
}

func TestMissingSourceIsRefusedAtSubmit(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	key := jobs.Key{Type: workflows.JobLoad, Path: "file:///no/such/dir"}
	_, err := cl.Svc.Submit(context.Background(), key, workflows.Options{})
	var ie *jobs.InputError
	if !errors.As(err, &ie) || ie.Field != "path" {
		t.Fatalf("submit of a missing source: %v", err)
	}
	if _, err := cl.Svc.Progress(context.Background(), key); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("a refused submit left a job behind: %v", err)
	}
}

// TestPlainTemporalClientCanQueryAndStop drives a job the way a user's own
// Go program would: only the Temporal SDK, the workflow ID, the "progress"
// query and the "stop" signal documented in the README.
func TestPlainTemporalClientCanQueryAndStop(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	gate := make(chan struct{})
	cl.Caches["node-1"].Gate = gate
	src, _ := enginetest.MakeTree(t, 40)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "1"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	gate <- struct{}{}
	ctx := context.Background()
	c := cl.Client // any client.Client works; nothing Ferry-specific below
	id := "load:" + src
	ferrytest.Eventually(t, 30*time.Second, func() error {
		v, err := c.QueryWorkflow(ctx, id, "", "progress")
		if err != nil {
			return err
		}
		var progress struct {
			Status    string `json:"status"`
			Succeeded int64  `json:"succeeded"`
		}
		if err := v.Get(&progress); err != nil {
			return err
		}
		if progress.Status != "RUNNING" || progress.Succeeded < 1 {
			return fmt.Errorf("progress %+v", progress)
		}
		return nil
	})
	if err := c.SignalWorkflow(ctx, id, "", "stop", nil); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; i < 40; i++ {
			select {
			case gate <- struct{}{}:
			case <-time.After(30 * time.Second):
				return
			}
		}
	}()
	var final struct {
		Status string `json:"status"`
	}
	// A stopped run ends Canceled; its details are the job's state.
	err := c.GetWorkflow(ctx, id, "").Get(ctx, &final)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) || canceled.Details(&final) != nil {
		t.Fatalf("the stopped run ended with %v, want a cancellation with the state", err)
	}
	if final.Status != "STOPPED" {
		t.Fatalf("after the stop signal the run ended %s", final.Status)
	}
}
