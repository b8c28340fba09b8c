package workflows

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// splitPartition keeps every directory in exactly one partition, in
// order, never moves what a partition has listed or is listing, numbers
// new partitions after every existing one, and shares the unstarted
// directories evenly among at most idle new partitions.
func TestSplitPartitionKeepsEveryDirectoryOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 5000; n++ {
		parts := make([]Partition, 1+rng.IntN(5))
		for i := range parts {
			dirs := make([]string, 1+rng.IntN(12))
			for j := range dirs {
				dirs[j] = fmt.Sprintf("file:///src/p%d-d%02d", i, j)
			}
			parts[i] = Partition{ID: i * (1 + rng.IntN(3)), Kind: PartitionTree, Dirs: dirs, DirIndex: rng.IntN(len(dirs)), Seq: int64(rng.IntN(9))}
			if rng.IntN(2) == 0 {
				parts[i].Cursor = "d/f" + fmt.Sprint(rng.IntN(100))
			}
		}
		idx, idle := rng.IntN(len(parts)), 1+rng.IntN(4)
		before := slices.Clone(parts[idx].Dirs)
		orig := parts[idx]
		out := splitPartition(parts, idx, idle)

		got := out[idx]
		if got.ID != orig.ID || got.DirIndex != orig.DirIndex || got.Cursor != orig.Cursor || got.Seq != orig.Seq || got.Kind != orig.Kind {
			t.Fatalf("case %d: the split partition changed its position: %+v → %+v", n, orig, got)
		}
		listing := orig.DirIndex
		if orig.Cursor != "" {
			listing++ // the directory in the middle of its listing
		}
		if len(got.Dirs) < listing {
			t.Fatalf("case %d: the partition lost directories it listed: kept %d of %d", n, len(got.Dirs), listing)
		}
		all := slices.Clone(got.Dirs)
		ids := map[int]bool{}
		for _, q := range parts {
			ids[q.ID] = true
		}
		var shares []int
		if len(got.Dirs) > listing || orig.Cursor == "" {
			shares = append(shares, len(got.Dirs)-listing)
		}
		for _, q := range out[len(parts):] {
			if ids[q.ID] || q.Kind != PartitionTree || q.DirIndex != 0 || q.Cursor != "" || q.Done || len(q.Dirs) == 0 {
				t.Fatalf("case %d: bad new partition %+v", n, q)
			}
			ids[q.ID] = true
			all = append(all, q.Dirs...)
			shares = append(shares, len(q.Dirs))
		}
		if !slices.Equal(all, before) {
			t.Fatalf("case %d: directories after the split %v, want %v", n, all, before)
		}
		if added := len(out) - len(parts); added > idle {
			t.Fatalf("case %d: %d new partitions for %d idle listings", n, added, idle)
		}
		unstarted := len(before) - listing
		if want := min(idle, unstarted-btoi(orig.Cursor == "")); want > 0 && len(out)-len(parts) != want {
			t.Fatalf("case %d: %d new partitions, want %d (%d unstarted, %d idle, cursor %q)", n, len(out)-len(parts), want, unstarted, idle, orig.Cursor)
		}
		if len(shares) > 1 && slices.Max(shares)-slices.Min(shares) > 1 {
			t.Fatalf("case %d: uneven shares %v", n, shares)
		}
		for i := range parts {
			if i != idx && !slices.Equal(out[i].Dirs, parts[i].Dirs) {
				t.Fatalf("case %d: partition %d changed", n, i)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
