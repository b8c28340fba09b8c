package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/longpath"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
)

// unreadTree is a source with directories a listing cannot open: their
// paths are longer than the OS takes (a real error, whoever runs the test).
type unreadTree struct {
	root string
	// files are the relative paths of the files that can be read, bad
	// those of the directories that cannot be listed.
	files, bad []string
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

// unreadTrees makes the shapes: one directory deep down a tree that
// cannot be opened; and, below a source root whose path is close to the
// limit, a top-level directory and one at the second level that cannot
// be opened.
func unreadTrees(t *testing.T) map[string]unreadTree {
	deep := filepath.Join(t.TempDir(), "src")
	files := []string{"f0", "a/f1", "a/sub/f2", "z/f3"}
	writeFiles(t, deep, files...)
	nested := unreadTree{root: deep, files: files, bad: []string{longpath.Make(t, deep, "deep")}}

	top := longpath.Deep(t, t.TempDir(), longpath.PathMax-196)
	writeFiles(t, top, files...)
	writeFiles(t, top, "c/f4")
	near := unreadTree{root: top, files: append(slices.Clone(files), "c/f4"), bad: []string{
		longpath.Make(t, top, strings.Repeat("b", 200)),
		filepath.Join("c", longpath.Make(t, filepath.Join(top, "c"), strings.Repeat("n", 200))),
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
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(st)
	ctx := context.Background()
	for name, tree := range unreadTrees(t) {
		root := "file://" + tree.root
		parts, err := (&lister{resolver: res}).partition(ctx, workflows.PartitionInput{Path: root, Max: 4})
		if err != nil {
			t.Fatalf("%s: partition: %v", name, err)
		}
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
								if !errors.Is(err, storage.ErrInvalidPath) || retryable(err) || reasonOf(err) != workflows.ErrTypeInvalidPath ||
									err.Error() != "could not be listed: invalid path: file name too long" {
									t.Errorf("%s: the entry of %s fails with %q (retryable %v), want INVALID_PATH: file name too long", name, rel, err, retryable(err))
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
				if !slices.Equal(ok, want) || !slices.Equal(bad, slices.Sorted(slices.Values(tree.bad))) {
					t.Errorf("%s, %d partitions, limit %d: listed %q and failed %q, want %q and %q", name, len(layout), limit, ok, bad, want, tree.bad)
				}
				if counted != len(ok)+len(bad) {
					t.Errorf("%s, %d partitions, limit %d: a dry run counted %d entries, the listing %d", name, len(layout), limit, counted, len(ok)+len(bad))
				}
			}
		}
	}
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
