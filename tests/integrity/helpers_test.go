package integrity

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// jobTimeout bounds one job of these tests.
const jobTimeout = 3 * time.Minute

// runJob submits a job with raw options and returns its final state.
func runJob(t *testing.T, cl *enginetest.Cluster, key jobs.Key, raw map[string]any) workflows.JobState {
	t.Helper()
	opts, err := jobs.ParseOptions(key.Type, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatalf("submit %s: %v", key.WorkflowID(), err)
	}
	return cl.WaitEnd(key, jobTimeout)
}

// want is the expected end of a job.
type want struct {
	status                     workflows.JobStatus
	succeeded, skipped, failed int64
	bytes                      int64
}

// check fails unless the job ended as w says, with qualified = succeeded +
// skipped + failed.
func check(t *testing.T, st workflows.JobState, w want) {
	t.Helper()
	if st.Status != w.status || st.Succeeded != w.succeeded || st.Skipped != w.skipped || st.Failed != w.failed ||
		st.Qualified != st.Succeeded+st.Skipped+st.Failed || st.BytesDone != w.bytes {
		t.Fatalf("job ended %s (%s): qualified %d, succeeded %d, skipped %d, failed %d, bytes %d; want %s, %d/%d/%d, bytes %d\nfailures: %+v",
			st.Status, st.Reason, st.Qualified, st.Succeeded, st.Skipped, st.Failed, st.BytesDone,
			w.status, w.succeeded, w.skipped, w.failed, w.bytes, st.RecentFailures)
	}
}

// failureFor returns the recorded failure of the entry whose path ends in
// suffix.
func failureFor(t *testing.T, st workflows.JobState, suffix string) workflows.Failure {
	t.Helper()
	for _, f := range st.RecentFailures {
		if strings.HasSuffix(f.Path, suffix) {
			return f
		}
	}
	t.Fatalf("no failure recorded for …%s: %+v", suffix, st.RecentFailures)
	return workflows.Failure{}
}

// writeTree writes files (relative path → content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns every regular file under dir (relative path, as bytes,
// → content); a missing dir is empty.
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameFiles fails unless got holds exactly want.
func sameFiles(t testing.TB, where string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+quote(k))
		} else if g != v {
			diffs = append(diffs, "different bytes in "+quote(k))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+quote(k))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s: %s", where, strings.Join(diffs, "; "))
	}
}

func quote(s string) string { return strconv.Quote(s) }

// cached returns the URIs the cluster's caches hold, sorted.
func cached(cl *enginetest.Cluster) []string {
	var out []string
	for _, c := range cl.Caches {
		out = append(out, c.Files()...)
	}
	sort.Strings(out)
	return out
}
