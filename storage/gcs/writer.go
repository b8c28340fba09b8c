package gcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"

	gcs "cloud.google.com/go/storage"

	"github.com/ferryio/ferry/internal/crashpoint"
	"github.com/ferryio/ferry/storage"
)

// writeIDKey is the custom-metadata key every object written by Ferry
// carries: a random id per write. When the response to the finalizing
// request is lost and the client's retry is refused with 412 (the object
// now exists), the id tells whether the first attempt stored our bytes.
const writeIDKey = "ferry-write-id"

func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create starts writing the object at uri with the client's Writer: one
// request for objects smaller than the chunk size, a resumable upload for
// larger ones. The object appears only when Commit closes the writer; Abort
// cancels the writer's context, which abandons the upload. Without
// Overwrite the upload carries the DoesNotExist precondition.
//
// The context given to Create governs the whole upload, as for the client's
// Writer.
func (s *Store) Create(ctx context.Context, uri string, opts storage.CreateOptions) (storage.Writer, error) {
	loc, c, err := s.parse("create", uri)
	if err != nil {
		return nil, err
	}
	if loc.key == "" {
		return nil, storage.NewError("create", uri, storage.ErrInvalidPath, errors.New("names a directory, not an object"))
	}
	if err := s.ensureBucket(ctx, c, "create", uri, loc.bucket); err != nil {
		return nil, err
	}
	if !opts.Overwrite {
		// Fail early, before any byte is sent; the precondition decides.
		if err := checkAbsent(ctx, c, loc, "create", uri); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	obj := c.object(loc)
	if !opts.Overwrite {
		obj = obj.If(gcs.Conditions{DoesNotExist: true})
	}
	// Uploads are safe to retry: preconditioned ones by GCS's rules, and a
	// repeated overwrite stores the same bytes. The upload machinery retries
	// until its context or chunk deadline ends, whatever the client's
	// MaxAttempts: the error function bounds it to MaxAttempts failures in a
	// row (each chunk that goes through starts a new count), and uses the
	// storage client's own test of what is transient (a dropped connection
	// included, which the upload machinery alone would not retry).
	var failures atomic.Int32
	maxAttempts := int32(s.opts.MaxAttempts)
	obj = obj.Retryer(gcs.WithPolicy(gcs.RetryAlways), gcs.WithErrorFunc(func(err error) bool {
		return gcs.ShouldRetry(err) && failures.Add(1) < maxAttempts
	}))
	id := newWriteID()
	w := obj.NewWriter(wctx)
	w.ProgressFunc = func(int64) { failures.Store(0) }
	w.Metadata = map[string]string{writeIDKey: id}
	w.ChunkSize = s.opts.ChunkSize
	if opts.Size >= 0 && opts.Size < int64(s.opts.ChunkSize) {
		// A known small object: buffer only what it needs, still enough
		// to retry its single request.
		w.ChunkSize = int((opts.Size + chunkAlign) / chunkAlign * chunkAlign)
	}
	return &writer{s: s, c: c, loc: loc, uri: uri, overwrite: opts.Overwrite, w: w, cancel: cancel, id: id}, nil
}

type writer struct {
	s         *Store
	c         *conn
	loc       location
	uri       string
	overwrite bool
	w         *gcs.Writer
	cancel    context.CancelFunc
	id        string
	written   int64
	done      bool
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, storage.NewError("write", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	n, err := w.w.Write(p)
	w.written += int64(n)
	if err != nil {
		return n, w.c.fail("write", w.uri, err)
	}
	return n, nil
}

func (w *writer) Commit(ctx context.Context) (storage.Entry, error) {
	if w.done {
		return storage.Entry{}, storage.NewError("commit", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	w.done = true
	defer w.cancel()
	if !w.overwrite && w.c.noOverwrite == NoOverwriteAuto {
		// For servers that ignore the precondition on resumable uploads.
		if err := checkAbsent(ctx, w.c, w.loc, "commit", w.uri); err != nil {
			w.cancel()
			_ = w.w.Close()
			return storage.Entry{}, err
		}
	}
	crashpoint.Here("gcs.written")
	if err := w.w.Close(); err != nil {
		if !w.overwrite && errors.Is(classify(err), storage.ErrExists) {
			if e, ok := ours(ctx, w.c, w.loc, w.uri, w.id); ok {
				return e, nil
			}
		}
		return storage.Entry{}, w.c.fail("commit", w.uri, err)
	}
	crashpoint.Here("gcs.closed")
	return entry(w.uri, w.w.Attrs()), nil
}

// Abort cancels the upload: the writer's context ends, the client abandons
// the request or resumable session, and no object is finalized.
func (w *writer) Abort(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	_ = w.w.Close() // reports the cancellation
	return nil
}

// checkAbsent fails with ErrExists when the object exists.
func checkAbsent(ctx context.Context, c *conn, loc location, op, uri string) error {
	_, err := c.object(loc).Attrs(ctx)
	switch {
	case err == nil:
		return storage.NewError(op, uri, storage.ErrExists, nil)
	case isNotFound(err):
		return nil
	default:
		return c.fail(op, uri, err)
	}
}

// ours reports whether the object at loc was written with id.
func ours(ctx context.Context, c *conn, loc location, uri, id string) (storage.Entry, bool) {
	a, err := c.object(loc).Attrs(ctx)
	if err != nil || a.Metadata[writeIDKey] != id {
		return storage.Entry{}, false
	}
	return entry(uri, a), true
}
