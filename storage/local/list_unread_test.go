//go:build linux

package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferryio/ferry/internal/longpath"
	"github.com/ferryio/ferry/storage"
)

// TestListGoesPastDirectoriesTooLongToOpen: directories whose paths are
// longer than the OS takes are entries failed with ErrInvalidPath, once
// each, in key order, whether the listing is one walk or is resumed from
// its cursor by another store (which seeks to the cursor: a cursor at a
// failed directory goes on after it); the rest of the tree is listed.
func TestListGoesPastDirectoriesTooLongToOpen(t *testing.T) {
	root := filepath.Join(t.TempDir(), "src")
	for _, rel := range []string{"a/f", "m/f", "z/f"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, rel), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad := []string{longpath.Make(t, root, "b"), filepath.Join("m", longpath.Make(t, filepath.Join(root, "m"), "n"))}
	want := []string{"a/f", bad[0], "m/f", bad[1], "z/f"} // key order
	uri := "file://" + root
	ctx := context.Background()
	for _, fresh := range []bool{false, true} {
		for _, limit := range []int{1, 2, 1000} {
			s, err := New(Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			cursor := ""
			for pages := 0; pages < 20; pages++ {
				if fresh {
					if s, err = New(Options{}); err != nil {
						t.Fatal(err)
					}
				}
				p, err := s.List(ctx, uri, storage.ListOptions{Recursive: true, Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatalf("fresh %v, limit %d, after %q: %v", fresh, limit, got, err)
				}
				for _, e := range p.Entries {
					got = append(got, e.RelPath)
					isBad := slices.Contains(bad, e.RelPath)
					if isBad != (e.Err != nil) || (isBad && (!e.IsDir || !errors.Is(e.Err, storage.ErrInvalidPath) ||
						e.Err.Error() != "list "+e.URI+": invalid path: open "+filepath.Join(root, e.RelPath)+": file name too long")) {
						t.Errorf("fresh %v, limit %d: entry %q: dir %v, error %v", fresh, limit, e.RelPath, e.IsDir, e.Err)
					}
				}
				if cursor = p.Cursor; cursor == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("fresh %v, limit %d: listed %q, want %q", fresh, limit, got, want)
			}
		}
	}
}
