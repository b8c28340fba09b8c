package worker_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"

	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

const mib = 1 << 20

// pageStoreNode starts a cluster of one node that loads into a real page
// store of the given capacity (1 MiB pages), with the coordinator
// interceptors given.
func pageStoreNode(t *testing.T, capacity int64, coordinator ...interceptor.WorkerInterceptor) (*enginetest.Cluster, *pagestore.Store) {
	t.Helper()
	cl := enginetest.NewClusterIntercepted(t, 0, coordinator)
	st, err := pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: mib, Capacity: capacity, Resolver: cl.Resolver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cl.AddNodeWithCache("node-1", worker.PageStoreCache{Store: st})
	return cl, st
}

func writeFile(t *testing.T, dir, name string, n int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte(name[:1]), n), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Issue 12, case 1 (scaled down: a 12 MiB file on a node of 8 MiB): a
// file larger than the node's whole cache is not "loaded": its load fails
// at once with CACHE_TOO_SMALL and the sizes in the message, nothing of it
// is read from storage, and the job ends FAILED with exact counters; the
// file that fits is loaded and stays cached.
func TestLoadOfAFileLargerThanTheCacheFails(t *testing.T) {
	cl, st := pageStoreNode(t, 8*mib)
	dir := t.TempDir()
	writeFile(t, dir, "big.bin", 12*mib)
	writeFile(t, dir, "small.bin", mib+5)
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
	if s.Status != workflows.StatusFailed || s.Reason != "Job partially failed." {
		t.Fatalf("status %s (%s), want FAILED", s.Status, s.Reason)
	}
	if s.Qualified != 2 || s.Succeeded != 1 || s.Skipped != 0 || s.Failed != 1 || s.BytesDone != mib+5 || s.VerifyLoadedFiles != 0 {
		t.Fatalf("counters: qualified %d succeeded %d skipped %d failed %d bytes %d verify-loaded %d",
			s.Qualified, s.Succeeded, s.Skipped, s.Failed, s.BytesDone, s.VerifyLoadedFiles)
	}
	if len(s.RecentFailures) != 1 || s.RecentFailures[0].Path != src+"/big.bin" || s.RecentFailures[0].Reason != workflows.ErrTypeCacheTooSmall ||
		!strings.Contains(s.RecentFailures[0].Message, "the file is 12582912 bytes and this node's whole cache (--capacity) is 8388608 bytes") {
		t.Fatalf("failures: %+v", s.RecentFailures)
	}
	if got := st.Stats().BytesFromStorage; got != mib+5 {
		t.Fatalf("read %d bytes from storage, want only the small file's %d", got, mib+5)
	}
	if f, ok, _ := st.Lookup(src + "/small.bin"); !ok || !f.FullyCached() {
		t.Fatalf("small.bin not resident: %+v", f)
	}
}

// A verify pass checks only what the job did not already fail: the file
// larger than the cache, failed by the main pass, is neither tried nor
// reported again, so it is counted and listed once.
func TestVerifyPassLeavesOutFilesTheJobFailed(t *testing.T) {
	cl, st := pageStoreNode(t, 8*mib)
	dir := t.TempDir()
	writeFile(t, dir, "big.bin", 12*mib)
	writeFile(t, dir, "small.bin", mib+5)
	src := "file://" + dir
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"verify": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	s := cl.WaitEnd(key, 90*time.Second)
	if s.Status != workflows.StatusFailed || s.VerifyPass != 1 {
		t.Fatalf("status %s, verify passes %d: want FAILED after one verify pass", s.Status, s.VerifyPass)
	}
	if s.Failed != 1 || s.VerifyFailed != 0 || s.VerifyLoadedFiles != 0 || s.Succeeded != 1 {
		t.Fatalf("failed %d, verify failed %d, verify loaded %d, succeeded %d: want the big file failed once, by the main pass",
			s.Failed, s.VerifyFailed, s.VerifyLoadedFiles, s.Succeeded)
	}
	if len(s.RecentFailures) != 1 || s.RecentFailures[0].Path != src+"/big.bin" {
		t.Fatalf("failures %+v, want big.bin once", s.RecentFailures)
	}
	if got := st.Stats().BytesFromStorage; got != mib+5 {
		t.Fatalf("read %d bytes from storage, want only the small file's %d", got, mib+5)
	}
}

// Files that fit one at a time but not together (3 × 3 MiB on a node of
// 8 MiB): exactly one file does not stay whole. Whether its pages went
// during its own load or after it, the job reports it as CACHE_TOO_SMALL
// with what stayed, and never reads it again to hide the fact (a verify
// pass reports an evicted file rather than reloading it).
func TestLoadWhoseWorkingSetExceedsTheCacheReportsTheEvictedFile(t *testing.T) {
	cl, st := pageStoreNode(t, 8*mib)
	dir := t.TempDir()
	for _, n := range []string{"a.bin", "b.bin", "c.bin"} {
		writeFile(t, dir, n, 3*mib)
	}
	src := "file://" + dir
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	opts, err := jobs.ParseOptions(workflows.JobLoad, map[string]any{"verify": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	s := cl.WaitEnd(key, 90*time.Second)
	var evicted []workflows.Failure
	for _, f := range s.RecentFailures {
		if f.Reason == workflows.ErrTypeCacheTooSmall && strings.Contains(f.Message, "are cached (2 of 3 pages)") {
			evicted = append(evicted, f)
		}
	}
	if len(evicted) != 1 || len(s.RecentFailures) != 1 {
		t.Fatalf("failures %+v, want exactly one CACHE_TOO_SMALL file with 2 of 3 pages", s.RecentFailures)
	}
	if s.VerifyLoadedFiles != 0 {
		t.Fatalf("a verify pass loaded %d files again", s.VerifyLoadedFiles)
	}
	if got := st.Stats().BytesFromStorage; got != 9*mib {
		t.Fatalf("read %d bytes from storage, want each file once (%d)", got, 9*mib)
	}
	// Counted where it was found: a failure of the main pass is in Failed;
	// one found by the verify pass in VerifyFailed. Either way the job is
	// FAILED and each file is counted once in the main counters.
	switch {
	case s.Failed == 1 && s.VerifyFailed == 0:
		t.Log("the main pass found the file evicted")
		if s.Succeeded != 2 || s.BytesDone != 6*mib {
			t.Fatalf("succeeded %d, bytes %d", s.Succeeded, s.BytesDone)
		}
	case s.Failed == 0 && s.VerifyFailed == 1:
		t.Log("the verify pass found the file evicted")
		if s.Succeeded != 3 || s.BytesDone != 9*mib {
			t.Fatalf("succeeded %d, bytes %d", s.Succeeded, s.BytesDone)
		}
	default:
		t.Fatalf("failed %d, verify failed %d: want the evicted file counted once", s.Failed, s.VerifyFailed)
	}
	if s.Status != workflows.StatusFailed {
		t.Fatalf("status %s: a file evicted before the job ended must fail it (reason %q)", s.Status, s.Reason)
	}
	// The failure list names it once, whichever pass found it.
	list, err := os.ReadFile(strings.TrimPrefix(s.FailuresLocation, "file://"))
	if err != nil {
		t.Fatalf("failure list %q: %v", s.FailuresLocation, err)
	}
	if lines := strings.Split(strings.TrimSpace(string(list)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], evicted[0].Path+"\t"+workflows.ErrTypeCacheTooSmall) {
		t.Fatalf("failure list:\n%s\nwant the evicted file once", list)
	}
}
