// Package storagetest is the conformance suite every storage backend runs:
// its test file builds a Harness and calls Run. The suite checks the contract
// written in package storage — listing order and cursor resumption over
// thousands of entries, empty and large files, range reads at the edges,
// atomic writes (nothing under the final name before Commit, after Abort, or
// when the writer is abandoned mid-write), overwrite rules, and error kinds.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
)

// Harness is what the suite needs from a backend.
type Harness struct {
	// Store under test.
	Store storage.Store
	// NewDir returns the URI of a new, empty directory for one subtest
	// (without a trailing slash). The suite writes only below it.
	NewDir func(t *testing.T) string
	// ManyEntries is how many files the listing test creates. Default 2,500.
	ManyEntries int
	// LargeFileSize is the size of the large-file test. Default 64 MiB.
	LargeFileSize int64
	// ForeignURI is a URI of the right scheme that the store must refuse
	// (outside its root, or a missing bucket), with the error kind expected.
	// Empty skips that check.
	ForeignURI  string
	ForeignKind error
}

// Run runs every conformance test against h.
func Run(t *testing.T, h Harness) {
	if h.ManyEntries == 0 {
		h.ManyEntries = 2500
	}
	if h.LargeFileSize == 0 {
		h.LargeFileSize = 64 << 20
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"LargeFile", testLargeFile},
		{"RangeReads", testRangeReads},
		{"ListRecursiveOrderAndCursor", testListRecursive},
		{"ListFlat", testListFlat},
		{"ListMissingOrFile", testListMissingOrFile},
		{"AtomicWrite", testAtomicWrite},
		{"Overwrite", testOverwrite},
		{"Errors", testErrors},
		{"DeleteAndStat", testDeleteAndStat},
		{"VersionChanges", testVersionChanges},
		{"ServerSideCopy", testCopy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// Content returns n bytes of deterministic, incompressible-looking data for
// seed.
func Content(seed, n int64) []byte {
	b := make([]byte, n)
	fill(b, uint64(seed)*0x9E3779B97F4A7C15+1, 0)
	return b
}

// fill writes the pattern of seed into b as if b started at offset off.
func fill(b []byte, seed uint64, off int64) {
	for i := range b {
		x := seed ^ uint64(off+int64(i))/8*0xBF58476D1CE4E5B9
		x ^= x >> 31
		b[i] = byte(x >> (8 * (uint64(off+int64(i)) % 8)))
	}
}

// Put writes data to uri and commits it.
func Put(t testing.TB, s storage.Store, uri string, data []byte) storage.Entry {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx, uri, storage.CreateOptions{Overwrite: true, Size: int64(len(data))})
	if err != nil {
		t.Fatalf("create %s: %v", uri, err)
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Abort(ctx)
		t.Fatalf("write %s: %v", uri, err)
	}
	e, err := w.Commit(ctx)
	if err != nil {
		t.Fatalf("commit %s: %v", uri, err)
	}
	return e
}

// Get reads length bytes of uri from offset.
func Get(t testing.TB, s storage.Store, uri string, offset, length int64) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), uri, offset, length)
	if err != nil {
		t.Fatalf("open %s [%d,+%d]: %v", uri, offset, length, err)
	}
	defer func() { _ = r.Close() }()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	return b
}

// ListAll lists dir completely with the given page size.
func ListAll(t testing.TB, s storage.Store, dir string, recursive bool, limit int) []storage.Entry {
	t.Helper()
	var out []storage.Entry
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			t.Fatalf("listing %s does not end", dir)
		}
		p, err := s.List(context.Background(), dir, storage.ListOptions{Recursive: recursive, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("list %s after %q: %v", dir, cursor, err)
		}
		if len(p.Entries) > limit {
			t.Fatalf("page of %d entries exceeds limit %d", len(p.Entries), limit)
		}
		out = append(out, p.Entries...)
		if p.Cursor == "" {
			return out
		}
		if p.Cursor == cursor && len(p.Entries) == 0 {
			t.Fatalf("listing %s makes no progress at cursor %q", dir, cursor)
		}
		cursor = p.Cursor
	}
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %v", what, kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, storage.Kind(err), kind)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	dir := h.NewDir(t)
	for i, n := range []int64{0, 1, 4096, 1<<20 + 1} {
		uri := fmt.Sprintf("%s/file-%d", dir, n)
		data := Content(int64(i), n)
		e := Put(t, h.Store, uri, data)
		if e.Size != n {
			t.Errorf("commit entry size %d, want %d", e.Size, n)
		}
		if got := Get(t, h.Store, uri, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("%s: read %d bytes differ from the %d written", uri, len(got), n)
		}
		st, err := h.Store.Stat(context.Background(), uri)
		if err != nil {
			t.Fatalf("stat %s: %v", uri, err)
		}
		if st.Size != n || st.IsDir || st.Version == "" {
			t.Errorf("stat %s = %+v, want size %d, a file, a version", uri, st, n)
		}
	}
}

func testLargeFile(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("large file in -short mode")
	}
	dir := h.NewDir(t)
	uri := dir + "/large.bin"
	ctx := context.Background()
	w, err := h.Store.Create(ctx, uri, storage.CreateOptions{Size: h.LargeFileSize})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < h.LargeFileSize; off += int64(len(chunk)) {
		n := min(int64(len(chunk)), h.LargeFileSize-off)
		fill(chunk[:n], 42, off)
		sum.Write(chunk[:n])
		if _, err := w.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := h.Store.Open(ctx, uri, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, r)
	_ = r.Close()
	if err != nil || n != h.LargeFileSize || !bytes.Equal(got.Sum(nil), sum.Sum(nil)) {
		t.Fatalf("read back %d bytes (err %v), want %d identical bytes", n, err, h.LargeFileSize)
	}
	// The last byte and a range across a 1 MiB boundary.
	last := make([]byte, 1)
	fill(last, 42, h.LargeFileSize-1)
	if b := Get(t, h.Store, uri, h.LargeFileSize-1, 10); !bytes.Equal(b, last) {
		t.Fatalf("last byte %v, want %v", b, last)
	}
	mid := make([]byte, 100)
	fill(mid, 42, 1<<20-50)
	if b := Get(t, h.Store, uri, 1<<20-50, 100); !bytes.Equal(b, mid) {
		t.Fatalf("range across 1 MiB boundary differs")
	}
}

func testRangeReads(t *testing.T, h Harness) {
	dir := h.NewDir(t)
	uri := dir + "/r.bin"
	const size = 10_000
	data := Content(7, size)
	Put(t, h.Store, uri, data)
	cases := []struct{ off, length, wantFrom, wantTo int64 }{
		{0, 0, 0, 0},
		{0, 1, 0, 1},
		{0, -1, 0, size},
		{size - 1, 1, size - 1, size},
		{size - 1, -1, size - 1, size},
		{5000, 100_000, 5000, size},
		{size, -1, size, size},
		{size, 5, size, size},
		{123, 4567, 123, 123 + 4567},
	}
	for _, c := range cases {
		got := Get(t, h.Store, uri, c.off, c.length)
		if !bytes.Equal(got, data[c.wantFrom:c.wantTo]) {
			t.Errorf("range [%d,+%d]: got %d bytes, want bytes %d..%d", c.off, c.length, len(got), c.wantFrom, c.wantTo)
		}
	}
	_, err := h.Store.Open(context.Background(), uri, size+1, 1)
	wantKind(t, "open past the end", err, storage.ErrOutOfRange)
	_, err = h.Store.Open(context.Background(), uri, -1, 1)
	wantKind(t, "open at a negative offset", err, storage.ErrOutOfRange)
}

// trickyNames are relative paths whose byte order differs from a naive
// directory walk and whose characters are mangled by careless encoders.
var trickyNames = []string{
	"a/b", "a-c", "a b", "a+b", "a%20b", "a/c/d", "a0", "ü/x", "日本/語", "z", "with space/and+plus%25",
}

func testListRecursive(t *testing.T, h Harness) {
	dir := h.NewDir(t)
	want := map[string]int64{}
	for i, name := range trickyNames {
		Put(t, h.Store, storage.Join(dir, name), Content(int64(i), int64(i)))
		want[name] = int64(i)
	}
	for i := 0; i < h.ManyEntries; i++ {
		name := fmt.Sprintf("d%02d/e%03d/f%05d", i%17, i%101, i)
		if i%10 == 0 {
			name = fmt.Sprintf("flat%05d", i)
		}
		Put(t, h.Store, storage.Join(dir, name), nil)
		want[name] = 0
	}
	var wantOrder []string
	for k := range want {
		wantOrder = append(wantOrder, k)
	}
	sort.Strings(wantOrder)

	for _, limit := range []int{1000, 7, 1} {
		if limit == 1 && len(wantOrder) > 500 {
			// page size 1 over the first part only: resuming after every entry
			checkPrefixPages(t, h, dir, wantOrder[:300])
			continue
		}
		got := ListAll(t, h.Store, dir, true, limit)
		if len(got) != len(wantOrder) {
			t.Fatalf("limit %d: listed %d entries, want %d", limit, len(got), len(wantOrder))
		}
		for i, e := range got {
			if e.RelPath != wantOrder[i] {
				t.Fatalf("limit %d: entry %d is %q, want %q (byte order of keys)", limit, i, e.RelPath, wantOrder[i])
			}
			if e.IsDir || e.Size != want[e.RelPath] {
				t.Fatalf("entry %q: dir %v size %d, want a file of %d bytes", e.RelPath, e.IsDir, e.Size, want[e.RelPath])
			}
			if e.URI != storage.Join(dir, e.RelPath) {
				t.Fatalf("entry %q has URI %q, want %q", e.RelPath, e.URI, storage.Join(dir, e.RelPath))
			}
		}
	}
}

// checkPrefixPages reads pages of one entry, each from a fresh List call with
// the previous cursor, as a restarted process would.
func checkPrefixPages(t *testing.T, h Harness, dir string, want []string) {
	cursor := ""
	for i, w := range want {
		p, err := h.Store.List(context.Background(), dir, storage.ListOptions{Recursive: true, Cursor: cursor, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) != 1 || p.Entries[0].RelPath != w {
			t.Fatalf("page %d after cursor %q: %+v, want %q", i, cursor, p.Entries, w)
		}
		if p.Cursor == "" {
			t.Fatalf("page %d: cursor ended early", i)
		}
		cursor = p.Cursor
	}
}

func testListFlat(t *testing.T, h Harness) {
	dir := h.NewDir(t)
	for _, name := range []string{"b", "a/x", "a/y/z", "a-1", "c/d"} {
		Put(t, h.Store, storage.Join(dir, name), []byte(name))
	}
	got := ListAll(t, h.Store, dir, false, 2)
	var names []string
	for _, e := range got {
		kind := "f"
		if e.IsDir {
			kind = "d"
		}
		names = append(names, kind+":"+e.RelPath)
	}
	want := []string{"f:a-1", "d:a", "f:b", "d:c"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("flat listing %v, want %v", names, want)
	}
}

func testListMissingOrFile(t *testing.T, h Harness) {
	dir := h.NewDir(t)
	_, err := h.Store.List(context.Background(), dir+"/missing", storage.ListOptions{Recursive: true})
	wantKind(t, "list a missing directory", err, storage.ErrNotFound)
	Put(t, h.Store, dir+"/file", []byte("x"))
	_, err = h.Store.List(context.Background(), dir+"/file", storage.ListOptions{Recursive: true})
	wantKind(t, "list a file", err, storage.ErrInvalidPath)
}

func testAtomicWrite(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := h.NewDir(t)
	Put(t, h.Store, dir+"/keep", []byte("keep"))
	uri := dir + "/atomic.bin"
	data := Content(3, 3<<20)

	notVisible := func(when string) {
		t.Helper()
		_, err := h.Store.Stat(ctx, uri)
		wantKind(t, "stat "+when, err, storage.ErrNotFound)
		for _, e := range ListAll(t, h.Store, dir, true, 100) {
			if e.RelPath != "keep" {
				t.Fatalf("%s: listing shows %q", when, e.RelPath)
			}
		}
	}

	// Abandoned mid-write: what a crash leaves behind.
	w, err := h.Store.Create(ctx, uri, storage.CreateOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	notVisible("half written")

	// Aborted.
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	notVisible("after abort")

	// Committed after a previous abandoned attempt: the full bytes, once.
	abandoned, err := h.Store.Create(ctx, uri, storage.CreateOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = abandoned.Write(data[:100])
	Put(t, h.Store, uri, data)
	if got := Get(t, h.Store, uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("committed file has %d bytes, want %d identical", len(got), len(data))
	}
	_ = abandoned.Abort(ctx)
	if got := Get(t, h.Store, uri, 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("aborting a stale writer changed the committed file")
	}
	entries := ListAll(t, h.Store, dir, true, 100)
	if len(entries) != 2 {
		t.Fatalf("listing after commit: %d entries, want 2 (no partial leftovers)", len(entries))
	}
}

func testOverwrite(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := h.NewDir(t)
	uri := dir + "/o"
	Put(t, h.Store, uri, []byte("first"))

	w, err := h.Store.Create(ctx, uri, storage.CreateOptions{Size: 6})
	if err == nil {
		_, _ = w.Write([]byte("second"))
		_, err = w.Commit(ctx)
	}
	wantKind(t, "create over an existing file without overwrite", err, storage.ErrExists)
	if got := Get(t, h.Store, uri, 0, -1); string(got) != "first" {
		t.Fatalf("refused write changed the file to %q", got)
	}

	Put(t, h.Store, uri, []byte("second"))
	if got := Get(t, h.Store, uri, 0, -1); string(got) != "second" {
		t.Fatalf("overwrite left %q", got)
	}
}

func testErrors(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := h.NewDir(t)
	missing := dir + "/no/such/file"
	_, err := h.Store.Stat(ctx, missing)
	wantKind(t, "stat missing", err, storage.ErrNotFound)
	_, err = h.Store.Open(ctx, missing, 0, -1)
	wantKind(t, "open missing", err, storage.ErrNotFound)
	err = h.Store.Delete(ctx, missing)
	wantKind(t, "delete missing", err, storage.ErrNotFound)

	for _, bad := range []string{"no-scheme/x", dir + "/../escape", "other://x/y"} {
		_, err = h.Store.Stat(ctx, bad)
		wantKind(t, "stat "+bad, err, storage.ErrInvalidPath)
	}
	Put(t, h.Store, dir+"/sub/f", []byte("x"))
	_, err = h.Store.Open(ctx, dir+"/sub", 0, -1)
	if err == nil {
		t.Fatalf("open of a directory succeeded")
	}
	if h.ForeignURI != "" {
		_, err = h.Store.Stat(ctx, h.ForeignURI)
		wantKind(t, "stat "+h.ForeignURI, err, h.ForeignKind)
		_, err = h.Store.Create(ctx, h.ForeignURI+"/new", storage.CreateOptions{})
		wantKind(t, "create below "+h.ForeignURI, err, h.ForeignKind)
	}
}

func testDeleteAndStat(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := h.NewDir(t)
	Put(t, h.Store, dir+"/d/f", []byte("abc"))
	st, err := h.Store.Stat(ctx, dir+"/d")
	if err != nil || !st.IsDir {
		t.Fatalf("stat of a directory = %+v, %v; want a directory", st, err)
	}
	if err := h.Store.Delete(ctx, dir+"/d/f"); err != nil {
		t.Fatal(err)
	}
	_, err = h.Store.Stat(ctx, dir+"/d/f")
	wantKind(t, "stat deleted", err, storage.ErrNotFound)
	if err := h.Store.MakeDir(ctx, dir+"/made/deep"); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.MakeDir(ctx, dir+"/made/deep"); err != nil {
		t.Fatalf("mkdir of an existing directory: %v", err)
	}
}

func testVersionChanges(t *testing.T, h Harness) {
	ctx := context.Background()
	dir := h.NewDir(t)
	uri := dir + "/v"
	Put(t, h.Store, uri, []byte("one"))
	a, err := h.Store.Stat(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	Put(t, h.Store, uri, []byte("other content"))
	b, err := h.Store.Stat(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version == b.Version {
		t.Fatalf("version %q did not change when the content did", a.Version)
	}
}

func testCopy(t *testing.T, h Harness) {
	c, ok := h.Store.(storage.Copier)
	if !ok {
		t.Skip("backend has no server-side copy")
	}
	ctx := context.Background()
	dir := h.NewDir(t)
	data := Content(9, 100_000)
	Put(t, h.Store, dir+"/src", data)
	if _, err := c.Copy(ctx, dir+"/src", dir+"/dst", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := Get(t, h.Store, dir+"/dst", 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("copied file differs")
	}
	_, err := c.Copy(ctx, dir+"/src", dir+"/dst", storage.CreateOptions{})
	wantKind(t, "copy over an existing file", err, storage.ErrExists)
}

// ObjectKeysKeepSlashes checks, for object stores, that a key holding "//"
// is listed as itself when its directory is listed: "a//x.txt" and
// "a/x.txt" under dir are two objects, and listing dir/a must name both,
// each reading its own bytes (a URI built by cleaning the name would read
// the other object's bytes in place of this one's).
func ObjectKeysKeepSlashes(t *testing.T, s storage.Store, dir string) {
	t.Helper()
	ctx := context.Background()
	want := map[string]string{
		storage.JoinKey(dir, "a//x.txt"): "double slash",
		storage.JoinKey(dir, "a/x.txt"):  "single slash",
	}
	for uri, body := range want {
		Put(t, s, uri, []byte(body))
	}
	for _, from := range []string{dir, storage.JoinKey(dir, "a")} {
		got := map[string]string{}
		for _, e := range ListAll(t, s, from, true, 10) {
			if e.IsDir {
				continue
			}
			r, err := s.Open(ctx, e.URI, 0, -1)
			if err != nil {
				t.Fatalf("list %s: open %s: %v", from, e.URI, err)
			}
			b, err := io.ReadAll(r)
			_ = r.Close()
			if err != nil {
				t.Fatalf("read %s: %v", e.URI, err)
			}
			got[e.URI] = string(b)
		}
		if len(got) != len(want) {
			t.Fatalf("list %s: got %v, want %v", from, got, want)
		}
		for uri, body := range want {
			if got[uri] != body {
				t.Fatalf("list %s: %s reads %q, want %q (all: %v)", from, uri, got[uri], body, got)
			}
		}
	}
}
