package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/startup"
)

// JoinOptions configure a node's stay in the registry.
type JoinOptions struct {
	// HeartbeatInterval between heartbeats. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// ExpireAfter is passed to the registry when this node starts it.
	// Default DefaultExpireAfter.
	ExpireAfter time.Duration
	// Logger for failed heartbeats. Default slog.Default().
	Logger *slog.Logger
}

// Registration is a node's stay in the registry: it heartbeats until Leave
// or Abandon.
type Registration struct {
	c      client.Client
	member ring.Member
	opts   JoinOptions
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Join announces m to the registry (starting the registry if needed) and
// keeps announcing it every HeartbeatInterval. The first heartbeat is sent
// before Join returns: it is retried while the error may go away (see
// package startup) until ctx's deadline, so an unreachable Temporal fails
// here, with the last error.
func Join(ctx context.Context, c client.Client, m ring.Member, opts JoinOptions) (*Registration, error) {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.ExpireAfter <= 0 {
		opts.ExpireAfter = DefaultExpireAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HeartbeatInterval >= opts.ExpireAfter {
		return nil, fmt.Errorf("membership: heartbeat interval %s must be shorter than the expiry %s", opts.HeartbeatInterval, opts.ExpireAfter)
	}
	r := &Registration{c: c, member: m, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	if err := startup.Retry(ctx, "the membership registry to take "+m.ID+"'s first heartbeat", r.heartbeat); err != nil {
		return nil, fmt.Errorf("join the membership registry: %w", err)
	}
	go r.loop()
	return r, nil
}

func (r *Registration) loop() {
	defer close(r.done)
	t := time.NewTicker(r.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.opts.HeartbeatInterval)
			if err := r.heartbeat(ctx); err != nil {
				r.opts.Logger.Warn("membership heartbeat failed", "node", r.member.ID, "err", err)
			}
			cancel()
		}
	}
}

func (r *Registration) heartbeat(ctx context.Context) error {
	_, err := r.c.SignalWithStartWorkflow(ctx, WorkflowID, SignalHeartbeat, Heartbeat{Member: r.member},
		client.StartWorkflowOptions{ID: WorkflowID, TaskQueue: TaskQueue},
		WorkflowType, RegistryInput{ExpireAfter: r.opts.ExpireAfter})
	return err
}

// Member is the record this registration announces.
func (r *Registration) Member() ring.Member { return r.member }

// Leave stops heartbeating and removes the node from the registry at once.
// It returns when the registry no longer lists the node (or after
// leaveConfirmTimeout): a caller that stops its membership worker next may
// be the one the registry's task waits for, so the leave must be applied
// while that worker still runs.
func (r *Registration) Leave(ctx context.Context) error {
	r.Abandon()
	err := r.c.SignalWorkflow(ctx, WorkflowID, "", SignalLeave, Leave{ID: r.member.ID})
	if err != nil {
		return fmt.Errorf("leave the membership registry: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, leaveConfirmTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// Queries see every signal delivered before them.
		val, err := r.c.QueryWorkflow(ctx, WorkflowID, "", QueryMembers)
		var snap Snapshot
		if err == nil && val.Get(&snap) == nil && !snap.has(r.member.ID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // the signal is in; the registry applies it on its own
		case <-tick.C:
		}
	}
}

const leaveConfirmTimeout = 5 * time.Second

// Abandon stops heartbeating without leaving: the registry drops the node
// after ExpireAfter, as if it had died. Leave calls it; tests use it alone.
func (r *Registration) Abandon() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// CheckIdentity fails when another live member already announces the
// identity of m: two nodes with one identity would split the same ring
// points, so the second one must not start. It waits for the registry to
// answer (View.Await).
func CheckIdentity(ctx context.Context, v *View, m ring.Member) error {
	snap, err := v.Await(ctx)
	if err != nil {
		return err
	}
	for _, rec := range snap.Members {
		if rec.Member.ID != m.ID && rec.Member.Identity == m.Identity {
			return fmt.Errorf("%w: node %s (%s:%d) already uses identity %s; give this node another --identity-name or --advertise-host",
				errDuplicateIdentity, rec.Member.ID, rec.Member.Host, rec.Member.HTTPPort, m.Identity)
		}
	}
	return nil
}

var errDuplicateIdentity = errors.New("duplicate ring identity")

// WorkerOptions are the options for a worker on TaskQueue: a short sticky
// timeout, so that registry tasks stuck on a dead worker's sticky queue
// move to a live worker quickly (it is part of the failure bound).
func WorkerOptions() worker.Options {
	return worker.Options{StickyScheduleToStartTimeout: StickyTimeout}
}
