package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferryio/ferry/internal/crashpoint"
	"github.com/ferryio/ferry/storage"
)

// writeIDKey is the user-metadata key ("x-amz-meta-ferry-write-id") that
// every object written by Ferry carries: a random id per write. When the
// response to a committing request is lost and the SDK's retry is answered
// "412 exists" or "NoSuchUpload", the id on the object tells whether the
// first attempt committed our bytes or someone else's.
const writeIDKey = "ferry-write-id"

func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create starts writing the object at uri. Bytes are buffered up to the part
// size: an object that fits is sent with one PUT at Commit; a larger one
// becomes a multipart upload whose parts are sent while writing, and which
// only Commit completes. Nothing is visible under the key before Commit; an
// abandoned writer leaves an incomplete upload, invisible and removed by the
// bucket's AbortIncompleteMultipartUpload lifecycle rule.
//
// The context given to Create governs the whole upload (as for a GCS
// writer): cancelling it fails the parts in flight.
func (s *Store) Create(ctx context.Context, uri string, opts storage.CreateOptions) (storage.Writer, error) {
	loc, c, err := s.parse("create", uri)
	if err != nil {
		return nil, err
	}
	if loc.key == "" {
		return nil, storage.NewError("create", uri, storage.ErrInvalidPath, errors.New("names a bucket, not an object"))
	}
	if err := s.ensureBucket(ctx, c, "create", uri, loc.bucket); err != nil {
		return nil, err
	}
	if !opts.Overwrite {
		// Fail early, before any byte is sent; Commit checks again.
		if err := s.checkAbsent(ctx, c, loc, "create", uri); err != nil {
			return nil, err
		}
	}
	partSize := s.opts.PartSize
	if opts.Size > 0 {
		partSize = max(partSize, roundUp((opts.Size+maxParts-1)/maxParts, 1<<20))
	}
	partSize = min(partSize, maxPartSize)
	capacity := int64(0)
	if opts.Size >= 0 {
		capacity = min(opts.Size, partSize)
	}
	wctx, cancel := context.WithCancel(ctx)
	return &writer{
		s: s, c: c, loc: loc, uri: uri, overwrite: opts.Overwrite,
		ctx: wctx, cancel: cancel, id: newWriteID(),
		partSize: partSize, buf: make([]byte, 0, capacity),
	}, nil
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

type writer struct {
	s         *Store
	c         *conn
	loc       location
	uri       string
	overwrite bool
	ctx       context.Context // the upload's lifetime; see Create
	cancel    context.CancelFunc
	id        string

	partSize int64
	buf      []byte
	written  int64
	uploadID string
	group    *errgroup.Group
	gctx     context.Context
	next     int32
	done     bool

	mu     sync.Mutex
	parts  []types.CompletedPart
	failed error
}

func (w *writer) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, storage.NewError("write", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	if err := w.err(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		// A full buffer is sent only when more bytes arrive, so that an
		// object of exactly one part still goes in a single PUT.
		if int64(len(w.buf)) >= w.partSize {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
		k := min(int(w.partSize)-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
		w.written += int64(k)
	}
	return n, nil
}

// flush sends the buffer as the next part, starting the multipart upload
// first if needed. At most Concurrency parts are in flight; flush blocks
// until one finishes when that many are.
func (w *writer) flush() error {
	if w.uploadID == "" {
		out, err := w.c.api.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: &w.loc.bucket, Key: &w.loc.key, Metadata: map[string]string{writeIDKey: w.id},
		})
		if err != nil {
			return w.fail(w.c.fail("write", w.uri, err))
		}
		w.uploadID = aws.ToString(out.UploadId)
		w.group, w.gctx = errgroup.WithContext(w.ctx)
		w.group.SetLimit(w.s.opts.Concurrency)
	}
	w.next++
	num, body := w.next, w.buf
	if num%1000 == 0 && w.partSize < maxPartSize {
		// Unknown sizes: grow the parts so that 10,000 of them reach
		// S3's 5 TiB object limit.
		w.partSize = min(2*w.partSize, maxPartSize)
	}
	w.buf = make([]byte, 0, w.partSize)
	w.group.Go(func() error {
		sum := md5.Sum(body)
		out, err := w.c.api.UploadPart(w.gctx, &s3.UploadPartInput{
			Bucket: &w.loc.bucket, Key: &w.loc.key, UploadId: &w.uploadID, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
			ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		})
		if err != nil {
			return w.fail(w.c.fail("write", w.uri, err))
		}
		w.mu.Lock()
		w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		w.mu.Unlock()
		return nil
	})
	return w.err()
}

// fail records the first failure of the upload and returns it.
func (w *writer) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed == nil {
		w.failed = err
	}
	return w.failed
}

func (w *writer) Commit(ctx context.Context) (storage.Entry, error) {
	if w.done {
		return storage.Entry{}, storage.NewError("commit", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	w.done = true
	defer w.cancel()
	if err := w.err(); err != nil {
		w.abortUpload(ctx)
		return storage.Entry{}, err
	}
	if w.uploadID == "" {
		return w.putSingle(ctx)
	}
	if err := w.flush(); err != nil {
		w.abortUpload(ctx)
		return storage.Entry{}, err
	}
	if err := w.group.Wait(); err != nil {
		w.abortUpload(ctx)
		return storage.Entry{}, w.err()
	}
	w.buf = nil
	sort.Slice(w.parts, func(i, j int) bool { return *w.parts[i].PartNumber < *w.parts[j].PartNumber })
	crashpoint.Here("s3.parts")
	e, err := w.s.complete(ctx, w.c, w.loc, w.uri, w.uploadID, w.parts, w.overwrite, w.id)
	if err != nil {
		return storage.Entry{}, err
	}
	crashpoint.Here("s3.completed")
	w.s.abortStale(ctx, w.c, w.loc, w.uploadID)
	e.Size = w.written
	return e, nil
}

// abortStale aborts the incomplete multipart uploads of the same key that
// began before the upload just completed (ours): what writers of this key
// killed before their Complete left. They would otherwise stay, invisible
// but billed, until a lifecycle rule removes them. An upload of a live
// writer that began earlier is aborted too; its Complete then fails and
// it writes again, which the no-overwrite rule would refuse anyway. Best
// effort: failures are ignored (the lifecycle rule remains the backstop).
func (s *Store) abortStale(ctx context.Context, c *conn, loc location, ours string) {
	out, err := c.api.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &loc.bucket, Prefix: &loc.key})
	if err != nil {
		return
	}
	var mine time.Time
	for _, u := range out.Uploads {
		if aws.ToString(u.UploadId) == ours {
			mine = aws.ToTime(u.Initiated)
		}
	}
	for _, u := range out.Uploads {
		id := aws.ToString(u.UploadId)
		if aws.ToString(u.Key) != loc.key || id == ours || (!mine.IsZero() && aws.ToTime(u.Initiated).After(mine)) {
			continue
		}
		_, _ = c.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &loc.bucket, Key: &loc.key, UploadId: &id})
	}
}

func (w *writer) putSingle(ctx context.Context) (storage.Entry, error) {
	if err := w.s.checkBeforeCommit(ctx, w.c, w.loc, w.uri, w.overwrite); err != nil {
		return storage.Entry{}, err
	}
	sum := md5.Sum(w.buf)
	in := &s3.PutObjectInput{
		Bucket: &w.loc.bucket, Key: &w.loc.key, Body: bytes.NewReader(w.buf),
		ContentLength: aws.Int64(int64(len(w.buf))), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		Metadata: map[string]string{writeIDKey: w.id},
	}
	if w.s.conditional(w.c, w.overwrite) {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := w.c.api.PutObject(ctx, in)
	if err != nil && in.IfNoneMatch != nil && conditionalRejected(err) {
		if err := w.s.conditionalUnsupported(ctx, w.c, w.loc, w.uri); err != nil {
			return storage.Entry{}, err
		}
		in.IfNoneMatch = nil
		in.Body = bytes.NewReader(w.buf)
		out, err = w.c.api.PutObject(ctx, in)
	}
	if err != nil {
		if !w.overwrite && errors.Is(classify(err), storage.ErrExists) {
			if e, ok := w.s.ours(ctx, w.c, w.loc, w.uri, w.id); ok {
				return e, nil
			}
		}
		return storage.Entry{}, w.c.fail("commit", w.uri, err)
	}
	crashpoint.Here("s3.put")
	w.buf = nil
	e := storage.Entry{URI: w.uri, Size: w.written, ModTime: serverTime(out.ResultMetadata)}
	e.Version, e.ContentHash = versionAndHash(aws.ToString(out.ETag))
	return e, nil
}

// Abort discards the write: it stops the parts in flight and aborts the
// multipart upload, if one was started.
func (w *writer) Abort(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	w.buf = nil
	if w.group != nil {
		_ = w.group.Wait()
	}
	if w.uploadID == "" {
		return nil
	}
	_, err := w.c.api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &w.loc.bucket, Key: &w.loc.key, UploadId: &w.uploadID})
	if err != nil && errorCode(err) != "NoSuchUpload" {
		return w.c.fail("abort", w.uri, err)
	}
	return nil
}

// abortUpload aborts after a failure, best effort: the failure is what the
// caller needs to hear about, and a leftover upload is invisible.
func (w *writer) abortUpload(ctx context.Context) {
	w.cancel()
	if w.group != nil {
		_ = w.group.Wait()
	}
	if w.uploadID == "" {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = w.c.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &w.loc.bucket, Key: &w.loc.key, UploadId: &w.uploadID})
}

// conditional reports whether a committing request carries If-None-Match.
func (s *Store) conditional(c *conn, overwrite bool) bool {
	return !overwrite && c.noOverwrite != NoOverwriteCheck && !c.noConditional.Load()
}

// checkBeforeCommit runs the HEAD check of the no-overwrite rule where the
// mode (or a server without conditional writes) asks for it. Another writer
// committing between this HEAD and our commit is not detected unless the
// server also honours If-None-Match; that race is documented.
func (s *Store) checkBeforeCommit(ctx context.Context, c *conn, loc location, uri string, overwrite bool) error {
	if overwrite || (c.noOverwrite == NoOverwriteConditional && !c.noConditional.Load()) {
		return nil
	}
	return s.checkAbsent(ctx, c, loc, "commit", uri)
}

// checkAbsent fails with ErrExists when an object exists at loc.
func (s *Store) checkAbsent(ctx context.Context, c *conn, loc location, op, uri string) error {
	_, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
	switch {
	case err == nil:
		return storage.NewError(op, uri, storage.ErrExists, nil)
	case errors.Is(classify(err), storage.ErrNotFound):
		return nil
	default:
		return s.failHead(ctx, c, op, uri, loc, err)
	}
}

// conditionalRejected reports a server that does not implement
// If-None-Match on writes.
func conditionalRejected(err error) bool {
	return httpStatus(err) == 501 || errorCode(err) == "NotImplemented"
}

// conditionalUnsupported records that the server rejects If-None-Match. In
// auto mode the write goes on without it (the HEAD check already ran); in
// conditional mode the configuration is wrong and the write fails.
func (s *Store) conditionalUnsupported(ctx context.Context, c *conn, loc location, uri string) error {
	c.noConditional.Store(true)
	if c.noOverwrite == NoOverwriteConditional {
		return storage.NewError("commit", uri, storage.ErrInvalidPath,
			fmt.Errorf("%s does not support conditional writes (If-None-Match); set no_overwrite to auto or check", c.endpoint))
	}
	return nil
}

// ours reports whether the object at loc is the one written with id, and
// describes it.
func (s *Store) ours(ctx context.Context, c *conn, loc location, uri, id string) (storage.Entry, bool) {
	out, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
	if err != nil {
		return storage.Entry{}, false
	}
	for k, v := range out.Metadata {
		if strings.EqualFold(k, writeIDKey) && v == id {
			return headEntry(uri, out), true
		}
	}
	return storage.Entry{}, false
}

// complete completes a multipart upload under the no-overwrite rule, and
// aborts it when that fails.
func (s *Store) complete(ctx context.Context, c *conn, loc location, uri, uploadID string, parts []types.CompletedPart, overwrite bool, id string) (storage.Entry, error) {
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = c.api.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &loc.bucket, Key: &loc.key, UploadId: &uploadID})
	}
	if err := s.checkBeforeCommit(ctx, c, loc, uri, overwrite); err != nil {
		abort()
		return storage.Entry{}, err
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket: &loc.bucket, Key: &loc.key, UploadId: &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if s.conditional(c, overwrite) {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := c.api.CompleteMultipartUpload(ctx, in)
	if err != nil && in.IfNoneMatch != nil && conditionalRejected(err) {
		if err := s.conditionalUnsupported(ctx, c, loc, uri); err != nil {
			abort()
			return storage.Entry{}, err
		}
		in.IfNoneMatch = nil
		out, err = c.api.CompleteMultipartUpload(ctx, in)
	}
	if err != nil {
		// A retried Complete whose first attempt went through is answered
		// NoSuchUpload (or 412 under If-None-Match): check whose object it is.
		if errorCode(err) == "NoSuchUpload" || (!overwrite && errors.Is(classify(err), storage.ErrExists)) {
			if e, ok := s.ours(ctx, c, loc, uri, id); ok {
				return e, nil
			}
		}
		abort()
		return storage.Entry{}, c.fail("commit", uri, err)
	}
	// Some servers answer Complete with an ETag that differs from what HEAD
	// and listings show afterwards; the entry must match those.
	if e, ok := s.ours(ctx, c, loc, uri, id); ok {
		return e, nil
	}
	e := storage.Entry{URI: uri, ModTime: serverTime(out.ResultMetadata)}
	e.Version, e.ContentHash = versionAndHash(aws.ToString(out.ETag))
	return e, nil
}
