package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

// indexWritesSeen is a node's page store cache that notes, when each load
// returns, how many index writes the store has applied: that file's
// records are on disk once the store's synced writes reach that count.
type indexWritesSeen struct {
	worker.PageStoreCache
	mu    sync.Mutex
	after map[string]int64
}

func (c *indexWritesSeen) Load(ctx context.Context, f activities.CacheFile, o activities.CacheLoadOptions) (activities.CacheLoadResult, error) {
	res, err := c.PageStoreCache.Load(ctx, f, o)
	n := c.Store.Stats().IndexWrites
	c.mu.Lock()
	c.after[f.URI] = n
	c.mu.Unlock()
	return res, err
}

// TestBatchReportsOnlyDurableLoads runs a load batch into a real page store
// and checks the heartbeats the batch sends (the test environment sends
// the first at once and holds the others back for 30 s: so the first one
// that reports files done, a second or so in) and its result: each file
// they report done has its index records on disk (covered by a sync of the
// index), so a kill -9 of the node right after the report loses none of
// them and the resumed batch, which skips what was reported, leaves none
// uncached.
func TestBatchReportsOnlyDurableLoads(t *testing.T) {
	const files = 12000
	src := t.TempDir()
	entries := make([]workflows.FileEntry, files)
	for i := range entries {
		p := filepath.Join(src, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		entries[i] = workflows.FileEntry{URI: "file://" + p, Size: -1}
	}
	l, err := local.New(local.Options{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: 64 << 10, Capacity: 1 << 30, Resolver: storage.NewResolver(l)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cache := &indexWritesSeen{PageStoreCache: worker.PageStoreCache{Store: st}, after: map[string]int64{}}
	node := &activities.Node{Cache: cache, FileAttempts: 1}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(node.LoadBatch)
	// notDurable names a file reported done before its records were on disk.
	check := func(what string, done int) (notDurable string) {
		synced := st.Stats().IndexSyncedWrites
		cache.mu.Lock()
		defer cache.mu.Unlock()
		for _, e := range entries[:done] {
			if n, ok := cache.after[e.URI]; !ok || n > synced {
				return fmt.Sprintf("%s reports %d files done, but %s (loaded after index write %d) is not synced (index writes synced: %d)",
					what, done, e.URI, n, synced)
			}
		}
		return ""
	}
	var mu sync.Mutex
	var bad string
	beats, progressed := 0, 0
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var p workflows.BatchProgress
		if err := details.Get(&p); err != nil {
			t.Error(err)
			return
		}
		msg := check("a heartbeat", p.Done)
		mu.Lock()
		defer mu.Unlock()
		beats++
		if p.Done > 0 {
			progressed++
		}
		if bad == "" {
			bad = msg
		}
	})
	v, err := env.ExecuteActivity(node.LoadBatch, workflows.BatchInput{JobID: "job", Type: workflows.JobLoad, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.BatchResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad != "" {
		t.Fatal(bad)
	}
	if res.Succeeded != files {
		t.Fatalf("result %+v", res)
	}
	if msg := check("the result", files); msg != "" {
		t.Fatal(msg)
	}
	t.Logf("%d heartbeats sent, %d of them with files done, each of those files durable", beats, progressed)
}
