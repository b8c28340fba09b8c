package pagestore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage/local"
)

// ref is the source file name as a listing gives it: URI, size and version
// (local storage's version: size and modification time).
func (e *env) ref(name string) pagestore.FileRef {
	e.t.Helper()
	st, err := local.New(local.Options{Root: e.src})
	if err != nil {
		e.t.Fatal(err)
	}
	uri := "file://" + filepath.Join(e.src, name)
	ent, err := st.Stat(context.Background(), uri)
	if err != nil {
		e.t.Fatal(err)
	}
	return pagestore.FileRef{URI: uri, Size: ent.Size, Version: ent.Version}
}

// completeByLookup is what CachedComplete must answer for ref, by Lookup.
func (e *env) completeByLookup(ref pagestore.FileRef) bool {
	e.t.Helper()
	f, ok, err := e.store.Lookup(ref.URI)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok && ref.Version != "" && f.Version == ref.Version && f.Size == ref.Size && f.FullyCached()
}

// checkComplete asks CachedComplete about refs twice (the first call may
// answer from the index and remember, the second from memory) and fails
// the test where it disagrees with Lookup.
func (e *env) checkComplete(refs []pagestore.FileRef, what string) {
	e.t.Helper()
	want := make([]bool, len(refs))
	for i, r := range refs {
		want[i] = e.completeByLookup(r)
	}
	for round := range 2 {
		got, err := e.store.CachedComplete(refs)
		if err != nil {
			e.t.Fatal(err)
		}
		for i, r := range refs {
			if got[i] != want[i] {
				e.t.Fatalf("after %s, call %d: %s size %d version %s: CachedComplete %v, Lookup %v",
					what, round+1, r.URI, r.Size, r.Version, got[i], want[i])
			}
		}
	}
	if n := pagestore.CompleteLen(e.store); e.completeFiles > 0 && n > e.completeFiles {
		e.t.Fatalf("after %s: %d files remembered complete, over the limit of %d", what, n, e.completeFiles)
	}
}

// damageAll overwrites the first bytes of every page of every data file and
// segment (not flipped: damaging twice must not repair).
func (e *env) damageAll() {
	e.t.Helper()
	for _, dir := range []string{"pages", "segments"} {
		e.damage(dir, func(page []byte) { copy(page[:min(16, len(page))], strings.Repeat("\xa5", 16)) })
	}
}

// damageAndLose damages every cached page and removes name's source, then
// reads name through a File resolved before: its first page is dropped as
// damaged and cannot be fetched again.
func (e *env) damageAndLose(name string) {
	e.t.Helper()
	ctx := context.Background()
	uri := e.ref(name).URI
	f, err := e.store.Resolve(ctx, uri)
	if err != nil {
		e.t.Fatal(err)
	}
	e.damageAll()
	if err := os.Remove(filepath.Join(e.src, name)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.ReadRange(ctx, f, 0, -1, io.Discard); f.Size > 0 && err == nil {
		e.t.Fatalf("%s: read without its source and with damaged pages succeeded", name)
	}
}

// Each change that makes a complete file incomplete, or binds it to
// another version, is seen by the next CachedComplete, which remembered
// the file as complete when it was loaded.
func TestCachedCompleteForgets(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		size   int
		change func(e *env, uri string)
	}{
		{"new version", 3 * ps, func(e *env, uri string) {
			e.write("d/a", 2*ps)
			if _, err := e.store.Resolve(ctx, uri); err != nil {
				t.Fatal(err)
			}
		}},
		{"new version of an empty file", 0, func(e *env, uri string) {
			e.write("d/a", 10)
			if _, err := e.store.Resolve(ctx, uri); err != nil {
				t.Fatal(err)
			}
		}},
		{"drop", 3 * ps, func(e *env, uri string) {
			if _, err := e.store.Drop(uri); err != nil {
				t.Fatal(err)
			}
		}},
		{"evict prefix", ps / 2, func(e *env, uri string) {
			if _, err := e.store.Evict(ctx, "file://"+e.src+"/d/"); err != nil {
				t.Fatal(err)
			}
		}},
		{"capacity eviction", 3 * ps, func(e *env, uri string) {
			b, _ := e.write("b", 3*ps)
			if _, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: b}, pagestore.LoadOptions{}, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"damaged page", 2 * ps, func(e *env, uri string) { e.damageAndLose("d/a") }},
		{"damaged small page", ps / 2, func(e *env, uri string) { e.damageAndLose("d/a") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 4*ps)
			uri, _ := e.write("d/a", tc.size)
			ref := e.ref("d/a")
			if _, err := e.store.LoadFile(ctx, ref, pagestore.LoadOptions{}, nil); err != nil {
				t.Fatal(err)
			}
			if n := pagestore.CompleteLen(e.store); n != 1 {
				t.Fatalf("a loaded file is not remembered complete (%d remembered)", n)
			}
			e.checkComplete([]pagestore.FileRef{ref}, "the load")
			tc.change(e, uri)
			if e.completeByLookup(ref) {
				t.Fatal("the change left the file complete at its version: the test tests nothing")
			}
			check := []pagestore.FileRef{ref}
			if _, err := os.Stat(filepath.Join(e.src, "d/a")); err == nil {
				check = append(check, e.ref("d/a")) // the version the source has now
			}
			e.checkComplete(check, tc.name)
		})
	}
}

// A CachedComplete that found a file complete in the index before the file
// was dropped does not remember it complete afterwards: neither when the
// drop began after its index read (and before it recorded what it read),
// nor when the drop had begun before the read and was applied after it.
func TestCachedCompleteDoesNotRememberARacedRead(t *testing.T) {
	ctx := context.Background()
	for _, during := range []bool{false, true} {
		t.Run(fmt.Sprintf("read during the drop %v", during), func(t *testing.T) {
			e := newEnv(t, 1<<20)
			e.write("a", 2*ps)
			ref := e.ref("a")
			if _, err := e.store.LoadFile(ctx, ref, pagestore.LoadOptions{}, nil); err != nil {
				t.Fatal(err)
			}
			// A restart forgets what was remembered: the next call reads
			// the index.
			if err := e.store.Close(); err != nil {
				t.Fatal(err)
			}
			e.open(1 << 20)
			var raced atomic.Bool
			race := func() {
				if raced.Swap(true) {
					return
				}
				if during {
					got, err := e.store.CachedComplete([]pagestore.FileRef{ref})
					if err != nil || !got[0] {
						t.Errorf("CachedComplete = %v, %v before the drop was applied", got, err)
					}
				} else if _, err := e.store.Drop(ref.URI); err != nil {
					t.Error(err)
				}
			}
			if during {
				pagestore.DuringChange(e.store, race)
				if _, err := e.store.Drop(ref.URI); err != nil {
					t.Fatal(err)
				}
			} else {
				pagestore.AfterIndexWalk(e.store, race)
				if got, err := e.store.CachedComplete([]pagestore.FileRef{ref}); err != nil || !got[0] {
					t.Fatalf("CachedComplete = %v, %v before the drop", got, err)
				}
			}
			if !raced.Load() {
				t.Fatal("the race did not run")
			}
			e.checkComplete([]pagestore.FileRef{ref}, "a drop that raced CachedComplete")
			if n := pagestore.CompleteLen(e.store); n != 0 {
				t.Fatalf("%d files remembered complete after the drop", n)
			}
		})
	}
}

// After any sequence of loads, reads, new versions, drops, evictions (by
// prefix and by capacity), damaged pages and restarts, CachedComplete
// answers what Lookup answers, for every version every file had and at a
// wrong size too; also when it can remember fewer files than there are.
func TestCachedCompleteAgreesWithLookupAfterRandomChanges(t *testing.T) {
	for _, limit := range []int{0, 3} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			const capacity = 10 * ps
			e := newEnvWith(t, capacity, limit)
			ctx := context.Background()
			r := rand.New(rand.NewPCG(uint64(limit), 17))
			names := make([]string, 12)
			size := map[string]int{}
			prev := map[string]pagestore.FileRef{}
			var refs []pagestore.FileRef
			write := func(name string) {
				n := r.IntN(3*ps + 1)
				if n == size[name] {
					n++ // another size: another version
				}
				e.write(name, n)
				size[name] = n
				ref := e.ref(name)
				wrong := ref
				wrong.Size++
				// The current version, the one before and a wrong size.
				refs = append(slices.DeleteFunc(refs, func(r pagestore.FileRef) bool {
					return r.URI == ref.URI && r != prev[name]
				}), ref, wrong)
				prev[name] = ref
			}
			for i := range names {
				names[i] = fmt.Sprintf("d%d/f%d", i%3, i)
				write(names[i])
			}
			remembered := 0
			var evicted, corrupt int64
			const ops = 200
			for op := range ops {
				name := names[r.IntN(len(names))]
				uri := e.ref(name).URI
				var what string
				switch k := r.IntN(12); {
				case k < 4:
					what = "load " + name
					if _, err := e.store.LoadFile(ctx, e.ref(name), pagestore.LoadOptions{}, nil); err != nil && !errors.Is(err, pagestore.ErrEvicted) {
						t.Fatal(err)
					}
				case k == 4:
					what = "new version of " + name
					write(name)
				case k == 5:
					what = "resolve " + name
					if _, err := e.store.Resolve(ctx, uri); err != nil {
						t.Fatal(err)
					}
				case k == 6:
					what = "read " + name
					e.read(uri, 0, -1)
				case k == 7:
					what = "drop " + name
					if _, err := e.store.Drop(uri); err != nil {
						t.Fatal(err)
					}
				case k == 8:
					what = "evict d1/"
					if _, err := e.store.Evict(ctx, "file://"+e.src+"/d1/"); err != nil {
						t.Fatal(err)
					}
				case k == 9:
					what = "damaged pages of " + name
					e.damageAndLose(name)
					e.checkComplete(refs, what)
					write(name)
				case k == 10:
					what = "restart"
					st := e.store.Stats() // counted since Open
					evicted += st.PagesEvicted
					corrupt += st.PagesCorrupt
					if err := e.store.Close(); err != nil {
						t.Fatal(err)
					}
					e.open(capacity)
				default:
					what = "nothing"
				}
				r.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
				e.checkComplete(refs, fmt.Sprintf("op %d (%s)", op, what))
				if pagestore.CompleteLen(e.store) > 0 {
					remembered++
				}
			}
			if remembered < ops/3 {
				t.Fatalf("files were remembered complete after only %d of %d changes", remembered, ops)
			}
			st := e.store.Stats()
			if evicted+st.PagesEvicted == 0 || corrupt+st.PagesCorrupt == 0 {
				t.Fatalf("pages evicted %d, found damaged %d: the test misses a case", evicted+st.PagesEvicted, corrupt+st.PagesCorrupt)
			}
		})
	}
}

// CachedComplete calls running during loads, new versions, drops and
// evictions leave nothing stale behind (run with -race).
func TestCachedCompleteDuringEvictions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 8*ps)
	r := rand.New(rand.NewPCG(3, 4))
	names := make([]string, 10)
	var refs []pagestore.FileRef
	for i := range names {
		names[i] = fmt.Sprintf("d%d/f%d", i%2, i)
		e.write(names[i], 1+r.IntN(2*ps))
		refs = append(refs, e.ref(names[i]))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := e.store.CachedComplete(refs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var all []pagestore.FileRef
	all = append(all, refs...)
	for range 400 {
		name := names[r.IntN(len(names))]
		uri := e.ref(name).URI
		switch r.IntN(6) {
		case 0, 1, 2:
			if _, err := e.store.LoadFile(ctx, e.ref(name), pagestore.LoadOptions{}, nil); err != nil && !errors.Is(err, pagestore.ErrEvicted) {
				t.Error(err)
			}
		case 3:
			e.write(name, 1+r.IntN(2*ps))
			all = append(all, e.ref(name))
			if _, err := e.store.Resolve(ctx, uri); err != nil {
				t.Error(err)
			}
		case 4:
			if _, err := e.store.Drop(uri); err != nil {
				t.Error(err)
			}
		case 5:
			if _, err := e.store.Evict(ctx, "file://"+e.src+"/d1/"); err != nil {
				t.Error(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	e.checkComplete(all, "concurrent changes")
}

// A restart forgets which files are complete; the first CachedComplete
// finds them in the index and remembers them.
func TestCachedCompleteRemembersAfterRestart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1<<20)
	var refs []pagestore.FileRef
	for i, size := range []int{0, ps / 3, 3 * ps} {
		name := fmt.Sprintf("f%d", i)
		e.write(name, size)
		refs = append(refs, e.ref(name))
		if _, err := e.store.LoadFile(ctx, refs[i], pagestore.LoadOptions{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := pagestore.CompleteLen(e.store); n != len(refs) {
		t.Fatalf("%d of %d loaded files remembered complete", n, len(refs))
	}
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(1 << 20)
	if n := pagestore.CompleteLen(e.store); n != 0 {
		t.Fatalf("%d files remembered complete right after a restart", n)
	}
	e.checkComplete(refs, "a restart")
	if n := pagestore.CompleteLen(e.store); n != len(refs) {
		t.Fatalf("%d of %d complete files remembered after CachedComplete found them", n, len(refs))
	}
}
