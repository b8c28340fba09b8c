package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"google.golang.org/grpc"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/cachenodepb"
	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/storage"
)

// GRPCReplicator makes the further copies of a file that a load with
// replicas > 1 asks for: it asks each other owner of the file on the ring
// to load it, through that node's gRPC service.
type GRPCReplicator struct {
	// Self is the ID of the node the batch runs on.
	Self string
	// Ring is the node's current view of the ring.
	Ring func(ctx context.Context) (*ring.Ring, error)
	// DialOptions are added to every connection to another node (TLS, the
	// process's token).
	DialOptions []grpc.DialOption

	conns nodeConns
}

var _ activities.Replicator = (*GRPCReplicator)(nil)

// Replicate loads f on the first replicas owners of f other than Self.
func (r *GRPCReplicator) Replicate(ctx context.Context, f activities.CacheFile, replicas int, opts activities.CacheLoadOptions) error {
	rg, err := r.Ring(ctx)
	if err != nil {
		return storage.NewError("replicate", f.URI, storage.ErrUnavailable, err)
	}
	owners := rg.Owners(f.URI, replicas)
	if len(owners) < replicas {
		return storage.NewError("replicate", f.URI, storage.ErrUnavailable,
			fmt.Errorf("replicas=%d but only %d cache nodes are live", replicas, len(owners)))
	}
	ref := &cachenodepb.FileRef{Size: f.Size, Version: f.Version}
	ref.SetURI(f.URI) // bytes: a name need not be UTF-8
	if f.Size < 0 {
		ref.Size, ref.Version = 0, ""
	}
	for _, o := range owners {
		if o.ID == r.Self {
			continue
		}
		c, err := r.client(net.JoinHostPort(o.Host, strconv.Itoa(o.GRPCPort)))
		if err != nil {
			return storage.NewError("replicate", f.URI, storage.ErrUnavailable, err)
		}
		resp, err := c.LoadFiles(ctx, &cachenodepb.LoadFilesRequest{
			Files: []*cachenodepb.FileRef{ref}, MetadataOnly: opts.MetadataOnly, SkipIfCached: opts.SkipIfExists,
		})
		if err != nil {
			return storage.NewError("replicate", f.URI, storage.ErrUnavailable, fmt.Errorf("node %s: %w", o.ID, err))
		}
		if res := resp.GetResults(); len(res) == 1 && res[0].GetOutcome() == cachenodepb.Outcome_OUTCOME_FAILED {
			kind := storage.ErrInvalidPath
			if res[0].GetRetryable() {
				kind = storage.ErrUnavailable
			}
			return storage.NewError("replicate", f.URI, kind, fmt.Errorf("node %s: %s", o.ID, res[0].GetError()))
		}
	}
	return nil
}

func (r *GRPCReplicator) client(addr string) (cachenodepb.CacheNodeClient, error) {
	return r.conns.client(addr, r.DialOptions)
}

// Close closes the connections to the other nodes.
func (r *GRPCReplicator) Close() error { return r.conns.close() }

// nodeConns keeps one gRPC connection per node address.
type nodeConns struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// client returns a client of the node at addr, dialled with opts the
// first time.
func (n *nodeConns) client(addr string, opts []grpc.DialOption) (cachenodepb.CacheNodeClient, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if conn, ok := n.conns[addr]; ok {
		return cachenodepb.NewCacheNodeClient(conn), nil
	}
	c, conn, err := grpcapi.Dial(addr, opts...)
	if err != nil {
		return nil, err
	}
	if n.conns == nil {
		n.conns = map[string]*grpc.ClientConn{}
	}
	n.conns[addr] = conn
	return c, nil
}

// close closes every connection.
func (n *nodeConns) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for _, c := range n.conns {
		errs = append(errs, c.Close())
	}
	n.conns = nil
	return errors.Join(errs...)
}
