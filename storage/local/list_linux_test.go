package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/asnobody"
	"github.com/ferryio/ferry/storage"
)

// The listing is checked against a reference built from os.ReadDir,
// os.Lstat and os.Stat, written independently of the walker: the entries,
// their order and every field, for several page sizes, from cursors that
// are keys and cursors that are not, and after entries were removed in the
// middle of a listing.

// randomTree makes a tree of random names under root/tree (names of any
// bytes but "/" and NUL, some not UTF-8, some long, some with newlines or
// backslashes; files of random modes, sizes and modification times to the
// nanosecond; nested and empty directories; partial files; symbolic links
// inside and outside the root, dangling, to directories; a named pipe) and
// returns the directory to list. Link targets live in root/targets, which
// is not listed, so that removing listed entries never changes a link.
func randomTree(t *testing.T, rng *rand.Rand, root, outside string) string {
	t.Helper()
	tree := filepath.Join(root, "tree")
	targets := filepath.Join(root, "targets")
	for _, d := range []string{tree, targets, filepath.Join(targets, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, rng, filepath.Join(targets, "file"))
	writeFile(t, rng, filepath.Join(outside, "secret"))
	dirs := []string{tree}
	// Names around "/" in byte order: "a-b" < "a.b" < "a/…" < "a0".
	for _, name := range []string{"a-b", "a.b", "a0"} {
		writeFile(t, rng, filepath.Join(tree, name))
	}
	if err := os.Mkdir(filepath.Join(tree, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, rng, filepath.Join(tree, "a", "c"))
	for i := 0; i < 300; i++ {
		dir := dirs[rng.IntN(len(dirs))]
		p := filepath.Join(dir, randomName(rng))
		if _, err := os.Lstat(p); err == nil || len(p) > 3000 {
			continue // taken, or too long a path (4096 bytes at most)
		}
		switch k := rng.IntN(100); {
		case k < 60:
			writeFile(t, rng, p)
		case k < 75:
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, p)
		case k < 80 && len(filepath.Base(p)) < 200:
			writeFile(t, rng, filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+PartialMarker))
		default:
			target := []string{
				filepath.Join(targets, "file"),
				filepath.Join(targets, "dir"),
				filepath.Join(targets, "missing"),
				filepath.Join(outside, "secret"),
				outside,
			}[rng.IntN(5)]
			if rng.IntN(2) == 0 {
				rel, err := filepath.Rel(dir, target)
				if err != nil {
					t.Fatal(err)
				}
				target = rel
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A chain of directories deeper than a walker keeps open, each with a
	// file after its subdirectory; a link to a link to a file inside the
	// root, a named pipe, a very long name, and a directory that only
	// holds a partial file.
	deep := filepath.Join(tree, "deep")
	for i := 0; i < 2*maxOpenDirs; i++ {
		if err := os.Mkdir(deep, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, rng, filepath.Join(deep, "z"))
		deep = filepath.Join(deep, "d")
	}
	if err := os.Symlink(filepath.Join(tree, "a0"), filepath.Join(tree, "link-to-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("link-to-link", filepath.Join(tree, "link-to-link-to-link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(tree, "pipe"), 0o640); err != nil {
		t.Fatal(err)
	}
	writeFile(t, rng, filepath.Join(tree, strings.Repeat("\xfe", 255)))
	if err := os.Mkdir(filepath.Join(tree, "only-partial"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, rng, filepath.Join(tree, "only-partial", ".x"+PartialMarker))
	return tree
}

// newRandomTree makes a random tree in a new store's root and returns the
// store and the directory to list.
func newRandomTree(t *testing.T, rng *rand.Rand) (*Store, string) {
	t.Helper()
	s, err := New(Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s, randomTree(t, rng, s.Root(), t.TempDir())
}

func randomName(rng *rand.Rand) string {
	n := 1 + rng.IntN(12)
	if rng.IntN(20) == 0 {
		n = 100 + rng.IntN(156)
	}
	b := make([]byte, 0, n)
	for len(b) < n {
		var c byte
		switch rng.IntN(4) {
		case 0:
			c = byte(rng.IntN(256)) // any byte: not UTF-8, control
		case 1:
			const special = "-./0\\\n \t~"
			c = special[rng.IntN(len(special))]
		default:
			c = byte('a' + rng.IntN(4))
		}
		if c != '/' && c != 0 {
			b = append(b, c)
		}
	}
	if s := string(b); s == "." || s == ".." {
		return "dot" + s
	}
	return string(b)
}

func writeFile(t *testing.T, rng *rand.Rand, p string) {
	t.Helper()
	if err := os.WriteFile(p, make([]byte, rng.IntN(3000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, fs.FileMode(rng.IntN(0o1000))); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1_500_000_000+rng.Int64N(300_000_000), rng.Int64N(1e9))
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// refList is what listing dir (at uri) must return.
func refList(t *testing.T, root, dir, uri string, recursive, emptyDirs bool) []storage.Entry {
	t.Helper()
	var out []storage.Entry
	var walk func(dir, prefix string)
	walk = func(dir, prefix string) {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		keyOf := func(de fs.DirEntry) string {
			if de.IsDir() {
				return de.Name() + "/"
			}
			return de.Name()
		}
		des = slices.DeleteFunc(des, func(de fs.DirEntry) bool { return strings.Contains(de.Name(), PartialMarker) })
		slices.SortFunc(des, func(a, b fs.DirEntry) int { return strings.Compare(keyOf(a), keyOf(b)) })
		for _, de := range des {
			p := filepath.Join(dir, de.Name())
			rel := prefix + de.Name()
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case fi.IsDir() && recursive:
				before := len(out)
				walk(p, rel+"/")
				if len(out) == before && emptyDirs && !hasListed(t, p) {
					out = append(out, storage.Entry{URI: uri + "/" + rel, RelPath: rel, IsDir: true})
				}
				continue
			case fi.Mode()&fs.ModeSymlink != 0:
				if reason := refLinkReason(root, p); reason != "" {
					out = append(out, storage.Entry{URI: uri + "/" + rel, RelPath: rel, Irregular: reason})
					continue
				}
			}
			target, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, refEntry(uri+"/"+rel, rel, target))
		}
	}
	walk(dir, "")
	return out
}

// hasListed reports whether dir holds anything but partial files.
func hasListed(t *testing.T, dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !strings.Contains(de.Name(), PartialMarker) {
			return true
		}
	}
	return false
}

func refLinkReason(root, p string) string {
	if _, err := os.Stat(p); err != nil {
		return "dangling symbolic link"
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "dangling symbolic link"
	}
	if real != root && !strings.HasPrefix(real, root+"/") {
		return "symbolic link outside the storage root"
	}
	if fi, _ := os.Stat(real); fi.IsDir() {
		return "symbolic link to a directory (not followed)"
	}
	return ""
}

func refEntry(uri, rel string, fi fs.FileInfo) storage.Entry {
	e := storage.Entry{URI: uri, RelPath: rel, IsDir: fi.IsDir(), ModTime: fi.ModTime()}
	switch m := fi.Mode(); {
	case m.IsDir():
	case m&fs.ModeNamedPipe != 0:
		e.Irregular = "named pipe"
	case m&fs.ModeSocket != 0:
		e.Irregular = "socket"
	case m.IsRegular():
		ctime := time.Unix(fi.Sys().(*syscall.Stat_t).Ctim.Unix())
		e.Mode, e.Size, e.Version = m.Perm(), fi.Size(), fmt.Sprintf("%d-%d-%d", fi.Size(), fi.ModTime().UnixNano(), ctime.UnixNano())
	default:
		e.Irregular = "unexpected in this test: " + m.String()
	}
	return e
}

// keyOf is the listing key of e: its relative path, "/" after a directory.
func keyOf(e storage.Entry) string {
	if e.IsDir {
		return e.RelPath + "/"
	}
	return e.RelPath
}

// listFrom lists uri from cursor to the end, limit entries a page.
func listFrom(t *testing.T, s *Store, uri, cursor string, recursive, emptyDirs bool, limit int) []storage.Entry {
	t.Helper()
	var out []storage.Entry
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			t.Fatalf("listing %q does not end", uri)
		}
		p, err := s.List(context.Background(), uri, storage.ListOptions{Recursive: recursive, EmptyDirs: emptyDirs, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("list %q after %q: %v", uri, cursor, err)
		}
		if len(p.Entries) > limit {
			t.Fatalf("page of %d entries, limit %d", len(p.Entries), limit)
		}
		out = append(out, p.Entries...)
		if p.Cursor == "" {
			return out
		}
		cursor = p.Cursor
	}
}

func diffEntries(t *testing.T, what string, got, want []storage.Entry) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			t.Fatalf("%s: %d entries, want %d; first missing %s", what, len(got), len(want), show(want[i]))
		case i >= len(want):
			t.Fatalf("%s: %d entries, want %d; first extra %s", what, len(got), len(want), show(got[i]))
		case got[i] != want[i]:
			t.Fatalf("%s: entry %d is\n%s, want\n%s", what, i, show(got[i]), show(want[i]))
		}
	}
}

func show(e storage.Entry) string {
	return fmt.Sprintf("{%q uri=%q dir=%v size=%d mtime=%v version=%q irregular=%q mode=%v}",
		e.RelPath, e.URI, e.IsDir, e.Size, e.ModTime, e.Version, e.Irregular, e.Mode)
}

func TestListMatchesReferenceWalk(t *testing.T) {
	for _, lstat := range []bool{false, true} {
		t.Run(fmt.Sprintf("lstat=%v", lstat), func(t *testing.T) {
			if lstat {
				// As on a file system whose directories give no d_type.
				forceLstat = true
				t.Cleanup(func() { forceLstat = false })
			}
			seed := uint64(time.Now().UnixNano())
			if v := os.Getenv("FERRY_TEST_SEED"); v != "" {
				seed, _ = strconv.ParseUint(v, 10, 64)
			}
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 17))
			s, tree := newRandomTree(t, rng)
			root, uri := s.Root(), "file://"+tree
			for _, mode := range []struct{ recursive, emptyDirs bool }{{false, false}, {true, false}, {true, true}} {
				want := refList(t, s.Root(), tree, uri, mode.recursive, mode.emptyDirs)
				if len(want) < 10 {
					t.Fatalf("the random tree lists only %d entries", len(want))
				}
				for _, limit := range []int{1, 2, 7, 1000} {
					what := fmt.Sprintf("recursive=%v emptyDirs=%v limit=%d", mode.recursive, mode.emptyDirs, limit)
					diffEntries(t, what, listFrom(t, s, uri, "", mode.recursive, mode.emptyDirs, limit), want)
				}
				// Resume from cursors with a store that has no walker to
				// continue, so that each one seeks: every key of a sample
				// of entries, and strings between keys.
				for i := 0; i < 40; i++ {
					fresh, err := New(Options{Root: root})
					if err != nil {
						t.Fatal(err)
					}
					k := keyOf(want[rng.IntN(len(want))])
					var cursor string
					switch i % 3 {
					case 0:
						cursor = k
					case 1:
						cursor = k[:rng.IntN(len(k)+1)]
					default:
						cursor = k + "\xff"
					}
					var rest []storage.Entry
					for _, e := range want {
						if keyOf(e) > cursor {
							rest = append(rest, e)
						}
					}
					what := fmt.Sprintf("recursive=%v emptyDirs=%v from %q", mode.recursive, mode.emptyDirs, cursor)
					diffEntries(t, what, listFrom(t, fresh, uri, cursor, mode.recursive, mode.emptyDirs, 1+rng.IntN(5)), rest)
				}
			}

			// Entries removed in the middle of a listing are skipped:
			// files, and whole directories, some of which the walker has
			// already read.
			for _, recursive := range []bool{false, true} {
				page, err := s.List(context.Background(), uri, storage.ListOptions{Recursive: recursive, Limit: 20})
				if err != nil {
					t.Fatal(err)
				}
				// Neither links, nor a0 (a link's target), nor directories
				// that hold links: a link is judged when its directory is
				// read.
				var victims, links []string
				_ = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.Type()&fs.ModeSymlink != 0 {
						links = append(links, p)
					} else if err == nil && p != tree && p != filepath.Join(tree, "a0") && rng.IntN(8) == 0 {
						victims = append(victims, p)
					}
					return err
				})
				victims = slices.DeleteFunc(victims, func(v string) bool {
					return slices.ContainsFunc(links, func(l string) bool { return strings.HasPrefix(l, v+"/") })
				})
				for _, v := range victims {
					if err := os.RemoveAll(v); err != nil {
						t.Fatal(err)
					}
				}
				var want []storage.Entry
				for _, e := range refList(t, s.Root(), tree, uri, recursive, false) {
					if keyOf(e) > page.Cursor {
						want = append(want, e)
					}
				}
				got := listFrom(t, s, uri, page.Cursor, recursive, false, 7)
				diffEntries(t, fmt.Sprintf("recursive=%v after removing %d entries", recursive, len(victims)), got, want)
			}
		})
	}
}

// TestListLargeDirectory lists a directory of more entries than one
// getdents buffer holds (many times over with long names);
// FERRY_TEST_HUGE_DIR=1 makes it 120,000 entries.
func TestListLargeDirectory(t *testing.T) {
	n, pad := 3000, 200
	if os.Getenv("FERRY_TEST_HUGE_DIR") != "" {
		n, pad = 120_000, 20
	}
	dir := t.TempDir()
	for i := range n {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%0*d", pad, i)))
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := listFrom(t, s, "file://"+dir, "", true, false, 1000)
	if len(got) != n {
		t.Fatalf("listed %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if want := fmt.Sprintf("%0*d", pad, i); e.RelPath != want || !strings.HasPrefix(e.Version, "0-"+fmt.Sprint(e.ModTime.UnixNano())+"-") {
			t.Fatalf("entry %d is %+v, want %s", i, e, want)
		}
	}
}

func TestCompareKeysIsKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "a-b", "a.b", "a0", "ab", "a\xff", "b", "", "/"}
	var dents []dent
	for i := 0; i < 400; i++ {
		name := randomName(rng)
		if i < len(names) && names[i] != "" && names[i] != "/" {
			name = names[i]
		}
		dents = append(dents, dent{name: name, isDir: rng.IntN(2) == 0})
	}
	for _, a := range dents {
		for _, b := range dents {
			if a.name == b.name && a.isDir != b.isDir {
				continue // one directory never holds both
			}
			if got, want := compareKeys(a, b), strings.Compare(a.key(), b.key()); got != want {
				t.Fatalf("compareKeys(%q dir=%v, %q dir=%v) = %d, want %d", a.name, a.isDir, b.name, b.isDir, got, want)
			}
		}
	}
}

// openFiles counts this process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	return len(des)
}

// TestListLeavesNoFileOpen: no directory stays open between pages, so that
// listings that end, fail, are abandoned mid-way or are pushed out of the
// cursor cache never leave a file open.
func TestListLeavesNoFileOpen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s, tree := newRandomTree(t, rng)
	uri := "file://" + tree
	ctx := context.Background()
	before := openFiles(t)
	check := func(what string) {
		t.Helper()
		if n := openFiles(t); n != before {
			t.Fatalf("%s: %d files open, %d before", what, n, before)
		}
	}
	for i := 0; i < 30; i++ {
		listFrom(t, s, uri, "", i%2 == 0, i%3 == 0, 1+i)
		check("after complete listings")
	}
	// Abandoned mid-way, more of them than the cursor cache holds.
	for i := 0; i < 40; i++ {
		p, err := s.List(ctx, uri, storage.ListOptions{Recursive: true, Limit: 1 + i})
		if err != nil || p.Cursor == "" {
			t.Fatalf("first page: %v, cursor %q", err, p.Cursor)
		}
		check("between pages")
		p, err = s.List(ctx, uri, storage.ListOptions{Recursive: true, Limit: 1 + i, Cursor: p.Cursor})
		if err != nil {
			t.Fatal(err)
		}
		check("between pages")
	}
	// A directory replaced by a file after its parent was read; and a
	// listing cancelled.
	dir := filepath.Join(tree, "zz-dir")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, rng, filepath.Join(dir, "sub", "f"))
	writeFile(t, rng, filepath.Join(dir, "f"))
	p, err := s.List(ctx, "file://"+dir, storage.ListOptions{Recursive: true, Limit: 1})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].RelPath != "f" {
		t.Fatalf("first page %+v, %v", p, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, rng, filepath.Join(dir, "sub"))
	// The directory is then one entry that failed.
	if p, err := s.List(ctx, "file://"+dir, storage.ListOptions{Recursive: true, Limit: 1, Cursor: p.Cursor}); err != nil || len(p.Entries) != 1 ||
		p.Entries[0].RelPath != "sub" || !errors.Is(p.Entries[0].Err, storage.ErrInvalidPath) {
		t.Fatalf("a directory turned into a file: %+v, %v, want one entry failed with ErrInvalidPath", p, err)
	}
	check("after a directory turned into a file")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.List(cancelled, uri, storage.ListOptions{Recursive: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled listing: %v", err)
	}
	check("after a cancelled listing")
}

// TestListPermissionErrors: a directory the process may not read, or not
// search, is one entry failed with ErrPermission and the same error text as
// os.ReadDir and os.Stat give (every file of a directory it may not
// search), and the rest of the tree is listed; the listed directory
// itself unreadable fails the listing. Root may read anything, so as root the test
// runs itself again as the user nobody.
func TestListPermissionErrors(t *testing.T) {
	if tree := os.Getenv("FERRY_TEST_PERMISSION_TREE"); tree != "" {
		checkPermissionErrors(t, tree)
		return
	}
	base := asnobody.Dir(t)
	tree := filepath.Join(base, "tree")
	for _, d := range []string{"a", "noread", "nosearch"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, d, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(tree, "noread"), 0o311); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(tree, "nosearch"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		checkPermissionErrors(t, tree)
		return
	}
	asnobody.Run(t, base, "TestListPermissionErrors", "FERRY_TEST_PERMISSION_TREE="+tree)
}

func checkPermissionErrors(t *testing.T, tree string) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	noread := "open " + tree + "/noread: permission denied"
	nosearch := "stat " + tree + "/nosearch/f: permission denied"
	for _, c := range []struct {
		dir       string
		recursive bool
		limit     int
		// want ends the listing's error; failed maps the entries that
		// come with an error to how it ends, ok lists the others.
		want   string
		failed map[string]string
		ok     []string
	}{
		{dir: "noread", limit: 10, want: noread},
		{dir: "nosearch", limit: 10, failed: map[string]string{"f": nosearch}},
		{dir: "nosearch", recursive: true, limit: 10, failed: map[string]string{"f": nosearch}},
		{dir: "", recursive: true, limit: 10, failed: map[string]string{"noread": noread, "nosearch/f": nosearch}, ok: []string{"a/f"}},
		// Mid-way, after pages were listed.
		{dir: "", recursive: true, limit: 1, failed: map[string]string{"noread": noread, "nosearch/f": nosearch}, ok: []string{"a/f"}},
		{dir: "", limit: 1, ok: []string{"a", "noread", "nosearch"}},
	} {
		uri := "file://" + filepath.Join(tree, c.dir)
		cursor := ""
		failed := map[string]string{}
		var ok []string
		for pages := 0; ; pages++ {
			p, err := s.List(ctx, uri, storage.ListOptions{Recursive: c.recursive, Limit: c.limit, Cursor: cursor})
			if err != nil {
				if c.want == "" || !errors.Is(err, storage.ErrPermission) || !strings.HasSuffix(err.Error(), c.want) {
					t.Errorf("listing %s (recursive %v) after %d pages: %v, want ErrPermission ending %q", uri, c.recursive, pages, err, c.want)
				}
				break
			}
			for _, e := range p.Entries {
				if e.Err == nil {
					ok = append(ok, e.RelPath)
					continue
				}
				if !errors.Is(e.Err, storage.ErrPermission) || e.URI != storage.Join(uri, e.RelPath) {
					t.Errorf("listing %s: entry %q (%s) fails with %v, want ErrPermission", uri, e.RelPath, e.URI, e.Err)
				}
				failed[e.RelPath] = e.Err.Error()
			}
			if cursor = p.Cursor; cursor == "" {
				if c.want != "" {
					t.Errorf("listing %s (recursive %v) ended without an error", uri, c.recursive)
				}
				break
			}
		}
		if c.want != "" {
			continue
		}
		if !slices.Equal(ok, c.ok) {
			t.Errorf("listing %s (recursive %v, limit %d): entries %q, want %q", uri, c.recursive, c.limit, ok, c.ok)
		}
		if len(failed) != len(c.failed) {
			t.Errorf("listing %s (recursive %v, limit %d): failed entries %q, want %q", uri, c.recursive, c.limit, failed, c.failed)
		}
		for rel, want := range c.failed {
			if !strings.HasSuffix(failed[rel], want) {
				t.Errorf("listing %s (recursive %v, limit %d): %q fails with %q, want it to end %q", uri, c.recursive, c.limit, rel, failed[rel], want)
			}
		}
	}
}

// TestFileModeIsOsStats: the mode, size and modification time made of a
// raw stat are those os.Stat and os.Lstat give, special bits included.
func TestFileModeIsOsStats(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	var paths []string
	for i, extra := range []fs.FileMode{0, fs.ModeSetuid, fs.ModeSetgid, fs.ModeSticky, fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky} {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		writeFile(t, rng, p)
		if err := os.Chmod(p, fs.FileMode(rng.IntN(0o1000))|extra); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o1750); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o604); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("f1", link); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, sub, fifo, link)
	for _, p := range paths {
		for _, follow := range []bool{true, false} {
			var st syscall.Stat_t
			var fi fs.FileInfo
			var err error
			if follow {
				fi, err = os.Stat(p)
				if err == nil {
					err = syscall.Stat(p, &st)
				}
			} else {
				fi, err = os.Lstat(p)
				if err == nil {
					err = syscall.Lstat(p, &st)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fileStat{mode: fileMode(st.Mode), size: st.Size, mtime: time.Unix(st.Mtim.Unix())}
			if want := (fileStat{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}); got != want {
				t.Errorf("%s (follow %v): %+v, os says %+v", p, follow, got, want)
			}
		}
	}
}
