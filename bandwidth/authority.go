package bandwidth

import (
	"sync"
	"time"
)

// Burst is how far ahead of the limit an authority lets a job's reads run:
// over any window of length w a job reads at most limit × (w + Burst).
const Burst = 100 * time.Millisecond

// idleAfter is how long an authority keeps the budget of a job nobody asks
// about.
const idleAfter = 2 * time.Minute

// Authority keeps the byte budgets of the jobs it is the authority for. It
// is safe for concurrent use.
type Authority struct {
	// Now is the clock; nil is time.Now.
	Now func() time.Time

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
}

func (a *Authority) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Acquire grants n bytes of job's budget and returns how long the caller
// waits before reading them. limit (bytes/s, ≥ 1) is the job's limit as the
// caller knows it; the authority keeps the one with the highest version.
func (a *Authority) Acquire(job string, n, limit, version int64) time.Duration {
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
		b = &budget{limit: limit, version: version, tat: now}
		a.jobs[job] = b
	}
	if version >= b.version {
		b.limit, b.version = max(limit, 1), version
	}
	b.seen = now
	start := b.tat
	if start.Before(now) {
		start = now
	}
	b.tat = start.Add(bytesTime(n, b.limit))
	return max(b.tat.Sub(now)-Burst, 0)
}

// bytesTime is how long n bytes take at limit bytes/s.
func bytesTime(n, limit int64) time.Duration {
	return time.Duration(float64(n) / float64(limit) * float64(time.Second))
}
