package pagestore

import (
	"context"
	"errors"
	"sync"
)

// flights lets concurrent callers that need the same thing (a page, a
// source Stat) do the work once: the first caller claims the key and does
// it, the others wait for its result. Unlike x/sync/singleflight, a claim can
// be taken ahead of the work (a load claims a window of pages, then reads
// them from one stream), and a waiter whose own context is still live retries
// when the worker gave up only because the worker's context ended.
type flights[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*flight[V]
}

type flight[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int // guarded by flights.mu
}

// claim returns the flight for key and whether the caller is its leader,
// who must call finish exactly once.
func (g *flights[K, V]) claim(key K) (*flight[V], bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
		f.waiters++
		return f, false
	}
	if g.m == nil {
		g.m = map[K]*flight[V]{}
	}
	f := &flight[V]{done: make(chan struct{})}
	g.m[key] = f
	return f, true
}

// finish publishes the leader's result and forgets the key, so that a later
// caller starts afresh (the work may need doing again after an eviction). It
// reports whether anyone waited: if not, val is still the leader's alone
// (a buffer can go back to its pool).
func (g *flights[K, V]) finish(key K, f *flight[V], val V, err error) (shared bool) {
	g.mu.Lock()
	delete(g.m, key)
	shared = f.waiters > 0
	g.mu.Unlock()
	f.val, f.err = val, err
	close(f.done)
	return shared
}

// wait blocks until f is finished or ctx ends.
func (f *flight[V]) wait(ctx context.Context) (V, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// do runs fn once for all concurrent callers of key.
func (g *flights[K, V]) do(ctx context.Context, key K, fn func() (V, error)) (V, error) {
	for {
		f, leader := g.claim(key)
		if leader {
			val, err := fn()
			g.finish(key, f, val, err)
			return val, err
		}
		val, err := f.wait(ctx)
		if leaderGaveUp(ctx, err) {
			continue
		}
		return val, err
	}
}

// leaderGaveUp reports an error that belongs to another caller's context,
// not to the work: the waiter should try again itself.
func leaderGaveUp(ctx context.Context, err error) bool {
	return ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
