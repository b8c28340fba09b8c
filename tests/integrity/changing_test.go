package integrity

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// changingStore changes a source file while it is being read: after the
// first chunk of a read of a file named in changes, it applies the change
// to the file on disk (the real file, through the file system), once or on
// every read. What a user's program writing the file does to a copy.
type changingStore struct {
	storage.Store
	mu      sync.Mutex
	changes map[string]func(path string) error // by base name
	always  map[string]bool
	done    map[string]bool
}

func (c *changingStore) Open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	r, err := c.Store.Open(ctx, uri, off, n)
	if err != nil {
		return nil, err
	}
	name := storage.Base(uri)
	c.mu.Lock()
	change, ok := c.changes[name]
	if ok && c.done[name] && !c.always[name] {
		ok = false
	}
	c.done[name] = true
	c.mu.Unlock()
	if !ok {
		return r, nil
	}
	return &changingReader{ReadCloser: r, change: func() error { return change(strings.TrimPrefix(uri, "file://")) }}, nil
}

type changingReader struct {
	io.ReadCloser
	change  func() error
	changed bool
}

func (r *changingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if !r.changed && n > 0 {
		r.changed = true
		if cerr := r.change(); cerr != nil {
			panic(cerr)
		}
	}
	return n, err
}

const sixMiB = 6 << 20

func pattern(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// rewrite overwrites the last MiB in place: same size, new bytes.
func rewrite(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt(pattern('N', 1<<20), sixMiB-(1<<20))
	return err
}

func appendTo(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(pattern('A', 1<<20))
	return err
}

func truncate(p string) error { return os.Truncate(p, sixMiB/2) }

// replace puts a new file of the same size under the name.
func replace(p string) error {
	tmp := p + ".new"
	if err := os.WriteFile(tmp, pattern('R', sixMiB), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// TestSourceChangesDuringTransfer is issue 11 case 7: a 6 MiB source
// rewritten in place (same size), appended to, truncated or replaced while
// a move or a --check-content copy reads it is never committed torn: the
// file is read again from the start and its final content arrives; a source
// that changes on every read fails "source changed during transfer" and
// stays in place, with nothing at the destination.
func TestSourceChangesDuringTransfer(t *testing.T) {
	cl := enginetest.NewCluster(t, 0)
	local, _ := cl.Resolver.For("file:///")
	cs := &changingStore{Store: local, done: map[string]bool{}, always: map[string]bool{"always.bin": true},
		changes: map[string]func(string) error{
			"rewrite.bin": rewrite, "append.bin": appendTo, "truncate.bin": truncate, "replace.bin": replace,
			"always.bin": rewrite,
		}}
	cl.Resolver = storage.NewResolver(cs)
	cl.AddNode("node-1")

	for _, typ := range []workflows.JobType{workflows.JobMove, workflows.JobCopy} {
		t.Run(string(typ), func(t *testing.T) {
			cs.mu.Lock()
			cs.done = map[string]bool{}
			cs.mu.Unlock()
			base := t.TempDir()
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			files := map[string]string{}
			for name := range cs.changes {
				files[name] = string(pattern('O', sixMiB))
			}
			writeTree(t, src, files)
			raw := map[string]any{}
			if typ == workflows.JobCopy {
				raw["checkContent"] = "true"
			}
			st := runJob(t, cl, jobs.Key{Type: typ, Path: "file://" + src, Dst: "file://" + dst}, raw)
			// The four that change once arrive whole in their final form.
			final := map[string]string{}
			var bytesDone int64
			for name, change := range cs.changes {
				if name == "always.bin" {
					continue
				}
				p := filepath.Join(base, "expect-"+name)
				if err := os.WriteFile(p, pattern('O', sixMiB), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := change(p); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(p)
				final[name] = string(b)
				bytesDone += int64(len(b))
			}
			check(t, st, want{status: workflows.StatusFailed, succeeded: 4, failed: 1, bytes: bytesDone})
			if f := failureFor(t, st, "always.bin"); !strings.Contains(f.Message, "source changed during transfer") {
				t.Fatalf("failure of always.bin: %+v", f)
			}
			sameFiles(t, "destination", readTree(t, dst), final)
			left := readTree(t, src)
			if typ == workflows.JobMove {
				if len(left) != 1 || left["always.bin"] == "" {
					t.Fatalf("source after the move holds %d files, want only always.bin", len(left))
				}
			} else if len(left) != 5 {
				t.Fatalf("source after the copy holds %d files", len(left))
			}
		})
	}
}

// TestMoveFinishesOverItsOwnCopy is issue 11 case 11 (the state a crash
// between a commit and the source's delete leaves): a move that finds its
// destination already holding the source's exact bytes deletes the source
// and counts the file moved; a destination with other bytes still fails
// ALREADY_EXISTS and keeps the source. No partial file is left.
func TestMoveFinishesOverItsOwnCopy(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	writeTree(t, src, map[string]string{"same.txt": "committed before the crash", "other.txt": "source bytes"})
	writeTree(t, dst, map[string]string{"same.txt": "committed before the crash", "other.txt": "someone else's"})
	st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: "file://" + src, Dst: "file://" + dst}, nil)
	check(t, st, want{status: workflows.StatusFailed, succeeded: 1, failed: 1, bytes: int64(len("committed before the crash"))})
	if f := failureFor(t, st, "other.txt"); f.Reason != workflows.ErrTypeExists {
		t.Fatalf("failure of other.txt: %+v", f)
	}
	sameFiles(t, "source", readTree(t, src), map[string]string{"other.txt": "source bytes"})
	sameFiles(t, "destination", readTree(t, dst), map[string]string{"same.txt": "committed before the crash", "other.txt": "someone else's"})
	for _, d := range []string{src, dst} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".ferry-partial") {
				t.Errorf("partial file %s left in %s", e.Name(), d)
			}
		}
	}
}

// rewriteObject returns a change that writes a new version of the object
// through st: the same size, new bytes each time (so that S3's ETag, an MD5,
// changes too, as GCS's generation always does).
func rewriteObject(st storage.Store, size int) func(uri string) error {
	var mu sync.Mutex
	version := byte('a')
	return func(uri string) error {
		mu.Lock()
		version++
		b := version
		mu.Unlock()
		w, err := st.Create(context.Background(), uri, storage.CreateOptions{Overwrite: true, Size: int64(size)})
		if err != nil {
			return err
		}
		if _, err := w.Write(pattern(b, size)); err != nil {
			_ = w.Abort(context.Background())
			return err
		}
		_, err = w.Commit(context.Background())
		return err
	}
}

// TestObjectSourcesChangeDuringTransfer is issue 11 case 7 on object
// stores: an S3 object whose ETag, or a GCS object whose generation,
// changes between the listing and the end of its read (a new version is
// written after the read's first chunk) is read again from the start and
// arrives in its new version; one that changes on every read fails
// "source changed during transfer", and a move leaves it in the source.
// The change goes through the real store, in the real copy path.
func TestObjectSourcesChangeDuringTransfer(t *testing.T) {
	const size = 2 << 20
	s3srv, gcsSrv := s3test.Start(t), gcstest.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	gcsSt := gcstest.NewStore(t, gcstest.Options(gcsSrv.URL))
	changing := func(st storage.Store) *changingStore {
		return &changingStore{Store: st, always: map[string]bool{"always.bin": true}}
	}
	cs3, cgcs := changing(s3st), changing(gcsSt)
	cl := enginetest.NewCluster(t, 0, s3st, gcsSt)
	local, _ := cl.Resolver.For("file:///")
	cl.Resolver = storage.NewResolver(local, cs3, cgcs)
	cl.AddNode("node-1")

	for _, tc := range []struct {
		scheme string
		cs     *changingStore
		bucket func() string
	}{
		{"s3", cs3, func() string { return s3srv.NewBucket(t) }},
		{"gs", cgcs, gcsSrv.NewBucket},
	} {
		for _, typ := range []workflows.JobType{workflows.JobMove, workflows.JobCopy} {
			t.Run(tc.scheme+" "+string(typ), func(t *testing.T) {
				tc.cs.mu.Lock()
				tc.cs.done = map[string]bool{}
				tc.cs.changes = map[string]func(string) error{"once.bin": rewriteObject(tc.cs.Store, size), "always.bin": rewriteObject(tc.cs.Store, size)}
				tc.cs.mu.Unlock()
				src := tc.scheme + "://" + tc.bucket() + "/src"
				for _, name := range []string{"steady.bin", "once.bin", "always.bin"} {
					w, err := tc.cs.Create(context.Background(), src+"/"+name, storage.CreateOptions{Size: size})
					if err != nil {
						t.Fatal(err)
					}
					if _, err := w.Write(pattern('O', size)); err != nil {
						t.Fatal(err)
					}
					if _, err := w.Commit(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				dst := filepath.Join(t.TempDir(), "dst")
				raw := map[string]any{}
				if typ == workflows.JobCopy {
					raw["checkContent"] = "true"
				}
				st := runJob(t, cl, jobs.Key{Type: typ, Path: src, Dst: "file://" + dst}, raw)
				check(t, st, want{status: workflows.StatusFailed, succeeded: 2, failed: 1, bytes: 2 * size})
				if f := failureFor(t, st, "always.bin"); !strings.Contains(f.Message, "source changed during transfer") {
					t.Fatalf("failure of always.bin: %+v", f)
				}
				// once.bin arrives whole in its second version ('b' bytes).
				sameFiles(t, "destination", readTree(t, dst), map[string]string{
					"steady.bin": string(pattern('O', size)), "once.bin": string(pattern('b', size)),
				})
				left := map[string]bool{}
				for _, name := range []string{"steady.bin", "once.bin", "always.bin"} {
					if _, err := tc.cs.Stat(context.Background(), src+"/"+name); err == nil {
						left[name] = true
					}
				}
				if typ == workflows.JobMove && (len(left) != 1 || !left["always.bin"]) {
					t.Fatalf("source after the move holds %v, want only always.bin", left)
				}
				if typ == workflows.JobCopy && len(left) != 3 {
					t.Fatalf("source after the copy holds %v", left)
				}
			})
		}
	}
}
