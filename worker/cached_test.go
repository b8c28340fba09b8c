package worker_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/grpc"

	"github.com/ferryio/ferry/activities"
	pb "github.com/ferryio/ferry/cachenode/cachenodepb"
	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

// servedNode is a cache node of a test: a real page store on disk, loaded
// by the node's batches and served by its real gRPC data service.
type servedNode struct {
	id    string
	store *pagestore.Store
	srv   *grpc.Server

	mu sync.Mutex
	// beforeCached, when set, sees each CachedFiles request before it is
	// answered (to change the cache between two passes of one job).
	beforeCached func(*pb.CachedFilesRequest)
}

func serveNode(t *testing.T, cl *enginetest.Cluster, id string) *servedNode {
	t.Helper()
	st, err := pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: 64 << 10, Capacity: 1 << 30, Resolver: cl.Resolver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	n := &servedNode{id: id, store: st}
	n.srv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == "/ferry.cachenode.v1.CacheNode/CachedFiles" {
			n.mu.Lock()
			f := n.beforeCached
			n.mu.Unlock()
			if f != nil {
				f(req.(*pb.CachedFilesRequest))
			}
		}
		return h(ctx, req)
	}))
	(&grpcapi.Service{NodeID: id, Store: st, Resolver: cl.Resolver}).Register(n.srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.srv.Serve(lis) }()
	t.Cleanup(n.srv.Stop)
	cl.AddNodeServing(id, worker.PageStoreCache{Store: st}, lis.Addr().(*net.TCPAddr).Port)
	return n
}

// loadOnce runs a load of src to its end and returns its state and the
// LoadBatch activities its run scheduled, by node task queue.
func loadOnce(t *testing.T, cl *enginetest.Cluster, src string, options map[string]any) (workflows.JobState, map[string]int) {
	t.Helper()
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, options)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 2*time.Minute)
	batches := map[string]int{}
	iter := cl.Client.GetWorkflowHistory(context.Background(), key.WorkflowID(), st.JobID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == workflows.ActivityLoadBatch {
			batches[a.GetTaskQueue().GetName()]++
		}
	}
	return st, batches
}

func fromStorage(nodes []*servedNode) int64 {
	var n int64
	for _, nd := range nodes {
		n += nd.store.Stats().BytesFromStorage
	}
	return n
}

// Issue 17 point 2: a second load of an unchanged tree sends no batch for
// the files the owners hold complete at the listed version, counts each of
// them skipped (already cached) with its bytes, and reads nothing from
// storage; a file changed in between is loaded again; a node that cannot
// say what it holds gets its files as before (counters still exact); and a
// verify pass still checks the files the main pass skipped.
func TestSecondLoadSendsNoBatchForCachedFiles(t *testing.T) {
	cl := enginetest.NewCluster(t, 0)
	nodes := []*servedNode{serveNode(t, cl, "node-1"), serveNode(t, cl, "node-2")}
	src, total := enginetest.MakeTree(t, 240)
	dir := src[len("file://"):]
	odd := filepath.Join(dir, "d1", "caf\xe9 odd.bin") // a name that is not UTF-8
	if err := os.WriteFile(odd, []byte("bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, bytes := int64(241), total+5
	opts := map[string]any{"batchSize": "20"}

	first, batches := loadOnce(t, cl, src, opts)
	enginetest.CheckExact(t, first, files, bytes)
	if len(batches) != 2 || first.BytesDone != bytes {
		t.Fatalf("first load: batches %v, loaded %d bytes of %d", batches, first.BytesDone, bytes)
	}
	read := fromStorage(nodes)

	second, batches := loadOnce(t, cl, src, opts)
	enginetest.CheckExact(t, second, files, bytes)
	if len(batches) != 0 {
		t.Fatalf("second load of the unchanged tree scheduled batches: %v", batches)
	}
	if second.Skipped != files || second.BytesSkipped != bytes || second.BytesDone != 0 ||
		len(second.SkipReasons) != 1 || second.SkipReasons[0] != (workflows.SkipCount{Reason: activities.SkipCached, Count: files}) {
		t.Fatalf("second load: skipped %d (%d bytes), loaded %d bytes, reasons %+v; want all %d files (%d bytes) skipped as already cached",
			second.Skipped, second.BytesSkipped, second.BytesDone, second.SkipReasons, files, bytes)
	}
	if got := fromStorage(nodes); got != read {
		t.Fatalf("second load read %d bytes from storage", got-read)
	}
	// Its last page's plan read the ring in the task that ends the job: no
	// second read before it ends.
	if n := scheduledActivities(t, cl.Client, jobs.Key{Type: workflows.JobLoad, Path: src}.WorkflowID(), second.JobID)[workflows.ActivityLiveNodes]; n != 0 {
		t.Fatalf("second load read the ring %d more times before it ended", n)
	}

	// Two files change: one grows, one keeps its size under a new mtime.
	grown := filepath.Join(dir, "d3", "f 0003+x.bin")
	if err := os.WriteFile(grown, make([]byte, 100_123), 0o644); err != nil {
		t.Fatal(err)
	}
	touched := filepath.Join(dir, "d2", "f 0002+x.bin")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(touched, later, later); err != nil {
		t.Fatal(err)
	}
	changed := int64(100_123 + 4096)
	bytes += 100_123 - 100_000
	third, batches := loadOnce(t, cl, src, opts)
	enginetest.CheckExact(t, third, files, bytes)
	if third.Succeeded != 2 || third.BytesDone != changed || third.Skipped != files-2 {
		t.Fatalf("after two files changed: succeeded %d (%d bytes), skipped %d; want the 2 changed ones (%d bytes) loaded",
			third.Succeeded, third.BytesDone, third.Skipped, changed)
	}
	if n := batches[ring.TaskQueueFor("node-1")] + batches[ring.TaskQueueFor("node-2")]; n < 1 || n > 2 {
		t.Fatalf("after two files changed: batches %v", batches)
	}
	if got := fromStorage(nodes); got != read+changed {
		t.Fatalf("third load read %d bytes from storage, want the changed files' %d", got-read, changed)
	}
	read += changed

	// node-1 cannot answer: its files go to it in batches as before, and
	// it skips them there; node-2's do not.
	nodes[0].srv.Stop()
	fourth, batches := loadOnce(t, cl, src, opts)
	enginetest.CheckExact(t, fourth, files, bytes)
	if fourth.Skipped != files || fourth.BytesSkipped != bytes || fourth.Failed != 0 {
		t.Fatalf("with node-1 silent: skipped %d (%d bytes) failed %d; want all %d (%d bytes) skipped", fourth.Skipped, fourth.BytesSkipped, fourth.Failed, files, bytes)
	}
	if batches[ring.TaskQueueFor("node-1")] == 0 || batches[ring.TaskQueueFor("node-2")] != 0 {
		t.Fatalf("with node-1 silent: batches %v, want some for node-1 only", batches)
	}
	if got := fromStorage(nodes); got != read {
		t.Fatalf("with node-1 silent the load read %d bytes from storage", got-read)
	}

	// --verify: the main pass skips everything node-2 holds; a file of
	// node-2 dropped before the verify pass asks about it again is found
	// missing and loaded.
	var victim string
	for i := 1; i < 40 && victim == ""; i++ {
		if f := fmt.Sprintf("file://%s/d%d/f %04d+x.bin", dir, i%7, i); i%4 != 0 && ownerOf(t, cl, f) == "node-2" {
			victim = f
		}
	}
	asked := 0
	nodes[1].mu.Lock()
	nodes[1].beforeCached = func(req *pb.CachedFilesRequest) {
		for _, f := range req.Files {
			if f.URI() != victim {
				continue
			}
			if asked++; asked == 2 { // the verify pass
				if _, err := nodes[1].store.Drop(victim); err != nil {
					t.Error(err)
				}
			}
		}
	}
	nodes[1].mu.Unlock()
	verified, _ := loadOnce(t, cl, src, map[string]any{"batchSize": "20", "verify": "true"})
	enginetest.CheckExact(t, verified, files, bytes)
	// The pass that found it is followed by one that finds nothing.
	if asked != 3 || verified.VerifyPass != 2 || verified.VerifyLoadedFiles != 1 || verified.Skipped != files {
		t.Fatalf("verify: node-2 asked %d times about %s; pass %d, verify loaded %d files, skipped %d; want the dropped file loaded by the verify pass",
			asked, victim, verified.VerifyPass, verified.VerifyLoadedFiles, verified.Skipped)
	}
	if !nodes[1].store.IsCached(victim, "") {
		t.Fatalf("%s is not cached after the verify pass", victim)
	}
	recordHistories(t, cl.Client, jobs.Key{Type: workflows.JobLoad, Path: src}.WorkflowID(), "v2-load-cached")

	// A metadata-only load asks nothing and sends every file to its node,
	// as before.
	meta, batches := loadOnce(t, cl, src, map[string]any{"batchSize": "20", "loadMetadataOnly": "true"})
	if meta.Status != workflows.StatusSucceeded || len(batches) == 0 || meta.Succeeded != files || meta.Qualified != files {
		t.Fatalf("metadata-only load: %s, batches %v, succeeded %d of %d", meta.Status, batches, meta.Succeeded, meta.Qualified)
	}
}

func ownerOf(t *testing.T, cl *enginetest.Cluster, uri string) string {
	t.Helper()
	r, err := cl.Ring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r.Owners(uri, 1)[0].ID
}
