package hdfs

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/storagetest"
)

// denyingFS is the stand-in namenode, which answers the listing of one
// directory as a namenode answers a user who may not read it: the client
// library's error for an AccessControlException of getListing. (The
// stand-in runs on a local directory as the test's user, who may read
// anything when that is root.)
type denyingFS struct {
	localFS
	denied string
}

func (d denyingFS) Open(name string) (file, error) {
	f, err := d.localFS.Open(name)
	if err != nil || name != d.denied {
		return f, err
	}
	return deniedDir{file: f, name: name}, nil
}

type deniedDir struct {
	file
	name string
}

func (d deniedDir) Readdir(int) ([]os.FileInfo, error) {
	return nil, &os.PathError{Op: "readdir", Path: d.name, Err: os.ErrPermission}
}

// TestListGoesPastDeniedDirectories: a directory below the listed one that
// the user may not read is one entry failed with ErrPermission, once, and
// the rest of the tree is listed, in one walk and resumed page by page
// from the cursor by new stores; the listed directory itself denied fails
// the listing.
func TestListGoesPastDeniedDirectories(t *testing.T) {
	root := t.TempDir()
	dial := func(string) (fileSystem, error) { return denyingFS{localFS{root: root, batch: 2}, "/src/deny"}, nil }
	s := newStore(Options{}, dial)
	for _, name := range []string{"a/f", "deny/f", "deny/sub/g", "deny-x", "m/f"} {
		storagetest.Put(t, s, "hdfs://nn/src/"+name, []byte(name))
	}
	want := []string{"a/f", "deny-x", "deny", "m/f"} // key order: "deny-x" < "deny/"
	ctx := context.Background()
	for _, fresh := range []bool{false, true} {
		for _, limit := range []int{1, 2, 1000} {
			var got []string
			cursor := ""
			for pages := 0; pages < 20; pages++ {
				if fresh {
					s = newStore(Options{}, dial)
				}
				p, err := s.List(ctx, "hdfs://nn/src", storage.ListOptions{Recursive: true, Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatalf("fresh %v, limit %d, after %q: %v", fresh, limit, got, err)
				}
				for _, e := range p.Entries {
					got = append(got, e.RelPath)
					if (e.RelPath == "deny") != (e.Err != nil) || (e.Err != nil && (!e.IsDir || !errors.Is(e.Err, storage.ErrPermission) ||
						e.Err.Error() != "list hdfs://nn/src/deny: readdir /src/deny: permission denied")) {
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
	if _, err := s.List(ctx, "hdfs://nn/src/deny", storage.ListOptions{Recursive: true}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("listing the denied directory itself: %v, want ErrPermission", err)
	}
}
