package copymove

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// jobTimeout bounds one job of these tests.
const jobTimeout = 3 * time.Minute

// runJob submits a job with raw options, waits for its end and returns its
// final state.
func runJob(t *testing.T, cl *enginetest.Cluster, key jobs.Key, raw map[string]any) workflows.JobState {
	t.Helper()
	return runJobWithin(t, cl, key, raw, jobTimeout)
}

// runJobWithin is runJob with its own bound on the job's time.
func runJobWithin(t *testing.T, cl *enginetest.Cluster, key jobs.Key, raw map[string]any, timeout time.Duration) workflows.JobState {
	t.Helper()
	opts, err := jobs.ParseOptions(key.Type, raw)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.Svc.Submit(context.Background(), key, opts)
	if err != nil {
		t.Fatalf("submit %s: %v", key.WorkflowID(), err)
	}
	if res.Outcome != jobs.Started {
		t.Fatalf("submit %s: %s, want a new run", key.WorkflowID(), res.Outcome)
	}
	return cl.WaitEnd(key, timeout)
}

// checkCounters fails unless the ended job counted files and bytes exactly:
// qualified = succeeded + skipped + failed, and the bytes of the files.
func checkCounters(t *testing.T, st workflows.JobState, succeeded, skipped int64, bytes int64) {
	t.Helper()
	enginetest.CheckExact(t, st, succeeded+skipped, bytes)
	if st.Succeeded != succeeded || st.Skipped != skipped {
		t.Fatalf("succeeded %d, skipped %d; want %d, %d", st.Succeeded, st.Skipped, succeeded, skipped)
	}
	if skipped == 0 && st.BytesDone != bytes || succeeded == 0 && st.BytesSkipped != bytes {
		t.Fatalf("bytes done %d, skipped %d; want %d in all", st.BytesDone, st.BytesSkipped, bytes)
	}
	if !st.TotalsKnown || st.TotalFiles != succeeded+skipped || st.TotalBytes != bytes {
		t.Fatalf("totals of the count-only scan: known %v, %d files, %d bytes", st.TotalsKnown, st.TotalFiles, st.TotalBytes)
	}
}

// TestCopyAcrossStores copies one tree local → S3, then S3 → GCS, then
// GCS → local, each destination the next job's source. Every destination
// must hash exactly like the original, every counter must be exact, and a
// second copy of the same pair must skip every file.
func TestCopyAcrossStores(t *testing.T) {
	s3srv, gcsSrv := s3test.Start(t), gcstest.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	gcsSt := gcstest.NewStore(t, gcstest.Options(gcsSrv.URL))
	cl := enginetest.NewCluster(t, 3, s3st, gcsSt)

	tr := spec{n: 2000, big: true}
	srcDir := t.TempDir()
	want, total := tr.writeLocal(t, srcDir)
	local, _ := cl.Resolver.For("file:///")
	sameTree(t, "source through the storage layer", want, hashStore(t, local, "file://"+srcDir))

	s3Bucket, gcsBucket, backPath := s3srv.NewBucket(t), gcsSrv.NewBucket(), filepath.Join(t.TempDir(), "back", "tree")
	s3Dir, gcsDir, backDir := "s3://"+s3Bucket+"/tree", "gs://"+gcsBucket+"/copied/tree", "file://"+backPath
	for _, step := range []struct {
		name     string
		src, dst string
		dstStore storage.Store
		// names are the names the destination system itself holds,
		// relative to dst: a name mangled by encoding shows here even
		// when the store decodes it back on listing.
		names func(t *testing.T) []string
	}{
		{"local to S3", "file://" + srcDir, s3Dir, s3st, func(t *testing.T) []string {
			return trimPrefix(t, "tree/", s3srv.Keys(t, s3Bucket))
		}},
		{"S3 to GCS", s3Dir, gcsDir, gcsSt, func(t *testing.T) []string {
			return trimPrefix(t, "copied/tree/", gcsSrv.Names(t, gcsBucket))
		}},
		{"GCS to local", gcsDir, backDir, local, func(t *testing.T) []string { return localNames(t, backPath) }},
	} {
		t.Run(step.name, func(t *testing.T) {
			key := jobs.Key{Type: workflows.JobCopy, Path: step.src, Dst: step.dst}
			start := time.Now()
			st := runJob(t, cl, key, map[string]any{})
			first := time.Since(start)
			checkCounters(t, st, int64(tr.n), 0, total)
			sameTree(t, step.dst, want, hashStore(t, step.dstStore, step.dst))
			sameNames(t, step.dst, want, step.names(t))

			start = time.Now()
			st = runJob(t, cl, key, map[string]any{})
			t.Logf("%d files, %d bytes: copy %v, second copy (all skipped) %v", tr.n, total, first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			checkCounters(t, st, 0, int64(tr.n), total)
			sameTree(t, step.dst+" after the second copy", want, hashStore(t, step.dstStore, step.dst))
		})
	}
	sameTree(t, "the source after all copies", want, hashStore(t, local, "file://"+srcDir))
}
