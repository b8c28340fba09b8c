package pagestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// newLocalEnv is newEnv whose store reads the local source directly, not
// through the counting wrapper: its streams are sections of local files,
// which a load copies into the cache inside the kernel.
func newLocalEnv(t *testing.T, capacity int64) (*env, *storage.Resolver) {
	t.Helper()
	e := &env{t: t, src: t.TempDir(), cache: t.TempDir()}
	l, err := local.New(local.Options{Root: e.src})
	if err != nil {
		t.Fatal(err)
	}
	resolver := storage.NewResolver(l)
	s, err := pagestore.Open(pagestore.Options{Dir: e.cache, PageSize: ps, Capacity: capacity, Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	t.Cleanup(func() { _ = s.Close() })
	return e, resolver
}

// A load of a local file (copied by the kernel where it can, through
// memory where it cannot) keeps every guarantee of the page store: the
// bytes read back exactly, every page has a checksum that catches damage,
// a restart keeps them, and the counters add up.
func TestLoadLocalFileInTheKernel(t *testing.T) {
	for _, tc := range []struct {
		name          string
		refuse, ahead bool
	}{{"kernel copy, copying ahead", false, true}, {"kernel copy, one goroutine", false, false}, {"kernel refuses", true, false}} {
		refuse := tc.refuse
		t.Run(tc.name, func(t *testing.T) {
			copies := func() int64 { return 0 }
			if refuse {
				t.Cleanup(pagestore.RefuseKernelCopy())
			} else {
				var restore func()
				copies, restore = pagestore.CountKernelCopies()
				t.Cleanup(restore)
			}
			ctx := context.Background()
			e, resolver := newLocalEnv(t, 1<<20)
			pagestore.SetCopyAhead(e.store, tc.ahead)
			const size = 37*ps + 5
			uri, data := e.write("d/big", size)
			var progress int64
			res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, func(n int64) { progress += n })
			if err != nil || res.Outcome != pagestore.Loaded || res.BytesLoaded != size || progress != size {
				t.Fatalf("load: %+v %v, progress %d", res, err, progress)
			}
			if kernel := !refuse && pagestore.KernelCopy; kernel && copies() != 38 {
				t.Fatalf("%d pages copied in the kernel, want 38", copies())
			}
			st := e.store.Stats()
			if st.BytesFromStorage != size || st.PagesStored != 38 || st.UsedBytes != size || st.Pages != 38 {
				t.Fatalf("stats after the load: %+v", st)
			}
			if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
				t.Fatal("wrong bytes after the load")
			}
			if st := e.store.Stats(); st.Misses != 0 || st.BytesFromStorage != size {
				t.Fatalf("the read after the load reached the source: %+v", st)
			}
			// The checksums are the stored bytes': damage is caught.
			p := dataFile(t, e.cache)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[5*ps+9] ^= 0x5a
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
				t.Fatal("served a damaged page")
			}
			if st := e.store.Stats(); st.PagesCorrupt != 1 || st.Misses != 1 {
				t.Fatalf("after damaging one page: %+v", st)
			}
			// A restart keeps the cache.
			if err := e.store.Close(); err != nil {
				t.Fatal(err)
			}
			e.store, err = pagestore.Open(pagestore.Options{Dir: e.cache, PageSize: ps, Capacity: 1 << 20, Resolver: resolver})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.store.Close() })
			if !e.store.IsCached(uri, "") || e.store.Stats().UsedBytes != size {
				t.Fatalf("after a restart: %+v", e.store.Stats())
			}
			if got := e.read(uri, 0, -1); !bytes.Equal(got, data) || e.store.Stats().Misses != 0 {
				t.Fatal("wrong bytes, or a miss, after a restart")
			}
		})
	}
}

// A kernel copy that fails partway fails the load, retryable, in both copy
// modes: the pages stored before stay, with exactly their space reserved;
// nothing is reserved for the pages not stored; a reader of the file then
// gets the source's bytes; and a second load completes the file.
func TestKernelCopyFailingPartway(t *testing.T) {
	if !pagestore.KernelCopy {
		t.Skip("no kernel copy on this system")
	}
	for _, ahead := range []bool{true, false} {
		for _, after := range []int64{0, 1, 5, 15} {
			e, _ := newLocalEnv(t, 1<<20)
			pagestore.SetCopyAhead(e.store, ahead)
			uri, data := e.write("f", 16*ps+7)
			restore := pagestore.FailKernelCopyAfter(after)
			res, err := e.store.LoadFile(context.Background(), pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil)
			restore()
			if res.Outcome != pagestore.Failed || err == nil || !storage.IsRetryable(err) {
				t.Fatalf("ahead %v, failing after %d copies: %+v %v; want a retryable failure", ahead, after, res, err)
			}
			f, ok, lerr := e.store.Lookup(uri)
			if lerr != nil || !ok || f.CachedPages > after || f.CachedBytes != res.BytesLoaded {
				t.Fatalf("ahead %v, failing after %d copies: %+v %v %v (loaded %d)", ahead, after, f, ok, lerr, res.BytesLoaded)
			}
			if st := e.store.Stats(); st.UsedBytes != f.CachedBytes || st.Pages != f.CachedPages {
				t.Fatalf("ahead %v, failing after %d copies: space held for pages not stored: %+v, file %+v", ahead, after, st, f)
			}
			if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
				t.Fatalf("ahead %v, failing after %d copies: wrong bytes read", ahead, after)
			}
			if _, err := e.store.LoadFile(context.Background(), pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil); err != nil {
				t.Fatalf("ahead %v, failing after %d copies: second load: %v", ahead, after, err)
			}
			if f, _, _ := e.store.Lookup(uri); !f.FullyCached() {
				t.Fatalf("ahead %v, failing after %d copies: not complete after the second load: %+v", ahead, after, f)
			}
		}
	}
}

// A file evicted while the kernel copies it fails its load, and the space
// of the pages copied but not yet stored (copied ahead) is given back: the
// store ends holding nothing.
func TestKernelCopyOfAFileEvictedMidway(t *testing.T) {
	if !pagestore.KernelCopy {
		t.Skip("no kernel copy on this system")
	}
	ctx := context.Background()
	for _, ahead := range []bool{true, false} {
		for _, at := range []int{1, 3, 8} {
			e, _ := newLocalEnv(t, 1<<20)
			pagestore.SetCopyAhead(e.store, ahead)
			uri, _ := e.write("f", 16*ps+7)
			pages := 0
			res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, func(int64) {
				if pages++; pages == at {
					if _, err := e.store.Evict(ctx, uri); err != nil {
						t.Error(err)
					}
				}
			})
			if res.Outcome != pagestore.Failed || err == nil {
				t.Fatalf("ahead %v, evicted after %d pages: %+v %v; want a failure", ahead, at, res, err)
			}
			if st := e.store.Stats(); st.UsedBytes != 0 || st.Pages != 0 {
				t.Fatalf("ahead %v, evicted after %d pages: the store still holds %+v", ahead, at, st)
			}
		}
	}
}

// waitForNewerChangeTime returns once a change made now to a file next to
// path gets a later change time than path's: file systems stamp change
// times from a clock that ticks every few milliseconds, and a test that
// rewrites path must not do it within the tick that stamped it.
func waitForNewerChangeTime(t *testing.T, path string) {
	t.Helper()
	changed := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ctim.Nano()
	}
	probe := path + ".probe"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := os.WriteFile(probe, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if changed(probe) > changed(path) {
			_ = os.Remove(probe)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the file system's change times did not move on in 10 s")
		}
		runtime.Gosched()
	}
}

// dataFile is the only data file of a store.
func dataFile(t *testing.T, cache string) string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(filepath.Join(cache, "pages"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			found = append(found, p)
		}
		return err
	})
	if err != nil || len(found) != 1 {
		t.Fatalf("data files %v: %v", found, err)
	}
	return found[0]
}

// A local file shorter than its listing said changed: the load fails,
// retryable, and keeps no space for pages it could not copy.
func TestLoadLocalFileThatShrank(t *testing.T) {
	for _, ahead := range []bool{true, false} {
		e, _ := newLocalEnv(t, 1<<20)
		pagestore.SetCopyAhead(e.store, ahead)
		uri, _ := e.write("f", 3*ps+10)
		res, err := e.store.LoadFile(context.Background(), pagestore.FileRef{URI: uri, Size: 9 * ps, Version: "listed"}, pagestore.LoadOptions{}, nil)
		if res.Outcome != pagestore.Failed || !errors.Is(err, pagestore.ErrChanged) || !storage.IsRetryable(err) {
			t.Fatalf("copying ahead %v: %+v %v; want a retryable ErrChanged", ahead, res, err)
		}
		f, ok, err := e.store.Lookup(uri)
		if err != nil || !ok || f.FullyCached() {
			t.Fatalf("copying ahead %v: %+v %v %v", ahead, f, ok, err)
		}
		if st := e.store.Stats(); st.UsedBytes != f.CachedBytes || st.Pages != f.CachedPages {
			t.Fatalf("copying ahead %v: space held for pages not stored: %+v, file %+v", ahead, st, f)
		}
	}
}

// Readers of a file being loaded wait for the pages the load is copying and
// get exactly the source's bytes (the load hands them no buffer: they read
// the stored page).
func TestReadersDuringLocalLoad(t *testing.T) {
	if !pagestore.KernelCopy {
		t.Skip("no kernel copy on this system")
	}
	ctx := context.Background()
	for round := range 6 {
		e, _ := newLocalEnv(t, 4<<20)
		pagestore.SetCopyAhead(e.store, round%2 == 0)
		uri, data := e.write("f", 200*ps+1)
		var wg sync.WaitGroup
		errs := make(chan error, 9)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil); err != nil {
				errs <- err
			}
		}()
		for r := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := e.store.Resolve(ctx, uri)
				if err != nil {
					errs <- err
					return
				}
				off := int64((r*25 + round) * ps)
				var buf bytes.Buffer
				if _, err := e.store.ReadRange(ctx, f, off, 30*ps, &buf); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf.Bytes(), data[off:min(off+30*ps, int64(len(data)))]) {
					errs <- errors.New("a reader got wrong bytes")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("round %d: wrong bytes after the load", round)
		}
	}
}

// A page copied in the kernel piece by piece lands whole and its checksum
// is the CRC-32C of its bytes, whatever the page's length against the
// piece's; a source that ends early gives the bytes it had and their
// checksum.
func TestCopyChecksummed(t *testing.T) {
	if !pagestore.KernelCopy {
		t.Skip("no kernel copy on this system")
	}
	const piece = 4096
	data := make([]byte, 5*piece+3)
	for i := range data {
		data[i] = byte(i*31 + i/piece)
	}
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "src")
	if err := os.WriteFile(srcPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	lengths := []int64{0, 1, piece - 1, piece, piece + 1, 3*piece + 7, int64(len(data))}
	{
		for _, n := range lengths {
			for _, srcOff := range []int64{0, 5} {
				dst, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("dst-%d-%d", n, srcOff)), os.O_CREATE|os.O_RDWR, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				const dstOff = 3 * piece
				crc, copied, err := pagestore.CopyChecksummed(dst, dstOff, src, srcOff, n, make([]byte, piece))
				want := data[srcOff:min(srcOff+n, int64(len(data)))]
				if err != nil || copied != int64(len(want)) || crc != crc32.Checksum(want, castagnoli) {
					t.Fatalf("%d bytes at %d: crc %08x, %d copied, %v; want %08x, %d", n, srcOff, crc, copied, err, crc32.Checksum(want, castagnoli), len(want))
				}
				got := make([]byte, len(want))
				if _, err := dst.ReadAt(got, dstOff); err != nil && len(want) > 0 {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%d bytes at %d: wrong bytes landed", n, srcOff)
				}
				_ = dst.Close()
			}
		}
	}
}

// A file rewritten in place while it is loaded (same size, new bytes, new
// modification time) is never reported loaded: some of its pages may hold
// the old bytes and others the new, all filed under the old version. The
// load fails with the retryable ErrChanged and keeps none of its pages, on
// the kernel-copy path and on the path through memory (a bandwidth limit);
// the next load caches the new version whole.
func TestLoadOfAFileRewrittenWhileLoadingFails(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		limited, ahead, keepM bool
	}{
		{"kernel copy, copying ahead", false, true, false},
		{"kernel copy, one goroutine", false, false, false},
		{"through memory", true, false, false},
		// The rewrite puts the modification time back (touch -d, a
		// restore that keeps times): only the change time tells.
		{"kernel copy, modification time put back", false, true, true},
		{"through memory, modification time put back", true, false, true},
	} {
		limited := tc.limited
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e, _ := newLocalEnv(t, 1<<20)
			pagestore.SetCopyAhead(e.store, tc.ahead)
			const size = 16 * ps
			uri, _ := e.write("d/rewritten", size)
			path := filepath.Join(e.src, "d", "rewritten")
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.keepM {
				waitForNewerChangeTime(t, path)
			}
			newer := bytes.Repeat([]byte{0x5a}, size)
			var opts pagestore.LoadOptions
			if limited {
				opts.Limiter = &countingLimiter{}
			}
			rewrote := false
			_, err = e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, opts, func(int64) {
				if rewrote {
					return
				}
				rewrote = true
				if err := os.WriteFile(path, newer, 0o644); err != nil {
					t.Error(err)
				}
				later := time.Now().Add(time.Hour)
				if tc.keepM {
					later = before.ModTime()
				}
				if err := os.Chtimes(path, later, later); err != nil {
					t.Error(err)
				}
			})
			if !errors.Is(err, pagestore.ErrChanged) || !storage.IsRetryable(err) {
				t.Fatalf("load of a file rewritten meanwhile: %v, want the retryable ErrChanged", err)
			}
			if f, ok, err := e.store.Lookup(uri); err != nil || (ok && f.CachedPages > 0) {
				t.Fatalf("after the failed load the store holds %d pages of it (%v)", f.CachedPages, err)
			}
			res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, opts, nil)
			if err != nil || res.Outcome != pagestore.Loaded {
				t.Fatalf("second load: %v, %v", res.Outcome, err)
			}
			if got := e.read(uri, 0, size); !bytes.Equal(got, newer) {
				t.Fatal("the second load does not read back the new bytes")
			}
		})
	}
}
