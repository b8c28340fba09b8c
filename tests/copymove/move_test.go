package copymove

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// TestMoveAcrossStores moves one tree local → S3, then within S3 to another
// bucket (server-side copy), then S3 → GCS, then GCS → local. After each
// move every file is at the destination, byte-identical, and nothing is
// left at the source — not even the names the system holds.
func TestMoveAcrossStores(t *testing.T) {
	s3srv, gcsSrv := s3test.Start(t), gcstest.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	gcsSt := gcstest.NewStore(t, gcstest.Options(gcsSrv.URL))
	cl := enginetest.NewCluster(t, 3, s3st, gcsSt)
	local, _ := cl.Resolver.For("file:///")

	tr := spec{n: 2000, big: true}
	srcPath := filepath.Join(t.TempDir(), "tree")
	want, total := tr.writeLocal(t, srcPath)

	bucketA, bucketB, gcsBucket := s3srv.NewBucket(t), s3srv.NewBucket(t), gcsSrv.NewBucket()
	backPath := filepath.Join(t.TempDir(), "back")
	dirs := []struct {
		uri   string
		store storage.Store
		names func(t *testing.T) []string
	}{
		{"file://" + srcPath, local, func(t *testing.T) []string { return localNames(t, srcPath) }},
		{"s3://" + bucketA + "/moved", s3st, func(t *testing.T) []string { return trimPrefix(t, "moved/", s3srv.Keys(t, bucketA)) }},
		{"s3://" + bucketB + "/again/", s3st, func(t *testing.T) []string { return trimPrefix(t, "again/", s3srv.Keys(t, bucketB)) }},
		{"gs://" + gcsBucket + "/m", gcsSt, func(t *testing.T) []string { return trimPrefix(t, "m/", gcsSrv.Names(t, gcsBucket)) }},
		{"file://" + backPath, local, func(t *testing.T) []string { return localNames(t, backPath) }},
	}
	for i := 0; i+1 < len(dirs); i++ {
		src, dst := dirs[i], dirs[i+1]
		t.Run(strings.SplitN(src.uri, ":", 2)[0]+" to "+strings.SplitN(dst.uri, ":", 2)[0], func(t *testing.T) {
			start := time.Now()
			st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: src.uri, Dst: dst.uri}, map[string]any{})
			t.Logf("moved %d files, %d bytes, %s → %s in %v", tr.n, total, src.uri, dst.uri, time.Since(start).Round(time.Millisecond))
			checkCounters(t, st, int64(tr.n), 0, total)
			sameTree(t, dst.uri, want, hashStore(t, dst.store, dst.uri))
			sameNames(t, dst.uri, want, dst.names(t))
			if left := src.names(t); len(left) > 0 {
				t.Fatalf("%d files left at the source %s, e.g. %q", len(left), src.uri, left[0])
			}
		})
	}
	// The emptied source root itself stays (a recurring move lists it
	// again); its emptied subdirectories are gone.
	if left, err := os.ReadDir(srcPath); err != nil || len(left) > 0 {
		t.Errorf("the emptied local source directory: %v, %d entries left", err, len(left))
	}
}

// corruptingStore flips the first byte of every file it commits whose name
// holds marker, right after the commit, by writing the file again through
// the store: what a faulty disk or a racing writer does between copy and
// verify.
type corruptingStore struct {
	storage.Store
	marker string
}

func (c corruptingStore) Create(ctx context.Context, uri string, o storage.CreateOptions) (storage.Writer, error) {
	w, err := c.Store.Create(ctx, uri, o)
	if err != nil || !strings.Contains(uri, c.marker) {
		return w, err
	}
	return &corruptingWriter{Writer: w, store: c.Store, uri: uri}, nil
}

type corruptingWriter struct {
	storage.Writer
	store storage.Store
	uri   string
	buf   bytes.Buffer
}

func (w *corruptingWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	return w.Writer.Write(p)
}

func (w *corruptingWriter) Commit(ctx context.Context) (storage.Entry, error) {
	e, err := w.Writer.Commit(ctx)
	if err != nil || w.buf.Len() == 0 {
		return e, err
	}
	bad := w.buf.Bytes()
	bad[0] ^= 0xff
	again, err := w.store.Create(ctx, w.uri, storage.CreateOptions{Overwrite: true, Size: int64(len(bad))})
	if err != nil {
		return e, err
	}
	if _, err := again.Write(bad); err != nil {
		return e, err
	}
	if _, err := again.Commit(ctx); err != nil {
		return e, err
	}
	return e, nil // the entry of the good write: the engine must look again
}

// TestMoveCheckContentKeepsSourceOfCorruptedCopy moves local → S3 and S3 →
// local with check_content while the destination store corrupts some files
// right after committing them. Each corrupted destination is deleted, its
// file fails with a content-check failure, and its source is kept intact;
// every other file moves.
func TestMoveCheckContentKeepsSourceOfCorruptedCopy(t *testing.T) {
	s3srv := s3test.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	cl := enginetest.NewCluster(t, 0, s3st)
	local, _ := cl.Resolver.For("file:///")
	// Only the nodes, which run CopyBatch, see the corrupting stores; the
	// coordinator lists through the plain ones.
	cl.Resolver = storage.NewResolver(corruptingStore{local, "victim"}, corruptingStore{s3st, "victim"})
	cl.AddNode("node-1")
	cl.AddNode("node-2")

	// 60 files, 4 of them victims: two small, one empty (nothing to
	// corrupt: it must move), one above the multipart threshold, whose S3
	// ETag is no MD5.
	tr := spec{n: 60}
	rename := func(rel string, i int) string {
		switch i {
		case 7, 9, 12:
			return filepath.ToSlash(filepath.Join(filepath.Dir(rel), "victim "+filepath.Base(rel)))
		}
		return rel
	}
	write := func(t *testing.T, st storage.Store, dir string) (tree, map[string][]byte) {
		want, files := tree{}, map[string][]byte{}
		for i := 0; i < tr.n; i++ {
			rel, data := rename(tr.name(i), i), content(i, tr.size(i))
			if i == 30 {
				rel, data = "big/victim large", content(i, 6<<20+1)
			}
			put(t, st, storage.Join(dir, rel), data)
			want[rel], files[rel] = hashOf(data), data
		}
		return want, files
	}
	for _, tc := range []struct {
		name     string
		src, dst func(t *testing.T) (string, storage.Store)
	}{
		{"local to S3",
			func(t *testing.T) (string, storage.Store) { return "file://" + t.TempDir(), local },
			func(t *testing.T) (string, storage.Store) { return "s3://" + s3srv.NewBucket(t) + "/dst", s3st }},
		{"S3 to local",
			func(t *testing.T) (string, storage.Store) { return "s3://" + s3srv.NewBucket(t) + "/src", s3st },
			func(t *testing.T) (string, storage.Store) {
				return "file://" + filepath.Join(t.TempDir(), "dst"), local
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcDir, srcSt := tc.src(t)
			dstDir, dstSt := tc.dst(t)
			want, files := write(t, srcSt, srcDir)
			st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: srcDir, Dst: dstDir}, map[string]any{"check_content": "true", "batchSize": "10"})

			victims := map[string]bool{}
			for rel, data := range files {
				if strings.Contains(rel, "victim") && len(data) > 0 {
					victims[rel] = true
				}
			}
			if len(victims) != 3 {
				t.Fatalf("%d victims with content, want 3", len(victims))
			}
			if st.Status != workflows.StatusFailed || st.Failed != int64(len(victims)) || st.Succeeded != int64(tr.n-len(victims)) || st.Qualified != int64(tr.n) {
				t.Fatalf("move: %s (%s), qualified %d, succeeded %d, failed %d; want FAILED with %d failed of %d: %+v",
					st.Status, st.Reason, st.Qualified, st.Succeeded, st.Failed, len(victims), tr.n, st.RecentFailures)
			}
			for _, f := range st.RecentFailures {
				rel := strings.TrimPrefix(strings.TrimPrefix(f.Path, srcDir), "/")
				if !victims[rel] || f.Reason != workflows.ErrTypeUnavailable || !strings.Contains(f.Message, "content check failed") {
					t.Errorf("failure %+v: want a content-check failure of a victim", f)
				}
			}
			left, moved := hashStore(t, srcSt, srcDir), hashStore(t, dstSt, dstDir)
			for rel, h := range want {
				if victims[rel] {
					if left[rel] != h {
						t.Errorf("%s: the source of the corrupted copy was not kept intact", rel)
					}
					if _, ok := moved[rel]; ok {
						t.Errorf("%s: the corrupted destination was left in place", rel)
					}
					continue
				}
				if _, ok := left[rel]; ok {
					t.Errorf("%s: still at the source", rel)
				}
				if moved[rel] != h {
					t.Errorf("%s: missing or different at the destination", rel)
				}
			}
			if len(left) != len(victims) || len(moved) != tr.n-len(victims) {
				t.Errorf("%d files at the source, %d at the destination; want %d and %d", len(left), len(moved), len(victims), tr.n-len(victims))
			}
		})
	}
}

func put(t testing.TB, st storage.Store, uri string, data []byte) {
	t.Helper()
	ctx := context.Background()
	w, err := st.Create(ctx, uri, storage.CreateOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatalf("create %s: %v", uri, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("write %s: %v", uri, err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatalf("commit %s: %v", uri, err)
	}
}

// errorCounter wraps a store and counts the errors it hands the engine
// (not-found answers of Stat aside, which are the normal answer for a
// destination that does not exist yet), to prove that faults reached the
// engine and were not all absorbed by the SDK's own retries.
type errorCounter struct {
	storage.Store
	n *atomic.Int64
}

func (c errorCounter) count(err error) error {
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		c.n.Add(1)
	}
	return err
}

func (c errorCounter) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	e, err := c.Store.Stat(ctx, uri)
	return e, c.count(err)
}

func (c errorCounter) Open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	r, err := c.Store.Open(ctx, uri, off, n)
	if err != nil {
		return nil, c.count(err)
	}
	return countingReader{r, c}, nil
}

func (c errorCounter) Create(ctx context.Context, uri string, o storage.CreateOptions) (storage.Writer, error) {
	w, err := c.Store.Create(ctx, uri, o)
	if err != nil {
		return nil, c.count(err)
	}
	return countingWriter{w, c}, nil
}

func (c errorCounter) Delete(ctx context.Context, uri string) error {
	return c.count(c.Store.Delete(ctx, uri))
}

type countingReader struct {
	io.ReadCloser
	c errorCounter
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		r.c.count(err)
	}
	return n, err
}

type countingWriter struct {
	storage.Writer
	c errorCounter
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	return n, w.c.count(err)
}

func (w countingWriter) Commit(ctx context.Context) (storage.Entry, error) {
	e, err := w.Writer.Commit(ctx)
	return e, w.c.count(err)
}

// TestMoveThroughStorageFaults moves trees to and from S3 through a proxy
// that spoils about 10 % of the requests (503s, connections reset before
// and after the server acted, bodies cut short), with a store that retries
// each request only once, so that many faults reach the engine. The job
// must end, and not one file may be lost: every file exists, byte-identical,
// at the source or at the destination; a file in both places must be
// reported failed; nothing else may appear anywhere.
func TestMoveThroughStorageFaults(t *testing.T) {
	s3srv := s3test.Start(t)
	proxy := s3test.StartProxy(t, s3srv.URL, 20251121, 0)
	faultyOpts := s3test.Options(proxy.URL)
	faultyOpts.MaxAttempts = 1
	faulty := s3test.NewStore(t, faultyOpts)
	direct := s3test.NewStore(t, s3test.Options(s3srv.URL))
	cl := enginetest.NewCluster(t, 0, faulty)
	local, _ := cl.Resolver.For("file:///")
	var engineErrors atomic.Int64
	cl.Resolver = storage.NewResolver(local, errorCounter{faulty, &engineErrors})
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		cl.AddNode(id)
	}

	for _, tc := range []struct {
		name string
		tr   spec
		// toS3 moves local → S3, else S3 → local.
		toS3 bool
	}{
		{"S3 to local", spec{n: 400}, false},
		{"local to S3", spec{n: 400, big: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			localDir := "file://" + filepath.Join(t.TempDir(), "tree")
			s3Dir := "s3://" + s3srv.NewBucket(t) + "/tree"
			src, dst := s3Dir, localDir
			srcSt, dstSt := storage.Store(direct), local
			if tc.toS3 {
				src, dst, srcSt, dstSt = localDir, s3Dir, local, direct
			}
			want := tree{}
			for i := 0; i < tc.tr.n; i++ {
				data := content(i, tc.tr.size(i))
				put(t, srcSt, storage.Join(src, tc.tr.name(i)), data)
				want[tc.tr.name(i)] = hashOf(data)
			}

			proxy.SetRate(0.10)
			spoiledBefore, errorsBefore := proxy.Spoiled(), engineErrors.Load()
			start := time.Now()
			st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: src, Dst: dst}, map[string]any{"batchSize": "25"})
			proxy.SetRate(0)
			t.Logf("%s after %v: qualified %d, succeeded %d, failed %d (%s); %d requests spoiled, %d storage errors reached the engine",
				st.Status, time.Since(start).Round(time.Millisecond), st.Qualified, st.Succeeded, st.Failed, st.Reason,
				proxy.Spoiled()-spoiledBefore, engineErrors.Load()-errorsBefore)
			if proxy.Spoiled() == spoiledBefore || engineErrors.Load() == errorsBefore {
				t.Fatal("no fault reached the engine; the test proves nothing")
			}
			if st.Processed() != st.Qualified {
				t.Errorf("counters: qualified %d != succeeded %d + skipped %d + failed %d", st.Qualified, st.Succeeded, st.Skipped, st.Failed)
			}

			failed := map[string]string{}
			for _, f := range st.RecentFailures {
				failed[strings.TrimPrefix(strings.TrimPrefix(f.Path, src), "/")] = f.Reason + ": " + f.Message
			}
			left, moved := hashStore(t, srcSt, src), hashStore(t, dstSt, dst)
			var both, onlySrc, onlyDst int
			for rel, h := range want {
				l, inSrc := left[rel]
				m, inDst := moved[rel]
				switch {
				case !inSrc && !inDst:
					t.Errorf("LOST: %s is neither at the source nor at the destination", rel)
				case inSrc && l != h:
					t.Errorf("%s differs at the source", rel)
				case inDst && m != h:
					t.Errorf("%s differs at the destination", rel)
				case inSrc && inDst:
					both++
					t.Logf("in both places: %s: %s", rel, failed[rel])
					if failed[rel] == "" {
						t.Errorf("%s is in both places but was not reported failed", rel)
					}
				case inSrc:
					onlySrc++
				default:
					onlyDst++
					if failed[rel] != "" {
						t.Logf("%s was reported failed but has moved: %s", rel, failed[rel])
					}
				}
			}
			for rel := range left {
				if _, ok := want[rel]; !ok {
					t.Errorf("unexpected file at the source: %s", rel)
				}
			}
			for rel := range moved {
				if _, ok := want[rel]; !ok {
					t.Errorf("unexpected file at the destination: %s", rel)
				}
			}
			if !tc.toS3 {
				// Partial files left by failed attempts would show on disk.
				p := strings.TrimPrefix(dst, "file://")
				if n := len(localNames(t, p)); n != len(moved) {
					t.Errorf("%d names on disk at the destination, %d files: partial files left behind", n, len(moved))
				}
			}
			t.Logf("moved %d, in both places %d, only at the source %d", onlyDst, both, onlySrc)
			if int64(onlyDst) != st.Succeeded {
				t.Errorf("%d files moved, the job counted %d succeeded", onlyDst, st.Succeeded)
			}
		})
	}
}

// flakyStore fails, once per URI, the source delete (without deleting) and
// the commit answer (after committing): the two ways an attempt can leave a
// whole destination behind and still fail.
type flakyStore struct {
	storage.Store
	mu       sync.Mutex
	failed   map[string]bool
	deletes  atomic.Bool
	commits  atomic.Bool
	injected atomic.Int64
}

func (f *flakyStore) once(op, uri string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed[op+uri] {
		return false
	}
	f.failed[op+uri] = true
	f.injected.Add(1)
	return true
}

func (f *flakyStore) Delete(ctx context.Context, uri string) error {
	if f.deletes.Load() && f.once("delete", uri) {
		return storage.NewError("delete", uri, storage.ErrUnavailable, errors.New("injected: connection reset"))
	}
	return f.Store.Delete(ctx, uri)
}

func (f *flakyStore) Create(ctx context.Context, uri string, o storage.CreateOptions) (storage.Writer, error) {
	w, err := f.Store.Create(ctx, uri, o)
	if err != nil || !f.commits.Load() {
		return w, err
	}
	return lostCommit{w, f, uri}, nil
}

type lostCommit struct {
	storage.Writer
	f   *flakyStore
	uri string
}

func (w lostCommit) Commit(ctx context.Context) (storage.Entry, error) {
	e, err := w.Writer.Commit(ctx)
	if err == nil && w.f.once("commit", w.uri) {
		return storage.Entry{}, storage.NewError("commit", w.uri, storage.ErrUnavailable, errors.New("injected: answer lost after the commit"))
	}
	return e, err
}

// TestRetryFinishesItsOwnCopy: when an attempt fails after its destination
// was committed whole (the commit's answer lost, the source's delete
// failed), the next attempt takes that destination as its own copy: a move
// deletes the source and succeeds, a copy counts the file copied, not
// skipped.
func TestRetryFinishesItsOwnCopy(t *testing.T) {
	cl := enginetest.NewCluster(t, 0)
	local, _ := cl.Resolver.For("file:///")
	flaky := &flakyStore{Store: local, failed: map[string]bool{}}
	cl.Resolver = storage.NewResolver(flaky)
	cl.AddNode("node-1")
	cl.AddNode("node-2")

	tr := spec{n: 40}
	for _, tc := range []struct {
		name             string
		typ              workflows.JobType
		deletes, commits bool
	}{
		{"move, source delete fails once", workflows.JobMove, true, false},
		{"move, commit answer lost once", workflows.JobMove, false, true},
		{"copy, commit answer lost once", workflows.JobCopy, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcPath := filepath.Join(t.TempDir(), "src")
			want, total := tr.writeLocal(t, srcPath)
			src, dst := "file://"+srcPath, "file://"+filepath.Join(t.TempDir(), "dst")
			flaky.deletes.Store(tc.deletes)
			flaky.commits.Store(tc.commits)
			before := flaky.injected.Load()
			st := runJob(t, cl, jobs.Key{Type: tc.typ, Path: src, Dst: dst}, map[string]any{"batchSize": "10"})
			flaky.deletes.Store(false)
			flaky.commits.Store(false)
			if n := flaky.injected.Load() - before; n < int64(tr.n) {
				t.Fatalf("%d faults injected, want one per file at least", n)
			}
			checkCounters(t, st, int64(tr.n), 0, total)
			sameTree(t, dst, want, hashStore(t, local, dst))
			left := hashStore(t, local, src)
			if tc.typ == workflows.JobMove && len(left) > 0 {
				t.Fatalf("%d files left at the source", len(left))
			}
			if tc.typ == workflows.JobCopy {
				sameTree(t, "the source", want, left)
			}
		})
	}
}
