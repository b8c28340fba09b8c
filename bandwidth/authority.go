package bandwidth

import (
	"context"
	"sync"
	"time"
)

// Burst is how far ahead of the limit an authority lets a job's reads run:
// over any window of length w a job reads at most limit × (w + Burst).
const Burst = 100 * time.Millisecond

// RefreshEvery is how often an authority reads the limit of a job it
// grants leases for from the job's workflow (Authority.Refresh).
const RefreshEvery = 2 * time.Second

// refreshTimeout bounds one read of a job's limit.
const refreshTimeout = 10 * time.Second

// idleAfter is how long an authority keeps the budget of a job nobody asks
// about.
const idleAfter = 2 * time.Minute

// Authority keeps the byte budgets of the jobs it is the authority for. It
// is safe for concurrent use.
type Authority struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Refresh, when set, reads a job's current limit and its version from
	// the job's workflow (0: unlimited). The authority calls it in the
	// background, at most every RefreshEvery per job, so that a limit
	// changed while the job runs applies to the batches already running.
	Refresh func(ctx context.Context, workflowID string) (limit, version int64, err error)

	mu    sync.Mutex
	jobs  map[string]*budget
	swept time.Time
}

type budget struct {
	limit, version int64
	// tat is the theoretical arrival time of the next byte: the time at
	// which every byte granted so far would have been read at the limit.
	tat  time.Time
	seen time.Time
	// workflowID is where Refresh reads the limit; refreshed is when it
	// was last asked to.
	workflowID string
	refreshed  time.Time
}

// Grant is what an authority answers to a request for bytes.
type Grant struct {
	// Delay is how long the caller waits before reading the bytes.
	Delay time.Duration
	// Limit and Version are the job's limit as the authority knows it (0:
	// unlimited).
	Limit, Version int64
}

func (a *Authority) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Acquire grants n bytes of job's budget and returns how long the caller
// waits before reading them. limit (bytes/s, ≥ 1) is the job's limit as the
// caller knows it; the authority keeps the one with the highest version,
// from callers or from the job's workflow (workflowID; "" when unknown).
func (a *Authority) Acquire(job, workflowID string, n, limit, version int64) Grant {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jobs == nil {
		a.jobs = map[string]*budget{}
	}
	if now.Sub(a.swept) > idleAfter {
		for id, b := range a.jobs {
			if now.Sub(b.seen) > idleAfter {
				delete(a.jobs, id)
			}
		}
		a.swept = now
	}
	b := a.jobs[job]
	if b == nil {
		b = &budget{limit: limit, version: version, tat: now, refreshed: now}
		a.jobs[job] = b
	}
	if version > b.version {
		b.setLimit(limit, version, now)
	}
	b.seen = now
	if workflowID != "" {
		b.workflowID = workflowID
	}
	if a.Refresh != nil && b.workflowID != "" && now.Sub(b.refreshed) >= RefreshEvery {
		b.refreshed = now
		go a.refresh(b, b.workflowID)
	}
	g := Grant{Limit: b.limit, Version: b.version}
	if b.limit <= 0 {
		return g
	}
	start := b.tat
	if start.Before(now) {
		start = now
	}
	b.tat = start.Add(bytesTime(n, b.limit))
	g.Delay = max(b.tat.Sub(now)-Burst, 0)
	return g
}

// refresh reads a job's limit from its workflow into b.
func (a *Authority) refresh(b *budget, workflowID string) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	limit, version, err := a.Refresh(ctx, workflowID)
	if err != nil {
		return // the callers' limit holds; asked again later
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if version > b.version {
		b.setLimit(limit, version, a.now())
	}
}

// setLimit takes a job's new limit. The bytes already granted but not yet
// due are timed again at the new limit: kept at the old one, a job once
// slowed to a few bytes/s would wait hours for its next lease after being
// raised (64 KiB granted at 1 B/s is 18 h of debt).
func (b *budget) setLimit(limit, version int64, now time.Time) {
	if debt := b.tat.Sub(now); debt > 0 {
		if b.limit > 0 && limit > 0 {
			b.tat = now.Add(time.Duration(float64(debt) * float64(b.limit) / float64(limit)))
		} else {
			b.tat = now
		}
	}
	b.limit, b.version = limit, version
}

// bytesTime is how long n bytes take at limit bytes/s.
func bytesTime(n, limit int64) time.Duration {
	return time.Duration(float64(n) / float64(limit) * float64(time.Second))
}
