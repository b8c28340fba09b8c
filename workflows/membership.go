package workflows

import (
	"sort"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/cachenode/ring"
)

// RegisterMembership registers the membership registry workflow under its
// contract name. Every cache node and every coordinator registers it on a
// worker polling membership.TaskQueue, so the registry outlives any one of
// them.
func RegisterMembership(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(MembershipWorkflow, workflow.RegisterOptions{Name: membership.WorkflowType})
}

// MembershipWorkflow is the registry of live cache nodes (the contract and
// the reasons are in package membership). Nodes signal heartbeats, carrying
// their ring.Member record, and a leave when they stop cleanly; the workflow
// stamps each member with the workflow time of its last heartbeat, removes
// members silent for ExpireAfter with a timer set for the earliest expiry,
// and answers the members query. It continues as new after
// MaxSignalsPerRun signals (or when Temporal suggests it), draining pending
// signals first and carrying the members over.
func MembershipWorkflow(ctx workflow.Context, in membership.RegistryInput) error {
	if in.ExpireAfter <= 0 {
		in.ExpireAfter = membership.DefaultExpireAfter
	}
	if in.MaxSignalsPerRun <= 0 {
		in.MaxSignalsPerRun = membership.DefaultMaxSignalsPerRun
	}
	reg := registry{expireAfter: in.ExpireAfter, members: map[string]*membership.Record{}}
	for _, r := range in.Members {
		reg.members[r.Member.ID] = &membership.Record{Member: r.Member, JoinedAt: r.JoinedAt, LastSeen: r.LastSeen}
	}
	err := workflow.SetQueryHandler(ctx, membership.QueryMembers, func() (membership.Snapshot, error) {
		return membership.Snapshot{Members: reg.records(), Now: workflow.Now(ctx), ExpireAfter: in.ExpireAfter}, nil
	})
	if err != nil {
		return err
	}

	heartbeats := workflow.GetSignalChannel(ctx, membership.SignalHeartbeat)
	leaves := workflow.GetSignalChannel(ctx, membership.SignalLeave)
	onHeartbeat := func(c workflow.ReceiveChannel, _ bool) {
		var h membership.Heartbeat
		c.Receive(ctx, &h)
		reg.heartbeat(h.Member, workflow.Now(ctx))
	}
	onLeave := func(c workflow.ReceiveChannel, _ bool) {
		var l membership.Leave
		c.Receive(ctx, &l)
		delete(reg.members, l.ID)
	}

	var sweep workflow.Future // the expiry timer, nil when none is set
	signals := 0
	for {
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(heartbeats, func(c workflow.ReceiveChannel, more bool) { onHeartbeat(c, more); signals++ })
		sel.AddReceive(leaves, func(c workflow.ReceiveChannel, more bool) { onLeave(c, more); signals++ })
		if sweep != nil {
			sel.AddFuture(sweep, func(f workflow.Future) { _ = f.Get(ctx, nil); sweep = nil })
		}
		sel.Select(ctx)

		now := workflow.Now(ctx)
		reg.expire(now)
		// Heartbeats only move expiries later, so a timer that is set stays
		// the earliest one; a fired timer is replaced by one for the new
		// earliest expiry.
		if sweep == nil {
			if next, ok := reg.nextExpiry(); ok {
				sweep = workflow.NewTimer(ctx, max(next.Sub(now), 100*time.Millisecond))
			}
		}

		if signals >= in.MaxSignalsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			drain(ctx, heartbeats, leaves, &reg)
			return workflow.NewContinueAsNewError(ctx, membership.WorkflowType, membership.RegistryInput{
				ExpireAfter:      in.ExpireAfter,
				MaxSignalsPerRun: in.MaxSignalsPerRun,
				Members:          reg.records(),
			})
		}
	}
}

// drain applies every signal already delivered, so that continue-as-new
// loses none.
func drain(ctx workflow.Context, heartbeats, leaves workflow.ReceiveChannel, reg *registry) {
	for {
		var h membership.Heartbeat
		var l membership.Leave
		switch {
		case heartbeats.ReceiveAsync(&h):
			reg.heartbeat(h.Member, workflow.Now(ctx))
		case leaves.ReceiveAsync(&l):
			delete(reg.members, l.ID)
		default:
			return
		}
	}
}

// registry is the workflow's member table.
type registry struct {
	expireAfter time.Duration
	members     map[string]*membership.Record
}

func (r *registry) heartbeat(m ring.Member, now time.Time) {
	rec, ok := r.members[m.ID]
	if !ok {
		rec = &membership.Record{JoinedAt: now}
		r.members[m.ID] = rec
	}
	rec.Member = m
	rec.LastSeen = now
}

// expire removes members silent for expireAfter.
func (r *registry) expire(now time.Time) {
	for _, id := range r.ids() {
		if !now.Before(r.members[id].LastSeen.Add(r.expireAfter)) {
			delete(r.members, id)
		}
	}
}

// nextExpiry is when the next member expires, if there is one.
func (r *registry) nextExpiry() (time.Time, bool) {
	var next time.Time
	for _, id := range r.ids() {
		at := r.members[id].LastSeen.Add(r.expireAfter)
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// ids lists member IDs sorted, so iteration never depends on map order.
func (r *registry) ids() []string {
	ids := make([]string, 0, len(r.members))
	//workflowcheck:ignore the keys are sorted below
	for id := range r.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (r *registry) records() []membership.Record {
	out := make([]membership.Record, 0, len(r.members))
	for _, id := range r.ids() {
		out = append(out, *r.members[id])
	}
	return out
}
