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

// Owners returns the k owners of uri, primary first.
func (p RingPlacement) Owners(ctx context.Context, uri string, k int) ([]activities.NodeRef, error) {
	r, err := p.Current(ctx)
	if err != nil {
		return nil, err
	}
	return refs(r.Owners(uri, k)), nil
}

// LiveNodes returns the members of the current ring.
func (p RingPlacement) LiveNodes(ctx context.Context) ([]activities.NodeRef, error) {
	r, err := p.Current(ctx)
	if err != nil {
		return nil, err
	}
	return refs(r.Members()), nil
}

func refs(ms []ring.Member) []activities.NodeRef {
	out := make([]activities.NodeRef, len(ms))
	for i, m := range ms {
		out[i] = activities.NodeRef{ID: m.ID, TaskQueue: m.TaskQueue}
		if m.Host != "" && m.GRPCPort > 0 {
			out[i].Addr = net.JoinHostPort(m.Host, strconv.Itoa(m.GRPCPort))
		}
	}
	return out
}
