package activities

import (
	"context"
	"errors"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// reasonOf maps a storage error to the stable reason code of a failure.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrCacheTooSmall):
		return workflows.ErrTypeCacheTooSmall
	case errors.Is(err, storage.ErrNotFound):
		return workflows.ErrTypeNotFound
	case errors.Is(err, storage.ErrPermission):
		return workflows.ErrTypePermission
	case errors.Is(err, storage.ErrExists):
		return workflows.ErrTypeExists
	case errors.Is(err, storage.ErrInvalidPath), errors.Is(err, storage.ErrOutOfRange):
		return workflows.ErrTypeInvalidPath
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, storage.ErrUnavailable):
		return workflows.ErrTypeUnavailable
	}
	return workflows.ErrTypeInternal
}

// ErrCacheTooSmall marks a Cache.Load error for a file that does not stay
// in the node's cache: larger than the whole cache, or evicted before the
// job ended. It is final.
var ErrCacheTooSmall = errors.New("cache too small")

// retryable reports whether a per-file failure may succeed on another try.
func retryable(err error) bool {
	return storage.IsRetryable(err) && !errors.Is(err, context.Canceled)
}

// toTemporal turns an error that fails a whole activity into a Temporal
// application error typed by reason, non-retryable when retrying cannot help.
func toTemporal(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	reason := reasonOf(err)
	// Temporal's messages are protobuf strings, which must be UTF-8; a name
	// that is not keeps its exact bytes in the payloads, not here.
	msg := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if retryable(err) {
		return temporal.NewApplicationErrorWithCause(msg, reason, err)
	}
	return temporal.NewNonRetryableApplicationError(msg, reason, err)
}

// maxFailureMessage bounds a failure's message, so that a batch's
// failures fit in its heartbeat whatever the errors say.
const maxFailureMessage = 1000

// failure describes a failed file for a batch result.
func failure(uri string, err error) workflows.Failure {
	msg := err.Error()
	if len(msg) > maxFailureMessage {
		msg = msg[:maxFailureMessage] + "…"
	}
	return workflows.Failure{Path: uri, Reason: reasonOf(err), Message: msg, Retryable: retryable(err)}
}
