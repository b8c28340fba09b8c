package gcs

import (
	"context"
	"errors"
	"sort"
	"strings"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/ferryio/ferry/storage"
)

const defaultPageSize = 1000

// item is one listed name: an object, or a prefix (isDir).
type item struct {
	key   string // relative to the listed prefix; "/"-terminated for prefixes
	entry storage.Entry
}

// List returns one page of the directory (name prefix) at uri.
//
// A recursive listing returns objects only, skipping "dir/" placeholder
// objects; a flat one uses the delimiter "/" and returns prefixes as
// directories. Entries come in byte order of their name relative to the
// prefix.
//
// The cursor is the relative name of the last entry (with a trailing "/"
// for a directory) and becomes StartOffset, which is inclusive: the entry
// equal to the cursor is dropped, and a directory cursor starts at its
// name followed by "0", the byte after "/", which skips the whole
// directory.
//
// Objects and prefixes of one response are merged by name, and an entry is
// only returned once everything before it has been seen: GCS pages objects
// and prefixes together in name order, but fake-gcs-server returns every
// prefix on every page and pages the objects alone; entries are therefore
// returned up to the smaller of the page's last object and last prefix.
//
// An empty listing of a prefix that is not the bucket root is ErrNotFound,
// or ErrInvalidPath when the name is an object.
func (s *Store) List(ctx context.Context, uri string, opts storage.ListOptions) (storage.ListPage, error) {
	loc, c, err := s.parse("list", uri)
	if err != nil {
		return storage.ListPage{}, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	prefix := dirPrefix(loc.key)
	q := &gcs.Query{Prefix: prefix, Projection: gcs.ProjectionNoACL}
	if !opts.Recursive {
		q.Delimiter = "/"
	}
	if opts.Cursor != "" {
		q.StartOffset = prefix + opts.Cursor
		if !opts.Recursive && strings.HasSuffix(opts.Cursor, "/") {
			q.StartOffset = prefix + strings.TrimSuffix(opts.Cursor, "/") + "0"
		}
	}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated", "Generation", "MD5", "CRC32C"}); err != nil {
		return storage.ListPage{}, storage.NewError("list", uri, storage.ErrInvalidPath, err)
	}
	pager := iterator.NewPager(c.client.Bucket(loc.bucket).Objects(ctx, q), min(defaultPageSize, limit+1), "")

	var page storage.ListPage
	var pending []item
	last := opts.Cursor
	seen := false
	more := false
	for !more {
		var batch []*gcs.ObjectAttrs
		token, err := pager.NextPage(&batch)
		if err != nil {
			return storage.ListPage{}, c.fail("list", uri, err)
		}
		var lastObj, lastPrefix string
		for _, a := range batch {
			seen = true
			name, isDir := a.Name, false
			if a.Prefix != "" {
				name, isDir = a.Prefix, true
				lastPrefix = max(lastPrefix, a.Prefix)
			} else {
				lastObj = max(lastObj, a.Name)
			}
			rel := strings.TrimPrefix(name, prefix)
			if rel == "" || (!isDir && isMarker(rel, a.Size)) {
				continue // a directory placeholder
			}
			if last != "" && rel <= last {
				continue
			}
			it := item{key: rel, entry: storage.Entry{IsDir: true}}
			if !isDir {
				it.entry = entry("", a)
			}
			pending = append(pending, it)
		}
		sort.Slice(pending, func(i, j int) bool { return pending[i].key < pending[j].key })
		pending = dedupe(pending)

		// Everything up to boundary has been seen; "" means everything.
		boundary := ""
		if token != "" {
			switch {
			case lastObj != "" && lastPrefix != "":
				boundary = min(lastObj, lastPrefix)
			case lastObj != "":
				boundary = lastObj
			case lastPrefix != "":
				boundary = lastPrefix
			default:
				continue // an empty page that is not the last
			}
			boundary = strings.TrimPrefix(boundary, prefix)
		}
		n := 0
		for ; n < len(pending); n++ {
			it := pending[n]
			if boundary != "" && it.key > boundary {
				break
			}
			if len(page.Entries) == limit {
				more = true
				break
			}
			e := it.entry
			e.RelPath = it.key
			if e.IsDir {
				e.RelPath = strings.TrimSuffix(it.key, "/")
			}
			e.URI = storage.JoinKey(uri, e.RelPath)
			page.Entries = append(page.Entries, e)
			last = it.key
		}
		pending = pending[n:]
		if token == "" {
			break
		}
		if len(page.Entries) == limit {
			more = true // the next page may turn out empty
		}
	}
	if more {
		page.Cursor = last
	}
	if len(page.Entries) == 0 && !seen && opts.Cursor == "" && loc.key != "" {
		return storage.ListPage{}, s.emptyListing(ctx, c, loc, uri)
	}
	return page, nil
}

func dedupe(items []item) []item {
	out := items[:0]
	for i, it := range items {
		if i > 0 && it.key == items[i-1].key {
			continue
		}
		out = append(out, it)
	}
	return out
}

// emptyListing explains why nothing is below uri: an object by that name,
// or nothing at all.
func (s *Store) emptyListing(ctx context.Context, c *conn, loc location, uri string) error {
	key := strings.TrimSuffix(loc.key, "/")
	_, err := c.object(location{bucket: loc.bucket, key: key}).Attrs(ctx)
	switch {
	case err == nil:
		return storage.NewError("list", uri, storage.ErrInvalidPath, errors.New("not a directory"))
	case isNotFound(err):
		return storage.NewError("list", uri, storage.ErrNotFound, nil)
	default:
		return c.fail("list", uri, err)
	}
}
