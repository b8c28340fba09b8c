package truth

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// jobTimeout bounds one job of these tests.
const jobTimeout = 2 * time.Minute

// stopWithin is how soon a stop must take effect, stuck reads included.
// It is a deadline with headroom for a loaded machine, not a sleep.
const stopWithin = 20 * time.Second

// gate holds the reads of one job's files: hold says whether the nth read
// of a file (per kind: "open" for the store, "load" for the node cache)
// waits for a token, fail whether it fails instead. A held read ignores
// cancellation, as a read stuck in the kernel does.
type gate struct {
	prefix string
	tokens chan struct{}
	hold   func(kind, uri string, nth int) bool
	fail   func(kind, uri string, nth int) error
	opened bool
}

// faults is the local store with gates on the read path of the nodes: in
// Open (copy and move read through it) and in the node cache's load hook.
type faults struct {
	storage.Store
	mu    sync.Mutex
	gates []*gate
	reads map[string]int
	held  map[string]int // by prefix: reads waiting at the gate now
}

// newCluster is an engine with one node whose reads go through faults.
func newCluster(t *testing.T) (*enginetest.Cluster, *faults) {
	t.Helper()
	cl := enginetest.NewCluster(t, 0)
	return cl, useFaults(t, cl)
}

// useFaults adds node-1 to a cluster without nodes, its reads going
// through faults.
func useFaults(t *testing.T, cl *enginetest.Cluster) *faults {
	t.Helper()
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &faults{Store: st, reads: map[string]int{}, held: map[string]int{}}
	cl.Resolver = storage.NewResolver(f)
	cl.AddNode("node-1")
	cl.Caches["node-1"].Fail = func(uri string) error { return f.pass("load", uri) }
	t.Cleanup(f.openAll)
	return f
}

// add puts a gate on the files under prefix.
func (f *faults) add(prefix string, hold func(kind, uri string, nth int) bool, fail func(kind, uri string, nth int) error) *gate {
	g := &gate{prefix: prefix + "/", tokens: make(chan struct{}, 1<<16), hold: hold, fail: fail}
	f.mu.Lock()
	f.gates = append(f.gates, g)
	f.mu.Unlock()
	return g
}

// open lets every read of g through, now and from now on.
func (f *faults) open(g *gate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !g.opened {
		g.opened = true
		close(g.tokens)
	}
}

func (f *faults) openAll() {
	f.mu.Lock()
	gs := append([]*gate(nil), f.gates...)
	f.mu.Unlock()
	for _, g := range gs {
		f.open(g)
	}
}

// heldReads is how many reads wait at g now.
func (f *faults) heldReads(g *gate) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[g.prefix]
}

// pass is the gate of one read: it fails it, holds it, or lets it go.
func (f *faults) pass(kind, uri string) error {
	f.mu.Lock()
	var g *gate
	for _, x := range f.gates {
		if strings.HasPrefix(uri, x.prefix) {
			g = x
		}
	}
	f.reads[kind+" "+uri]++
	nth := f.reads[kind+" "+uri]
	if g == nil {
		f.mu.Unlock()
		return nil
	}
	if g.fail != nil {
		if err := g.fail(kind, uri, nth); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	if g.hold == nil || !g.hold(kind, uri, nth) {
		f.mu.Unlock()
		return nil
	}
	f.held[g.prefix]++
	f.mu.Unlock()
	<-g.tokens // deaf to cancellation on purpose
	f.mu.Lock()
	f.held[g.prefix]--
	f.mu.Unlock()
	return nil
}

// Open implements storage.Store: a held file's first Read waits at its gate.
func (f *faults) Open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	r, err := f.Store.Open(ctx, uri, off, n)
	if err != nil {
		return nil, err
	}
	return &gatedReader{ReadCloser: r, pass: func(kind string) error { return f.pass(kind, uri) }}, nil
}

// gatedReader passes its gate ("open") before its first Read and again
// ("midread") before its second, so a test can hold a file part-read.
type gatedReader struct {
	io.ReadCloser
	pass  func(kind string) error
	reads int
}

func (r *gatedReader) Read(p []byte) (int, error) {
	if r.reads < 2 {
		r.reads++
		kind := "open"
		if r.reads == 2 {
			kind = "midread"
		}
		if err := r.pass(kind); err != nil {
			return 0, err
		}
	}
	return r.ReadCloser.Read(p)
}

var _ activities.Cache = (*enginetest.MemCache)(nil)

// submit starts a job with raw options.
func submit(t *testing.T, cl *enginetest.Cluster, key jobs.Key, raw map[string]any) jobs.SubmitResult {
	t.Helper()
	opts, err := jobs.ParseOptions(key.Type, raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.Svc.Submit(context.Background(), key, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitFor waits until the job's progress satisfies cond.
func waitFor(t *testing.T, cl *enginetest.Cluster, key jobs.Key, what string, cond func(workflows.JobState) bool) workflows.JobState {
	t.Helper()
	var st workflows.JobState
	ferrytest.Eventually(t, jobTimeout, func() error {
		var err error
		st, err = cl.Svc.Progress(context.Background(), key)
		if err != nil {
			return err
		}
		if !cond(st) {
			return fmt.Errorf("waiting for %s: job is %s, stage %s, %d/%d processed", what, st.Status, st.Stage, st.Processed(), st.Qualified)
		}
		return nil
	})
	return st
}

// stopNow stops the job and waits until it is STOPPED; it fails the test
// when that takes longer than stopWithin.
func stopNow(t *testing.T, cl *enginetest.Cluster, key jobs.Key, stop func() error) (workflows.JobState, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := waitFor(t, cl, key, "STOPPED", func(s workflows.JobState) bool { return !s.Status.Active() })
	took := time.Since(start)
	if st.Status != workflows.StatusStopped {
		t.Fatalf("after a stop the job is %s (%s)", st.Status, st.Reason)
	}
	if took > stopWithin {
		t.Fatalf("the stop took %s (want within %s)", took, stopWithin)
	}
	return st, took
}

// checkBounded fails unless the counters of a job that has not ended are
// within its totals: nothing counted twice, no byte more than exists.
func checkBounded(t *testing.T, st workflows.JobState, files, bytes int64) {
	t.Helper()
	if st.Qualified > files || st.Processed() > st.Qualified || st.Succeeded+st.Skipped+st.Failed != st.Processed() {
		t.Fatalf("counters out of bounds: qualified %d, succeeded %d, skipped %d, failed %d of %d files", st.Qualified, st.Succeeded, st.Skipped, st.Failed, files)
	}
	if st.BytesDone+st.BytesSkipped > bytes || st.QualifiedSize > bytes {
		t.Fatalf("bytes out of bounds: done %d + skipped %d (qualified %d) of %d bytes", st.BytesDone, st.BytesSkipped, st.QualifiedSize, bytes)
	}
}

// run is one Temporal run of a job's workflow, as visibility shows it.
type run struct {
	id, runID string
	status    enumspb.WorkflowExecutionStatus
	state     string
	start     time.Time
}

func (r run) String() string {
	return fmt.Sprintf("%s/%s", strings.ToUpper(r.status.String()), r.state)
}

// visible lists the runs a visibility query matches, oldest first.
func visible(t *testing.T, cl *enginetest.Cluster, query string) []run {
	t.Helper()
	var out []run
	var token []byte
	for {
		resp, err := cl.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		for _, e := range resp.GetExecutions() {
			r := run{id: e.GetExecution().GetWorkflowId(), runID: e.GetExecution().GetRunId(), status: e.GetStatus(), start: e.GetStartTime().AsTime()}
			if p, ok := e.GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrJobState]; ok {
				_ = bytesjson.DataConverter().FromPayload(p, &r.state)
			}
			out = append(out, r)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// expectRuns waits until the job's runs, oldest first, read as want
// ("CANCELED/STOPPED", "COMPLETED/SUCCEEDED", …; "CONTINUED_AS_NEW/…"
// runs may come between any two).
func expectRuns(t *testing.T, cl *enginetest.Cluster, key jobs.Key, want ...string) []run {
	t.Helper()
	var runs []run
	ferrytest.Eventually(t, 30*time.Second, func() error {
		runs = visible(t, cl, fmt.Sprintf("WorkflowId = '%s'", key.WorkflowID()))
		var got []string
		for _, r := range runs {
			if r.status == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
				if r.state != workflows.SearchStateContinued {
					return fmt.Errorf("a run that continued as new says FerryJobState=%s", r.state)
				}
				continue
			}
			got = append(got, r.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("runs %v, want %v", got, want)
		}
		return nil
	})
	return runs
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
