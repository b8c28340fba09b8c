package s3

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryio/ferry/storage"
)

const defaultPageSize = 1000

// item is one listed key: an object, or a common prefix (IsDir).
type item struct {
	key   string
	isDir bool
	entry storage.Entry
}

// List returns one page of the directory (key prefix) at uri.
//
// A recursive listing has no delimiter and returns objects only. A key that
// ends in "/" with no bytes is a directory marker made by other tools and is
// skipped; one that holds bytes is an object like any other, listed under
// its whole key (RelPath keeps the trailing "/"). A flat
// listing uses the delimiter "/" and returns common prefixes as directories.
// Entries come in byte order of their key relative to the prefix, which is
// the order S3 lists in.
//
// The cursor is the relative key of the last entry returned (with a
// trailing "/" for a directory). A listing resumes with StartAfter, so a
// cursor stays valid in another process and does not expire as
// continuation tokens may; continuation tokens are used between the
// requests of one page. Entries at or before the cursor are dropped, which
// also removes the repeated common prefix that StartAfter inside it yields.
//
// An empty listing of a prefix that is not the bucket root is ErrNotFound,
// or ErrInvalidPath when the key names an object.
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
	in := &s3.ListObjectsV2Input{Bucket: &loc.bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if !opts.Recursive {
		in.Delimiter = aws.String("/")
	}
	if opts.Cursor != "" {
		in.StartAfter = aws.String(prefix + opts.Cursor)
	}

	var page storage.ListPage
	last := opts.Cursor
	seen := false // any key at all below the prefix, markers included
	more := false
	for {
		// One more than needed tells whether the page is the last one.
		in.MaxKeys = aws.Int32(int32(min(defaultPageSize, limit-len(page.Entries)+1)))
		out, err := c.api.ListObjectsV2(ctx, in)
		if err != nil {
			return storage.ListPage{}, c.fail("list", uri, err)
		}
		for _, it := range merge(out) {
			seen = true
			rel := strings.TrimPrefix(it.key, prefix)
			if rel == "" || (!it.isDir && isMarker(rel, it.entry.Size)) {
				continue // a directory marker
			}
			if last != "" && rel <= last {
				continue
			}
			if len(page.Entries) == limit {
				more = true
				break
			}
			e := it.entry
			e.RelPath = rel
			if it.isDir {
				e.RelPath = strings.TrimSuffix(rel, "/")
			}
			e.URI = storage.JoinKey(uri, e.RelPath)
			page.Entries = append(page.Entries, e)
			last = rel
		}
		if more || !aws.ToBool(out.IsTruncated) {
			break
		}
		if len(page.Entries) == limit {
			// The server has more; the next page may still turn out empty.
			more = true
			break
		}
		in.StartAfter = nil
		in.ContinuationToken = out.NextContinuationToken
	}
	if more {
		page.Cursor = last
	}
	if len(page.Entries) == 0 && !seen && opts.Cursor == "" && loc.key != "" {
		return storage.ListPage{}, s.emptyListing(ctx, c, loc, uri)
	}
	return page, nil
}

// isMarker reports a directory marker: an empty object whose key ends in
// "/". An object with bytes under such a key is data.
func isMarker(key string, size int64) bool { return strings.HasSuffix(key, "/") && size == 0 }

// emptyListing explains why nothing is below uri: an object by that name, or
// nothing at all. The HEAD happens only on this rare path.
func (s *Store) emptyListing(ctx context.Context, c *conn, loc location, uri string) error {
	key := strings.TrimSuffix(loc.key, "/")
	_, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &key})
	switch {
	case err == nil:
		return storage.NewError("list", uri, storage.ErrInvalidPath, errors.New("not a directory"))
	case errors.Is(classify(err), storage.ErrNotFound):
		return storage.NewError("list", uri, storage.ErrNotFound, nil)
	default:
		return s.failHead(ctx, c, "list", uri, location{bucket: loc.bucket, key: key}, err)
	}
}

// merge interleaves a response's objects and common prefixes in key order.
func merge(out *s3.ListObjectsV2Output) []item {
	items := make([]item, 0, len(out.Contents)+len(out.CommonPrefixes))
	i, j := 0, 0
	for i < len(out.Contents) || j < len(out.CommonPrefixes) {
		if j == len(out.CommonPrefixes) || (i < len(out.Contents) && aws.ToString(out.Contents[i].Key) < aws.ToString(out.CommonPrefixes[j].Prefix)) {
			o := out.Contents[i]
			e := storage.Entry{Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
			e.Version, e.ContentHash = versionAndHash(aws.ToString(o.ETag))
			items = append(items, item{key: aws.ToString(o.Key), entry: e})
			i++
			continue
		}
		items = append(items, item{key: aws.ToString(out.CommonPrefixes[j].Prefix), isDir: true, entry: storage.Entry{IsDir: true}})
		j++
	}
	return items
}
