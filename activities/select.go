package activities

import (
	"context"
	"fmt"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// Selection is what a job's listing selects: totals and the first URIs.
type Selection struct {
	Files int64
	Bytes int64
	// Paths are the first selected URIs, in listing order.
	Paths []string
}

// Select pages through in's source with in's filters — the lister and
// filters of the listing activity, so a preview selects exactly what a job
// would — and returns the totals and the first maxPaths URIs. It keeps no
// entries beyond those and needs no activity context.
func Select(ctx context.Context, resolver *storage.Resolver, in workflows.ListInput, maxPaths int) (Selection, error) {
	l := &lister{resolver: resolver}
	kind := workflows.PartitionTree
	if in.IndexFile != "" {
		kind = workflows.PartitionIndex
	}
	page := workflows.ListPageInput{
		Type: in.Type, Path: in.Path, IndexFile: in.IndexFile, Limit: max(in.Limit, 1),
		FileFilterRegx: in.FileFilterRegx, Filter: in.Filter,
		Partition: workflows.Partition{Kind: kind},
	}
	if in.IndexFile != "" {
		page.Path = in.IndexFile
	}
	var s Selection
	for {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		p, part, err := l.listPartition(ctx, page, nil)
		if err != nil {
			return s, fmt.Errorf("list %s: %w", page.Path, err)
		}
		for _, e := range p.entries {
			if len(s.Paths) < maxPaths {
				s.Paths = append(s.Paths, e.URI)
			}
		}
		s.Files += int64(len(p.entries))
		s.Bytes += p.size
		if part.Done {
			return s, nil
		}
		page.Partition = part
	}
}
