package copymove

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
)

// namePatterns are the relative paths of a tree: spaces, '+', '%' (also
// followed by hex digits, which a double decoder would turn into other
// characters, even a '/'), unicode, deep directories.
var namePatterns = []string{
	"a b/c d %05d.txt",
	"plus+sign/x+y+%05d",
	"per%%cent/100%%-%05d",
	"pct%%41/%%2F%%20-%05d.bin",
	"ünï/cødé-%05d.bin",
	"日本/ファイル %05d",
	"deep/1/2/3/leaf-%05d",
	"top-%05d",
}

// smallSizes cycle over the files of a tree; one file is Big.
var smallSizes = []int{0, 1, 517, 4096, 20_000, 100_003}

// Big is the size of the one large file of a tree: above every multipart
// and resumable-upload threshold of the test stores.
const Big = 50 << 20

// tree is a set of files by relative path, with their SHA-256.
type tree map[string][32]byte

// spec describes a tree to write: n files, one of them Big when big is set.
type spec struct {
	n   int
	big bool
}

// content is the deterministic content of file i.
func content(i, size int) []byte {
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(i >> 16), 'f', 'e', 'r', 'r', 'y'}).Read(b)
	return b
}

func (s spec) name(i int) string { return fmt.Sprintf(namePatterns[i%len(namePatterns)], i) }

func (s spec) size(i int) int {
	if s.big && i == 0 {
		return Big
	}
	return smallSizes[i%len(smallSizes)]
}

// writeLocal writes the tree under dir and returns its hashes and total size.
func (s spec) writeLocal(t testing.TB, dir string) (tree, int64) {
	t.Helper()
	return writeTree(t, dir, s.n, s.name, s.size)
}

// writeTree writes n files named and sized by name and size under dir and
// returns their hashes and total size.
func writeTree(t testing.TB, dir string, n int, name func(int) string, size func(int) int) (tree, int64) {
	t.Helper()
	want := tree{}
	var total int64
	for i := 0; i < n; i++ {
		rel, data := name(i), content(i, size(i))
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[rel] = sha256.Sum256(data)
		total += int64(len(data))
	}
	return want, total
}

// hashStore lists dir recursively through the store and hashes every file
// by reading it through the store.
func hashStore(t testing.TB, st storage.Store, dir string) tree {
	t.Helper()
	ctx := context.Background()
	out := tree{}
	cursor := ""
	for {
		p, err := st.List(ctx, dir, storage.ListOptions{Recursive: true, Cursor: cursor, Limit: 1000})
		if cursor == "" && errors.Is(err, storage.ErrNotFound) {
			return out // nothing there, not even the directory
		}
		if err != nil {
			t.Fatalf("list %s: %v", dir, err)
		}
		for _, e := range p.Entries {
			if e.IsDir {
				continue
			}
			out[e.RelPath] = hashFile(t, st, e.URI)
		}
		if p.Cursor == "" {
			return out
		}
		cursor = p.Cursor
	}
}

func hashFile(t testing.TB, st storage.Store, uri string) [32]byte {
	t.Helper()
	r, err := st.Open(context.Background(), uri, 0, -1)
	if err != nil {
		t.Fatalf("open %s: %v", uri, err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// sameTree fails unless got holds exactly the files of want with the same
// content, naming the first few differences.
func sameTree(t testing.TB, what string, want, got tree) {
	t.Helper()
	var diffs []string
	for rel, h := range want {
		g, ok := got[rel]
		switch {
		case !ok:
			diffs = append(diffs, "missing: "+rel)
		case g != h:
			diffs = append(diffs, "differs: "+rel)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			diffs = append(diffs, "unexpected: "+rel)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Fatalf("%s: %d of %d files wrong (have %d); first: %s", what, len(diffs), len(want), len(got), strings.Join(diffs[:min(len(diffs), 10)], "; "))
	}
}

// sameNames fails unless names are exactly the relative paths of want.
func sameNames(t testing.TB, what string, want tree, names []string) {
	t.Helper()
	got := map[string]bool{}
	for _, n := range names {
		got[n] = true
	}
	var diffs []string
	for rel := range want {
		if !got[rel] {
			diffs = append(diffs, "missing: "+rel)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			diffs = append(diffs, "unexpected: "+n)
		}
	}
	if len(diffs) > 0 || len(names) != len(want) {
		sort.Strings(diffs)
		t.Fatalf("%s: the system holds %d names, want %d; first differences: %s", what, len(names), len(want), strings.Join(diffs[:min(len(diffs), 10)], "; "))
	}
}

// trimPrefix strips prefix from every name, failing on a name without it.
func trimPrefix(t testing.TB, prefix string, names []string) []string {
	t.Helper()
	out := make([]string, 0, len(names))
	for _, n := range names {
		rel, ok := strings.CutPrefix(n, prefix)
		if !ok {
			t.Fatalf("%q is outside %q", n, prefix)
		}
		out = append(out, rel)
	}
	return out
}

// localNames walks dir on disk (not through the store) and returns every
// entry that is not a directory, relative to dir: leftovers of partial
// writes included.
func localNames(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func hashOf(data []byte) [32]byte { return sha256.Sum256(data) }
