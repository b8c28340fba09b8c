package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryio/ferry/storage"
)

// reader streams a byte range of one object. When the connection breaks
// mid-body it issues a new ranged GET from where it stopped, with If-Match on
// the first response's ETag so that the bytes all come from one version.
//
// It keeps the context given to Open, as an http.Response body does: a
// reader is used across Read calls that take no context.
type reader struct {
	ctx      context.Context
	c        *conn
	loc      location
	uri      string
	pos      int64 // next byte to return
	end      int64 // one past the last byte wanted; -1 until known
	etag     string
	body     io.ReadCloser
	attempts int // resumes allowed
	resumes  int
	closed   bool
}

func (r *reader) open() error {
	in := &s3.GetObjectInput{Bucket: &r.loc.bucket, Key: &r.loc.key}
	if r.pos > 0 || r.end >= 0 {
		rng := fmt.Sprintf("bytes=%d-", r.pos)
		if r.end >= 0 {
			rng = fmt.Sprintf("bytes=%d-%d", r.pos, r.end-1)
		}
		in.Range = &rng
	}
	if r.etag != "" {
		in.IfMatch = aws.String(`"` + r.etag + `"`)
	}
	out, err := r.c.api.GetObject(r.ctx, in)
	if err != nil {
		return err
	}
	if r.etag == "" {
		r.etag = strings.Trim(aws.ToString(out.ETag), `"`)
	}
	if out.ContentLength != nil {
		// The server clamps a range that runs past the end.
		r.end = r.pos + *out.ContentLength
	}
	r.body = out.Body
	return nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, storage.NewError("read", r.uri, storage.ErrInvalidPath, errors.New("reader is closed"))
	}
	for {
		if r.end >= 0 && r.pos >= r.end {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				if errors.Is(classify(err), storage.ErrExists) {
					// If-Match failed: the object was replaced mid-read.
					return 0, storage.NewError("read", r.uri, storage.ErrUnavailable, errors.New("the object changed while it was being read"))
				}
				return 0, r.c.fail("read", r.uri, err)
			}
		}
		n, err := r.body.Read(p)
		r.pos += int64(n)
		if err == io.EOF {
			if r.end < 0 || r.pos >= r.end {
				return n, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			return n, nil
		}
		_ = r.body.Close()
		r.body = nil
		if r.ctx.Err() != nil {
			return n, storage.NewError("read", r.uri, storage.ErrUnavailable, r.ctx.Err())
		}
		if r.resumes >= r.attempts {
			return n, storage.NewError("read", r.uri, storage.ErrUnavailable, r.c.describe(err))
		}
		r.resumes++
		if n > 0 {
			return n, nil
		}
	}
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}
