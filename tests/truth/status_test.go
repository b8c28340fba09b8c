package truth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// inDir says whether a file of enginetest.MakeTree lies in directory d<i>.
func inDir(uri string, i int) bool { return strings.Contains(uri, fmt.Sprintf("/d%d/", i)) }

// firstFile is the file "f 0000+x.bin" of enginetest.MakeTree (0 bytes, in d0).
func firstFile(uri string) bool { return filepath.Base(uri) == "f 0000+x.bin" }

// sizeUnder sums the sizes of the regular files under dir.
func sizeUnder(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, b := range enginetest.ReadTree(t, dir) {
		n += int64(len(b))
	}
	return n
}

// TestTemporalStatusSaysTheJobState is issue 12 cases 5 and 6: the
// Temporal status of every run and its FerryJobState agree with the job —
// a job that continued as new (its closed runs say CONTINUED_AS_NEW, never
// RUNNING) and SUCCEEDED (Completed), a FAILED one (Failed), one stopped by
// Temporal's "Request Cancellation" (Canceled/STOPPED, resumable, counters
// and failure list kept), a terminated one (TERMINATED in Ferry with its
// last counters), a running one and a stopped one; and for every state the
// visibility query jobs.StateQuery answers what `ferry job list --state`
// answers, except that a run which ended STOPPED keeps saying so after its
// job was resumed (closed runs cannot change; the list shows latest runs).
func TestTemporalStatusSaysTheJobState(t *testing.T) {
	cl, f := newCluster(t)
	ctx := context.Background()
	load := func(src string) jobs.Key { return jobs.Key{Type: workflows.JobLoad, Path: src} }

	// Continued as new, then SUCCEEDED.
	srcA, totalA := enginetest.MakeTree(t, 12)
	keyA := load(srcA)
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "2"})
	if err != nil {
		t.Fatal(err)
	}
	opts.TestContinueAsNewAfter = 2
	if _, err := cl.Svc.Submit(ctx, keyA, opts); err != nil {
		t.Fatal(err)
	}
	enginetest.CheckExact(t, cl.WaitEnd(keyA, jobTimeout), 12, totalA)
	runsA := expectRuns(t, cl, keyA, "COMPLETED/SUCCEEDED")
	enginetest.RecordHistories(t, cl.Client, keyA.WorkflowID(), "v2-truth-continue")
	if len(runsA) < 2 {
		t.Fatalf("the job took %d runs; want a continue-as-new at least", len(runsA))
	}

	// FAILED: one file fails for good.
	srcB, totalB := enginetest.MakeTree(t, 8)
	keyB := load(srcB)
	f.add(srcB, nil, func(kind, uri string, _ int) error {
		if kind == "load" && firstFile(uri) {
			return fmt.Errorf("denied (test): %w", storage.ErrPermission)
		}
		return nil
	})
	submit(t, cl, keyB, nil)
	stB := cl.WaitEnd(keyB, jobTimeout)
	if stB.Status != workflows.StatusFailed || stB.Failed != 1 || stB.Succeeded != 7 || stB.BytesDone != totalB || len(stB.RecentFailures) != 1 {
		t.Fatalf("job with a failing file: %s, %d succeeded, %d failed, %d bytes of %d, failures %+v", stB.Status, stB.Succeeded, stB.Failed, stB.BytesDone, totalB, stB.RecentFailures)
	}
	expectRuns(t, cl, keyB, "FAILED/FAILED")
	enginetest.RecordHistories(t, cl.Client, keyB.WorkflowID(), "v2-truth-failed")

	// Request Cancellation (Temporal's UI) is a stop: resumable, with its
	// counters and its failure list.
	srcC, totalC := enginetest.MakeTree(t, 24)
	keyC := load(srcC)
	gC := f.add(srcC, func(kind, uri string, nth int) bool { return kind == "load" && nth == 1 && inDir(uri, 6) },
		func(kind, uri string, _ int) error {
			if kind == "load" && firstFile(uri) {
				return fmt.Errorf("denied (test): %w", storage.ErrPermission)
			}
			return nil
		})
	first := submit(t, cl, keyC, map[string]any{"batchSize": "4"})
	waitFor(t, cl, keyC, "the failure recorded and a read stuck", func(s workflows.JobState) bool { return s.Failed == 1 && f.heldReads(gC) > 0 })
	stopped, took := stopNow(t, cl, keyC, func() error { return cl.Client.CancelWorkflow(ctx, keyC.WorkflowID(), "") })
	t.Logf("Request Cancellation took effect in %s: %d succeeded, %d failed", took.Round(10e6), stopped.Succeeded, stopped.Failed)
	checkBounded(t, stopped, 24, totalC)
	if stopped.Failed != 1 || len(stopped.RecentFailures) != 1 || !firstFile(stopped.RecentFailures[0].Path) {
		t.Fatalf("cancelled job lost its failure: %d failed, %+v", stopped.Failed, stopped.RecentFailures)
	}
	expectRuns(t, cl, keyC, "CANCELED/STOPPED")
	f.open(gC)
	if res := submit(t, cl, keyC, map[string]any{"batchSize": "4"}); res.Outcome != jobs.Resumed || res.JobID != first.JobID {
		t.Fatalf("resubmit after a cancellation: %+v", res)
	}
	stC := cl.WaitEnd(keyC, jobTimeout)
	if stC.Status != workflows.StatusFailed || stC.Qualified != 24 || stC.Succeeded != 23 || stC.Failed != 1 || stC.BytesDone != totalC {
		t.Fatalf("resumed job: %s, qualified %d, %d succeeded, %d failed, %d bytes of %d", stC.Status, stC.Qualified, stC.Succeeded, stC.Failed, stC.BytesDone, totalC)
	}
	list, err := os.ReadFile(strings.TrimPrefix(stC.FailuresLocation, "file://"))
	if err != nil {
		t.Fatalf("failure list %q: %v", stC.FailuresLocation, err)
	}
	if lines := strings.Split(strings.TrimSpace(string(list)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "f 0000+x.bin") {
		t.Fatalf("failure list after cancel and resume:\n%s", list)
	}
	expectRuns(t, cl, keyC, "CANCELED/STOPPED", "FAILED/FAILED")
	enginetest.RecordHistories(t, cl.Client, keyC.WorkflowID(), "v2-truth-cancel")

	// Terminated: TERMINATED with the last counters the run recorded.
	srcD, totalD := enginetest.MakeTree(t, 20)
	keyD := load(srcD)
	heldD := sizeUnder(t, filepath.Join(strings.TrimPrefix(srcD, "file://"), "d6"))
	f.add(srcD, func(kind, uri string, _ int) bool { return kind == "load" && inDir(uri, 6) }, nil)
	// One file per batch: no batch holds a file of d6 with other files.
	submit(t, cl, keyD, map[string]any{"batchSize": "1"})
	waitFor(t, cl, keyD, "all but d6 done", func(s workflows.JobState) bool { return s.Succeeded == 18 })
	if err := cl.Client.TerminateWorkflow(ctx, keyD.WorkflowID(), "", "test: terminated by hand"); err != nil {
		t.Fatal(err)
	}
	stD := waitFor(t, cl, keyD, "TERMINATED", func(s workflows.JobState) bool { return !s.Status.Active() })
	if stD.Status != workflows.StatusTerminated || stD.Succeeded != 18 || stD.Qualified != 20 || stD.BytesDone != totalD-heldD {
		t.Fatalf("terminated job: %s (%s), %d succeeded of %d, %d bytes (want 18 files, %d bytes)", stD.Status, stD.Reason, stD.Succeeded, stD.Qualified, stD.BytesDone, totalD-heldD)
	}
	expectRuns(t, cl, keyD, "TERMINATED/RUNNING")
	enginetest.RecordHistories(t, cl.Client, keyD.WorkflowID(), "v2-truth-terminated")

	// Running, and stopped.
	srcE, _ := enginetest.MakeTree(t, 8)
	keyE := load(srcE)
	gE := f.add(srcE, func(kind, _ string, _ int) bool { return kind == "load" }, nil)
	submit(t, cl, keyE, nil)
	srcF, totalF := enginetest.MakeTree(t, 8)
	keyF := load(srcF)
	gF := f.add(srcF, func(kind, _ string, _ int) bool { return kind == "load" }, nil)
	submit(t, cl, keyF, nil)
	waitFor(t, cl, keyF, "a read stuck", func(workflows.JobState) bool { return f.heldReads(gF) > 0 })
	stF, _ := stopNow(t, cl, keyF, func() error { return cl.Svc.Stop(ctx, keyF) })
	checkBounded(t, stF, 8, totalF)
	waitFor(t, cl, keyE, "a read stuck", func(workflows.JobState) bool { return f.heldReads(gE) > 0 })
	expectRuns(t, cl, keyE, "RUNNING/RUNNING")

	// What the visibility query answers, and what `ferry job list` does.
	want := map[workflows.JobStatus][]jobs.Key{
		workflows.StatusRunning:    {keyE},
		workflows.StatusStopped:    {keyF},
		workflows.StatusSucceeded:  {keyA},
		workflows.StatusFailed:     {keyB, keyC},
		workflows.StatusTerminated: {keyD},
	}
	for state, keys := range want {
		var wantIDs []string
		for _, k := range keys {
			wantIDs = append(wantIDs, k.WorkflowID())
		}
		sort.Strings(wantIDs)
		listed, err := cl.Svc.List(ctx, jobs.ListFilter{Status: state})
		if err != nil {
			t.Fatal(err)
		}
		var listIDs []string
		for _, s := range listed {
			listIDs = append(listIDs, jobs.Key{Type: s.Type, Path: s.Path, Dst: s.Dst}.WorkflowID())
		}
		sort.Strings(listIDs)
		if fmt.Sprint(listIDs) != fmt.Sprint(wantIDs) {
			t.Errorf("ferry job list --state %s: %v, want %v", state, listIDs, wantIDs)
		}
		if state == workflows.StatusStopped {
			// The cancelled run of keyC keeps FerryJobState STOPPED.
			wantIDs = append(wantIDs, keyC.WorkflowID())
			sort.Strings(wantIDs)
		}
		seen := map[string]bool{}
		var queryIDs []string
		for _, r := range visible(t, cl, jobs.StateQuery(state)) {
			if !seen[r.id] {
				seen[r.id] = true
				queryIDs = append(queryIDs, r.id)
			}
		}
		sort.Strings(queryIDs)
		if fmt.Sprint(queryIDs) != fmt.Sprint(wantIDs) {
			t.Errorf("%s: %v, want %v", jobs.StateQuery(state), queryIDs, wantIDs)
		}
	}
}
