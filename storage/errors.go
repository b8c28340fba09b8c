package storage

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels every backend maps its failures onto. Test with errors.Is.
var (
	// ErrNotFound: the file, directory or bucket does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPermission: access denied, bad credentials, or a path outside the
	// store's root.
	ErrPermission = errors.New("permission denied")
	// ErrExists: the destination exists and overwrite was not asked for.
	ErrExists = errors.New("already exists")
	// ErrInvalidPath: the URI is malformed, has the wrong scheme, or names the
	// wrong type (a directory where a file is needed, or the reverse).
	ErrInvalidPath = errors.New("invalid path")
	// ErrOutOfRange: a read starts past the end of the file.
	ErrOutOfRange = errors.New("offset out of range")
	// ErrUnavailable: throttling, a timeout or a connection failure; the same
	// call may succeed later.
	ErrUnavailable = errors.New("temporarily unavailable")
)

// Error is the error every Store returns: what was attempted, on which URI,
// which kind of failure (one of the sentinels), and the cause.
type Error struct {
	Op   string
	URI  string
	Kind error
	Err  error
}

func (e *Error) Error() string {
	// Identity, not errors.Is: an Err that merely wraps Kind still has detail to show.
	if e.Err == nil || e.Err == e.Kind { //nolint:errorlint // see above
		return fmt.Sprintf("%s %s: %v", e.Op, e.URI, e.Kind)
	}
	// A cause that already names the kind ("invalid path: ... has no
	// scheme") is not preceded by it a second time.
	if cause := e.Err.Error(); strings.Contains(cause, e.Kind.Error()) {
		return fmt.Sprintf("%s %s: %s", e.Op, e.URI, cause)
	}
	return fmt.Sprintf("%s %s: %v: %v", e.Op, e.URI, e.Kind, e.Err)
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// NewError builds an *Error. cause may be nil.
func NewError(op, uri string, kind, cause error) error {
	return &Error{Op: op, URI: uri, Kind: kind, Err: cause}
}

// IsEntryError reports whether err, met on one entry below a listed
// directory, is that entry's own and permanent (permission denied, a bad or
// too long path): a listing then reports the entry failed (Entry.Err) and
// goes on, where other errors fail the listing, to be tried again.
func IsEntryError(err error) bool {
	return errors.Is(err, ErrPermission) || errors.Is(err, ErrInvalidPath)
}

// IsRetryable reports whether err is worth retrying: ErrUnavailable and
// unclassified errors are; the final kinds are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	for _, final := range []error{ErrNotFound, ErrPermission, ErrExists, ErrInvalidPath, ErrOutOfRange} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}

// Kind returns the sentinel err wraps, or nil when it wraps none.
func Kind(err error) error {
	for _, k := range []error{ErrNotFound, ErrPermission, ErrExists, ErrInvalidPath, ErrOutOfRange, ErrUnavailable} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}
