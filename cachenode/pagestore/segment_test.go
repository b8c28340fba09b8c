package pagestore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryio/ferry/cachenode/pagestore"
)

// segmentFiles lists the store's segment files.
func (e *env) segmentFiles() []string {
	e.t.Helper()
	m, err := filepath.Glob(filepath.Join(e.cache, "segments", "*.seg"))
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func TestSmallFilesShareSegments(t *testing.T) {
	e := newEnv(t, 1<<20)
	ctx := context.Background()
	files := map[string][]byte{}
	for i, size := range []int{1, 100, ps - 1, ps, 3000, 17} {
		uri, data := e.write(fmt.Sprintf("d/s%d", i), size)
		files[uri] = data
		res, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil)
		if err != nil || res.Outcome != pagestore.Loaded || res.BytesLoaded != int64(size) {
			t.Fatalf("load %d bytes: %+v %v", size, res, err)
		}
	}
	// No file-system object per cached file: one segment, no page files.
	if segs := e.segmentFiles(); len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.cache, "pages")); len(ents) != 0 {
		t.Fatalf("%d entries under pages/ for small files", len(ents))
	}
	check := func(when string) {
		t.Helper()
		opens := e.source.Opens()
		for uri, data := range files {
			if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
				t.Fatalf("%s: %s read back other bytes", when, uri)
			}
		}
		if e.source.Opens() != opens {
			t.Fatalf("%s: reads reached the source", when)
		}
	}
	check("after load")
	// A restart keeps them.
	used := e.store.Stats().UsedBytes
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(1 << 20)
	if got := e.store.Stats().UsedBytes; got != used {
		t.Fatalf("used %d after restart, %d before", got, used)
	}
	check("after restart")

	// Damage every page in the segment: each is dropped and fetched again,
	// never served.
	seg := e.segmentFiles()[0]
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(b); off += 4096 {
		b[off] ^= 0xff
	}
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	opens := e.source.Opens()
	for uri, data := range files {
		if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("%s: served a damaged page", uri)
		}
	}
	if st := e.store.Stats(); st.PagesCorrupt != int64(len(files)) || e.source.Opens() != opens+int64(len(files)) {
		t.Fatalf("corrupt %d, refetched %d; want %d each", st.PagesCorrupt, e.source.Opens()-opens, len(files))
	}
	check("after refetch")
}

func TestSmallFileNewVersion(t *testing.T) {
	e := newEnv(t, 1<<20)
	uri, old := e.write("f", 1000)
	if got := e.read(uri, 0, -1); !bytes.Equal(got, old) {
		t.Fatal("first read")
	}
	uri, data := e.write("f", 1500) // another size: another version
	if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("stale bytes served after the source changed")
	}
	if st := e.store.Stats(); st.UsedBytes != 1500 || st.Pages != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSegmentSpaceIsReclaimed(t *testing.T) {
	const capacity = 16 * ps
	e := newEnv(t, capacity)
	pagestore.SetSegmentSize(e.store, 4*ps)
	ctx := context.Background()
	files := map[string][]byte{}
	for i := range 64 {
		uri, data := e.write(fmt.Sprintf("f%02d", i), ps-i)
		files[uri] = data
		if _, err := e.store.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil); err != nil {
			t.Fatal(err)
		}
		if used := e.store.Stats().UsedBytes; used > capacity {
			t.Fatalf("used %d over capacity %d", used, capacity)
		}
	}
	// Evicted pages took their segments with them: what is left is about
	// the capacity's worth, plus the segment being appended to.
	if n := len(e.segmentFiles()); n > capacity/(4*ps)+2 {
		t.Fatalf("%d segments for %d bytes of capacity", n, capacity)
	}
	for uri, data := range files {
		if got := e.read(uri, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("%s: wrong bytes", uri)
		}
	}
	if _, err := e.store.Evict(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if st := e.store.Stats(); st.UsedBytes != 0 || st.Pages != 0 {
		t.Fatalf("after evicting everything: %+v", st)
	}
	if n := len(e.segmentFiles()); n > 1 {
		t.Fatalf("%d segments left after evicting everything, want at most the active one", n)
	}
	// A restart removes a segment nothing names.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(capacity)
	if n := len(e.segmentFiles()); n != 0 {
		t.Fatalf("%d segments left after a restart with nothing cached", n)
	}
}
