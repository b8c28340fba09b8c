// Package admission bounds concurrent work in Ferry's HTTP servers: a Gate
// lets a fixed number of holders in at once and a bounded number wait, each
// for a short time. Whoever cannot get in is refused at once, with the HTTP
// status to answer (429 when the queue is full, 503 when the wait ran out)
// and a Retry-After, rather than piling up until a timeout, so that memory
// stays bounded and clients learn quickly to come back later.
package admission

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Gate admits at most MaxInFlight holders at once; up to MaxWaiting more
// wait at most MaxWait each.
type Gate struct {
	what       string
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	maxWait    time.Duration
}

// New returns a gate; what names the guarded resource in refusals ("call
// slot", "read slot"). maxInFlight and maxWaiting below 1 count as 1 and 0.
func New(what string, maxInFlight, maxWaiting int, maxWait time.Duration) *Gate {
	return &Gate{what: what, slots: make(chan struct{}, max(1, maxInFlight)), maxWaiting: int64(max(0, maxWaiting)), maxWait: maxWait}
}

// Refused is the error of a request the gate turned away.
type Refused struct {
	// Status is the HTTP status to answer: 429 or 503.
	Status  int
	Message string
}

func (e *Refused) Error() string { return e.Message }

// Acquire waits for a slot and returns the function that gives it back. It
// returns a *Refused when the queue is full or the wait runs out, and
// ctx.Err() when ctx ends first.
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return nil, &Refused{http.StatusTooManyRequests, fmt.Sprintf("busy: all %d %ss are taken and %d requests wait for one; retry later", cap(g.slots), g.what, g.maxWaiting)}
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, &Refused{http.StatusServiceUnavailable, fmt.Sprintf("busy: no %s free within %v; retry later", g.what, g.maxWait)}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RetryAfter spells d as a Retry-After value: whole seconds, at least 1.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(max(d, time.Second).Seconds())))
}
