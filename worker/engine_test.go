package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

// memCache stands in for a node's page store in these engine tests: it
// reads each file through the storage layer and remembers what it holds.
type memCache struct {
	node     string
	resolver *storage.Resolver
	mu       sync.Mutex
	files    map[string]int64
	gate     chan struct{} // when set, each load waits for a token
	loads    atomic.Int64
}

func (c *memCache) Load(ctx context.Context, f activities.CacheFile, opts activities.CacheLoadOptions) (activities.CacheLoadResult, error) {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return activities.CacheLoadResult{}, ctx.Err()
		}
	}
	c.mu.Lock()
	size, ok := c.files[f.URI]
	c.mu.Unlock()
	if ok && opts.SkipIfExists {
		return activities.CacheLoadResult{Skipped: true, BytesSkipped: size}, nil
	}
	st, err := c.resolver.For(f.URI)
	if err != nil {
		return activities.CacheLoadResult{}, err
	}
	r, err := st.Open(ctx, f.URI, 0, -1)
	if err != nil {
		return activities.CacheLoadResult{}, err
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return activities.CacheLoadResult{}, err
	}
	c.mu.Lock()
	c.files[f.URI] = n
	c.mu.Unlock()
	c.loads.Add(1)
	return activities.CacheLoadResult{BytesLoaded: n}, nil
}

type cluster struct {
	t        *testing.T
	client   client.Client
	svc      *jobs.Service
	resolver *storage.Resolver
	mu       sync.Mutex
	members  []ring.Member
	caches   map[string]*memCache
	workers  map[string]sdkworker.Worker
	failDir  string
}

func (c *cluster) ring(ctx context.Context) (*ring.Ring, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ring.New(c.members, 0), nil
}

func newCluster(t *testing.T, nodes int) *cluster {
	t.Helper()
	srv, err := temporaldev.Start(context.Background(), temporaldev.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{t: t, client: c, resolver: storage.NewResolver(st), caches: map[string]*memCache{},
		workers: map[string]sdkworker.Worker{}, failDir: "file://" + t.TempDir()}
	cl.svc = jobs.NewService(c, cl.resolver)

	coord := sdkworker.New(c, workflows.CoordinatorTaskQueue, worker.CoordinatorOptions())
	worker.RegisterCoordinator(coord, &activities.Coordinator{
		Resolver: cl.resolver, Placement: worker.RingPlacement{Current: cl.ring}, FailuresDir: cl.failDir,
	})
	if err := coord.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.Stop)
	for i := 1; i <= nodes; i++ {
		cl.addNode(fmt.Sprintf("node-%d", i))
	}
	return cl
}

func (c *cluster) addNode(id string) {
	cache := &memCache{node: id, resolver: c.resolver, files: map[string]int64{}}
	w := sdkworker.New(c.client, ring.TaskQueueFor(id), worker.NodeOptions())
	worker.RegisterNode(w, &activities.Node{Cache: cache, Resolver: c.resolver})
	if err := w.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(w.Stop)
	c.mu.Lock()
	c.caches[id] = cache
	c.workers[id] = w
	c.members = append(c.members, ring.Member{ID: id, Identity: ring.IdentityFromName(id), Host: "127.0.0.1", TaskQueue: ring.TaskQueueFor(id)})
	c.mu.Unlock()
}

// killNode stops a node's worker and takes it off the ring, as membership
// would after its heartbeats stop.
func (c *cluster) killNode(id string) {
	c.mu.Lock()
	w := c.workers[id]
	var kept []ring.Member
	for _, m := range c.members {
		if m.ID != id {
			kept = append(kept, m)
		}
	}
	c.members = kept
	c.mu.Unlock()
	w.Stop()
}

func (c *cluster) waitEnd(key jobs.Key, timeout time.Duration) workflows.JobState {
	c.t.Helper()
	var st workflows.JobState
	ferrytest.Eventually(c.t, timeout, func() error {
		var err error
		st, err = c.svc.Progress(context.Background(), key)
		if err != nil {
			return err
		}
		if st.Status.Active() {
			return fmt.Errorf("job is %s (%d/%d processed)", st.Status, st.Processed(), st.Qualified)
		}
		return nil
	})
	return st
}

// makeTree writes n files of mixed sizes under a new directory.
func makeTree(t *testing.T, n int) (string, int64) {
	t.Helper()
	dir := t.TempDir()
	var total int64
	sizes := []int{0, 1, 4096, 100_000}
	for i := 0; i < n; i++ {
		size := sizes[i%len(sizes)]
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f %04d+x.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	return "file://" + dir, total
}

func checkExact(t *testing.T, st workflows.JobState, files, bytes int64) {
	t.Helper()
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("job ended %s (%s): %+v", st.Status, st.Reason, st.RecentFailures)
	}
	if st.Qualified != files || st.Processed() != files || st.Succeeded+st.Skipped != files || st.Failed != 0 {
		t.Fatalf("counters: qualified %d, succeeded %d, skipped %d, failed %d; want %d files", st.Qualified, st.Succeeded, st.Skipped, st.Failed, files)
	}
	if st.BytesDone+st.BytesSkipped != bytes {
		t.Fatalf("bytes done %d + skipped %d, want %d", st.BytesDone, st.BytesSkipped, bytes)
	}
}

func TestLoadJobEndToEnd(t *testing.T) {
	cl := newCluster(t, 3)
	src, total := makeTree(t, 300)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "50"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.svc.Submit(context.Background(), key, opts)
	if err != nil || res.Outcome != jobs.Started || res.JobID == "" {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	st := cl.waitEnd(key, 60*time.Second)
	checkExact(t, st, 300, total)
	if !st.TotalsKnown || st.TotalFiles != 300 || st.TotalBytes != total {
		t.Errorf("totals from the count-only scan: known %v, %d files, %d bytes", st.TotalsKnown, st.TotalFiles, st.TotalBytes)
	}
	if st.JobID != res.JobID {
		t.Errorf("job id %q, submit said %q", st.JobID, res.JobID)
	}
	// Every file is cached on its owner, and only there.
	r, _ := cl.ring(context.Background())
	for id, c := range cl.caches {
		for uri := range c.files {
			if o, _ := r.Owner(uri); o.ID != id {
				t.Fatalf("%s cached on %s, owner is %s", uri, id, o.ID)
			}
		}
	}
	// A new submit after SUCCEEDED starts a new run with a new job id.
	res2, err := cl.svc.Submit(context.Background(), key, opts)
	if err != nil || res2.Outcome != jobs.Started || res2.JobID == res.JobID {
		t.Fatalf("resubmit after success: %+v, %v", res2, err)
	}
	cl.waitEnd(key, 60*time.Second)
}

func TestStopAndResumeKeepsJobIDAndExactCounters(t *testing.T) {
	cl := newCluster(t, 2)
	gate := make(chan struct{})
	for _, c := range cl.caches {
		c.gate = gate
	}
	// Batches of one file: each token below finishes exactly one batch.
	src, total := makeTree(t, 60)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "1"})
	ctx := context.Background()
	res, err := cl.svc.Submit(ctx, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := cl.svc.Submit(ctx, key, opts)
	if err != nil || again.Outcome != jobs.AlreadyRunning {
		t.Fatalf("second submit while running: %+v, %v", again, err)
	}
	// Let 15 files through, then stop.
	for i := 0; i < 15; i++ {
		gate <- struct{}{}
	}
	ferrytest.Eventually(t, 30*time.Second, func() error {
		st, err := cl.svc.Progress(ctx, key)
		if err != nil || st.Processed() < 15 {
			return fmt.Errorf("processed %d, %v", st.Processed(), err)
		}
		return nil
	})
	if err := cl.svc.Stop(ctx, key); err != nil {
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
		stopped, err = cl.svc.Progress(ctx, key)
		if err != nil || stopped.Status != workflows.StatusStopped {
			return fmt.Errorf("status %s, %v", stopped.Status, err)
		}
		return nil
	})
	close(done)
	if stopped.Processed() >= 60 {
		t.Fatalf("stop came too late to test resume: %d processed", stopped.Processed())
	}
	if err := cl.svc.Stop(ctx, key); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("stop of a stopped job: %v, want ErrNotFound", err)
	}

	for _, c := range cl.caches {
		c.gate = nil
	}
	resumed, err := cl.svc.Submit(ctx, key, opts)
	if err != nil || resumed.Outcome != jobs.Resumed || resumed.JobID != res.JobID {
		t.Fatalf("resubmit of a stopped job: %+v (first job id %s), %v", resumed, res.JobID, err)
	}
	st := cl.waitEnd(key, 60*time.Second)
	checkExact(t, st, 60, total)
	if st.JobID != res.JobID || st.Runs < 2 {
		t.Fatalf("resumed job: id %s runs %d", st.JobID, st.Runs)
	}
	recordHistories(t, cl.client, key.WorkflowID(), "stop-resume")
	var loads int64
	for _, c := range cl.caches {
		loads += c.loads.Load()
	}
	if loads != 60 {
		t.Fatalf("%d file loads for 60 files: work was redone or lost", loads)
	}
}

func TestContinueAsNewKeepsCounting(t *testing.T) {
	cl := newCluster(t, 2)
	src, total := makeTree(t, 200)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "20"})
	opts.TestContinueAsNewAfter = 3
	if _, err := cl.svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.waitEnd(key, 90*time.Second)
	checkExact(t, st, 200, total)
	if st.Runs < 3 {
		t.Fatalf("job took %d runs; want several continue-as-new", st.Runs)
	}
	recordHistories(t, cl.client, key.WorkflowID(), "continue-as-new")
	var loads int64
	for _, c := range cl.caches {
		loads += c.loads.Load()
	}
	if loads != 200 {
		t.Fatalf("%d loads for 200 files", loads)
	}
}

func TestNodeLossReplansWork(t *testing.T) {
	cl := newCluster(t, 3)
	gate := make(chan struct{})
	cl.caches["node-2"].gate = gate // node-2 hangs until killed
	src, total := makeTree(t, 150)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10", "partialListing": "true"})
	if _, err := cl.svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, 30*time.Second, func() error {
		st, err := cl.svc.Progress(context.Background(), key)
		if err != nil || st.Processed() < 30 {
			return fmt.Errorf("processed %d, %v", st.Processed(), err)
		}
		return nil
	})
	cl.killNode("node-2")
	st := cl.waitEnd(key, 120*time.Second)
	checkExact(t, st, 150, total)
	r, _ := cl.ring(context.Background())
	for _, id := range []string{"node-1", "node-3"} {
		for uri := range cl.caches[id].files {
			if o, _ := r.Owner(uri); o.ID != id {
				t.Fatalf("%s on %s, current owner %s", uri, id, o.ID)
			}
		}
	}
}

func TestFailuresAreReportedAndSaved(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything; make the failure a vanished file instead.
		t.Log("running as root: using a file removed after listing")
	}
	cl := newCluster(t, 1)
	src, _ := makeTree(t, 20)
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
	if _, err := cl.svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.waitEnd(key, 60*time.Second)
	if st.Status != workflows.StatusFailed || st.Reason != "Job partially failed." {
		t.Fatalf("status %s reason %q", st.Status, st.Reason)
	}
	if st.Succeeded != 5 || st.Failed != 1 || st.Qualified != 6 {
		t.Fatalf("succeeded %d failed %d qualified %d", st.Succeeded, st.Failed, st.Qualified)
	}
	if len(st.RecentFailures) != 1 || st.RecentFailures[0].Reason != workflows.ErrTypeNotFound {
		t.Fatalf("recent failures %+v", st.RecentFailures)
	}
	if !strings.HasPrefix(st.FailuresLocation, cl.failDir) {
		t.Fatalf("failures saved to %q, want under %s", st.FailuresLocation, cl.failDir)
	}
	des, err := os.ReadDir(strings.TrimPrefix(st.FailuresLocation, "file://"))
	if err != nil || len(des) == 0 {
		t.Fatalf("failure list: %v, %v", des, err)
	}
}

func TestMissingSourceIsRefusedAtSubmit(t *testing.T) {
	cl := newCluster(t, 1)
	key := jobs.Key{Type: workflows.JobLoad, Path: "file:///no/such/dir"}
	_, err := cl.svc.Submit(context.Background(), key, workflows.Options{})
	var ie *jobs.InputError
	if !errors.As(err, &ie) || ie.Field != "path" {
		t.Fatalf("submit of a missing source: %v", err)
	}
	if _, err := cl.svc.Progress(context.Background(), key); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("a refused submit left a job behind: %v", err)
	}
}

type quiet struct{}

func (quiet) Debug(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
func (quiet) Warn(string, ...interface{})  {}
func (quiet) Error(string, ...interface{}) {}

// TestPlainTemporalClientCanQueryAndStop drives a job the way a user's own
// Go program would: only the Temporal SDK, the workflow ID, the "progress"
// query and the "stop" signal documented in the README.
func TestPlainTemporalClientCanQueryAndStop(t *testing.T) {
	cl := newCluster(t, 1)
	gate := make(chan struct{})
	cl.caches["node-1"].gate = gate
	src, _ := makeTree(t, 40)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "1"})
	if _, err := cl.svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	gate <- struct{}{}
	ctx := context.Background()
	c := cl.client // any client.Client works; nothing Ferry-specific below
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
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &final); err != nil {
		t.Fatal(err)
	}
	if final.Status != "STOPPED" {
		t.Fatalf("after the stop signal the run ended %s", final.Status)
	}
}
