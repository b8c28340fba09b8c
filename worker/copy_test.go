package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// trickyTree writes files whose names carry spaces, '+', '%' and unicode,
// of sizes from empty to a few MiB, and returns their relative paths with
// their SHA-256.
func trickyTree(t *testing.T, dir string, n int) map[string][32]byte {
	t.Helper()
	names := []string{"a b/c d.txt", "plus+sign/x+y", "per%cent/100%", "ünï/cødé.bin", "deep/1/2/3/leaf"}
	sizes := []int{0, 1, 4096, 1<<20 + 1, 3 << 20}
	out := map[string][32]byte{}
	for i := 0; i < n; i++ {
		rel := fmt.Sprintf("%s-%03d", names[i%len(names)], i)
		data := bytes.Repeat([]byte{byte(i), byte(i >> 8), 7}, sizes[i%len(sizes)]/3+1)[:sizes[i%len(sizes)]]
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out[rel] = sha256.Sum256(data)
	}
	return out
}

func hashTree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for rel, data := range enginetest.ReadTree(t, dir) {
		out[rel] = sha256.Sum256([]byte(data))
	}
	return out
}

func sameTree(t *testing.T, want, got map[string][32]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("destination has %d files, want %d", len(got), len(want))
	}
	for rel, h := range want {
		if got[rel] != h {
			t.Fatalf("%s differs at the destination (or is missing)", rel)
		}
	}
}

func TestCopyJobCopiesExactlyAndSkipsOnSecondRun(t *testing.T) {
	cl := enginetest.NewCluster(t, 3)
	srcDir, dstDir := t.TempDir(), filepath.Join(t.TempDir(), "dst")
	want := trickyTree(t, srcDir, 60)
	key := jobs.Key{Type: workflows.JobCopy, Path: "file://" + srcDir, Dst: "file://" + dstDir}
	opts, err := jobs.ParseOptions(workflows.JobCopy, map[string]any{"batchSize": "7", "check_content": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 90*time.Second)
	if st.Status != workflows.StatusSucceeded || st.Succeeded != 60 || st.Skipped != 0 || st.Qualified != 60 {
		t.Fatalf("first copy: %s %q succeeded %d skipped %d failed %d %+v", st.Status, st.Reason, st.Succeeded, st.Skipped, st.Failed, st.RecentFailures)
	}
	sameTree(t, want, hashTree(t, dstDir))
	sameTree(t, want, hashTree(t, srcDir))
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-copy")

	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st = cl.WaitEnd(key, 90*time.Second)
	if st.Status != workflows.StatusSucceeded || st.Skipped != 60 || st.Succeeded != 0 {
		t.Fatalf("second copy: %s succeeded %d skipped %d", st.Status, st.Succeeded, st.Skipped)
	}
}

// TestMoveJobMovesEverythingAndRemovesEmptiedDirs: the move removes the
// directories it emptied, but keeps the job's source root (empty), which a
// recurring move policy lists again.
func TestMoveJobMovesEverythingAndRemovesEmptiedDirs(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	srcDir, dstDir := t.TempDir(), filepath.Join(t.TempDir(), "moved")
	want := trickyTree(t, srcDir, 40)
	key := jobs.Key{Type: workflows.JobMove, Path: "file://" + srcDir + "/", Dst: "file://" + dstDir}
	opts, _ := jobs.ParseOptions(workflows.JobMove, map[string]any{"batchSize": "5"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 90*time.Second)
	if st.Status != workflows.StatusSucceeded || st.Succeeded != 40 || st.Processed() != st.Qualified {
		t.Fatalf("move: %s %q succeeded %d failed %d %+v", st.Status, st.Reason, st.Succeeded, st.Failed, st.RecentFailures)
	}
	sameTree(t, want, hashTree(t, dstDir))
	recordHistories(t, cl.Client, key.WorkflowID(), "v2-move")
	if left, err := os.ReadDir(srcDir); err != nil || len(left) > 0 {
		t.Fatalf("source root after the move: %v, %d entries left", err, len(left))
	}
}

// corruptingStore flips one byte of every file it commits under a marker,
// after the commit: what a faulty disk or a racing writer would do between
// copy and verify.
type corruptingStore struct {
	storage.Store
	marker string
}

func (c corruptingStore) Create(ctx context.Context, uri string, o storage.CreateOptions) (storage.Writer, error) {
	w, err := c.Store.Create(ctx, uri, o)
	if err != nil || !strings.Contains(uri, c.marker) {
		return w, err
	}
	return corruptingWriter{Writer: w, path: strings.TrimPrefix(uri, "file://")}, nil
}

type corruptingWriter struct {
	storage.Writer
	path string
}

func (w corruptingWriter) Commit(ctx context.Context) (storage.Entry, error) {
	e, err := w.Writer.Commit(ctx)
	if err == nil && e.Size > 0 {
		b, _ := os.ReadFile(w.path)
		b[0] ^= 0xff
		_ = os.WriteFile(w.path, b, 0o644)
	}
	return e, err
}

func TestMoveWithCheckContentKeepsSourceOfCorruptedCopy(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	st0, _ := cl.Resolver.For("file:///")
	cl.Resolver = storage.NewResolver(corruptingStore{Store: st0, marker: "victim"})
	// The node activities must see the faulty store: rebuild the node.
	cl.KillNode("node-1")
	cl.AddNode("node-1b")

	srcDir, dstDir := t.TempDir(), filepath.Join(t.TempDir(), "moved")
	for _, name := range []string{"ok-1", "victim-2", "ok-3"} {
		if err := os.WriteFile(filepath.Join(srcDir, name), []byte("content of "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := jobs.Key{Type: workflows.JobMove, Path: "file://" + srcDir, Dst: "file://" + dstDir}
	opts, _ := jobs.ParseOptions(workflows.JobMove, map[string]any{"check_content": "true"})
	if _, err := cl.Svc.Submit(context.Background(), key, opts); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 90*time.Second)
	if st.Status != workflows.StatusFailed || st.Succeeded != 2 || st.Failed != 1 {
		t.Fatalf("move: %s succeeded %d failed %d %+v", st.Status, st.Succeeded, st.Failed, st.RecentFailures)
	}
	if st.RecentFailures[0].Reason != workflows.ErrTypeUnavailable || !strings.Contains(st.RecentFailures[0].Message, "content check failed") {
		t.Fatalf("failure %+v", st.RecentFailures[0])
	}
	if b, err := os.ReadFile(filepath.Join(srcDir, "victim-2")); err != nil || string(b) != "content of victim-2" {
		t.Fatalf("the source of the corrupted copy was not kept intact: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "victim-2")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the corrupted destination was left in place: %v", err)
	}
	for _, ok := range []string{"ok-1", "ok-3"} {
		if _, err := os.Stat(filepath.Join(srcDir, ok)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s was not moved", ok)
		}
	}
}
