package gcs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"cloud.google.com/go/auth"
	gcs "cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"

	"github.com/ferryio/ferry/storage"
)

// classify maps a client error onto a storage sentinel; the one place where
// GCS failures are sorted into final and retryable kinds.
func classify(err error) error {
	var ge *googleapi.Error
	var ae *auth.Error
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return storage.ErrUnavailable
	case errors.Is(err, gcs.ErrObjectNotExist), errors.Is(err, gcs.ErrBucketNotExist):
		return storage.ErrNotFound
	case errors.As(err, &ge):
		switch c := ge.Code; {
		case c == 404:
			return storage.ErrNotFound
		case c == 401, c == 403:
			return storage.ErrPermission
		case c == 412:
			return storage.ErrExists
		case c == 416:
			return storage.ErrOutOfRange
		case c == 501:
			return storage.ErrInvalidPath
		case c == 408, c == 409, c == 429, c >= 500:
			return storage.ErrUnavailable
		case c >= 400:
			return storage.ErrInvalidPath
		}
		return storage.ErrUnavailable
	case errors.As(err, &ae), errors.As(err, &re):
		// The token exchange failed: bad or revoked credentials. A token
		// endpoint that is down answers 5xx, which is worth retrying.
		if ae != nil && ae.Response != nil && ae.Response.StatusCode >= 500 {
			return storage.ErrUnavailable
		}
		return storage.ErrPermission
	default:
		return storage.ErrUnavailable
	}
}

func isNotFound(err error) bool { return errors.Is(classify(err), storage.ErrNotFound) }

// cause is the one-line description of a client error that goes into
// storage.Error; it unwraps to the client error.
type cause struct {
	msg string
	err error
}

func (c *cause) Error() string { return c.msg }
func (c *cause) Unwrap() error { return c.err }

// describe turns a client error into one line, with configured secrets
// scrubbed.
func (c *conn) describe(err error) error {
	var ge *googleapi.Error
	var ae *auth.Error
	var re *oauth2.RetrieveError
	var msg string
	switch {
	case errors.Is(err, context.Canceled):
		msg = "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "deadline exceeded"
	case errors.Is(err, gcs.ErrBucketNotExist):
		msg = "bucket does not exist (HTTP 404 from " + c.endpoint + ")"
	case errors.Is(err, gcs.ErrObjectNotExist):
		msg = "object does not exist (HTTP 404 from " + c.endpoint + ")"
	case errors.As(err, &ge):
		text := ge.Message
		if text == "" && len(ge.Errors) > 0 {
			text = ge.Errors[0].Message
		}
		if text == "" {
			text = strings.TrimSpace(ge.Body)
		}
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		msg = fmt.Sprintf("HTTP %d from %s", ge.Code, c.endpoint)
		if text != "" {
			msg = text + " (" + msg + ")"
		}
	case errors.As(err, &ae):
		msg = "credentials rejected: " + ae.Error()
	case errors.As(err, &re):
		msg = "credentials rejected: " + re.Error()
	default:
		msg = "cannot reach " + c.endpoint + ": " + networkCause(err)
	}
	for _, s := range c.secrets {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return &cause{msg: strings.Join(strings.Fields(msg), " "), err: err}
}

func networkCause(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func (c *conn) fail(op, uri string, err error) error {
	return storage.NewError(op, uri, classify(err), c.describe(err))
}
