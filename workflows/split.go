package workflows

import "go.temporal.io/sdk/workflow"

// Partitions that split while listing (issue 17). A source used to be cut
// into up to maxPartitions partitions before listing, each listed page by
// page. Every page is an activity and a workflow task whatever its size,
// so a small tree paid for 16 or 17 pages where 4 would do: a second load
// of 20,000 cached files spent most of its CPU time on them.
//
// Runs that follow versionSplit cut the source into listParallel
// partitions (plus the files at its top level, when it has any), and a
// partition whose page comes back unfinished while fewer than
// listParallel partitions are left hands the directories it has not
// started to new partitions. A skewed tree keeps listParallel listings
// busy, a small one lists in as few pages as the page size allows.

// versionSplit marks the runs that partition coarsely and split
// partitions while listing.
const versionSplit = "split-partitions"

// splitsPartitions reports whether this run follows versionSplit (read
// once per run, when it first matters).
func (r *jobRun) splitsPartitions(ctx workflow.Context) bool {
	return follows(ctx, versionSplit)
}

// partitionsWanted is the most partitions the source is first cut into.
func (r *jobRun) partitionsWanted(ctx workflow.Context) int {
	if r.splitsPartitions(ctx) {
		return listParallel + 1 // and the top level's files
	}
	return maxPartitions
}

// splitForIdleListings gives the unstarted directories of partition idx to
// new partitions when listing slots would otherwise stay idle.
func (r *jobRun) splitForIdleListings(ctx workflow.Context, idx int) {
	p := r.c.Partitions[idx]
	if p.Kind != PartitionTree || p.Done || len(p.Dirs)-p.DirIndex < 2 {
		return
	}
	left := 0
	for _, q := range r.c.Partitions {
		if !q.Done {
			left++
		}
	}
	if left >= listParallel || !r.splitsPartitions(ctx) {
		return
	}
	r.c.Partitions = splitPartition(r.c.Partitions, idx, listParallel-left)
}

// splitPartition cuts the directories partition idx has not started into
// up to idle+1 even shares: the partition keeps the first (after the
// directory it is in the middle of, if any) and each other share becomes
// a new partition, numbered after the highest ID. Directories already
// listed stay with the partition, so its DirIndex and Cursor still hold.
func splitPartition(parts []Partition, idx, idle int) []Partition {
	p := parts[idx]
	first := p.DirIndex
	if p.Cursor != "" {
		first++ // the directory being listed stays whole
	}
	rest := p.Dirs[first:]
	shares := min(idle+1, len(rest))
	if p.Cursor != "" {
		// The partition's share is the directory it is listing.
		shares = min(idle, len(rest)) + 1
	}
	if shares < 2 {
		return parts
	}
	next := 0
	for _, q := range parts {
		next = max(next, q.ID+1)
	}
	cut := func(i int) int { // start in rest of share i of the new cut
		if p.Cursor != "" {
			if i == 0 {
				return 0
			}
			return (i - 1) * len(rest) / (shares - 1)
		}
		return i * len(rest) / shares
	}
	out := append([]Partition(nil), parts...)
	keep := first + cut(1)
	out[idx].Dirs = p.Dirs[:keep:keep]
	for i := 1; i < shares; i++ {
		end := len(rest)
		if i+1 < shares {
			end = cut(i + 1)
		}
		out = append(out, Partition{ID: next, Kind: PartitionTree, Dirs: append([]string(nil), rest[cut(i):end]...)})
		next++
	}
	return out
}
