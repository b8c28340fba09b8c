// Package enginetest runs Ferry's job engine in-process for tests: an
// in-memory Temporal server, the real coordinator and node workers of package
// worker, a ring the test controls, and a stand-in node cache (MemCache) that
// reads through the storage layer and records what it holds. The workflow
// tests, the copy and move tests across stores, and the failure tests share it.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/internal/historystat"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// MemCache stands in for a node's page store: it reads each file through
// the storage layer and remembers its size.
type MemCache struct {
	resolver *storage.Resolver
	mu       sync.Mutex
	files    map[string]int64
	// Gate, when set before the job starts, makes each load wait for a token.
	Gate chan struct{}
	// Delay, when set before the job starts, makes each load take this long.
	Delay time.Duration
	// Fail, when set before the job starts, is asked first on every load;
	// an error it returns is the load's.
	Fail  func(uri string) error
	loads atomic.Int64
	// calls counts the loads asked for each URI, skipped ones included.
	calls map[string]int
}

// Load implements activities.Cache.
func (c *MemCache) Load(ctx context.Context, f activities.CacheFile, opts activities.CacheLoadOptions) (activities.CacheLoadResult, error) {
	if c.Gate != nil {
		select {
		case <-c.Gate:
		case <-ctx.Done():
			return activities.CacheLoadResult{}, ctx.Err()
		}
	}
	if c.Fail != nil {
		if err := c.Fail(f.URI); err != nil {
			return activities.CacheLoadResult{}, err
		}
	}
	if c.Delay > 0 {
		t := time.NewTimer(c.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return activities.CacheLoadResult{}, ctx.Err()
		}
	}
	c.mu.Lock()
	size, ok := c.files[f.URI]
	c.calls[f.URI]++
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
	defer func() { _ = r.Close() }()
	w := io.Discard
	if opts.Progress != nil {
		w = progressWriter(opts.Progress)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return activities.CacheLoadResult{}, err
	}
	c.mu.Lock()
	c.files[f.URI] = n
	c.mu.Unlock()
	c.loads.Add(1)
	return activities.CacheLoadResult{BytesLoaded: n}, nil
}

// progressWriter discards what it is given and reports its length.
type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	p(int64(len(b)))
	return len(b), nil
}

// Files returns the URIs the cache holds.
func (c *MemCache) Files() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.files))
	for u := range c.files {
		out = append(out, u)
	}
	return out
}

// Calls returns how often a load of each URI was asked for, skipped ones
// (skip-if-exists) included: what the node had to look at.
func (c *MemCache) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for u, n := range c.calls {
		out[u] = n
	}
	return out
}

// Loads counts the files loaded so far.
func (c *MemCache) Loads() int64 { return c.loads.Load() }

// Cluster is an in-process Ferry: Temporal, one coordinator, nodes.
type Cluster struct {
	T testing.TB
	// Client is a Temporal client of the cluster.
	Client client.Client
	// Svc submits and inspects jobs.
	Svc *jobs.Service
	// Resolver is used by the coordinator and by nodes added from now on;
	// a test may replace it (for example with a fault-injecting store)
	// before adding nodes.
	Resolver *storage.Resolver
	// Manifests is the manifest store shared by the coordinator and the
	// nodes (a directory of the test).
	Manifests *manifest.Store
	// Caches are the nodes' caches by node ID.
	Caches map[string]*MemCache
	// UIURL is the Temporal Web UI's base URL, if the server has one.
	UIURL string
	// Frontend and Namespace locate the cluster's Temporal server, and
	// ManifestRoot its manifest store, for node workers that a test runs
	// in another process (see AddMember).
	Frontend, Namespace, ManifestRoot string

	mu      sync.Mutex
	members []ring.Member
	// changedAt is when members last changed: the rings Ring returns are
	// stamped with it, as the membership registry's are with its clock.
	changedAt time.Time
	workers   map[string]sdkworker.Worker
	ringDown  bool
}

// NewCluster starts a cluster with nodes node-1 … node-N and the local
// storage backend; the resolver may be widened with extra stores.
func NewCluster(t testing.TB, nodes int, extra ...storage.Store) *Cluster {
	t.Helper()
	return NewClusterConfig(t, temporaldev.Config{}, nodes, extra...)
}

// NewClusterConfig is NewCluster with the embedded Temporal server
// configured by cfg (UIAddress "127.0.0.1:0" adds the Web UI at UIURL).
func NewClusterConfig(t testing.TB, cfg temporaldev.Config, nodes int, extra ...storage.Store) *Cluster {
	t.Helper()
	return newCluster(t, cfg, nil, nodes, extra...)
}

// NewClusterIntercepted is NewCluster with interceptors on the coordinator's
// worker: a test injects a fault at the activity boundary with them (an
// activity that did its work but whose completion is lost).
func NewClusterIntercepted(t testing.TB, nodes int, coordinator []interceptor.WorkerInterceptor, extra ...storage.Store) *Cluster {
	t.Helper()
	return newCluster(t, temporaldev.Config{}, coordinator, nodes, extra...)
}

func newCluster(t testing.TB, cfg temporaldev.Config, coordinator []interceptor.WorkerInterceptor, nodes int, extra ...storage.Store) *Cluster {
	t.Helper()
	srv, c := StartTemporal(t, cfg)
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &Cluster{
		T: t, Client: c, UIURL: srv.UIURL(), Resolver: storage.NewResolver(append([]storage.Store{st}, extra...)...),
		Caches: map[string]*MemCache{}, workers: map[string]sdkworker.Worker{},
	}
	cl.Frontend, cl.Namespace, cl.ManifestRoot = srv.FrontendAddress(), srv.Namespace(), "file://"+t.TempDir()
	if cl.Manifests, err = manifest.New(cl.Resolver, cl.ManifestRoot); err != nil {
		t.Fatal(err)
	}
	cl.Svc = jobs.NewService(c, cl.Resolver)

	coordOpts := worker.CoordinatorOptions()
	coordOpts.Interceptors = coordinator
	coord := sdkworker.New(c, workflows.CoordinatorTaskQueue, coordOpts)
	// Nodes added with a gRPC port (AddNodeServing) are asked which files
	// they hold; the others, without an address, get every file.
	index := &worker.GRPCCacheIndex{}
	t.Cleanup(func() { _ = index.Close() })
	worker.RegisterCoordinator(coord, &activities.Coordinator{
		Resolver:  cl.Resolver,
		Placement: worker.RingPlacement{Current: cl.Ring},
		Manifests: cl.Manifests,
		Cached:    index,
	})
	if err := coord.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(coord.Stop)
	for i := 1; i <= nodes; i++ {
		cl.AddNode(fmt.Sprintf("node-%d", i))
	}
	return cl
}

// StartTemporal starts the embedded Temporal server configured by cfg and
// dials a client of it with Ferry's data converter; both stop when the
// test ends.
func StartTemporal(t testing.TB, cfg temporaldev.Config) (*temporaldev.Server, client.Client) {
	t.Helper()
	srv, err := temporaldev.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := Dial(srv.FrontendAddress(), srv.Namespace())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv, c
}

// Dial connects a quiet client with Ferry's data converter to the Temporal
// server at frontend, for example from a process a test started.
func Dial(frontend, namespace string) (client.Client, error) {
	return client.Dial(client.Options{HostPort: frontend, Namespace: namespace, Logger: quietLogger{}, DataConverter: bytesjson.DataConverter()})
}

// Ring is the cluster's current ring.
func (c *Cluster) Ring(ctx context.Context) (*ring.Ring, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ringDown {
		return nil, errors.New("membership registry unavailable (test)")
	}
	r := ring.New(c.members, 0)
	r.AsOf = c.changedAt
	return r, nil
}

// SetRingDown makes the ring unreadable (down) or readable again, as when
// the membership registry is briefly unavailable.
func (c *Cluster) SetRingDown(down bool) {
	c.mu.Lock()
	c.ringDown = down
	c.mu.Unlock()
}

// History measures every run of a workflow ID: events and encoded bytes.
func (c *Cluster) History(ctx context.Context, workflowID string) (historystat.Stats, error) {
	return historystat.Of(ctx, c.Client, workflowID)
}

// AddNode starts a node worker with a fresh MemCache and puts it on the ring.
func (c *Cluster) AddNode(id string) {
	cache := &MemCache{resolver: c.Resolver, files: map[string]int64{}, calls: map[string]int{}}
	c.AddNodeWithCache(id, cache)
	c.mu.Lock()
	c.Caches[id] = cache
	c.mu.Unlock()
}

// AddNodeWithCache starts a node worker that loads into cache (for
// example a real page store, worker.PageStoreCache) and puts it on the
// ring. The cache is not in Caches.
func (c *Cluster) AddNodeWithCache(id string, cache activities.Cache) {
	c.AddNodeServing(id, cache, 0)
}

// AddNodeServing is AddNodeWithCache for a node whose gRPC data service
// (package grpcapi, over the same cache) the test serves on grpcPort of
// 127.0.0.1: the ring says so, and the coordinator asks it which files it
// holds. Port 0: none.
func (c *Cluster) AddNodeServing(id string, cache activities.Cache, grpcPort int) {
	w := sdkworker.New(c.Client, ring.TaskQueueFor(id), worker.NodeOptions())
	worker.RegisterNode(w, &activities.Node{Cache: cache, Resolver: c.Resolver, Manifests: c.Manifests})
	if err := w.Start(); err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(w.Stop)
	c.mu.Lock()
	c.workers[id] = w
	c.mu.Unlock()
	c.addMember(id, grpcPort)
}

// AddMember puts node id on the ring without starting a worker for it: the
// test serves the node's task queue itself, for example from a process it
// can kill.
func (c *Cluster) AddMember(id string) { c.addMember(id, 0) }

func (c *Cluster) addMember(id string, grpcPort int) {
	c.mu.Lock()
	c.members = append(c.members, ring.Member{ID: id, Identity: ring.IdentityFromName(id), Host: "127.0.0.1", GRPCPort: grpcPort, TaskQueue: ring.TaskQueueFor(id)})
	c.changedAt = time.Now()
	c.mu.Unlock()
}

// KillNode stops a node's worker and takes it off the ring, as membership
// would after its heartbeats stop.
func (c *Cluster) KillNode(id string) {
	c.mu.Lock()
	w := c.workers[id]
	var kept []ring.Member
	for _, m := range c.members {
		if m.ID != id {
			kept = append(kept, m)
		}
	}
	c.members = kept
	c.changedAt = time.Now()
	c.mu.Unlock()
	w.Stop()
}

// WaitEnd waits until the job is no longer active and returns its state.
func (c *Cluster) WaitEnd(key jobs.Key, timeout time.Duration) workflows.JobState {
	c.T.Helper()
	var st workflows.JobState
	ferrytest.Eventually(c.T, timeout, func() error {
		var err error
		st, err = c.Svc.Progress(context.Background(), key)
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

// MakeTree writes n files of mixed sizes (0, 1, 4096, 100,000 bytes) with
// spaces and '+' in their names under a new directory and returns its URI
// and the total size.
func MakeTree(t testing.TB, n int) (string, int64) {
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

// CheckExact fails unless the job SUCCEEDED with exact counters for files
// and bytes.
func CheckExact(t testing.TB, st workflows.JobState, files, bytes int64) {
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

type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}

// RecordHistories saves the history of every run of workflowID as
// <name>-<n>.json under $FERRY_RECORD_HISTORIES, for the replay tests in
// tests/replay. Without the variable it does nothing.
func RecordHistories(t testing.TB, c client.Client, workflowID, name string) {
	t.Helper()
	dir := os.Getenv("FERRY_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	ctx := context.Background()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = '%s'", workflowID),
	})
	if err != nil {
		t.Fatal(err)
	}
	execs := resp.GetExecutions()
	sort.Slice(execs, func(i, j int) bool { return execs[i].GetStartTime().AsTime().Before(execs[j].GetStartTime().AsTime()) })
	for i, e := range execs {
		h := &historypb.History{}
		iter := c.GetWorkflowHistory(ctx, workflowID, e.GetExecution().GetRunId(), false, 0)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.json", name, i+1))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events)", p, len(h.Events))
	}
}

// ReadTree reads every regular file under dir: contents by slash-separated
// relative path. A missing dir reads as empty.
func ReadTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}
