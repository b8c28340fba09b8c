package activities

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/asnobody"
	"github.com/ferryio/ferry/internal/longpath"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
)

// unreadTree is a source with directories (or files) a listing cannot
// read.
type unreadTree struct {
	root string
	// files are the relative paths of the files that can be read; bad
	// maps those of the entries that cannot to their failure's message.
	files []string
	bad   map[string]string
}

func writeFiles(t *testing.T, root string, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const tooLong = "could not be listed: invalid path: file name too long"

// unreadTrees makes the shapes whose directories cannot be opened because
// their paths are longer than the OS takes (a real error, whoever runs the
// test): one directory deep down a tree; and, below a source root whose
// path is close to the limit, a top-level directory and one at the second
// level.
func unreadTrees(t *testing.T) map[string]unreadTree {
	deep := filepath.Join(t.TempDir(), "src")
	files := []string{"f0", "a/f1", "a/sub/f2", "z/f3"}
	writeFiles(t, deep, files...)
	nested := unreadTree{root: deep, files: files, bad: map[string]string{longpath.Make(t, deep, "deep"): tooLong}}

	top := longpath.Deep(t, t.TempDir(), longpath.PathMax-196)
	writeFiles(t, top, files...)
	writeFiles(t, top, "c/f4")
	near := unreadTree{root: top, files: append(slices.Clone(files), "c/f4"), bad: map[string]string{
		longpath.Make(t, top, strings.Repeat("b", 200)):                                         tooLong,
		filepath.Join("c", longpath.Make(t, filepath.Join(top, "c"), strings.Repeat("n", 200))): tooLong,
	}}
	return map[string]unreadTree{"nested deep": nested, "top level and second level": near}
}

// TestUnreadableDirectoryIsOneFailedEntry: a directory that cannot be
// listed, for a reason of its own that will not pass (here a path longer
// than the OS takes), is one entry of the listing, which every batch fails
// with the reason and the directory's URI, and the rest of the tree is
// listed: in one partition and in partitions by top-level directory, page
// after page, and counted the same by a dry run. (Before, the whole
// listing failed.)
func TestUnreadableDirectoryIsOneFailedEntry(t *testing.T) {
	for name, tree := range unreadTrees(t) {
		checkUnreadTree(t, name, tree)
	}
}

// checkUnreadTree lists tree in one partition and in the partitions of
// its top-level directories, with pages of one entry and of many, and
// checks that it lists every file and fails every bad entry, once.
func checkUnreadTree(t *testing.T, name string, tree unreadTree) {
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(st)
	ctx := context.Background()
	root := "file://" + tree.root
	parts, err := (&lister{resolver: res}).partition(ctx, workflows.PartitionInput{Path: root, Max: 4})
	if err != nil {
		t.Fatalf("%s: partition: %v", name, err)
	}
	wantBad := slices.Sorted(maps.Keys(tree.bad))
	for _, layout := range [][]workflows.Partition{{{Kind: workflows.PartitionTree}}, parts} {
		for _, limit := range []int{1, 1000} {
			var ok, bad []string
			counted := 0
			for _, part := range layout {
				for _, countOnly := range []bool{false, true} {
					in := workflows.ListPageInput{Type: workflows.JobCopy, Path: root, Partition: part, Limit: limit, CountOnly: countOnly}
					l := &lister{resolver: res, countOnly: countOnly}
					for {
						p, next, err := l.listPartition(ctx, in, nil)
						if err != nil {
							t.Fatalf("%s: partition %d (%s, dirs %d), limit %d: %v", name, part.ID, part.Kind, len(part.Dirs), limit, err)
						}
						if countOnly {
							counted += p.count
						}
						for _, e := range p.entries {
							rel := strings.TrimPrefix(e.URI, root+"/")
							if e.RelPath != rel {
								t.Errorf("%s: entry %s has the relative path %q", name, e.URI, e.RelPath)
							}
							err := unreadError(e)
							if err == nil {
								ok = append(ok, rel)
								continue
							}
							bad = append(bad, rel)
							if want := tree.bad[rel]; retryable(err) || err.Error() != want || reasonOf(err) == workflows.ErrTypeInternal {
								t.Errorf("%s: the entry of %s fails with %q (%s, retryable %v), want %q", name, rel, err, reasonOf(err), retryable(err), want)
							}
						}
						if next.Done {
							break
						}
						in.Partition = next
					}
				}
			}
			sort.Strings(ok)
			sort.Strings(bad)
			want := slices.Sorted(slices.Values(tree.files))
			if !slices.Equal(ok, want) || !slices.Equal(bad, wantBad) {
				t.Errorf("%s, %d partitions, limit %d: listed %q and failed %q, want %q and %q", name, len(layout), limit, ok, bad, want, wantBad)
			}
			if counted != len(ok)+len(bad) {
				t.Errorf("%s, %d partitions, limit %d: a dry run counted %d entries, the listing %d", name, len(layout), limit, counted, len(ok)+len(bad))
			}
		}
	}
}

// TestDeniedDirectoryIsOneFailedEntry is TestUnreadableDirectoryIsOneFailedEntry
// for permission denied: a directory the process may not read (at the top
// level, and deep down), and the files of one it may not search. Root may
// read anything, so as root the test runs itself again as the user nobody.
func TestDeniedDirectoryIsOneFailedEntry(t *testing.T) {
	denied := "could not be listed: permission denied"
	bad := map[string]string{"noread": denied, "x/y/noread": denied, "nosearch/f": denied}
	files := []string{"f0", "a/f1", "x/f2", "x/y/f3"}
	if tree := os.Getenv("FERRY_TEST_DENIED_TREE"); tree != "" {
		checkUnreadTree(t, "denied", unreadTree{root: tree, files: files, bad: bad})
		return
	}
	base := asnobody.Dir(t)
	tree := filepath.Join(base, "tree")
	writeFiles(t, tree, append(slices.Clone(files), "noread/f", "x/y/noread/f", "nosearch/f")...)
	for dir, mode := range map[string]os.FileMode{"noread": 0o311, "x/y/noread": 0, "nosearch": 0o644} {
		p := filepath.Join(tree, dir)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(p, 0o755) }) // for the removal of the tree
	}
	if os.Geteuid() != 0 {
		checkUnreadTree(t, "denied", unreadTree{root: tree, files: files, bad: bad})
		return
	}
	asnobody.Run(t, base, "TestDeniedDirectoryIsOneFailedEntry", "FERRY_TEST_DENIED_TREE="+tree)
}

// TestUnreadableSourceFailsTheJob: a source root that cannot be read at
// all fails the partitioning with one line naming the source and why.
func TestUnreadableSourceFailsTheJob(t *testing.T) {
	base := t.TempDir()
	rel := longpath.Make(t, base, "src")
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{Resolver: storage.NewResolver(st)}
	root := "file://" + filepath.Join(base, rel)
	_, err = c.Partition(context.Background(), workflows.PartitionInput{Path: root, Max: 4})
	if err == nil || !strings.HasPrefix(err.Error(), "list "+root+": ") || !strings.Contains(err.Error(), "file name too long") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("partition of an unreadable source: %v", err)
	}
}

// TestIndexLineNamingADirectoryFails: a line of an index file that names a
// directory is one failed entry, not dropped; one that names a file that
// cannot be stat'ed is listed, for its batch to fail.
func TestIndexLineNamingADirectoryFails(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "f0", "a/f1")
	index := filepath.Join(dir, "index")
	lines := "file://" + dir + "/f0\nfile://" + dir + "/a\nfile://" + dir + "/gone\n"
	if err := os.WriteFile(index, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &lister{resolver: storage.NewResolver(st)}
	p, err := l.indexPage(context.Background(), "file://"+index, "", nil, 10)
	if err != nil || !p.done || len(p.entries) != 3 {
		t.Fatalf("index page: %+v, %v", p, err)
	}
	for i, want := range []string{"", "could not be listed: invalid path: a directory (an index file names files)", ""} {
		e := p.entries[i]
		if err := unreadError(e); (err == nil) != (want == "") || (err != nil && err.Error() != want) {
			t.Errorf("entry %s fails with %v, want %q", e.URI, err, want)
		}
	}
	if p.entries[2].Size != -1 {
		t.Errorf("the line of a missing file: %+v, want it listed with size -1", p.entries[2])
	}

	// A dry run, which has no batch to fail them, counts the directory and
	// the missing file failed, each with its reason, and the file listed.
	l.countOnly = true
	p, err = l.indexPage(context.Background(), "file://"+index, "", nil, 10)
	if err != nil || !p.done || p.count != 3 || p.unread != 2 || len(p.unreadFailures) != 2 {
		t.Fatalf("dry-run index page: %+v, %v", p, err)
	}
	for i, want := range []struct{ path, reason string }{{"/a", "INVALID_PATH"}, {"/gone", "NOT_FOUND"}} {
		if f := p.unreadFailures[i]; f.Path != "file://"+dir+want.path || f.Reason != want.reason {
			t.Errorf("dry-run failure %d: %+v, want %s %s", i, f, want.path, want.reason)
		}
	}
}

// TestUnreadableOnlyOnFileSystems: a refused listing of a top-level
// directory is that directory's failure on a file system, and the job's on
// an object store (a refusal there is for the bucket); errors that may
// pass are never an entry's.
func TestUnreadableOnlyOnFileSystems(t *testing.T) {
	denied := storage.NewError("list", "x", storage.ErrPermission, nil)
	for _, c := range []struct {
		dir  string
		err  error
		want bool
	}{
		{"file:///src/a", denied, true},
		{"hdfs://nn/src/a", denied, true},
		{"file:///src/a", storage.NewError("list", "x", storage.ErrInvalidPath, nil), true},
		{"file:///src/a", storage.NewError("list", "x", storage.ErrUnavailable, nil), false},
		{"file:///src/a", context.Canceled, false},
		{"s3://bucket/src/a", denied, false},
		{"gs://bucket/src/a", denied, false},
	} {
		if got := unreadable(c.dir, c.err); got != c.want {
			t.Errorf("unreadable(%s, %v) = %v, want %v", c.dir, c.err, got, c.want)
		}
	}
}
