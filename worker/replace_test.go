package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// treeURIs lists the files of a tree made by enginetest.MakeTree.
func treeURIs(t *testing.T, src string) []string {
	t.Helper()
	root := strings.TrimPrefix(src, "file://")
	var out []string
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			out = append(out, src+"/"+d.Name()+"/"+f.Name())
		}
	}
	return out
}

// startSlowLoad submits a load of n files in batches of 10 on a cluster
// whose nodes take 20 ms a file, and waits until at least half is done.
func startSlowLoad(t *testing.T, cl *enginetest.Cluster, n int) (jobs.Key, string, int64) {
	t.Helper()
	for _, c := range cl.Caches {
		c.Delay = 20 * time.Millisecond
	}
	src, total := enginetest.MakeTree(t, n)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10", "partialListing": "true"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	ferrytest.Eventually(t, 60*time.Second, func() error {
		st, err := cl.Svc.Progress(context.Background(), key)
		if err != nil || st.Processed() < int64(n/2) {
			return fmt.Errorf("processed %d, %w", st.Processed(), err)
		}
		return nil
	})
	return key, src, total
}

// endOnOwners waits for the job's end and checks it: exact counters, no
// verify pass, every file cached on its current owner. It returns the state
// and the files.
func endOnOwners(t *testing.T, cl *enginetest.Cluster, key jobs.Key, src string, n int, total int64) (workflows.JobState, []string) {
	t.Helper()
	st := cl.WaitEnd(key, 2*time.Minute)
	enginetest.CheckExact(t, st, int64(n), total)
	if st.VerifyPass != 0 {
		t.Fatalf("%d verify passes: the whole job was looked at again", st.VerifyPass)
	}
	uris := treeURIs(t, src)
	checkOnOwners(t, cl, uris)
	return st, uris
}

// askedOnce fails if one of the nodes was asked to load a file twice, and
// returns how many loads they were asked in all.
func askedOnce(t *testing.T, cl *enginetest.Cluster, nodes ...string) int {
	t.Helper()
	asked := 0
	for _, id := range nodes {
		for uri, k := range cl.Caches[id].Calls() {
			if k != 1 {
				t.Fatalf("%s was asked of %s %d times", uri, id, k)
			}
			asked++
		}
	}
	return asked
}

// checkOnOwners fails unless every file is cached on its owner on the
// cluster's current ring.
func checkOnOwners(t *testing.T, cl *enginetest.Cluster, uris []string) {
	t.Helper()
	r, err := cl.Ring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cached := map[string]bool{}
	for id, c := range cl.Caches {
		for _, uri := range c.Files() {
			cached[uri+"@"+id] = true
		}
	}
	for _, uri := range uris {
		o, _ := r.Owner(uri)
		if !cached[uri+"@"+o.ID] {
			t.Fatalf("%s is not cached on its owner %s", uri, o.ID)
		}
	}
}

// TestNodeLossReplacesOnlyItsFiles is point 2 of issue 10's remainder: a
// node that leaves mid-load has only its own files (finished, running or
// queued there) placed again, on their new owners; the other nodes' work
// is not looked at again. Every file is asked of the surviving nodes
// exactly once, where a verify pass over the manifests used to ask each of
// them again.
func TestNodeLossReplacesOnlyItsFiles(t *testing.T) {
	cl := enginetest.NewCluster(t, 3)
	const n = 300
	key, src, total := startSlowLoad(t, cl, n)
	if len(cl.Caches["node-2"].Files()) == 0 {
		t.Fatal("node-2 finished nothing before it left: the test shows nothing")
	}
	cl.KillNode("node-2")
	st, _ := endOnOwners(t, cl, key, src, n, total)
	asked := askedOnce(t, cl, "node-1", "node-3")
	if asked != n {
		t.Fatalf("the surviving nodes were asked %d loads for %d files", asked, n)
	}
	t.Logf("node-2 had finished %d files; re-placed %d (verify-pass loads %d)", len(cl.Caches["node-2"].Files()), st.VerifyLoadedFiles, st.VerifyLoadedFiles)
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-node-replace")
}

// TestJoinedNodeTakesOnlyItsFiles: a node that joins mid-load gets the
// files it now owns that other nodes had already loaded, and nothing else
// is looked at again: no node is asked for a file twice.
func TestJoinedNodeTakesOnlyItsFiles(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	const n = 300
	key, src, total := startSlowLoad(t, cl, n)
	cl.AddNode("node-3")
	st, uris := endOnOwners(t, cl, key, src, n, total)
	owned, asked := joinedTookItsFiles(t, cl, uris, n)
	if st.VerifyLoadedFiles == 0 {
		t.Fatal("node-3 took over no file loaded before it joined: the test shows nothing")
	}
	t.Logf("node-3 owns %d files; %d loads asked in all; %d loaded again onto node-3", owned, asked, st.VerifyLoadedFiles)
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-node-join")
}

// listGate holds the listing page of the partition that starts with dir
// until release is closed.
func listGate(dir string, release <-chan struct{}) *activityHook {
	return &activityHook{around: func(ctx context.Context, in *interceptor.ExecuteActivityInput, next func() (any, error)) (any, error) {
		if page, ok := argOf(in).(workflows.ListPageInput); ok && activity.GetInfo(ctx).ActivityType.Name == workflows.ActivityListPage &&
			len(page.Partition.Dirs) > 0 && strings.HasSuffix(page.Partition.Dirs[0], "/"+dir) {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return next()
	}}
}

// A node that joins while a load still lists is noticed by the next page's
// plan, while batches planned on the old ring are queued or running: those
// batches' files that the new node owns are placed on it once they finish,
// not left on their old owners (fresh-user run). No file is asked twice of
// a node.
func TestNodeJoiningMidListingTakesItsFiles(t *testing.T) {
	gateOpen := make(chan struct{})
	cl := enginetest.NewClusterIntercepted(t, 2, []interceptor.WorkerInterceptor{listGate("d5", gateOpen)})
	release := closeOnce(t, gateOpen)
	for _, c := range cl.Caches {
		c.Delay = 20 * time.Millisecond
	}
	const n = 300
	src, total := enginetest.MakeTree(t, n)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	// Some batches of the first partitions done, others queued or running.
	ferrytest.Eventually(t, 60*time.Second, func() error {
		st, err := cl.Svc.Progress(context.Background(), key)
		if err != nil || st.Processed() < 30 {
			return fmt.Errorf("processed %d, %w", st.Processed(), err)
		}
		return nil
	})
	cl.AddNode("node-3")
	release()
	st, uris := endOnOwners(t, cl, key, src, n, total)
	owned, asked := joinedTookItsFiles(t, cl, uris, n)
	t.Logf("node-3 owns %d files; %d loads asked in all; %d loaded again onto node-3", owned, asked, st.VerifyLoadedFiles)
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-late-join")
}

// joinedTookItsFiles checks that node-3, which joined, was asked only the
// files it owns besides each file once on the node it was first placed
// on, and returns how many it owns and how many loads were asked in all.
func joinedTookItsFiles(t *testing.T, cl *enginetest.Cluster, uris []string, n int) (owned, asked int) {
	t.Helper()
	r, _ := cl.Ring(context.Background())
	for _, uri := range uris {
		if o, _ := r.Owner(uri); o.ID == "node-3" {
			owned++
		}
	}
	asked = askedOnce(t, cl, "node-1", "node-2", "node-3")
	if asked > n+owned {
		t.Fatalf("%d loads asked for %d files of which node-3 owns %d", asked, n, owned)
	}
	return owned, asked
}

// TestReplacedFilesLeaveOutFailedOnes: the files of a node that left are
// placed again, but not those the job had already failed on it: a failure
// is counted and listed once, by the pass that found it, and a failed file
// is not asked again of the node that takes over.
func TestReplacedFilesLeaveOutFailedOnes(t *testing.T) {
	cl := enginetest.NewCluster(t, 3)
	const n = 300
	failing := func(uri string) bool { return strings.HasSuffix(uri, "7+x.bin") } // 30 files
	var mu sync.Mutex
	asked := map[string]map[string]int{} // node, failing file: loads asked
	for id, c := range cl.Caches {
		asked[id] = map[string]int{}
		c.Fail = func(uri string) error {
			if !failing(uri) {
				return nil
			}
			mu.Lock()
			asked[id][uri]++
			mu.Unlock()
			return storage.NewError("open", uri, storage.ErrPermission, nil)
		}
	}
	key, _, _ := startSlowLoad(t, cl, n)
	mu.Lock()
	failedOnLost := len(asked["node-2"])
	mu.Unlock()
	if failedOnLost == 0 {
		t.Fatal("node-2 had failed no file before it left: the test shows nothing")
	}
	cl.KillNode("node-2")
	st := cl.WaitEnd(key, 2*time.Minute)
	if st.Status != workflows.StatusFailed || st.Failed != 30 || st.VerifyFailed != 0 || st.Succeeded+st.Skipped != n-30 {
		t.Fatalf("%s: succeeded %d, skipped %d, failed %d, verify failed %d: want the 30 failing files failed once",
			st.Status, st.Succeeded, st.Skipped, st.Failed, st.VerifyFailed)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, files := range asked {
		for uri, k := range files {
			if k != 1 {
				t.Fatalf("%s was asked of %s %d times", uri, id, k)
			}
			for other, o := range asked {
				if other != id && o[uri] > 0 {
					t.Fatalf("%s was asked of %s and of %s", uri, id, other)
				}
			}
		}
	}
	list, err := os.ReadFile(strings.TrimPrefix(st.FailuresLocation, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(list)), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		path, _, _ := strings.Cut(l, "\t")
		if seen[path] || !failing(path) {
			t.Fatalf("failure list line %q: listed twice or not a failing file", l)
		}
		seen[path] = true
	}
	if len(seen) != 30 {
		t.Fatalf("the failure list has %d files, want 30", len(seen))
	}
	t.Logf("node-2 had failed %d files before it left; re-placed %d", failedOnLost, st.VerifyLoadedFiles)
}

// A page planned on the ring as it was before a node left, whose answer
// comes back after the loss was seen, does not bring the node back: its
// view is older than the one the job holds (the registry's clock says so),
// so the job neither takes the lost node for one that joined (and plans
// every finished range again for it) nor sends it the page's batches, which
// go to the files' current owners at once.
func TestStalePlanDoesNotBringBackALostNode(t *testing.T) {
	planned := make(chan struct{})
	markPlanned := closeOnce(t, planned)
	release := make(chan struct{})
	var mu sync.Mutex
	forLost := 0 // PlanRange calls placing files on node-2 as a joined node
	hook := &activityHook{around: func(ctx context.Context, in *interceptor.ExecuteActivityInput, next func() (any, error)) (any, error) {
		name := activity.GetInfo(ctx).ActivityType.Name
		if pr, ok := argOf(in).(workflows.PlanRangeInput); ok && name == workflows.ActivityPlanRange && slices.Contains(pr.Range.Only, "node-2") {
			mu.Lock()
			forLost++
			mu.Unlock()
		}
		res, err := next()
		if page, ok := argOf(in).(workflows.ListPageInput); ok && name == workflows.ActivityListPage && activity.GetInfo(ctx).Attempt == 1 &&
			len(page.Partition.Dirs) > 0 && strings.HasSuffix(page.Partition.Dirs[0], "/d5") {
			// The page is planned (on the ring with node-2); its answer
			// waits until the job has seen node-2 leave.
			markPlanned()
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return res, err
	}}
	cl := enginetest.NewClusterIntercepted(t, 3, []interceptor.WorkerInterceptor{hook})
	open := closeOnce(t, release)
	for _, c := range cl.Caches {
		c.Delay = 20 * time.Millisecond
	}
	// node-1 holds its loads until the end, so that the job has work
	// running, and watches membership, when node-2 leaves.
	gate := make(chan struct{})
	openGate := closeOnce(t, gate)
	cl.Caches["node-1"].Gate = gate
	const n = 300
	src, total := enginetest.MakeTree(t, n)
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, _ := jobs.ParseOptions(workflows.JobLoad, map[string]any{"batchSize": "10"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	select {
	case <-planned:
	case <-time.After(60 * time.Second):
		t.Fatal("the page of d5 was not planned within a minute")
	}
	ferrytest.Eventually(t, 60*time.Second, func() error {
		if st, err := cl.Svc.Progress(context.Background(), key); err != nil || st.Processed() == 0 {
			return fmt.Errorf("processed %d, %w", st.Processed(), err)
		}
		return nil
	})
	cl.KillNode("node-2")
	ferrytest.Eventually(t, 60*time.Second, func() error {
		st, err := cl.Svc.Progress(context.Background(), key)
		if err != nil || !slices.Contains(st.LostNodes, "node-2") || slices.Contains(st.Nodes, "node-2") {
			return fmt.Errorf("nodes %v, lost %v, %w", st.Nodes, st.LostNodes, err)
		}
		return nil
	})
	open()
	openGate()
	st, _ := endOnOwners(t, cl, key, src, n, total)
	if slices.Contains(st.Nodes, "node-2") {
		t.Fatalf("the job ended with node-2 among its nodes: %v", st.Nodes)
	}
	mu.Lock()
	defer mu.Unlock()
	if forLost > 0 {
		t.Fatalf("the stale page's view brought node-2 back as a joined node: %d ranges were planned again for it", forLost)
	}
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-stale-view")
}
