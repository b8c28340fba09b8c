package integrity

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// isDir reports whether p is a directory.
func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// TestMoveRemovesOnlyDirectoriesItEmptied is issue 11 case 9: a move
// removes the directories whose files it moved away, and leaves empty
// directories that held no moved file: ones that were empty before, and
// ones an --include filter did not select. It never removes the job's
// source root, even when the move emptied it (a recurring move policy
// lists it again). The empty directories of the source are recreated at
// the destination, except under a filter (they match no file rule).
func TestMoveRemovesOnlyDirectoriesItEmptied(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	mkdirs := func(t *testing.T, dirs ...string) {
		for _, d := range dirs {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("empty directories of the source", func(t *testing.T) {
		base := t.TempDir()
		src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
		writeTree(t, src, map[string]string{"top.txt": "top", "sub/a.txt": "a", "gone/deep/b.txt": "b"})
		mkdirs(t, filepath.Join(src, "emptydir"), filepath.Join(src, "sub", "deepempty"))
		st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: "file://" + src, Dst: "file://" + dst}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 3, bytes: 5})
		sameFiles(t, "destination", readTree(t, dst), map[string]string{"top.txt": "top", "sub/a.txt": "a", "gone/deep/b.txt": "b"})
		sameFiles(t, "source", readTree(t, src), nil)
		for _, d := range []string{"emptydir", "sub/deepempty"} {
			if !isDir(filepath.Join(src, d)) {
				t.Errorf("the move removed %s, which it did not empty", d)
			}
		}
		if isDir(filepath.Join(src, "gone")) {
			t.Errorf("gone/ (emptied by the move) is still in the source")
		}
		for _, d := range []string{"emptydir", "sub/deepempty"} {
			if !isDir(filepath.Join(dst, d)) {
				t.Errorf("the empty source directory %s was not recreated at the destination", d)
			}
		}
	})
	t.Run("the source root stays", func(t *testing.T) {
		base := t.TempDir()
		src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
		writeTree(t, src, map[string]string{"a/x.txt": "x", "y.txt": "y"})
		st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: "file://" + src, Dst: "file://" + dst}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2, bytes: 2})
		sameFiles(t, "destination", readTree(t, dst), map[string]string{"a/x.txt": "x", "y.txt": "y"})
		if !isDir(src) {
			t.Fatalf("the move removed its source root")
		}
		if isDir(filepath.Join(src, "a")) {
			t.Errorf("a/ (emptied by the move) is still in the source")
		}
	})
	t.Run("include filter", func(t *testing.T) {
		base := t.TempDir()
		src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
		writeTree(t, src, map[string]string{"data/x.csv": "x", "data/y.txt": "y", "only/z.csv": "z"})
		mkdirs(t, filepath.Join(src, "keep"), filepath.Join(src, "spool", "incoming"))
		st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: "file://" + src, Dst: "file://" + dst},
			map[string]any{"include": "**/*.csv"})
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2, bytes: 2})
		sameFiles(t, "destination", readTree(t, dst), map[string]string{"data/x.csv": "x", "only/z.csv": "z"})
		sameFiles(t, "source", readTree(t, src), map[string]string{"data/y.txt": "y"})
		for _, d := range []string{"keep", "spool/incoming"} {
			if !isDir(filepath.Join(src, d)) {
				t.Errorf("the --include move removed the unrelated empty %s", d)
			}
		}
		if isDir(filepath.Join(src, "only")) {
			t.Errorf("only/ (emptied by the move) is still in the source")
		}
		for _, d := range []string{"keep", "spool"} {
			if isDir(filepath.Join(dst, d)) {
				t.Errorf("the --include move created %s at the destination", d)
			}
		}
	})
}

// TestCopyRecreatesEmptyDirectories is issue 11 case 9 for copies: the
// empty directories of a copied tree, nested or at its top, and an empty
// source as a whole, arrive at a file-system destination; they are not
// counted (they are no files).
func TestCopyRecreatesEmptyDirectories(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	writeTree(t, src, map[string]string{"top.txt": "top", "sub/a.txt": "a"})
	empties := []string{"emptydir", "sub/deepempty", "nest/ed/deep", "z-last"}
	for _, d := range append(empties, "emptysrc") {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(base, "dst")
	st := runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: "file://" + dst}, nil)
	check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2, bytes: 4})
	sameFiles(t, "destination", readTree(t, dst), map[string]string{"top.txt": "top", "sub/a.txt": "a"})
	for _, d := range append(empties, "emptysrc") {
		if !isDir(filepath.Join(dst, d)) {
			t.Errorf("the empty source directory %s was not recreated at the destination", d)
		}
	}
	// An empty source directory as a whole.
	st = runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: "file://" + filepath.Join(src, "emptysrc"), Dst: "file://" + filepath.Join(base, "dst2")}, nil)
	check(t, st, want{status: workflows.StatusSucceeded})
	if !isDir(filepath.Join(base, "dst2")) {
		t.Errorf("the copy of an empty directory did not create its destination")
	}
}
