package worker

import (
	"context"
	"net"
	"strconv"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/ring"
)

// RingPlacement answers placement questions from the current ring, as read
// by Current (typically the membership view of the process).
type RingPlacement struct {
	Current func(ctx context.Context) (*ring.Ring, error)
}

var _ activities.Placement = RingPlacement{}

// Primaries returns the members of the current ring and the ID of the
// first owner of each of uris on it.
func (p RingPlacement) Primaries(ctx context.Context, uris []string) (activities.Members, []string, error) {
	r, err := p.Current(ctx)
	if err != nil {
		return activities.Members{}, nil, err
	}
	owners := make([]string, len(uris))
	for i, u := range uris {
		if m, ok := r.Owner(u); ok {
			owners[i] = m.ID
		}
	}
	return members(r), owners, nil
}

// LiveNodes returns the members of the current ring.
func (p RingPlacement) LiveNodes(ctx context.Context) (activities.Members, error) {
	r, err := p.Current(ctx)
	if err != nil {
		return activities.Members{}, err
	}
	return members(r), nil
}

func members(r *ring.Ring) activities.Members {
	ms := r.Members()
	out := make([]activities.NodeRef, len(ms))
	for i, m := range ms {
		out[i] = activities.NodeRef{ID: m.ID, TaskQueue: m.TaskQueue}
		if m.Host != "" && m.GRPCPort > 0 {
			out[i].Addr = net.JoinHostPort(m.Host, strconv.Itoa(m.GRPCPort))
		}
	}
	return activities.Members{Nodes: out, AsOf: r.AsOf}
}
