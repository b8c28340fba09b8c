package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/ferryio/ferry/storage"
)

// Error codes by the kind they map to. Codes are checked before HTTP status
// codes because some servers send a code with an unusual status.
var (
	notFoundCodes = map[string]bool{
		"NoSuchKey": true, "NoSuchBucket": true, "NotFound": true, "NoSuchVersion": true,
	}
	permissionCodes = map[string]bool{
		"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
		"ExpiredToken": true, "InvalidToken": true, "TokenRefreshRequired": true,
		"AccountProblem": true, "AllAccessDisabled": true, "InvalidSecurity": true,
		"AuthorizationHeaderMalformed": true, "MissingSecurityHeader": true,
		"RequestTimeTooSkewed": true,
	}
	unavailableCodes = map[string]bool{
		"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestTimeout": true,
		"ServiceUnavailable": true, "InternalError": true, "RequestLimitExceeded": true,
		"BandwidthLimitExceeded": true, "TooManyRequests": true, "OperationAborted": true,
		"ConditionalRequestConflict": true,
	}
	invalidCodes = map[string]bool{
		"InvalidBucketName": true, "KeyTooLongError": true, "InvalidArgument": true,
		"InvalidRequest": true, "PermanentRedirect": true, "NotImplemented": true,
		"MethodNotAllowed": true, "EntityTooLarge": true, "EntityTooSmall": true,
		"InvalidObjectState": true,
	}
)

// classify maps an SDK error onto a storage sentinel. It is the one place
// where S3 failures are sorted into final and retryable kinds.
func classify(err error) error {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	status := httpStatus(err)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return storage.ErrUnavailable
	case notFoundCodes[code]:
		return storage.ErrNotFound
	case permissionCodes[code]:
		return storage.ErrPermission
	case code == "PreconditionFailed":
		return storage.ErrExists
	case code == "InvalidRange":
		return storage.ErrOutOfRange
	case unavailableCodes[code]:
		return storage.ErrUnavailable
	case invalidCodes[code]:
		return storage.ErrInvalidPath
	case status == 404:
		return storage.ErrNotFound
	case status == 401, status == 403:
		return storage.ErrPermission
	case status == 412:
		return storage.ErrExists
	case status == 416:
		return storage.ErrOutOfRange
	case status == 501:
		// The server does not implement the request: retrying cannot help.
		return storage.ErrInvalidPath
	case status == 408, status == 409, status == 429, status >= 500:
		return storage.ErrUnavailable
	case status >= 400:
		// Any other client error: the request itself is wrong.
		return storage.ErrInvalidPath
	default:
		// No HTTP response: connection refused or reset, DNS, timeouts, a
		// retry quota that ran out. Worth retrying later.
		return storage.ErrUnavailable
	}
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// cause is the short, one-line description of an SDK error that goes into
// storage.Error; it still unwraps to the SDK error for errors.As.
type cause struct {
	msg string
	err error
}

func (c *cause) Error() string { return c.msg }
func (c *cause) Unwrap() error { return c.err }

// describe turns an SDK error into one line: the server's code and message,
// or the network failure, and how many attempts were made. Configured secrets
// are scrubbed from it.
func (c *conn) describe(err error) error {
	var b strings.Builder
	var ae smithy.APIError
	switch {
	case errors.Is(err, context.Canceled):
		b.WriteString("canceled")
	case errors.Is(err, context.DeadlineExceeded):
		b.WriteString("deadline exceeded")
	case errors.As(err, &ae) && ae.ErrorCode() != "":
		b.WriteString(ae.ErrorCode())
		if m := ae.ErrorMessage(); m != "" && m != ae.ErrorCode() {
			b.WriteString(": " + m)
		}
		if st := httpStatus(err); st != 0 {
			fmt.Fprintf(&b, " (HTTP %d from %s)", st, c.endpoint)
		}
	case httpStatus(err) != 0:
		fmt.Fprintf(&b, "HTTP %d from %s", httpStatus(err), c.endpoint)
	default:
		b.WriteString("cannot reach " + c.endpoint + ": " + networkCause(err))
	}
	var ma *retry.MaxAttemptsError
	if errors.As(err, &ma) {
		fmt.Fprintf(&b, " (gave up after %d attempts)", ma.Attempt)
	}
	msg := b.String()
	for _, s := range c.secrets {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	return &cause{msg: msg, err: err}
}

// networkCause finds the innermost useful description of a transport error.
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

// fail builds the storage error for a failed SDK call.
func (c *conn) fail(op, uri string, err error) error {
	return storage.NewError(op, uri, classify(err), c.describe(err))
}
