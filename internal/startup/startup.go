// Package startup lets a Ferry process wait, at start, for what it needs
// (Temporal reachable, its namespace ready, the membership registry
// answering), in any order and after any crash, within one bound.
//
// A process started right after a crash, or before the Temporal it uses,
// meets errors that go away on their own: a refused connection, Unavailable,
// a stream reset (RST_STREAM … CANCEL) while the server warms up, a namespace
// not yet created, or a workflow whose task is "in failed state" until a
// worker of this very process runs it. Retry calls an operation again until
// it succeeds, fails with an error that waiting cannot fix (bad input,
// permission, an error marked Permanent), or the start-up deadline passes;
// then it returns one line naming what it waited for, for how long, and the
// last error.
package startup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultTimeout bounds a wait whose context has no deadline.
const DefaultTimeout = 2 * time.Minute

// Retry pauses between attempts grow from minPause to maxPause.
const (
	minPause = 100 * time.Millisecond
	maxPause = 2 * time.Second
	// noticeAfter is how long a wait lasts before it is logged.
	noticeAfter = 3 * time.Second
	// attemptTimeout bounds one attempt, so that an attempt stuck on a
	// server that accepted the connection but does not answer is tried
	// again rather than eating the whole wait.
	attemptTimeout = 10 * time.Second
)

// permanentError is an error that waiting does not fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one Retry must not retry.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Transient reports whether err may go away by waiting: anything but a
// Permanent error, a context error of the caller, and the gRPC answers that
// no retry changes (invalid argument, permission denied, unauthenticated,
// unimplemented).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var p permanentError
	if errors.As(err, &p) {
		return false
	}
	switch code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.Unimplemented:
		return false
	}
	return true
}

// code is the gRPC code of err: Temporal's service errors carry it in
// Status(), others as gRPC status errors (codes.Unknown when neither).
func code(err error) codes.Code {
	var se serviceerror.ServiceError
	if errors.As(err, &se) {
		if st := se.Status(); st != nil {
			return st.Code()
		}
	}
	return status.Code(err)
}

// TimeoutError is the error of a wait that ran out of time.
type TimeoutError struct {
	// What was waited for, e.g. "Temporal at 127.0.0.1:7233".
	What string
	// Waited is how long.
	Waited time.Duration
	// Last is the last error of the operation.
	Last error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("gave up waiting for %s after %s (raise --startup-timeout to wait longer): %v",
		e.What, e.Waited.Round(100*time.Millisecond), e.Last)
}

func (e *TimeoutError) Unwrap() error { return e.Last }

// Retry calls op until it returns nil or an error that is not Transient, or
// until ctx ends (at its deadline, or DefaultTimeout when it has none). what
// names the thing waited for in messages. Each attempt gets a context
// bounded by ctx and by attemptTimeout (10 s). A wait longer than a few seconds is
// logged once at info level, so a slow start is explained, not silent.
func Retry(ctx context.Context, what string, op func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	start := time.Now()
	pause := minPause
	noticed := false
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			if noticed {
				slog.Info("ready after waiting", "for", what, "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() == nil && !Transient(err) {
			return err
		}
		// Keep the most telling error: an attempt cut off by the deadline
		// says less than the one before it.
		if last == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			last = err
		}
		if !noticed && time.Since(start) >= noticeAfter {
			noticed = true
			slog.Info("waiting", "for", what, "err", oneLine(last))
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &TimeoutError{What: what, Waited: time.Since(start), Last: last}
			}
			return fmt.Errorf("interrupted while waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// oneLine is err's message without line breaks.
func oneLine(err error) string {
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

// StartWorker starts the worker build returns, building a new one for each
// attempt (a Temporal worker that failed to start cannot be started again),
// as Retry does. what names it in messages.
func StartWorker(ctx context.Context, what string, build func() worker.Worker) (worker.Worker, error) {
	var w worker.Worker
	err := Retry(ctx, what, func(context.Context) error {
		w = build()
		return w.Start()
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}
