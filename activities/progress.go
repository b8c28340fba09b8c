package activities

import (
	"context"
	"sync/atomic"
)

// Bytes in flight (issue 12 case 3): a batch counts the bytes its entries
// read, so that its heartbeat shows the progress of files not yet done —
// a few large files otherwise show 0 bytes until each ends. The count
// travels in the batch's context; the read paths add to it.

type readCounterKey struct{}

// withReadCounter gives the entries processed under ctx a counter of the
// bytes they read.
func withReadCounter(ctx context.Context, c *atomic.Int64) context.Context {
	return context.WithValue(ctx, readCounterKey{}, c)
}

func readCounter(ctx context.Context) *atomic.Int64 {
	c, _ := ctx.Value(readCounterKey{}).(*atomic.Int64)
	return c
}

// readProgress is the function that adds to the batch's count of bytes
// read, or nil outside a batch.
func readProgress(ctx context.Context) func(int64) {
	c := readCounter(ctx)
	if c == nil {
		return nil
	}
	return func(n int64) { c.Add(n) }
}

// bothCounts is a count that adds to a and b, either of which may be nil;
// nil when both are.
func bothCounts(a, b func(int64)) func(int64) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(n int64) { a(n); b(n) }
}

// inFlight is the bytes read by entries outside the finished prefix: what
// the counter holds beyond the prefix's bytes counted in this attempt,
// bounded by the sizes of the entries outside the prefix (a read retried
// after a failure counts twice).
func inFlight(read, prefixBytesThisAttempt, remainingSize int64) int64 {
	return min(max(read-prefixBytesThisAttempt, 0), remainingSize)
}
