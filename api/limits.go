package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/internal/admission"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// Limits bound what the API takes on at once, so that many clients cannot
// make it slow for all or grow its memory without bound. Zero fields take
// their defaults.
//
// Listings and progress are coalesced: concurrent requests for the same
// thing share one call to the job service (single flight), and its answer
// is reused for a short time (ListTTL, ProgressTTL). Calls to the job
// service run at most MaxInFlight at a time; up to MaxWaiting more wait at
// most MaxWait for a slot. A request that finds the queue full is answered
// 429 at once, one that waited MaxWait 503, both with Retry-After. So is a
// request that arrives while MaxRequests requests are being handled.
type Limits struct {
	// MaxRequests is how many requests (other than /healthz, /metrics and
	// /openapi.json) are handled at once. Default 1024.
	MaxRequests int
	// MaxInFlight is how many calls to the job service run at once.
	// Default 16.
	MaxInFlight int
	// MaxWaiting is how many calls may wait for one of those slots.
	// Default 256.
	MaxWaiting int
	// MaxWait is how long a call waits for a slot. Default 1 s.
	MaxWait time.Duration
	// MaxAnswerWait is how long a request waits for a shared listing or
	// progress call before it is answered 503; the call goes on and its
	// answer serves later requests. Default 5 s.
	MaxAnswerWait time.Duration
	// CallTimeout bounds one shared listing or progress call. Default 15 s.
	CallTimeout time.Duration
	// RetryAfter is the Retry-After of a 429 or 503 answer, whole seconds.
	// Default 1 s.
	RetryAfter time.Duration
	// ListTTL is how long a listing is reused. Default 1 s; negative: never.
	ListTTL time.Duration
	// ProgressTTL is how long a job's progress is reused. Default 250 ms;
	// negative: never (concurrent requests still share one call).
	ProgressTTL time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxRequests, 1024)
	def(&l.MaxInFlight, 16)
	def(&l.MaxWaiting, 256)
	defDur(&l.MaxWait, time.Second)
	defDur(&l.MaxAnswerWait, 5*time.Second)
	defDur(&l.CallTimeout, 15*time.Second)
	defDur(&l.RetryAfter, time.Second)
	defDur(&l.ListTTL, time.Second)
	defDur(&l.ProgressTTL, 250*time.Millisecond)
	return l
}

// overloaded is the answer to a request refused for load: 429 when the
// queue is full, 503 when a wait ran out.
func overloaded(code int, format string, args ...any) error {
	return echo.NewHTTPError(code, fmt.Sprintf(format, args...))
}

// guard is the JobService the handlers call: the configured one behind
// admission control and coalescing.
type guard struct {
	next     JobService
	lim      Limits
	slots    *admission.Gate
	requests atomic.Int64
	list     *coalescer[struct{}, []jobs.Summary]
	progress *coalescer[string, workflows.JobState]
}

var _ JobService = (*guard)(nil)

// limitJobs wraps svc in the limits and registers on e the middleware that
// bounds concurrent requests and adds Retry-After to every 429 and 503.
func limitJobs(e *echo.Echo, svc JobService, lim Limits) JobService {
	lim = lim.withDefaults()
	g := &guard{
		next:     svc,
		lim:      lim,
		slots:    admission.New("call slot", lim.MaxInFlight, lim.MaxWaiting, lim.MaxWait),
		list:     newCoalescer[struct{}, []jobs.Summary](lim.ListTTL),
		progress: newCoalescer[string, workflows.JobState](lim.ProgressTTL),
	}
	e.Use(g.middleware)
	return g
}

// unlimited routes answer from memory and are never refused.
var unlimited = map[string]bool{"/healthz": true, "/metrics": true, "/openapi.json": true}

func (g *guard) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	retryAfter := admission.RetryAfter(g.lim.RetryAfter)
	return func(c echo.Context) error {
		res := c.Response()
		res.Before(func() {
			if (res.Status == http.StatusTooManyRequests || res.Status == http.StatusServiceUnavailable) && res.Header().Get("Retry-After") == "" {
				res.Header().Set("Retry-After", retryAfter)
			}
		})
		if unlimited[c.Path()] {
			return next(c)
		}
		if g.requests.Add(1) > int64(g.lim.MaxRequests) {
			g.requests.Add(-1)
			return overloaded(http.StatusTooManyRequests, "too many requests at once (more than %d); retry later", g.lim.MaxRequests)
		}
		defer g.requests.Add(-1)
		return next(c)
	}
}

// call runs fn in a slot.
func (g *guard) call(ctx context.Context, fn func() error) error {
	release, err := g.slots.Acquire(ctx)
	if err != nil {
		var ref *admission.Refused
		if errors.As(err, &ref) {
			return overloaded(ref.Status, "the job service is %s", ref.Message)
		}
		return err
	}
	defer release()
	return fn()
}

// shared runs fn for every request waiting on the same flight, in the
// background with its own timeout, so that one request going away does not
// fail the others.
func shared[K comparable, V any](ctx context.Context, g *guard, c *coalescer[K, V], k K, fn func(context.Context) (V, error)) (V, error) {
	return c.do(ctx, k, g.lim.MaxAnswerWait, func() (V, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.lim.CallTimeout)
		defer cancel()
		var v V
		err := g.call(cctx, func() error {
			var err error
			v, err = fn(cctx)
			return err
		})
		return v, err
	})
}

func (g *guard) Submit(ctx context.Context, key jobs.Key, opts workflows.Options) (jobs.SubmitResult, error) {
	var res jobs.SubmitResult
	err := g.call(ctx, func() error {
		var err error
		res, err = g.next.Submit(ctx, key, opts)
		return err
	})
	g.forget(key)
	return res, err
}

func (g *guard) Stop(ctx context.Context, key jobs.Key) error {
	err := g.call(ctx, func() error { return g.next.Stop(ctx, key) })
	g.forget(key)
	return err
}

func (g *guard) SetBandwidth(ctx context.Context, key jobs.Key, limit int64) (workflows.BandwidthSetting, error) {
	var set workflows.BandwidthSetting
	err := g.call(ctx, func() error {
		var err error
		set, err = g.next.SetBandwidth(ctx, key, limit)
		return err
	})
	g.forget(key)
	return set, err
}

// forget drops what a submit or stop has made stale.
func (g *guard) forget(key jobs.Key) {
	g.progress.forget(key.WorkflowID())
	g.list.forget(struct{}{})
}

func (g *guard) Progress(ctx context.Context, key jobs.Key) (workflows.JobState, error) {
	if err := key.Validate(); err != nil {
		return workflows.JobState{}, err
	}
	return shared(ctx, g, g.progress, key.WorkflowID(), func(ctx context.Context) (workflows.JobState, error) {
		return g.next.Progress(ctx, key)
	})
}

// List lists every job once for all filters (one shared call) and filters
// the shared answer.
func (g *guard) List(ctx context.Context, f jobs.ListFilter) ([]jobs.Summary, error) {
	all, err := shared(ctx, g, g.list, struct{}{}, func(ctx context.Context) ([]jobs.Summary, error) {
		return g.next.List(ctx, jobs.ListFilter{})
	})
	if err != nil {
		return nil, err
	}
	out := make([]jobs.Summary, 0, len(all))
	for _, j := range all {
		if (f.Type == "" || j.Type == f.Type) && (f.Status == "" || j.Status == f.Status) {
			out = append(out, j)
		}
	}
	return out, nil
}

// coalescer shares one call among concurrent requests for the same key and
// reuses a successful answer for ttl. Failed answers are not reused.
type coalescer[K comparable, V any] struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[K]*flight[V]
}

type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
	at   time.Time // when done was closed
}

func newCoalescer[K comparable, V any](ttl time.Duration) *coalescer[K, V] {
	return &coalescer[K, V]{ttl: ttl, entries: map[K]*flight[V]{}}
}

// maxIdleEntries is how many finished entries are kept before a sweep.
const maxIdleEntries = 4096

// do answers k from a fresh entry, from the flight in progress, or from a
// new flight running fn. It waits at most wait (then 503) or until ctx ends.
func (c *coalescer[K, V]) do(ctx context.Context, k K, wait time.Duration, fn func() (V, error)) (V, error) {
	c.mu.Lock()
	f := c.entries[k]
	if f != nil {
		select {
		case <-f.done:
			if f.err != nil || time.Since(f.at) >= c.ttl {
				f = nil
			}
		default:
		}
	}
	if f == nil {
		if len(c.entries) >= maxIdleEntries {
			c.sweepLocked()
		}
		f = &flight[V]{done: make(chan struct{})}
		c.entries[k] = f
		go func() {
			var v V
			var err error
			func() {
				// A panic here would kill the process: no request's
				// recover middleware covers this goroutine.
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panic: %v", p)
					}
				}()
				v, err = fn()
			}()
			c.mu.Lock()
			f.val, f.err, f.at = v, err, time.Now()
			close(f.done)
			c.mu.Unlock()
		}()
	}
	c.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	case <-t.C:
		var zero V
		return zero, overloaded(http.StatusServiceUnavailable, "the job service did not answer within %v; retry later", wait)
	}
}

// forget drops k's entry, so the next request makes a new call.
func (c *coalescer[K, V]) forget(k K) {
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// sweepLocked drops finished entries older than ttl.
func (c *coalescer[K, V]) sweepLocked() {
	for k, f := range c.entries {
		select {
		case <-f.done:
			if time.Since(f.at) >= c.ttl {
				delete(c.entries, k)
			}
		default:
		}
	}
}
