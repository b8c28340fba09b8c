package s3

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferryio/ferry/storage"
)

// Copy copies src to dst on the server (CopyObject, or UploadPartCopy parts
// above MultipartCopyThreshold), with Create's no-overwrite rule. Both
// buckets must be served by the same connection. The source is pinned with
// If-Match to the ETag seen at the start, so a source replaced mid-copy
// fails the copy instead of mixing versions. User metadata and content
// headers are carried over.
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
	head, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &sl.bucket, Key: &sl.key})
	if err != nil {
		return storage.Entry{}, s.openError(ctx, c, sl, src, s.explain(ctx, c, sl, err))
	}
	if !opts.Overwrite {
		if err := s.checkAbsent(ctx, c, dl, "copy", dst); err != nil {
			return storage.Entry{}, err
		}
	}
	id := newWriteID()
	meta := map[string]string{}
	for k, v := range head.Metadata {
		if !strings.EqualFold(k, writeIDKey) {
			meta[k] = v
		}
	}
	meta[writeIDKey] = id
	source := copySource(sl.bucket, sl.key)
	size := aws.ToInt64(head.ContentLength)
	if size > s.opts.MultipartCopyThreshold {
		return s.copyMultipart(ctx, c, head, source, dl, dst, meta, opts.Overwrite, id)
	}

	in := &s3.CopyObjectInput{
		Bucket: &dl.bucket, Key: &dl.key, CopySource: &source, CopySourceIfMatch: head.ETag,
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta,
		ContentType: head.ContentType, ContentEncoding: head.ContentEncoding, ContentDisposition: head.ContentDisposition,
		ContentLanguage: head.ContentLanguage, CacheControl: head.CacheControl,
	}
	if s.conditional(c, opts.Overwrite) {
		in.IfNoneMatch = aws.String("*")
	}
	// The HEAD check above was the check before commit: nothing was sent
	// since.
	out, err := c.api.CopyObject(ctx, in)
	if err != nil && in.IfNoneMatch != nil && conditionalRejected(err) {
		if err := s.conditionalUnsupported(ctx, c, dl, dst); err != nil {
			return storage.Entry{}, err
		}
		in.IfNoneMatch = nil
		out, err = c.api.CopyObject(ctx, in)
	}
	if err != nil {
		if errors.Is(classify(err), storage.ErrExists) {
			// 412: either our retried copy already landed, or the
			// destination exists, or the source changed (If-Match).
			if e, ok := s.ours(ctx, c, dl, dst, id); ok {
				return e, nil
			}
			if !opts.Overwrite && s.checkAbsent(ctx, c, dl, "copy", dst) != nil {
				return storage.Entry{}, c.fail("copy", dst, err)
			}
			return storage.Entry{}, storage.NewError("copy", src, storage.ErrUnavailable, errors.New("the source changed during the copy"))
		}
		return storage.Entry{}, c.fail("copy", dst, err)
	}
	if e, ok := s.ours(ctx, c, dl, dst, id); ok {
		return e, nil
	}
	e := storage.Entry{URI: dst, Size: size}
	if r := out.CopyObjectResult; r != nil {
		e.ModTime = aws.ToTime(r.LastModified)
		e.Version, e.ContentHash = versionAndHash(aws.ToString(r.ETag))
	}
	return e, nil
}

// copyMultipart copies in UploadPartCopy parts, Concurrency at a time.
func (s *Store) copyMultipart(ctx context.Context, c *conn, head *s3.HeadObjectOutput, source string, dl location, dst string, meta map[string]string, overwrite bool, id string) (storage.Entry, error) {
	size := aws.ToInt64(head.ContentLength)
	partSize := max(s.opts.CopyPartSize, roundUp((size+maxParts-1)/maxParts, 1<<20))
	created, err := c.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &dl.bucket, Key: &dl.key, Metadata: meta,
		ContentType: head.ContentType, ContentEncoding: head.ContentEncoding, ContentDisposition: head.ContentDisposition,
		ContentLanguage: head.ContentLanguage, CacheControl: head.CacheControl,
	})
	if err != nil {
		return storage.Entry{}, c.fail("copy", dst, err)
	}
	uploadID := aws.ToString(created.UploadId)
	var (
		mu    sync.Mutex
		parts []types.CompletedPart
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	num := int32(0)
	for off := int64(0); off < size; off += partSize {
		num++
		n, rng := num, fmt.Sprintf("bytes=%d-%d", off, min(off+partSize, size)-1)
		g.Go(func() error {
			out, err := c.api.UploadPartCopy(gctx, &s3.UploadPartCopyInput{
				Bucket: &dl.bucket, Key: &dl.key, UploadId: &uploadID, PartNumber: aws.Int32(n),
				CopySource: &source, CopySourceRange: &rng, CopySourceIfMatch: head.ETag,
			})
			if err != nil {
				return err
			}
			var etag *string
			if out.CopyPartResult != nil {
				etag = out.CopyPartResult.ETag
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: etag, PartNumber: aws.Int32(n)})
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		_, _ = c.api.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &dl.bucket, Key: &dl.key, UploadId: &uploadID})
		if errors.Is(classify(err), storage.ErrExists) {
			return storage.Entry{}, storage.NewError("copy", dst, storage.ErrUnavailable, errors.New("the source changed during the copy"))
		}
		return storage.Entry{}, c.fail("copy", dst, err)
	}
	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	e, err := s.complete(ctx, c, dl, dst, uploadID, parts, overwrite, id)
	if err != nil {
		return storage.Entry{}, err
	}
	e.Size = size
	return e, nil
}

// copySource is the x-amz-copy-source value: bucket and key, the key
// percent-encoded byte by byte except for unreserved characters and "/",
// so that "+", "%" and spaces survive every server's decoding.
func copySource(bucket, key string) string {
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(key); i++ {
		ch := key[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9',
			ch == '-', ch == '_', ch == '.', ch == '~', ch == '/':
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[ch>>4])
			b.WriteByte(hexDigits[ch&15])
		}
	}
	return b.String()
}
