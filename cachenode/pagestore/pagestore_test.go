package pagestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

const ps = 4096 // small pages keep the tests fast

type env struct {
	t      *testing.T
	src    string // source directory
	cache  string // store directory
	source *testsource.Counting
	store  *pagestore.Store
	// completeFiles is Options.CompleteFiles of the stores open opens.
	completeFiles int
}

func newEnv(t *testing.T, capacity int64) *env {
	t.Helper()
	return newEnvWith(t, capacity, 0)
}

// newEnvWith is newEnv with stores that remember at most completeFiles
// files as complete (Options.CompleteFiles).
func newEnvWith(t *testing.T, capacity int64, completeFiles int) *env {
	t.Helper()
	e := &env{t: t, src: t.TempDir(), cache: t.TempDir(), completeFiles: completeFiles}
	l, err := local.New(local.Options{Root: e.src})
	if err != nil {
		t.Fatal(err)
	}
	e.source = testsource.NewCounting(l)
	e.open(capacity)
	return e
}

func (e *env) open(capacity int64) {
	e.t.Helper()
	s, err := pagestore.Open(pagestore.Options{
		Dir: e.cache, PageSize: ps, Capacity: capacity, Resolver: storage.NewResolver(e.source),
		CompleteFiles: e.completeFiles,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
	e.t.Cleanup(func() { _ = s.Close() })
}

// write creates a source file of n random bytes and returns its URI and bytes.
func (e *env) write(name string, n int) (string, []byte) {
	e.t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), uint64(len(name))))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(e.src, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return "file://" + p, data
}

func (e *env) read(uri string, off, n int64) []byte {
	e.t.Helper()
	f, err := e.store.Resolve(context.Background(), uri)
	if err != nil {
		e.t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := e.store.ReadRange(context.Background(), f, off, n, &buf); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadThroughThenHit(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, data := e.write("a/b.bin", 2*ps+100)
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("first read returned other bytes")
	}
	if e.source.Opens() != 3 {
		t.Fatalf("first read opened the source %d times, want once per page (3)", e.source.Opens())
	}
	st := e.store.Stats()
	if st.Misses != 3 || st.PagesStored != 3 || st.UsedBytes != int64(len(data)) {
		t.Fatalf("stats after first read: %+v", st)
	}
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("second read returned other bytes")
	}
	if e.source.Opens() != 3 || e.source.BytesRead() != int64(len(data)) {
		t.Fatalf("second read reached the source: %d opens, %d bytes", e.source.Opens(), e.source.BytesRead())
	}
	if st := e.store.Stats(); st.Hits != 3 {
		t.Fatalf("hits %d, want 3", st.Hits)
	}
	f, ok, err := e.store.Lookup(uri)
	if err != nil || !ok || !f.FullyCached() || f.ID != pagestore.FileID(uri) {
		t.Fatalf("lookup %+v %v %v", f, ok, err)
	}
}

func TestRangeFetchesOnlyMissingPages(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, data := e.write("f", 4*ps)
	// Bytes inside page 2 only.
	if got := e.read(uri, 2*ps+10, 100); !bytes.Equal(got, data[2*ps+10:2*ps+110]) {
		t.Fatal("range bytes differ")
	}
	if e.source.Opens() != 1 {
		t.Fatalf("%d opens, want 1", e.source.Opens())
	}
	// A range over pages 1..3 fetches 1 and 3, not 2.
	if got := e.read(uri, ps+1, 2*ps+5); !bytes.Equal(got, data[ps+1:3*ps+6]) {
		t.Fatal("range bytes differ")
	}
	if e.source.Opens() != 3 || e.source.BytesRead() != 3*ps {
		t.Fatalf("%d opens, %d bytes read; want 3 pages", e.source.Opens(), e.source.BytesRead())
	}
	// Offsets at and past the end.
	f, _ := e.store.Resolve(context.Background(), uri)
	var buf bytes.Buffer
	if n, err := e.store.ReadRange(context.Background(), f, f.Size, 10, &buf); err != nil || n != 0 {
		t.Fatalf("read at end: %d, %v", n, err)
	}
	if _, err := e.store.ReadRange(context.Background(), f, f.Size+1, 10, &buf); !errors.Is(err, storage.ErrOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
	if _, err := e.store.ReadRange(context.Background(), f, -1, 10, &buf); !errors.Is(err, storage.ErrOutOfRange) {
		t.Fatalf("negative offset: %v", err)
	}
}

func TestChangedSourceIsNeverServedStale(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, old := e.write("f", 3*ps)
	if got := e.read(uri, 0, -1); !bytes.Equal(got, old) {
		t.Fatal("bytes differ")
	}
	// Same size, new content and mtime.
	p := filepath.Join(e.src, "f")
	neu := bytes.Repeat([]byte("new!"), 3*ps/4)
	if err := os.WriteFile(p, neu, 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if got := e.read(uri, 0, -1); !bytes.Equal(got, neu) {
		t.Fatal("served stale bytes after the source changed")
	}
	if st := e.store.Stats(); st.UsedBytes != int64(len(neu)) || st.Pages != 3 {
		t.Fatalf("old pages still counted: %+v", st)
	}
	// Deleted at the source: not found, and forgotten.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Resolve(context.Background(), uri); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("resolve of a deleted file: %v", err)
	}
	if _, ok, _ := e.store.Lookup(uri); ok {
		t.Fatal("deleted file still cached")
	}
	if st := e.store.Stats(); st.UsedBytes != 0 || st.Pages != 0 {
		t.Fatalf("deleted file's pages still counted: %+v", st)
	}
}

func TestDamagedPageIsDroppedAndRefetched(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, data := e.write("f", 2*ps)
	e.read(uri, 0, -1)
	// Flip a byte in every page of the data file.
	if n := e.damage("pages", func(page []byte) { page[7] ^= 0xff }); n != 2 {
		t.Fatalf("damaged %d pages", n)
	}
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("served a damaged page")
	}
	st := e.store.Stats()
	if st.PagesCorrupt != 2 || e.source.Opens() != 4 {
		t.Fatalf("corrupt %d, opens %d; want 2 and 4", st.PagesCorrupt, e.source.Opens())
	}
	// A data file that vanished is read again too.
	if err := os.RemoveAll(filepath.Join(e.cache, "pages")); err != nil {
		t.Fatal(err)
	}
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("wrong bytes after the data files vanished")
	}
}

// damage calls fn with every page (every page size of bytes, the last one
// longer than 7 bytes) of every file under dir in the store, writes what it
// made of them back, and returns how many pages it damaged.
func (e *env) damage(dir string, fn func(page []byte)) int {
	e.t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(e.cache, dir), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for off := 0; off+7 < len(b); off += ps {
			fn(b[off:min(off+ps, len(b))])
			n++
		}
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestCapacityEvictsLeastRecentlyUsed(t *testing.T) {
	const capacity = 5 * ps
	e := newEnv(t, capacity)
	files := map[string][]byte{}
	var order []string
	for _, name := range []string{"a", "b", "c", "d"} {
		uri, data := e.write(name, 2*ps+7)
		files[uri] = data
		order = append(order, uri)
		if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("%s: wrong bytes", name)
		}
		if used := e.store.Stats().UsedBytes; used > capacity {
			t.Fatalf("used %d over capacity %d", used, capacity)
		}
	}
	st := e.store.Stats()
	if st.PagesEvicted == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
	// The newest file is whole; the oldest is gone.
	if f, ok, _ := e.store.Lookup(order[3]); !ok || !f.FullyCached() {
		t.Fatalf("newest file not fully cached: %+v", f)
	}
	if f, _, _ := e.store.Lookup(order[0]); f.CachedPages != 0 {
		t.Fatalf("oldest file still has %d pages", f.CachedPages)
	}
	// Every file still reads correctly, through the cache or the source.
	for _, uri := range order {
		if got := e.read(uri, 0, -1); !bytes.Equal(got, files[uri]) {
			t.Fatalf("%s: wrong bytes after eviction", uri)
		}
		if used := e.store.Stats().UsedBytes; used > capacity {
			t.Fatalf("used %d over capacity %d", used, capacity)
		}
	}
}

func TestConcurrentReadersFetchOnce(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, data := e.write("f", ps)
	release := e.source.Hold()
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := e.store.Resolve(context.Background(), uri)
			if err != nil {
				bad.Add(1)
				return
			}
			var buf bytes.Buffer
			if _, err := e.store.ReadRange(context.Background(), f, 0, -1, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
				bad.Add(1)
			}
		}()
	}
	// Wait until the one fetch is waiting at the source, then let it go.
	waitFor(t, func() bool { return e.source.Opens() >= 1 })
	release()
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d readers failed", bad.Load())
	}
	if e.source.Opens() != 1 {
		t.Fatalf("%d fetches of one page, want 1", e.source.Opens())
	}
}

func TestRestartKeepsTheCache(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, data := e.write("f", 3*ps+1)
	e.read(uri, 0, -1)
	before := e.store.Stats()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(1 << 20)
	after := e.store.Stats()
	if after.UsedBytes != before.UsedBytes || after.Pages != before.Pages {
		t.Fatalf("after restart used %d pages %d, before %d %d", after.UsedBytes, after.Pages, before.UsedBytes, before.Pages)
	}
	opens := e.source.Opens()
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("wrong bytes after restart")
	}
	if e.source.Opens() != opens {
		t.Fatal("restart lost the cache: the source was read again")
	}
}

func TestPageSizeChangeClearsTheCache(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, _ := e.write("f", 2*ps)
	e.read(uri, 0, -1)
	_ = e.store.Close()
	s, err := pagestore.Open(pagestore.Options{Dir: e.cache, PageSize: 2 * ps, Capacity: 1 << 20, Resolver: storage.NewResolver(e.source)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Pages != 0 || st.UsedBytes != 0 {
		t.Fatalf("pages of another size kept: %+v", st)
	}
	if _, ok, _ := s.Lookup(uri); ok {
		t.Fatal("metadata kept")
	}
}

type countingLimiter struct{ tokens atomic.Int64 }

func (l *countingLimiter) WaitN(ctx context.Context, n int) error {
	if n > pagestore.LimiterChunk {
		return errors.New("chunk too large")
	}
	l.tokens.Add(int64(n))
	return ctx.Err()
}

func TestLoadFile(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	uri, data := e.write("dir/f", 5*ps+3)
	ref := e.ref("dir/f")
	version := ref.Version

	var progress int64
	lim := &countingLimiter{}
	res, err := e.store.LoadFile(ctx, ref, pagestore.LoadOptions{SkipIfExists: true, Limiter: lim}, func(n int64) { progress += n })
	if err != nil || res.Outcome != pagestore.Loaded || res.BytesLoaded != int64(len(data)) || res.BytesSkipped != 0 {
		t.Fatalf("first load: %+v %v", res, err)
	}
	if progress != int64(len(data)) || lim.tokens.Load() < int64(len(data)) {
		t.Fatalf("progress %d, limiter tokens %d; want %d", progress, lim.tokens.Load(), len(data))
	}
	if e.source.Opens() != 1 {
		t.Fatalf("load opened the source %d times, want once (one sequential run)", e.source.Opens())
	}
	if !e.store.IsCached(uri, version) || e.store.IsCached(uri, "other") || !e.store.IsCached(uri, "") {
		t.Fatal("IsCached wrong")
	}
	// A file complete at the version the listing gave is not read again,
	// with or without SkipIfExists: no open, no stat.
	opens, stats, fromStorage := e.source.Opens(), e.source.Stats(), e.store.Stats().BytesFromStorage
	for _, opts := range []pagestore.LoadOptions{{SkipIfExists: true}, {}} {
		res, err = e.store.LoadFile(ctx, ref, opts, nil)
		if err != nil || res.Outcome != pagestore.AlreadyCached || res.BytesSkipped != int64(len(data)) || res.BytesLoaded != 0 {
			t.Fatalf("second load %+v: %+v %v", opts, res, err)
		}
	}
	if e.source.Opens() != opens || e.source.Stats() != stats || e.store.Stats().BytesFromStorage != fromStorage {
		t.Fatal("a second load of a cached file reached the source")
	}
	// Without the version, one stat and nothing else.
	res, err = e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil)
	if err != nil || res.Outcome != pagestore.AlreadyCached || e.source.Stats() != stats+1 || e.source.Opens() != opens {
		t.Fatalf("load without version: %+v %v, %d stats, %d opens", res, err, e.source.Stats()-stats, e.source.Opens()-opens)
	}
	// Reads after a load come from the cache (the version matches Stat's).
	opens = e.source.Opens()
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) || e.source.Opens() != opens {
		t.Fatal("read after load did not hit the cache")
	}

	// A partly cached file loads only what is missing.
	uri2, data2 := e.write("dir/g", 4*ps)
	e.read(uri2, ps, ps) // page 1
	res, err = e.store.LoadFile(ctx, pagestore.FileRef{URI: uri2}, pagestore.LoadOptions{SkipIfExists: true}, nil)
	if err != nil || res.Outcome != pagestore.Loaded || res.BytesLoaded != 3*ps || res.BytesSkipped != ps {
		t.Fatalf("partial load: %+v %v", res, err)
	}
	if got := e.read(uri2, 0, -1); !bytes.Equal(got, data2) {
		t.Fatal("wrong bytes after partial load")
	}

	// Metadata only.
	uri3, _ := e.write("dir/h", ps)
	res, err = e.store.LoadFile(ctx, pagestore.FileRef{URI: uri3}, pagestore.LoadOptions{MetadataOnly: true}, nil)
	if err != nil || res.Outcome != pagestore.Loaded || res.BytesLoaded != 0 {
		t.Fatalf("metadata-only load: %+v %v", res, err)
	}
	if f, ok, _ := e.store.Lookup(uri3); !ok || f.Size != ps || f.CachedPages != 0 {
		t.Fatalf("metadata-only: %+v %v", f, ok)
	}

	// Failures are classified.
	for _, tc := range []struct {
		ref       pagestore.FileRef
		kind      error
		retryable bool
	}{
		{pagestore.FileRef{URI: "file://" + e.src + "/missing"}, storage.ErrNotFound, false},
		{pagestore.FileRef{URI: "no-scheme/x"}, storage.ErrInvalidPath, false},
		{pagestore.FileRef{URI: "file://" + e.src + "/dir"}, storage.ErrInvalidPath, false},
		{pagestore.FileRef{URI: "file:///etc/passwd"}, storage.ErrPermission, false},
		// The listing said 10 pages but the file is shorter: it changed.
		{pagestore.FileRef{URI: uri3, Size: 10 * ps, Version: "stale"}, storage.ErrUnavailable, true},
	} {
		res, err := e.store.LoadFile(ctx, tc.ref, pagestore.LoadOptions{}, nil)
		if res.Outcome != pagestore.Failed || !errors.Is(err, tc.kind) || storage.IsRetryable(err) != tc.retryable {
			t.Errorf("%s: %+v %v; want failed with %v (retryable %v)", tc.ref.URI, res, err, tc.kind, tc.retryable)
		}
	}
}

// A file larger than the whole cache fails its load at once, final, with
// the sizes in the reason, and reads nothing; reads of it still work
// (through the cache, its first pages evicted as later ones arrive).
func TestLoadLargerThanCapacity(t *testing.T) {
	e := newEnv(t, 3*ps)
	uri, data := e.write("big", 8*ps)
	res, err := e.store.LoadFile(context.Background(), pagestore.FileRef{URI: uri}, pagestore.LoadOptions{SkipIfExists: true}, nil)
	if !errors.Is(err, pagestore.ErrTooLarge) || storage.IsRetryable(err) || res.Outcome != pagestore.Failed || res.BytesLoaded != 0 ||
		!strings.Contains(err.Error(), fmt.Sprintf("the file is %d bytes and this node's whole cache (--capacity) is %d bytes", 8*ps, 3*ps)) {
		t.Fatalf("%+v %v", res, err)
	}
	// The reason speaks of the cache, not of an "offset out of range" (the
	// storage error it is classified as, final).
	if !errors.Is(err, storage.ErrOutOfRange) || strings.Contains(err.Error(), "offset out of range") {
		t.Errorf("reason %q: want final (ErrOutOfRange) without its offset wording", err)
	}
	if st := e.store.Stats(); st.BytesFromStorage != 0 || st.Pages != 0 {
		t.Fatalf("a load that cannot fit read or stored something: %+v", st)
	}
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	if st := e.store.Stats(); st.UsedBytes > 3*ps || st.Pages != 3 {
		t.Fatalf("over capacity: %+v", st)
	}
}

// Files that fit one by one but not together: the load of a file whose
// pages were evicted by the time its last page was stored fails with
// ErrEvicted; a file loaded whole and evicted later is reported by a
// FailIfEvicted load (a job's verify pass), not read again; a complete file
// passes it.
func TestLoadsThatDoNotStayCached(t *testing.T) {
	e := newEnv(t, 4*ps)
	ctx := context.Background()
	a, _ := e.write("a", 3*ps)
	b, _ := e.write("b", 3*ps)
	if res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: a}, pagestore.LoadOptions{}, nil); err != nil || res.Outcome != pagestore.Loaded {
		t.Fatalf("a: %+v %v", res, err)
	}
	// b evicts two pages of a, and none of its own.
	if res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: b}, pagestore.LoadOptions{}, nil); err != nil || res.Outcome != pagestore.Loaded {
		t.Fatalf("b: %+v %v", res, err)
	}
	fa, _, _ := e.store.Lookup(a)
	if fa.CachedPages != 1 || fa.EvictedPages != 2 {
		t.Fatalf("a after b: %+v", fa)
	}
	before := e.store.Stats().BytesFromStorage
	res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: a}, pagestore.LoadOptions{SkipIfExists: true, FailIfEvicted: true}, nil)
	if !errors.Is(err, pagestore.ErrEvicted) || storage.IsRetryable(err) || res.Outcome != pagestore.Failed ||
		!strings.Contains(err.Error(), fmt.Sprintf("only %d of its %d bytes are cached (1 of 3 pages)", ps, 3*ps)) {
		t.Fatalf("verify of a: %+v %v", res, err)
	}
	if got := e.store.Stats().BytesFromStorage; got != before {
		t.Fatalf("verify read %d bytes from storage", got-before)
	}
	if res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: b}, pagestore.LoadOptions{SkipIfExists: true, FailIfEvicted: true}, nil); err != nil || res.Outcome != pagestore.AlreadyCached {
		t.Fatalf("verify of b: %+v %v", res, err)
	}

	// A load whose first pages are gone by its end: e fills the whole
	// cache, and f is read while e is half stored, taking the room of e's
	// first two pages.
	big, _ := e.write("e", 4*ps)
	other, _ := e.write("f", 2*ps)
	pages := 0
	res, err = e.store.LoadFile(ctx, pagestore.FileRef{URI: big}, pagestore.LoadOptions{}, func(int64) {
		if pages++; pages == 2 {
			e.read(other, 0, -1) // takes two pages' room: e's first two go
		}
	})
	if !errors.Is(err, pagestore.ErrEvicted) || res.Outcome != pagestore.Failed || res.BytesLoaded != 4*ps ||
		!strings.Contains(err.Error(), "evicted while it was loaded") {
		t.Fatalf("load of e with f read meanwhile: %+v %v", res, err)
	}
}

// TestEvictingSmallPagesScansOnce: making room for a large file's page
// among many small files' pages (each a fraction of a page) takes one
// pass over the access order per page stored, not one per few small pages
// evicted, each stepping again over the keys evicted before it (a load of
// 8 MiB among 40,000 cached 256-byte files took 40 s).
func TestEvictingSmallPagesScansOnce(t *testing.T) {
	const small, size = 1500, 100
	e := newEnv(t, small*size)
	for i := range small {
		uri, _ := e.write(fmt.Sprintf("s/%04d", i), size)
		e.read(uri, 0, -1)
	}
	if st := e.store.Stats(); st.PagesEvicted != 0 || st.UsedBytes != small*size {
		t.Fatalf("the small files do not fill the cache exactly: %+v", st)
	}
	const pages = 8
	uri, data := e.write("large", pages*ps)
	before := pagestore.EvictScans(e.store)
	if _, err := e.store.LoadFile(context.Background(), pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	st := e.store.Stats()
	if st.PagesEvicted < pages*ps/size || st.UsedBytes > small*size {
		t.Fatalf("after the load: %+v", st)
	}
	if n := pagestore.EvictScans(e.store) - before; n > pages {
		t.Fatalf("%d evictions began from the old end for %d pages (%d small pages evicted)", n, pages, st.PagesEvicted)
	}
}

func TestEvictPrefix(t *testing.T) {
	e := newEnv(t, 1<<20)
	a, _ := e.write("x/a", 2*ps)
	b, _ := e.write("x/b", ps)
	c, _ := e.write("y/c", ps)
	for _, u := range []string{a, b, c} {
		e.read(u, 0, -1)
	}
	res, err := e.store.Evict(context.Background(), "file://"+e.src+"/x/")
	if err != nil || res.Files != 2 || res.Pages != 3 || res.Bytes != 3*ps {
		t.Fatalf("evict: %+v %v", res, err)
	}
	if _, ok, _ := e.store.Lookup(a); ok {
		t.Fatal("a still cached")
	}
	if f, ok, _ := e.store.Lookup(c); !ok || !f.FullyCached() {
		t.Fatal("c evicted too")
	}
	if st := e.store.Stats(); st.UsedBytes != ps || st.Pages != 1 {
		t.Fatalf("stats after evict: %+v", st)
	}
}

// An empty file is loaded (not found cached) by the load that first binds
// it, at its first version and again after it changes (a file truncated to
// nothing); then it is cached, and reads give no bytes.
func TestEmptyFile(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	load := func(uri string, want pagestore.Outcome) {
		t.Helper()
		res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{SkipIfExists: true}, nil)
		if err != nil || res.Outcome != want {
			t.Fatalf("load %s: %+v %v, want %v", uri, res, err, want)
		}
	}
	uri, _ := e.write("empty", 0)
	load(uri, pagestore.Loaded)
	load(uri, pagestore.AlreadyCached)
	if !e.store.IsCached(uri, "") {
		t.Fatal("an empty file is trivially cached")
	}
	if got := e.read(uri, 0, -1); len(got) != 0 {
		t.Fatal("bytes from an empty file")
	}
	// A file that had bytes, cached, then truncated to nothing.
	full, _ := e.write("truncated", 3*ps)
	load(full, pagestore.Loaded)
	p := filepath.Join(e.src, "truncated")
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second) // a new version even on a coarse clock
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	load(full, pagestore.Loaded)
	load(full, pagestore.AlreadyCached)
	if got := e.read(full, 0, -1); len(got) != 0 {
		t.Fatalf("%d bytes from a file truncated to nothing", len(got))
	}
}

func TestOptionsValidate(t *testing.T) {
	err := (&pagestore.Options{PageSize: 100, Capacity: 10}).Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"Dir", "page size", "capacity", "Resolver"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatal("condition not reached in 10s")
		case <-tick.C:
		}
	}
}

// CachedComplete answers for many files at once exactly what Lookup answers
// for each: cached complete at the size and version asked, or not. The refs
// mix every case, in random order and with repeats, names of any bytes.
func TestCachedCompleteAgreesWithLookup(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	type file struct {
		ref  pagestore.FileRef
		want bool
	}
	var files []file
	version := func(name string) string { return e.ref(name).Version }
	for i := range 60 {
		name := fmt.Sprintf("d%d/f%d-\xff\xfe", i%3, i)
		if i%7 == 0 {
			name = fmt.Sprintf("d/plain%d", i)
		}
		size := 1 + r.IntN(3*ps)
		uri, data := e.write(name, size)
		ref := pagestore.FileRef{URI: uri, Size: int64(len(data)), Version: version(name)}
		switch i % 6 {
		case 0: // never cached
			files = append(files, file{ref, false})
			continue
		case 1: // cached, asked at another version
			files = append(files, file{pagestore.FileRef{URI: uri, Size: ref.Size, Version: "other"}, false})
		case 2: // cached, asked at another size
			files = append(files, file{pagestore.FileRef{URI: uri, Size: ref.Size + 1, Version: ref.Version}, false})
		case 3: // asked without a version
			files = append(files, file{pagestore.FileRef{URI: uri, Size: ref.Size}, false})
		}
		if i%6 == 4 && size > ps { // only its first page cached
			f, err := e.store.Resolve(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.ReadRange(ctx, f, 0, 1, io.Discard); err != nil {
				t.Fatal(err)
			}
			files = append(files, file{ref, false})
			continue
		}
		if _, err := e.store.LoadFile(ctx, ref, pagestore.LoadOptions{}, nil); err != nil {
			t.Fatal(err)
		}
		files = append(files, file{ref, true})
	}
	files = append(files, files[:10]...)
	r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	refs := make([]pagestore.FileRef, len(files))
	for i, f := range files {
		refs[i] = f.ref
	}
	got, err := e.store.CachedComplete(refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		lf, ok, err := e.store.Lookup(f.ref.URI)
		if err != nil {
			t.Fatal(err)
		}
		byLookup := ok && f.ref.Version != "" && lf.Version == f.ref.Version && lf.Size == f.ref.Size && lf.FullyCached()
		if got[i] != f.want || byLookup != f.want {
			t.Errorf("%q size %d version %q: CachedComplete %v, Lookup %v, want %v", f.ref.URI, f.ref.Size, f.ref.Version, got[i], byLookup, f.want)
		}
	}
	if got, err := e.store.CachedComplete(nil); err != nil || len(got) != 0 {
		t.Fatalf("CachedComplete(nil) = %v, %v", got, err)
	}
}

// cancelSource cancels the load reading it once a stream has given
// cancelAfter bytes, and keeps giving bytes: the load's reader then races
// the cancellation while it hands pages over.
type cancelSource struct {
	storage.Store
	cancelAfter int64
	cancel      context.CancelFunc
}

func (s *cancelSource) Open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.Store.Open(ctx, uri, off, n)
	if err != nil {
		return nil, err
	}
	return &cancelReader{ReadCloser: rc, s: s}, nil
}

type cancelReader struct {
	io.ReadCloser
	s    *cancelSource
	read int64
}

func (r *cancelReader) Read(p []byte) (int, error) {
	k, err := r.ReadCloser.Read(p)
	if r.read += int64(k); r.read >= r.s.cancelAfter {
		r.s.cancel()
	}
	return k, err
}

// A load cancelled in the middle of a run (a job stopped) ends every claim
// on the pages it did not store: it returns an error, or success only with
// every page stored, and a reader of the file afterwards gets its bytes
// instead of waiting forever for a page nobody fetches.
func TestCancelledLoadLeavesNoPageClaimed(t *testing.T) {
	mem := testsource.NewMem()
	data := make([]byte, 16*ps)
	r := rand.New(rand.NewPCG(9, 10))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	uri := "mem://bucket/cancelled.bin"
	mem.Put(uri, data)
	e, err := mem.Stat(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	ref := pagestore.FileRef{URI: uri, Size: e.Size, Version: e.Version}
	for i := range 40 {
		src := &cancelSource{Store: mem, cancelAfter: int64(1+i%8) * ps}
		s, err := pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: ps, Capacity: 1 << 30, Resolver: storage.NewResolver(src)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		src.cancel = cancel
		res, err := s.LoadFile(ctx, ref, pagestore.LoadOptions{}, nil)
		f, ok, lerr := s.Lookup(uri)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if err == nil && (!ok || !f.FullyCached()) {
			t.Fatalf("run %d: a cancelled load reported %+v with %d of %d pages cached", i, res, f.CachedPages, f.Pages())
		}
		// Every page reads back, fetched by the reader where the load did
		// not store it: no claim is left waiting.
		src.cancel = func() {}
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		rf, err := s.Resolve(rctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := s.ReadRange(rctx, rf, 0, -1, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("run %d: reading after a cancelled load: %d bytes, %v", i, buf.Len(), err)
		}
		rcancel()
		cancel()
		_ = s.Close()
	}
}
