package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// An error names its kind once: a cause that already says it (as a
// wrapped sentinel does) is not preceded by it a second time, and a cause
// that does not is.
func TestErrorNamesItsKindOnce(t *testing.T) {
	for _, kind := range []error{ErrNotFound, ErrPermission, ErrExists, ErrInvalidPath, ErrUnavailable, ErrOutOfRange} {
		for _, cause := range []error{
			nil,
			kind,
			fmt.Errorf("%w: %q has no scheme", kind, "x"),
			errors.New("open /x: " + kind.Error()),
			errors.New("connection reset"),
		} {
			msg := NewError("load", "file:///x", kind, cause).Error()
			if n := strings.Count(msg, kind.Error()); n != 1 {
				t.Errorf("kind %q, cause %v: %q names the kind %d times", kind, cause, msg, n)
			}
			if !strings.HasPrefix(msg, "load file:///x: ") {
				t.Errorf("%q does not begin with the operation and the URI", msg)
			}
			if cause != nil && !strings.Contains(msg, cause.Error()) {
				t.Errorf("%q lost its cause %q", msg, cause)
			}
		}
	}
}
