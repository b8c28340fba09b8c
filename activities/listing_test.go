package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/ferryio/ferry/manifest"
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

// TestDryRunPagesWriteNothingAndResume: a dry run's page (count-only)
// writes nothing to the manifest store (a dry run has no manifests removed
// at its end), and a retry continues from the position and counts its last
// attempt heartbeated: the counts are those of one uninterrupted attempt.
func TestDryRunPagesWriteNothingAndResume(t *testing.T) {
	dir := t.TempDir()
	const files = 4000
	for i := range files {
		p := filepath.Join(dir, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(p, make([]byte, i%5), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(st)
	manifests := t.TempDir()
	m, err := manifest.New(res, "file://"+manifests)
	if err != nil {
		t.Fatal(err)
	}
	c := &Coordinator{Resolver: res, Manifests: m}
	in := workflows.ListPageInput{JobID: "dry", Type: workflows.JobLoad, Path: "file://" + dir, Partition: workflows.Partition{Kind: workflows.PartitionTree},
		// A page limit above the tree's size: the page ends with the tree,
		// whatever count a heartbeat brings.
		Out: workflows.ManifestRef{Kind: workflows.ManifestPages, Key: "p000-00000000"}, Limit: 2 * files, CountOnly: true}
	run := func(hb *pageCountProgress) workflows.ListPageResult {
		t.Helper()
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(c.ListPage)
		if hb != nil {
			env.SetHeartbeatDetails(*hb)
		}
		v, err := env.ExecuteActivity(c.ListPage, in)
		if err != nil {
			t.Fatal(err)
		}
		var out workflows.ListPageResult
		if err := v.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	whole := run(nil)
	if whole.Qualified != files || !whole.Partition.Done {
		t.Fatalf("one attempt counted %d files (done %v), want %d", whole.Qualified, whole.Partition.Done, files)
	}
	if ents, err := os.ReadDir(manifests); err != nil || len(ents) != 0 {
		t.Fatalf("a dry-run page wrote %d objects to the manifest store (%v)", len(ents), err)
	}
	// An attempt cut after its first quarter: the retry counts the rest only.
	first, at, err := (&lister{resolver: res, countOnly: true}).listStep(context.Background(), in, in.Partition, nil, files/4)
	if err != nil {
		t.Fatal(err)
	}
	resumed := run(&pageCountProgress{From: stateOf(in.Partition), At: stateOf(at), Count: first.count, Size: first.size, Scanned: first.scanned})
	if resumed.Qualified != whole.Qualified || resumed.QualifiedSize != whole.QualifiedSize || !resumed.Partition.Done {
		t.Fatalf("resumed page: %d files, %d bytes (done %v); one attempt: %d, %d", resumed.Qualified, resumed.QualifiedSize, resumed.Partition.Done, whole.Qualified, whole.QualifiedSize)
	}
	// The retry takes the heartbeated counts as they are (it does not list
	// the first quarter again): a count marked by 7 comes back marked.
	marked := run(&pageCountProgress{From: stateOf(in.Partition), At: stateOf(at), Count: first.count + 7, Size: first.size, Scanned: first.scanned})
	if marked.Qualified != whole.Qualified+7 {
		t.Fatalf("the retry listed its first quarter again: %d files, want %d", marked.Qualified, whole.Qualified+7)
	}
}
