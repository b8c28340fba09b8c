package gcs

import (
	"context"
	"errors"
	"fmt"

	gcs "cloud.google.com/go/storage"

	"github.com/ferryio/ferry/storage"
)

// Copy copies src to dst on the server with the rewrite API, which copies
// objects of any size in as many calls as GCS needs. The source is pinned to
// the generation seen at the start; without Overwrite the destination
// carries the DoesNotExist precondition (and, in auto mode, is checked just
// before, for emulators that ignore preconditions on rewrites). Custom
// metadata and content headers are carried over.
func (s *Store) Copy(ctx context.Context, src, dst string, opts storage.CreateOptions) (storage.Entry, error) {
	sl, c, err := s.parse("copy", src)
	if err != nil {
		return storage.Entry{}, err
	}
	dl, dc, err := s.parse("copy", dst)
	if err != nil {
		return storage.Entry{}, err
	}
	if dc != c {
		return storage.Entry{}, storage.NewError("copy", dst, storage.ErrInvalidPath,
			fmt.Errorf("buckets %s and %s are configured with different connections; server-side copy needs one", sl.bucket, dl.bucket))
	}
	for _, l := range []struct {
		loc location
		uri string
	}{{sl, src}, {dl, dst}} {
		if l.loc.key == "" {
			return storage.Entry{}, storage.NewError("copy", l.uri, storage.ErrInvalidPath, errors.New("names a directory, not an object"))
		}
	}
	sa, err := c.object(sl).Attrs(ctx)
	if err != nil {
		return storage.Entry{}, openError(ctx, c, sl, src, err)
	}
	if !opts.Overwrite {
		if err := checkAbsent(ctx, c, dl, "copy", dst); err != nil {
			return storage.Entry{}, err
		}
	}
	dstObj := c.object(dl)
	if !opts.Overwrite {
		dstObj = dstObj.If(gcs.Conditions{DoesNotExist: true})
	}
	id := newWriteID()
	copier := dstObj.Retryer(gcs.WithPolicy(gcs.RetryAlways)).CopierFrom(c.object(sl).Generation(sa.Generation))
	copier.Metadata = map[string]string{}
	for k, v := range sa.Metadata {
		copier.Metadata[k] = v
	}
	copier.Metadata[writeIDKey] = id
	copier.ContentType, copier.ContentEncoding = sa.ContentType, sa.ContentEncoding
	copier.ContentDisposition, copier.ContentLanguage, copier.CacheControl = sa.ContentDisposition, sa.ContentLanguage, sa.CacheControl
	a, err := copier.Run(ctx)
	if err != nil {
		if errors.Is(classify(err), storage.ErrExists) {
			if e, ok := ours(ctx, c, dl, dst, id); ok {
				return e, nil
			}
		}
		if isNotFound(err) {
			// The pinned source generation is gone: replaced mid-copy.
			if _, serr := c.object(sl).Attrs(ctx); serr == nil {
				return storage.Entry{}, storage.NewError("copy", src, storage.ErrUnavailable, errors.New("the source changed during the copy"))
			}
		}
		return storage.Entry{}, c.fail("copy", dst, err)
	}
	return entry(dst, a), nil
}
