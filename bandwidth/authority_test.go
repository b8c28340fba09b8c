package bandwidth

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestAuthorityHoldsTheLimit asks for far more than the limit from several
// callers and checks that the bytes granted up to each moment stay within
// limit × elapsed + Burst, and that they reach the limit.
func TestAuthorityHoldsTheLimit(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	a := &Authority{Now: clk.now}
	const limit = 1_000_000
	start := clk.t
	// Four callers each hold one lease on order; each asks again when its
	// lease may be used.
	ready := make([]time.Time, 4)
	for i := range ready {
		ready[i] = clk.t
	}
	type grant struct {
		at time.Time
		n  int64
	}
	var grants []grant
	var granted int64
	for clk.t.Sub(start) < 10*time.Second {
		// The caller whose lease is due next asks again.
		i := 0
		for j := range ready {
			if ready[j].Before(ready[i]) {
				i = j
			}
		}
		if ready[i].After(clk.t) {
			clk.t = ready[i]
		}
		const lease = 50_000
		d := a.Acquire("job", "", lease, limit, 0).Delay
		ready[i] = clk.t.Add(d)
		granted += lease
		grants = append(grants, grant{at: clk.t.Add(d), n: lease})
		// Bytes usable by now: those whose wait has passed. Bound them by
		// what the limit allows.
		var usable int64
		for _, g := range grants {
			if !g.at.After(clk.t) {
				usable += g.n
			}
		}
		allowed := int64(float64(limit)*clk.t.Sub(start).Seconds()) + int64(float64(limit)*Burst.Seconds()) + lease
		if usable > allowed {
			t.Fatalf("at %v: %d bytes usable, the limit allows %d", clk.t.Sub(start), usable, allowed)
		}
	}
	rate := float64(granted) / clk.t.Sub(start).Seconds()
	if rate < 0.95*limit || rate > 1.05*limit {
		t.Fatalf("granted %.0f B/s against a limit of %d", rate, limit)
	}
}

// TestAuthorityFollowsNewestLimit: a limit with a lower version than one
// seen is ignored; a higher one takes over.
func TestAuthorityFollowsNewestLimit(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	a := &Authority{Now: clk.now}
	// Spend the burst, then 1 MB at 1 MB/s is a second more.
	a.Acquire("j", "", 100_000, 1_000_000, 1)
	if d := a.Acquire("j", "", 1_000_000, 1_000_000, 1).Delay; d < 900*time.Millisecond || d > 1100*time.Millisecond {
		t.Fatalf("1 MB at 1 MB/s: wait %v", d)
	}
	// An older version's higher limit does not apply.
	if d := a.Acquire("j", "", 1_000_000, 100_000_000, 0).Delay; d < 1900*time.Millisecond {
		t.Fatalf("stale limit applied: wait %v", d)
	}
	// A newer version's does: the 2.1 MB still owed at 1 MB/s are 0.21 s
	// at 10 MB/s, and 10 MB at 10 MB/s is one more second.
	d := a.Acquire("j", "", 10_000_000, 10_000_000, 2).Delay
	if d < 1050*time.Millisecond || d > 1150*time.Millisecond {
		t.Fatalf("after raising the limit: wait %v", d)
	}
	// Jobs do not share budgets.
	if d := a.Acquire("other", "", 1000, 1_000_000, 0).Delay; d != 0 {
		t.Fatalf("another job waits %v", d)
	}
}

// TestAuthorityRaisedLimitForgivesSlowDebt: a job slowed to 1 B/s that was
// granted a 64 KiB read owes 18 h at that rate; raised to 50 MiB/s (by a
// caller or by the workflow's limit read by Refresh), its next lease comes
// at once instead of after those 18 h.
func TestAuthorityRaisedLimitForgivesSlowDebt(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var version atomic.Int64
	version.Store(1)
	a := &Authority{Now: clk.now, Refresh: func(context.Context, string) (int64, int64, error) {
		if version.Load() == 1 {
			return 1, 1, nil
		}
		return 50 << 20, 2, nil
	}}
	if d := a.Acquire("j", "", 64<<10, 1, 1).Delay; d < time.Hour {
		t.Fatalf("64 KiB at 1 B/s: wait %v", d)
	}
	if d := a.Acquire("j", "", 64<<10, 50<<20, 2).Delay; d > 10*time.Millisecond {
		t.Fatalf("after raising the limit to 50 MiB/s: wait %v", d)
	}
	// The same through the workflow's limit, read every RefreshEvery.
	a.Acquire("k", "wf", 64<<10, 1, 1)
	version.Store(2)
	clk.t = clk.t.Add(RefreshEvery)
	a.Acquire("k", "wf", 1, 1, 1) // starts the read
	ferrytest.Eventually(t, 10*time.Second, func() error {
		if g := a.Acquire("k", "wf", 64<<10, 1, 1); g.Version != 2 || g.Delay > 10*time.Millisecond {
			return fmt.Errorf("version %d, wait %v", g.Version, g.Delay)
		}
		return nil
	})
}

// TestAuthorityReadsChangedLimit: the authority reads a job's limit from
// its workflow every RefreshEvery and follows a newer one, also the removal
// of the limit (0), while a failed read changes nothing.
func TestAuthorityReadsChangedLimit(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var reads atomic.Int64
	var fail atomic.Bool
	a := &Authority{Now: clk.now, Refresh: func(_ context.Context, wf string) (int64, int64, error) {
		reads.Add(1)
		if wf != "wf-1" {
			return 0, 0, fmt.Errorf("unknown workflow %q", wf)
		}
		if fail.Load() {
			return 0, 0, errors.New("Temporal does not answer")
		}
		return 0, 3, nil
	}}
	want := func(limit, version int64) {
		t.Helper()
		ferrytest.Eventually(t, 10*time.Second, func() error {
			g := a.Acquire("j", "wf-1", 1000, 1_000_000, 1)
			if g.Limit != limit || g.Version != version {
				return fmt.Errorf("limit %d version %d", g.Limit, g.Version)
			}
			return nil
		})
	}
	fail.Store(true)
	a.Acquire("j", "wf-1", 1000, 1_000_000, 1)
	clk.t = clk.t.Add(RefreshEvery)
	a.Acquire("j", "wf-1", 1000, 1_000_000, 1)
	ferrytest.Eventually(t, 10*time.Second, func() error {
		if reads.Load() == 0 {
			return errors.New("not read yet")
		}
		return nil
	})
	want(1_000_000, 1)
	fail.Store(false)
	clk.t = clk.t.Add(RefreshEvery)
	want(0, 3)
	if g := a.Acquire("j", "wf-1", 1<<30, 1_000_000, 1); g.Delay != 0 {
		t.Fatalf("an unlimited job waits %v", g.Delay)
	}
}
