package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
)

// TestCountOnlyPagesKeepNoEntries: a count-only page (a dry run's) counts
// what a listing page would hold, page for page, cursor for cursor, and
// keeps none of it, so that a dry run's memory does not depend on its page
// size: its pages hold only one answer of the store (countChunk) at a time.
func TestCountOnlyPagesKeepNoEntries(t *testing.T) {
	dir := t.TempDir()
	const files = 2*countChunk + 500
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%05d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, i%7), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(st)
	root := "file://" + dir
	whole := workflows.Partition{Kind: workflows.PartitionTree}
	parts := []workflows.Partition{
		{ID: 0, Kind: workflows.PartitionTop},
		{ID: 1, Kind: workflows.PartitionTree, Dirs: []string{root + "/d0", root + "/d1"}},
		{ID: 2, Kind: workflows.PartitionTree, Dirs: []string{root + "/d2"}},
		whole,
	}
	// The include glob matches the paths relative to the source, which a
	// count-only page then builds too.
	for _, rules := range []workflows.Filter{{}, {Include: []string{"d1/*"}}} {
		for _, part := range parts {
			var kept, counted []page
			for _, countOnly := range []bool{false, true} {
				in := workflows.ListPageInput{Type: workflows.JobLoad, Path: root, Partition: part, Limit: countChunk + countChunk/2, CountOnly: countOnly, Filter: rules}
				l := &lister{resolver: res, countOnly: countOnly}
				for {
					p, next, err := l.listPartition(context.Background(), in, nil)
					if err != nil {
						t.Fatal(err)
					}
					if countOnly {
						counted = append(counted, p)
					} else {
						kept = append(kept, p)
					}
					if next.Done {
						break
					}
					in.Partition = next
				}
			}
			if len(kept) != len(counted) {
				t.Fatalf("partition %d (%s): %d pages listed, %d counted", part.ID, part.Kind, len(kept), len(counted))
			}
			for i, k := range kept {
				c := counted[i]
				if k.count != len(k.entries) || c.count != k.count || c.size != k.size || c.cursor != k.cursor || c.done != k.done {
					t.Fatalf("partition %d page %d: listed %d entries (count %d, %d bytes, cursor %q), counted %d (%d bytes, cursor %q)",
						part.ID, i, len(k.entries), k.count, k.size, k.cursor, c.count, c.size, c.cursor)
				}
				if len(c.entries) != 0 {
					t.Fatalf("partition %d page %d: a count-only page kept %d entries", part.ID, i, len(c.entries))
				}
			}
			if n := total(kept); len(rules.Include) > 0 && part.Kind == workflows.PartitionTree && len(part.Dirs) == 0 && (n == 0 || n >= files) {
				t.Fatalf("partition %d: the include glob kept %d of %d files", part.ID, n, files)
			}
		}
	}
	in := workflows.ListPageInput{Type: workflows.JobLoad, Path: root, Partition: whole, Limit: files, CountOnly: true}
	p, next, err := (&lister{resolver: res, countOnly: true}).listPartition(context.Background(), in, nil)
	if err != nil || !next.Done {
		t.Fatalf("one page of the whole tree: done %v, %v", next.Done, err)
	}
	if p.count != files || len(p.entries) != 0 {
		t.Fatalf("counted %d files (kept %d), want %d and none kept", p.count, len(p.entries), files)
	}
}

func total(ps []page) int {
	n := 0
	for _, p := range ps {
		n += p.count
	}
	return n
}
