package worker_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// A file rewritten once between its listing and its load (a log rotated,
// a data set republished) fails its first attempt as changed; the job's
// retry pass then loads it as it is now, bound to its new version, rather
// than failing it again against the version the listing saw. The job
// succeeds and the cache serves the new bytes.
func TestLoadOfAFileChangedAfterListingLoadsItsCurrentVersion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.bin", mib+1)
	writeFile(t, dir, "b.bin", 4096)
	changed := bytes.Repeat([]byte("z"), 2*mib+7)
	var once sync.Once
	rewrite := &activityHook{around: func(ctx context.Context, in *interceptor.ExecuteActivityInput, next func() (any, error)) (any, error) {
		res, err := next()
		if activity.GetInfo(ctx).ActivityType.Name == workflows.ActivityListPage && err == nil {
			once.Do(func() {
				if werr := os.WriteFile(filepath.Join(dir, "a.bin"), changed, 0o644); werr != nil {
					t.Error(werr)
				}
			})
		}
		return res, err
	}}
	cl, st := pageStoreNode(t, 64*mib, rewrite)

	src := "file://" + dir
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	s := cl.WaitEnd(key, 90*time.Second)
	if s.Status != workflows.StatusSucceeded || s.Succeeded != 2 || s.Failed != 0 {
		t.Fatalf("%s (%s): succeeded %d, failed %d: %+v", s.Status, s.Reason, s.Succeeded, s.Failed, s.RecentFailures)
	}
	f, ok, err := st.Lookup(src + "/a.bin")
	if err != nil || !ok || !f.FullyCached() || f.Size != int64(len(changed)) {
		t.Fatalf("a.bin in the cache: %+v (found %v, %v), want its new %d bytes whole", f, ok, err, len(changed))
	}
	if s.BytesDone != int64(len(changed))+4096 {
		t.Fatalf("bytes done %d, want the new a.bin's and b.bin's %d", s.BytesDone, len(changed)+4096)
	}
}
