package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/workflows"
)

// TestCoordinatorKilledEvery10s copies a tree while the coordinator is
// killed with SIGKILL every 10 s (and started again at once) until the job
// ends: it must end SUCCEEDED with exact counters and every file copied
// byte for byte, each listing page scheduled once and no part of it listed
// twice (counted from what the attempts of each page stored in the manifest
// store, as their results in history report it: every piece of a page
// listed by one attempt, the entries listed adding up to the job's files),
// no batch completed twice and the completed batches covering no more than
// the job's files (a batch cut by a kill resumes after its last heartbeat),
// and nothing of the listing left in the manifest store. CI runs 20,000
// files; FERRY_KILL_FILES sets the size (the figure is 200,000).
func TestCoordinatorKilledEvery10s(t *testing.T) {
	if testing.Short() {
		t.Skip("failover in -short mode")
	}
	files := 20_000
	if v := os.Getenv("FERRY_KILL_FILES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FERRY_KILL_FILES=%q: want a number of files", v)
		}
		files = n
	}
	const size = 1024
	pc := startProcCluster(t, 3)
	c := pc.view()
	src := t.TempDir()
	dst := filepath.Join(t.TempDir(), "copy")
	writeSmallFiles(t, src, files, size)
	key := map[string]any{"src": "file://" + src, "dst": "file://" + dst}
	start := time.Now()
	if code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/copy", key); code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, resp)
	}
	kills := 0
	for ended := false; !ended; {
		// The first kill comes once the copy is under way (a small copy may
		// take less than 10 s), the next ones every 10 s until the job ends.
		_ = ferrytest.Within(10*time.Second, func() error {
			rep, err := tryProgressJSON(t, c, "copy", key)
			if err != nil {
				return err
			}
			if rep["mJobState"] != "RUNNING" {
				ended = true
				return nil
			}
			if n, _ := rep["mSuccessFileCount"].(float64); kills == 0 && n >= float64(files/20) {
				return nil
			}
			return errors.New("the kill period is not over")
		})
		if ended {
			break
		}
		if time.Since(start) > 30*time.Minute {
			t.Fatalf("the copy did not end in 30 minutes (%d kills)", kills)
		}
		pc.worker.Kill()
		kills++
		pc.startWorker()
	}
	took := time.Since(start)
	if kills == 0 {
		t.Fatal("the copy ended before the coordinator was killed once: the test shows nothing")
	}
	rep := waitJobState(t, c, "copy", key, time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mSuccessFileCount"] != float64(files) || rep["mFailedFileCount"] != 0.0 ||
		rep["mSkippedFileCount"] != 0.0 || rep["mProcessedInodesCount"] != float64(files) {
		t.Fatalf("after %d kills: %v", kills, rep)
	}
	want := make([]byte, size)
	for i := 0; i < files; i++ {
		rel := filepath.Join(fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%06d", i))
		want[0] = byte(i)
		got, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s was not copied faithfully: %v", rel, err)
		}
	}
	a := auditJob(t, pc.temporal, workflows.JobWorkflowID(workflows.JobCopy, "file://"+src, "file://"+dst), files)
	if left, _ := filepath.Glob(filepath.Join(pc.dataDir, "manifests", "*", manifest.KindListed)); len(left) > 0 {
		t.Fatalf("the job ended and left its listing records in the manifest store: %v", left)
	}
	t.Logf("%d files copied in %s with %d coordinator kills (%.0f files/s); %s", files, took.Round(time.Second), kills,
		float64(files)/took.Seconds(), a)
}

// jobAudit is what the histories of a job (its runs and the batch
// workflows they handed over) show.
type jobAudit struct {
	runs, children int
	pages          int
	// pagesRetried counts the pages whose activity ran more than one
	// attempt; unlisted those whose last attempt listed nothing (the
	// earlier ones had); resumed those listed by two attempts or more, one
	// after the other; cut the attempts cut while listing a piece (that
	// piece, not stored, was listed again).
	pagesRetried, unlisted, resumed, cut int
	fetched                              int64
	batches, covered                     int
}

func (a jobAudit) String() string {
	return fmt.Sprintf("history: %d runs and %d batch workflows; %d listing pages each scheduled once, %d of them retried after a kill, "+
		"%d entries listed (%d retried pages completed by an attempt that listed nothing, %d pages continued by a later attempt, "+
		"%d attempts cut while listing a piece, no stored piece listed twice); %d batches each completed once covering %d files",
		a.runs, a.children, a.pages, a.pagesRetried, a.fetched, a.unlisted, a.resumed, a.cut, a.batches, a.covered)
}

// auditPage checks what the attempts of one listing page listed, as the
// manifest store recorded it: no piece of the page listed by two attempts.
// attempt is the one that completed.
func auditPage(t *testing.T, a *jobAudit, page string, attempt int, res workflows.ListPageResult) {
	t.Helper()
	by := map[int]int{}
	listedLast := false
	for _, f := range res.Fetched {
		listedLast = listedLast || f.Attempt == attempt
		for i := f.First; i < f.First+f.Pieces; i++ {
			if other, ok := by[i]; ok {
				t.Fatalf("listing page %s: piece %d was listed by attempt %d and again by attempt %d (%+v)", page, i, other, f.Attempt, res.Fetched)
			}
			by[i] = f.Attempt
		}
		a.fetched += f.Entries
		if f.Cut {
			a.cut++
		}
	}
	if len(res.Fetched) > 1 {
		a.resumed++
	}
	if attempt > 1 && !listedLast {
		a.unlisted++
	}
}

// auditJob checks every run of a job and every batch workflow it started:
// each listing page is scheduled once and completes, no part of a page is
// listed twice and the pages list files entries in all, no batch completes
// twice, and the completed batches cover at most files entries (a batch
// ended by a failure hands its progress over instead of completing).
func auditJob(t *testing.T, temporal, id string, files int) jobAudit {
	t.Helper()
	cl, err := client.Dial(client.Options{HostPort: temporal})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	dc := converter.GetDefaultDataConverter()
	var a jobAudit
	pages := map[string]int{}
	batchDone := map[string]int{}
	listScheduled, listCompleted := 0, 0
	for _, q := range []string{fmt.Sprintf("WorkflowId = '%s'", id), fmt.Sprintf("ParentWorkflowId = '%s'", id)} {
		var token []byte
		for {
			resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, run := range resp.GetExecutions() {
				if run.GetType().GetName() == workflows.BatchWorkflowName {
					a.children++
				} else {
					a.runs++
				}
				scheduled := map[int64]workflows.BatchRef{}
				listing := map[int64]string{}
				attempt := map[int64]int{}
				iter := cl.GetWorkflowHistory(ctx, run.GetExecution().GetWorkflowId(), run.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
				for iter.HasNext() {
					ev, err := iter.Next()
					if err != nil {
						t.Fatal(err)
					}
					if s := ev.GetActivityTaskStartedEventAttributes(); s != nil && listing[s.GetScheduledEventId()] != "" {
						attempt[s.GetScheduledEventId()] = int(s.GetAttempt())
						if s.GetAttempt() > 1 {
							a.pagesRetried++
						}
					}
					if s := ev.GetActivityTaskScheduledEventAttributes(); s != nil {
						switch s.GetActivityType().GetName() {
						case workflows.ActivityListPage:
							var in workflows.ListPageInput
							if err := dc.FromPayloads(s.GetInput(), &in); err != nil {
								t.Fatal(err)
							}
							pages[in.Out.Kind+"/"+in.Out.Key]++
							listScheduled++
							listing[ev.GetEventId()] = in.Out.Kind + "/" + in.Out.Key
						case workflows.ActivityLoadBatch, workflows.ActivityCopyBatch:
							var in workflows.BatchInput
							if err := dc.FromPayloads(s.GetInput(), &in); err != nil {
								t.Fatal(err)
							}
							if in.Ref == nil {
								t.Fatalf("a batch carries its entries in history: %d of them", len(in.Entries))
							}
							scheduled[ev.GetEventId()] = *in.Ref
						}
					}
					if c := ev.GetActivityTaskCompletedEventAttributes(); c != nil {
						if key, ok := listing[c.GetScheduledEventId()]; ok {
							listCompleted++
							var res workflows.ListPageResult
							if err := dc.FromPayloads(c.GetResult(), &res); err != nil {
								t.Fatal(err)
							}
							auditPage(t, &a, key, attempt[c.GetScheduledEventId()], res)
						}
						if ref, ok := scheduled[c.GetScheduledEventId()]; ok {
							batchDone[ref.Key]++
							a.covered += ref.Count
						}
					}
				}
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	for key, n := range pages {
		if n > 1 {
			t.Fatalf("listing page %s was scheduled %d times", key, n)
		}
	}
	if listScheduled != listCompleted {
		t.Fatalf("%d listing activities scheduled, %d completed", listScheduled, listCompleted)
	}
	for key, n := range batchDone {
		if n > 1 {
			t.Fatalf("batch %s completed %d times", key, n)
		}
	}
	if a.covered > files {
		t.Fatalf("completed batches covered %d files, the job has %d: work was redone", a.covered, files)
	}
	if a.fetched != int64(files) {
		t.Fatalf("the listing pages' attempts listed %d entries, the job has %d files: %s", a.fetched, files, a)
	}
	a.pages, a.batches = len(pages), len(batchDone)
	return a
}
