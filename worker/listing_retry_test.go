package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
)

// countingStore serves flaky:///path from the local file system at /path,
// counts the listing calls of ListPage activities it answers (by directory
// and cursor) and their reads of index files (by offset), and fails the
// calls a test picks: the faults of a source listing cut in the middle of
// a page.
type countingStore struct {
	storage.Store
	mu      sync.Mutex
	fetched map[string]int
	// fail, when it returns true for a call ("list <dir> <cursor> …" or
	// "open <uri> <offset>"), makes the call fail; it is asked once per call.
	fail func(call string) bool
}

func newCountingStore(t *testing.T) *countingStore {
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &countingStore{Store: st, fetched: map[string]int{}}
}

func (c *countingStore) Scheme() string { return "flaky" }

func toLocal(uri string) string   { return "file://" + strings.TrimPrefix(uri, "flaky://") }
func fromLocal(uri string) string { return "flaky://" + strings.TrimPrefix(uri, "file://") }

// call counts a successful call of a ListPage activity, or fails it when
// the test says so. The other activities' calls (partitioning, the count
// scan) are not the listing's.
func (c *countingStore) call(ctx context.Context, name string, do func() error) error {
	if !activity.IsActivity(ctx) || activity.GetInfo(ctx).ActivityType.Name != workflows.ActivityListPage {
		return do()
	}
	c.mu.Lock()
	fail := c.fail != nil && c.fail(name)
	c.mu.Unlock()
	if fail {
		return fmt.Errorf("injected fault: %s: %w", name, storage.ErrUnavailable)
	}
	if err := do(); err != nil {
		return err
	}
	c.mu.Lock()
	c.fetched[name]++
	c.mu.Unlock()
	return nil
}

func (c *countingStore) List(ctx context.Context, uri string, o storage.ListOptions) (storage.ListPage, error) {
	var p storage.ListPage
	err := c.call(ctx, fmt.Sprintf("list %s %q ", uri, o.Cursor), func() error {
		var err error
		p, err = c.Store.List(ctx, toLocal(uri), o)
		for i := range p.Entries {
			p.Entries[i].URI = fromLocal(p.Entries[i].URI)
		}
		return err
	})
	return p, err
}

func (c *countingStore) Open(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error) {
	if !strings.HasSuffix(uri, ".idx") {
		return c.Store.Open(ctx, toLocal(uri), offset, length)
	}
	var r io.ReadCloser
	err := c.call(ctx, fmt.Sprintf("open %s %d", uri, offset), func() error {
		var err error
		r, err = c.Store.Open(ctx, toLocal(uri), offset, length)
		return err
	})
	return r, err
}

func (c *countingStore) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	e, err := c.Store.Stat(ctx, toLocal(uri))
	e.URI = fromLocal(e.URI)
	return e, err
}

// repeated returns the calls answered more than once: what was fetched
// from the source twice.
func (c *countingStore) repeated() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, n := range c.fetched {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s (%d times)", k, n))
		}
	}
	return out
}

// losePageCompletion makes the first attempt of the chosen ListPage
// activities fail after they did all their work: as when the coordinator
// dies between the activity's end and Temporal's record of it. It keeps
// what each attempt returned.
type losePageCompletion struct {
	interceptor.WorkerInterceptorBase
	mu      sync.Mutex
	lose    func(in workflows.ListPageInput) bool
	results map[string][]workflows.ListPageResult
}

func (l *losePageCompletion) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &loseInbound{l: l}
	i.Next = next
	return i
}

type loseInbound struct {
	interceptor.ActivityInboundInterceptorBase
	l *losePageCompletion
}

func (i *loseInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	res, err := i.Next.ExecuteActivity(ctx, in)
	info := activity.GetInfo(ctx)
	if info.ActivityType.Name != workflows.ActivityListPage || err != nil || len(in.Args) != 1 {
		return res, err
	}
	page, ok1 := in.Args[0].(workflows.ListPageInput)
	out, ok2 := res.(workflows.ListPageResult)
	if !ok1 || !ok2 {
		return res, err
	}
	i.l.mu.Lock()
	defer i.l.mu.Unlock()
	key := page.Out.Key
	i.l.results[key] = append(i.l.results[key], out)
	if info.Attempt == 1 && i.l.lose != nil && i.l.lose(page) {
		return nil, errors.New("injected fault: the activity's completion was lost")
	}
	return res, err
}

func (l *losePageCompletion) attempts(key string) []workflows.ListPageResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]workflows.ListPageResult(nil), l.results[key]...)
}

// TestListPageRetryListsNothingTwice forces retries of ListPage activities
// through the real path: a source listing call (or an index file read)
// that fails after part of the page was listed and stored, and a page
// whose activity did all its work but whose completion was lost. Every
// listing call and index read is answered once (what a retry needs, it
// reads back from the manifest store), the retried page reports which
// attempt listed which pieces, and the counters are exact.
func TestListPageRetryListsNothingTwice(t *testing.T) {
	src := newCountingStore(t)
	lose := &losePageCompletion{results: map[string][]workflows.ListPageResult{}}
	cl := enginetest.NewClusterIntercepted(t, 2, []interceptor.WorkerInterceptor{lose}, src)
	// One directory of 6,000 files: a partition of two pages (5,000 and
	// 1,000 entries), the first listed in 4 pieces of 1,250.
	const n = 6000
	dir := strings.TrimPrefix(emptyFiles(t, n, 1, 20), "file://")
	tree := "flaky://" + dir
	idx := filepath.Join(t.TempDir(), "list.idx")
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, "%s/d00/%s-%08d.bin\n", tree, strings.Repeat("x", 8), i)
	}
	if err := os.WriteFile(idx, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// run runs one job with the source's counts and the attempts' results
	// reset, after fail and lose are set.
	run := func(t *testing.T, key jobs.Key, opt map[string]any, files int, fail func(string) bool, lost func(workflows.ListPageInput) bool) {
		t.Helper()
		src.mu.Lock()
		src.fetched, src.fail = map[string]int{}, fail
		src.mu.Unlock()
		lose.mu.Lock()
		lose.results, lose.lose = map[string][]workflows.ListPageResult{}, lost
		lose.mu.Unlock()
		opts, err := jobs.ParseOptions(key.Type, opt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
			t.Fatal(err)
		}
		st := cl.WaitEnd(key, 2*time.Minute)
		enginetest.CheckExact(t, st, int64(files), 0)
		if again := src.repeated(); len(again) > 0 {
			t.Fatalf("the source was listed twice at: %v", again)
		}
	}
	// The third listing call of the first page's partition, from a cursor
	// (pieces 0 and 1 are stored), fails once.
	cut := func(prefix string) func(string) bool {
		seen, failed := 0, false
		return func(call string) bool {
			if failed || !strings.HasPrefix(call, prefix) {
				return false
			}
			if seen++; seen == 3 {
				failed = true
				return true
			}
			return false
		}
	}
	wantResumed := []workflows.PageFetch{{Attempt: 1, First: 0, Pieces: 2, Entries: 2500, Cut: true}, {Attempt: 2, First: 2, Pieces: 2, Entries: 2500}}

	t.Run("directory cut mid-page", func(t *testing.T) {
		run(t, jobs.Key{Type: workflows.JobLoad, Path: tree}, nil, n, cut("list "+tree+"/d00"), nil)
		got := lose.attempts("p001-00000000")
		if len(got) != 1 || !reflect.DeepEqual(got[0].Fetched, wantResumed) {
			t.Fatalf("the cut page's attempts returned %+v; want one result listed as %+v", got, wantResumed)
		}
	})
	t.Run("index file cut mid-page", func(t *testing.T) {
		run(t, jobs.Key{Type: workflows.JobLoad, Path: tree + "/d00"}, map[string]any{"indexFile": "flaky://" + idx}, n, cut("open flaky://"+idx+" "), nil)
		got := lose.attempts("p000-00000000")
		if len(got) != 1 || !reflect.DeepEqual(got[0].Fetched, wantResumed) {
			t.Fatalf("the cut page's attempts returned %+v; want one result listed as %+v", got, wantResumed)
		}
	})
	for _, c := range []struct {
		name  string
		path  string
		files int
	}{
		{"directory page completed, completion lost", tree, n},
		{"single file completed, completion lost", tree + "/d00/" + strings.Repeat("x", 8) + "-00000007.bin", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			lost := func(in workflows.ListPageInput) bool { return in.Path == c.path && in.Partition.Seq == 0 }
			run(t, jobs.Key{Type: workflows.JobCopy, Path: c.path, Dst: "file://" + filepath.Join(t.TempDir(), "dst")}, nil, c.files, nil, lost)
			key := "p001-00000000"
			if c.files == 1 {
				key = "p000-00000000"
			}
			got := lose.attempts(key)
			if len(got) != 2 || !reflect.DeepEqual(got[0], got[1]) || len(got[0].Fetched) != 1 || got[0].Fetched[0].Attempt != 1 {
				t.Fatalf("page %s: attempts returned %+v; want the second to return the first's recorded result", key, got)
			}
		})
	}
}
