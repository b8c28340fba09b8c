package integrity

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// headerSafe fails unless id can travel in a gRPC header and fits
// Temporal's workflow-ID limit.
func headerSafe(t *testing.T, id string) {
	t.Helper()
	if len(id) > 300 {
		t.Fatalf("workflow ID of %d bytes", len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			t.Fatalf("workflow ID %q holds byte %#x", id, id[i])
		}
	}
}

// TestJobIdentity is issue 11 cases 3 and 6 and issue 18 point 1: one job
// per location whatever its spelling; non-ASCII paths, 4,000-byte paths and
// 1,000-byte object keys submit, report progress, list and stop like any
// other; a path past the remaining limit is refused naming the field.
func TestJobIdentity(t *testing.T) {
	s3srv := s3test.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	cl := enginetest.NewCluster(t, 1, s3st)
	ctx := context.Background()
	base := t.TempDir()

	t.Run("trailing slash is the same job", func(t *testing.T) {
		dir := filepath.Join(base, "small")
		writeTree(t, dir, map[string]string{"a": "a", "b/c": "c"})
		slash := jobs.Key{Type: workflows.JobLoad, Path: "file://" + dir + "/"}
		plain := jobs.Key{Type: workflows.JobLoad, Path: "file://" + dir}
		local := jobs.Key{Type: workflows.JobLoad, Path: "file://localhost" + dir + "//"}
		if slash.WorkflowID() != plain.WorkflowID() || local.WorkflowID() != plain.WorkflowID() {
			t.Fatalf("IDs differ: %q, %q, %q", slash.WorkflowID(), plain.WorkflowID(), local.WorkflowID())
		}
		st := runJob(t, cl, slash, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2, bytes: 2})
		got, err := cl.Svc.Progress(ctx, plain)
		if err != nil || got.JobID != st.JobID {
			t.Fatalf("progress by the other spelling: %v, job %q, want %q", err, got.JobID, st.JobID)
		}
	})

	t.Run("non-ASCII paths", func(t *testing.T) {
		for _, name := range []string{"ünïcødé dir", "日本", "caf\xe9 latin-1"} {
			dir := filepath.Join(base, name)
			writeTree(t, dir, map[string]string{"f.txt": "data"})
			key := jobs.Key{Type: workflows.JobLoad, Path: "file://" + dir}
			headerSafe(t, key.WorkflowID())
			// Hold the loads until stop has been sent, so that stop finds
			// the job running.
			gate := make(chan struct{})
			for _, c := range cl.Caches {
				c.Gate = gate
			}
			opts, _ := jobs.ParseOptions(workflows.JobLoad, nil)
			if _, err := cl.Svc.Submit(ctx, key, opts); err != nil {
				t.Fatalf("submit %q: %v", dir, err)
			}
			ferrytest.Eventually(t, jobTimeout, func() error {
				st, err := cl.Svc.Progress(ctx, key)
				if err != nil {
					return err
				}
				if st.Path != key.Path {
					t.Fatalf("progress shows path %q, want %q", st.Path, key.Path)
				}
				return nil
			})
			if err := cl.Svc.Stop(ctx, key); err != nil {
				t.Fatalf("stop %q: %v", dir, err)
			}
			close(gate)
			for _, c := range cl.Caches {
				c.Gate = nil
			}
			st := cl.WaitEnd(key, jobTimeout)
			if st.Status != workflows.StatusStopped && st.Status != workflows.StatusSucceeded {
				t.Fatalf("job on %q ended %s (%s)", dir, st.Status, st.Reason)
			}
			list, err := cl.Svc.List(ctx, jobs.ListFilter{Type: workflows.JobLoad})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, s := range list {
				found = found || s.Path == key.Path
			}
			if !found {
				t.Fatalf("list does not show %q: %+v", key.Path, list)
			}
		}
	})

	t.Run("long paths and keys", func(t *testing.T) {
		// 4,000-byte directory paths (segments of 200 bytes), a 1,000-byte
		// S3 key prefix: load, copy local → local and local → S3.
		long := func(root string, n int) string {
			p := root
			for len(p)+201 < n {
				p = filepath.Join(p, strings.Repeat("d", 200))
			}
			return p
		}
		src := long(filepath.Join(base, "long-src"), 4000)
		writeTree(t, src, map[string]string{"f.txt": "long"})
		load := jobs.Key{Type: workflows.JobLoad, Path: "file://" + src}
		headerSafe(t, load.WorkflowID())
		check(t, runJob(t, cl, load, nil), want{status: workflows.StatusSucceeded, succeeded: 1, bytes: 4})

		dst := long(filepath.Join(base, "long-dst"), 4000)
		cp := jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: "file://" + dst}
		headerSafe(t, cp.WorkflowID())
		check(t, runJob(t, cl, cp, nil), want{status: workflows.StatusSucceeded, succeeded: 1, bytes: 4})
		sameFiles(t, "long destination", readTree(t, dst), map[string]string{"f.txt": "long"})

		bucket := s3srv.NewBucket(t)
		key := strings.Repeat("k", 1000)
		toS3 := jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: "s3://" + bucket + "/" + key}
		headerSafe(t, toS3.WorkflowID())
		check(t, runJob(t, cl, toS3, nil), want{status: workflows.StatusSucceeded, succeeded: 1, bytes: 4})
		if keys := s3srv.Keys(t, bucket); len(keys) != 1 || keys[0] != key+"/f.txt" {
			t.Fatalf("bucket holds %d keys", len(keys))
		}
		list, err := cl.Svc.List(ctx, jobs.ListFilter{Type: workflows.JobCopy})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range list {
			found = found || (s.Path == toS3.Path && s.Dst == toS3.Dst)
		}
		if !found {
			t.Fatal("list does not show the long copy with its full paths")
		}

		tooLong := jobs.Key{Type: workflows.JobLoad, Path: "file:///" + strings.Repeat("x", jobs.MaxPathLength)}
		opts, _ := jobs.ParseOptions(workflows.JobLoad, nil)
		_, err = cl.Svc.Submit(ctx, tooLong, opts)
		var ie *jobs.InputError
		if !errors.As(err, &ie) || ie.Field != "path" || !strings.Contains(ie.Message, "longest path") {
			t.Fatalf("a path past the limit: %v; want an input error on path naming the limit", err)
		}
	})
}
