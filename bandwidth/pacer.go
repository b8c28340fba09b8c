package bandwidth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/ferryio/ferry/bandwidth/bandwidthpb"
	"github.com/ferryio/ferry/cachenode/ring"
)

const (
	// leaseTime is how much of the limit one lease asks for.
	leaseTime = 50 * time.Millisecond
	// leaseTTL is how long after its grant a lease's bytes may be used.
	leaseTTL = 100 * time.Millisecond
	// minLease and maxLeaseBytes bound the size of a lease.
	minLease      = 4 << 10
	maxLeaseBytes = 4 << 20
	// callTimeout bounds one call to the authority.
	callTimeout = 2 * time.Second
	// retryAfter is how long a node paces on its own after the authority
	// did not answer, before it asks again.
	retryAfter = time.Second
	// authorityFor is how long a node keeps its choice of a job's
	// authority before it looks at the ring again.
	authorityFor = 5 * time.Second
	// idleLimiter is how long a job's limiter lives without use.
	idleLimiter = 2 * time.Minute
)

// AuthorityKey is the ring key whose owner is the authority of a job.
func AuthorityKey(jobID string) string { return "ferry-bandwidth/" + jobID }

// Pacer hands out the job limiters of one cache node. All the batches of a
// job on the node share one limiter, which takes leases from the job's
// authority. It is safe for concurrent use; the zero value paces every job
// with a local authority of its own (one process, one node).
type Pacer struct {
	// Self is the ID of this node.
	Self string
	// Ring is the node's current view of the ring; nil: this node alone.
	Ring func(ctx context.Context) (*ring.Ring, error)
	// Authority is this node's authority, the one it serves over gRPC; nil:
	// a private one.
	Authority *Authority
	// DialOptions are added to every connection to another node's
	// authority (TLS, the process's token).
	DialOptions []grpc.DialOption
	// Logger; nil is slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	local    *Authority
	limiters map[string]*JobLimiter
	conns    map[string]*grpc.ClientConn
	swept    time.Time
}

// Limiter returns the limiter of a job whose whole limit is limit bytes/s
// (≥ 1), shared by every batch of the job on this node. version orders
// limits changed while the job runs; workflowID is the job's workflow,
// where the authority reads such changes.
func (p *Pacer) Limiter(jobID, workflowID string, limit, version int64) *JobLimiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.limiters == nil {
		p.limiters = map[string]*JobLimiter{}
	}
	if now.Sub(p.swept) > idleLimiter {
		for id, l := range p.limiters {
			if l.idleSince(now) > idleLimiter {
				delete(p.limiters, id)
			}
		}
		p.swept = now
	}
	l := p.limiters[jobID]
	if l == nil {
		l = &JobLimiter{p: p, job: jobID, workflowID: workflowID, sem: make(chan struct{}, 1), used: now}
		p.limiters[jobID] = l
	}
	l.SetLimit(limit, version)
	return l
}

// Close closes the connections to other nodes.
func (p *Pacer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range p.conns {
		errs = append(errs, c.Close())
	}
	p.conns = nil
	return errors.Join(errs...)
}

func (p *Pacer) authority() *Authority {
	if p.Authority != nil {
		return p.Authority
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.local == nil {
		p.local = &Authority{}
	}
	return p.local
}

func (p *Pacer) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

// client returns a client of the authority at addr.
func (p *Pacer) client(addr string) (pb.BandwidthClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return pb.NewBandwidthClient(c), nil
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, p.DialOptions...)
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	p.conns[addr] = c
	return pb.NewBandwidthClient(c), nil
}

// JobLimiter paces the reads of one job's batches on one node. It
// satisfies the Limiter interfaces of packages activities and pagestore.
type JobLimiter struct {
	p          *Pacer
	job        string
	workflowID string
	// sem lets one caller at a time take bytes, so that a node has at most
	// one lease on order per job.
	sem chan struct{}

	mu             sync.Mutex
	limit, version int64
	used           time.Time
	// tokens are the bytes left of the last lease, usable until expires.
	tokens  int64
	expires time.Time
	// remote is the authority's address ("" for this node's own), chosen
	// at chosen; nodes is the ring's size then.
	remote string
	chosen time.Time
	nodes  int
	// down is when the authority last failed to answer; fallback paces
	// the job on this node alone meanwhile.
	down     time.Time
	fallback *Authority
}

// SetLimit changes the job's limit (bytes/s, 0: unlimited) if version is
// at least the current one.
func (l *JobLimiter) SetLimit(limit, version int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if version >= l.version {
		l.limit, l.version = max(limit, 0), version
	}
}

func (l *JobLimiter) idleSince(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.used)
}

// WaitN waits until n more bytes of the job's budget are this caller's.
func (l *JobLimiter) WaitN(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.sem }()
	now := time.Now()
	l.mu.Lock()
	l.used = now
	if now.After(l.expires) {
		l.tokens = 0
	}
	if l.tokens >= int64(n) {
		l.tokens -= int64(n)
		l.mu.Unlock()
		return nil
	}
	need := int64(n) - l.tokens
	limit, version := l.limit, l.version
	l.mu.Unlock()
	if limit <= 0 {
		return nil // the limit was removed while the job ran
	}

	ask := min(max(need, bytesFor(limit, leaseTime), minLease), max(need, maxLeaseBytes))
	for {
		g := l.acquire(ctx, ask, limit, version)
		if g.Version > version {
			l.SetLimit(g.Limit, g.Version)
			limit, version = g.Limit, g.Version
		}
		changed, err := l.wait(ctx, g.Delay, limit, version)
		if err != nil {
			return err
		}
		if !changed {
			break
		}
		// The limit changed during a long wait: ask again at the new one.
		l.mu.Lock()
		limit, version = l.limit, l.version
		l.mu.Unlock()
		if limit <= 0 {
			return nil
		}
		ask = min(max(need, bytesFor(limit, leaseTime), minLease), max(need, maxLeaseBytes))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens += ask - int64(n)
	l.expires = time.Now().Add(leaseTTL)
	return nil
}

// wait sleeps delay, the wait of a lease granted at limit (version). A
// wait longer than RefreshEvery (a limit of a few KB/s or less) is slept in
// steps, and ends early, with changed true, when the job's limit changes
// meanwhile: set on this node by a batch started since, or read from the
// authority, which follows the job's workflow. Without that a batch slowed
// to a few bytes/s would sleep for hours after its limit was raised.
func (l *JobLimiter) wait(ctx context.Context, delay time.Duration, limit, version int64) (changed bool, err error) {
	for delay > 0 {
		step := min(delay, RefreshEvery)
		t := time.NewTimer(step)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		}
		delay -= step
		if delay <= 0 {
			break
		}
		l.mu.Lock()
		newer := l.version > version
		l.mu.Unlock()
		if newer {
			return true, nil
		}
		if g := l.acquire(ctx, 1, limit, version); g.Version > version {
			l.SetLimit(g.Limit, g.Version)
			return true, nil
		}
	}
	return false, nil
}

// bytesFor is how many bytes d is worth at limit bytes/s.
func bytesFor(limit int64, d time.Duration) int64 {
	return int64(float64(limit) * d.Seconds())
}

// acquire takes n bytes from the job's authority, or from the node's own
// fallback budget while the authority does not answer, and returns the
// wait before they may be read.
func (l *JobLimiter) acquire(ctx context.Context, n, limit, version int64) Grant {
	addr, nodes := l.authorityAddr(ctx)
	l.mu.Lock()
	down := time.Since(l.down) < retryAfter
	l.mu.Unlock()
	if !down {
		if addr == "" {
			return l.p.authority().Acquire(l.job, l.workflowID, n, limit, version)
		}
		g, err := l.remoteAcquire(ctx, addr, n, limit, version)
		if err == nil {
			return g
		}
		if ctx.Err() == nil {
			l.p.logger().Warn("bandwidth authority unreachable; pacing this node's share alone", "job", l.job, "authority", addr, "err", err)
			l.mu.Lock()
			l.down = time.Now()
			l.mu.Unlock()
		}
	}
	l.mu.Lock()
	if l.fallback == nil {
		l.fallback = &Authority{}
	}
	fb := l.fallback
	l.mu.Unlock()
	share := max(limit/int64(max(nodes, 1)), 1)
	g := fb.Acquire(l.job, "", n, share, version)
	g.Limit = limit
	return g
}

func (l *JobLimiter) remoteAcquire(ctx context.Context, addr string, n, limit, version int64) (Grant, error) {
	c, err := l.p.client(addr)
	if err != nil {
		return Grant{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.Acquire(cctx, &pb.AcquireRequest{JobId: l.job, WorkflowId: l.workflowID, Bytes: n, Limit: limit, LimitVersion: version})
	if err != nil {
		return Grant{}, fmt.Errorf("acquire from %s: %w", addr, err)
	}
	return Grant{Delay: time.Duration(max(resp.GetDelayNanos(), 0)), Limit: resp.GetLimit(), Version: resp.GetLimitVersion()}, nil
}

// authorityAddr returns the gRPC address of the job's authority ("" when
// it is this node) and the number of nodes of the ring, looking at the
// ring at most every authorityFor.
func (l *JobLimiter) authorityAddr(ctx context.Context) (string, int) {
	l.mu.Lock()
	if !l.chosen.IsZero() && time.Since(l.chosen) < authorityFor {
		defer l.mu.Unlock()
		return l.remote, l.nodes
	}
	l.mu.Unlock()
	addr, nodes := "", 1
	if l.p.Ring != nil {
		rg, err := l.p.Ring(ctx)
		if err != nil {
			// Keep the last choice; it is asked again next time.
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.remote, max(l.nodes, 1)
		}
		nodes = max(rg.Len(), 1)
		if m, ok := rg.Owner(AuthorityKey(l.job)); ok && m.ID != l.p.Self {
			addr = net.JoinHostPort(m.Host, strconv.Itoa(m.GRPCPort))
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remote, l.nodes, l.chosen = addr, nodes, time.Now()
	return addr, nodes
}
