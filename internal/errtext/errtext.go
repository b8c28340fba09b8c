// Package errtext turns the errors a workflow receives into the text users
// read: the innermost message of the chain, without what Temporal's error
// types add to it. An activity's error reaches a workflow as a chain of
// Temporal errors (the activity's, its application error, the causes that
// one carried), whose Error texts carry "(type: Error, retryable: true)"
// and the like: words for an engineer reading a history, not for a job's
// reason or failure list. It does no I/O and may be used by workflow code.
package errtext

import "errors"

// Root is the innermost message of err's chain: the message of the
// innermost error, without the type, retryable flag or timeout type that
// Temporal's errors add to their Error text (their Message method gives
// it bare).
func Root(err error) string {
	if err == nil {
		return ""
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			break
		}
		err = next
	}
	if m, ok := err.(interface{ Message() string }); ok && m.Message() != "" {
		return m.Message()
	}
	return err.Error()
}
