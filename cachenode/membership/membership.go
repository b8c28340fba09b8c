// Package membership decides which cache nodes are on the ring, and lets any
// process that has a Temporal client read the ring.
//
// # Mechanism: a registry kept by Temporal
//
// The registry is one long-running workflow, ID "ferry-membership" on task
// queue "ferry-membership" (its code is workflows.MembershipWorkflow). Every
// cache node:
//
//   - runs a Temporal worker on that task queue that registers the workflow
//     (coordinators do the same), so the registry survives any one process
//     dying: Temporal hands its next task to another worker, which replays
//     the history;
//   - sends a heartbeat signal with its Member record every HeartbeatInterval
//     (3 s) with SignalWithStart, which starts the registry if nobody has;
//   - sends a leave signal when it stops cleanly, which removes it at once.
//
// The workflow stamps each member with the workflow time of its last
// heartbeat and removes members not seen for ExpireAfter (8 s) itself, with a
// timer set for the earliest expiry: expiry happens in one place, so every
// reader sees the same member set. Readers (View) query the workflow and
// cache the answer for RefreshInterval (2 s).
//
// Failure bound: a node that dies without leaving (SIGKILL, power loss) sent
// its last heartbeat before it died, so the registry removes it at most
// ExpireAfter (8 s) after its death; up to StickyTimeout (2 s) more when the
// dead node was the worker holding the registry's sticky cache, since the
// expiry task then waits for Temporal to move it to another worker; and every
// reader sees the change within its RefreshInterval (2 s). A dead node
// therefore leaves every ring within 12 s, stated as FailureBound (15 s) to
// leave room for a slow Temporal. (Measured with real processes and SIGKILL:
// 7.8-8.2 s, see package e2e.) A node that comes back with the same ID and
// identity name rejoins with the same identity on its first heartbeat.
//
// Why not something else: Temporal is already the one service every Ferry
// process depends on and it keeps the registry durable and highly available;
// a gossip protocol or etcd would add a second distributed system to run, and
// node-to-node probing would not reach the coordinators, which talk only to
// Temporal. The cost is one small signal per node every 3 s; the workflow
// continues as new after MaxSignalsPerRun (500) signals, so its history stays
// short.
//
// The names, signals, query and payload types here are the registry's
// contract; the workflow in package workflows implements it, and this
// package does not import workflows (which imports the activities that use
// this package).
package membership

import (
	"sort"
	"time"

	"github.com/ferryio/ferry/cachenode/ring"
)

// Names of the registry workflow, its task queue, signals and query.
const (
	WorkflowID      = "ferry-membership"
	TaskQueue       = "ferry-membership"
	WorkflowType    = "FerryMembership"
	SignalHeartbeat = "heartbeat"
	SignalLeave     = "leave"
	QueryMembers    = "members"
)

// Timing defaults; see the package comment for the failure bound they give.
const (
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultExpireAfter       = 8 * time.Second
	DefaultRefreshInterval   = 2 * time.Second
	DefaultMaxSignalsPerRun  = 500
	// StickyTimeout is the sticky schedule-to-start timeout membership
	// workers should use: a registry task stuck on a dead worker's sticky
	// queue moves to another worker after this long.
	StickyTimeout = 2 * time.Second
	// FailureBound is the stated time within which a node that died without
	// leaving is off every reader's ring.
	FailureBound = 15 * time.Second
)

// RegistryInput starts (or continues) the registry workflow.
type RegistryInput struct {
	// ExpireAfter removes a member not seen for this long. Default
	// DefaultExpireAfter.
	ExpireAfter time.Duration
	// MaxSignalsPerRun continues the workflow as new after this many
	// signals. Default DefaultMaxSignalsPerRun.
	MaxSignalsPerRun int
	// Members carried over from the previous run.
	Members []Record
}

// Heartbeat is the payload of the heartbeat signal: the sender's record.
type Heartbeat struct {
	Member ring.Member
}

// Leave is the payload of the leave signal.
type Leave struct {
	ID string
}

// Record is one member as the registry knows it.
type Record struct {
	Member ring.Member
	// JoinedAt is the workflow time of the first heartbeat of this stay.
	JoinedAt time.Time
	// LastSeen is the workflow time of the latest heartbeat.
	LastSeen time.Time
}

// Snapshot is the answer of the members query.
type Snapshot struct {
	// Members, sorted by ID.
	Members []Record
	// Now is the workflow time of the registry's latest task.
	Now         time.Time
	ExpireAfter time.Duration
}

func (s Snapshot) has(id string) bool {
	for _, r := range s.Members {
		if r.Member.ID == id {
			return true
		}
	}
	return false
}

// Ring builds the placement ring of the snapshot's members, with the
// virtual-node count the members advertise (the largest, should they
// disagree, which is a misconfiguration), or virtualNodes when none does.
// When two members claim the same identity (a misconfiguration: two nodes
// started with the same identity name), the one that joined first keeps it.
func (s Snapshot) Ring(virtualNodes int) *ring.Ring {
	advertised := 0
	for _, r := range s.Members {
		advertised = max(advertised, r.Member.VirtualNodes)
	}
	if advertised > 0 {
		virtualNodes = advertised
	}
	recs := append([]Record(nil), s.Members...)
	sort.SliceStable(recs, func(i, j int) bool {
		if !recs[i].JoinedAt.Equal(recs[j].JoinedAt) {
			return recs[i].JoinedAt.Before(recs[j].JoinedAt)
		}
		return recs[i].Member.ID < recs[j].Member.ID
	})
	seen := map[ring.Identity]bool{}
	members := make([]ring.Member, 0, len(recs))
	for _, r := range recs {
		if seen[r.Member.Identity] {
			continue
		}
		seen[r.Member.Identity] = true
		members = append(members, r.Member)
	}
	rg := ring.New(members, virtualNodes)
	rg.AsOf = s.Now
	return rg
}
