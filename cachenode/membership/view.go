package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/startup"
)

// ViewOptions configure a View.
type ViewOptions struct {
	// RefreshInterval is how long an answer of the registry is reused.
	// Default DefaultRefreshInterval.
	RefreshInterval time.Duration
	// QueryTimeout bounds one query of the registry. Default 5 s.
	QueryTimeout time.Duration
	// MaxStale is how long the last good ring is still served while the
	// registry cannot be reached. Default DefaultExpireAfter.
	MaxStale time.Duration
	// VirtualNodes per member. Default ring.DefaultVirtualNodes.
	VirtualNodes int
}

func (o *ViewOptions) defaults() {
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 5 * time.Second
	}
	if o.MaxStale <= 0 {
		o.MaxStale = DefaultExpireAfter
	}
	if o.VirtualNodes <= 0 {
		o.VirtualNodes = ring.DefaultVirtualNodes
	}
}

// View reads the ring from the registry, for any process with a Temporal
// client (cache nodes, coordinators, the API). It is safe for concurrent
// use; it runs no goroutine of its own.
type View struct {
	c    client.Client
	opts ViewOptions

	mu    sync.Mutex
	snap  Snapshot
	ring  *ring.Ring
	at    time.Time // of the last good answer
	tried time.Time // of the last attempt
	err   error     // of the last attempt
}

// NewView returns a view over the registry reached through c.
func NewView(c client.Client, opts ViewOptions) *View {
	opts.defaults()
	return &View{c: c, opts: opts}
}

// Current returns the ring, at most RefreshInterval old. While the registry
// cannot be reached it returns the last ring for up to MaxStale, then the
// error. Before any node has joined, the ring is empty.
func (v *View) Current(ctx context.Context) (*ring.Ring, error) {
	r, _, err := v.current(ctx)
	return r, err
}

// Snapshot returns the members with their last-seen times, as Current does.
func (v *View) Snapshot(ctx context.Context) (Snapshot, error) {
	_, s, err := v.current(ctx)
	return s, err
}

func (v *View) current(ctx context.Context) (*ring.Ring, Snapshot, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if v.ring != nil && now.Sub(v.at) < v.opts.RefreshInterval {
		return v.ring, v.snap, nil
	}
	// After a failure, do not hammer the registry on every call.
	if v.err == nil || now.Sub(v.tried) >= v.opts.RefreshInterval {
		v.tried = now
		snap, err := v.query(ctx)
		v.err = err
		if err == nil {
			v.snap, v.ring, v.at = snap, snap.Ring(v.opts.VirtualNodes), time.Now()
			return v.ring, v.snap, nil
		}
	}
	if v.ring != nil && now.Sub(v.at) < v.opts.MaxStale {
		return v.ring, v.snap, nil
	}
	return nil, Snapshot{}, fmt.Errorf("membership registry unavailable: %w", v.err)
}

// Await asks the registry now, waiting (see package startup) until it
// answers: at start the registry may not be reachable yet, or its workflow
// task may be "in failed state" after a crash until a membership worker (the
// caller's own, started before) runs it. The answer is cached as Current's
// is. The wait is bounded by ctx's deadline (startup.DefaultTimeout without
// one).
func (v *View) Await(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	err := startup.Retry(ctx, "the membership registry (workflow "+WorkflowID+")", func(ctx context.Context) error {
		var err error
		snap, err = v.query(ctx)
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("membership registry unavailable: %w", err)
	}
	v.mu.Lock()
	v.snap, v.ring, v.at, v.tried, v.err = snap, snap.Ring(v.opts.VirtualNodes), time.Now(), time.Now(), nil
	v.mu.Unlock()
	return snap, nil
}

// Refresh forgets the cached answer, so the next Current asks the registry.
func (v *View) Refresh() {
	v.mu.Lock()
	v.at, v.tried = time.Time{}, time.Time{}
	v.mu.Unlock()
}

func (v *View) query(ctx context.Context) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, v.opts.QueryTimeout)
	defer cancel()
	val, err := v.c.QueryWorkflow(ctx, WorkflowID, "", QueryMembers)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Snapshot{}, nil // nobody has joined yet
	}
	if err != nil {
		return Snapshot{}, err
	}
	var s Snapshot
	if err := val.Get(&s); err != nil {
		return Snapshot{}, fmt.Errorf("decode membership snapshot: %w", err)
	}
	return s, nil
}
