package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/cachenodepb"
)

// GRPCCacheIndex asks cache nodes, through their gRPC service
// (CachedFiles), which files they already hold complete at the listed
// version, so that the coordinator does not send them those files. A node
// that cannot answer (down, too slow, a build without CachedFiles, a
// token it refuses) is not asked again for restAfterFailure: its files are
// planned as usual meanwhile.
type GRPCCacheIndex struct {
	// DialOptions are added to every connection to a node (TLS, the
	// process's token).
	DialOptions []grpc.DialOption

	conns nodeConns
	mu    sync.Mutex
	// resting holds, per node address, until when it is not asked.
	resting map[string]time.Time
}

var _ activities.CacheIndex = (*GRPCCacheIndex)(nil)

const (
	// restAfterFailure is how long a node that failed to answer is left
	// alone.
	restAfterFailure = 30 * time.Second
	// cachedCallFiles and cachedCallBytes bound one CachedFiles call (the
	// node takes at most 10,000 files; gRPC messages at most 4 MiB): a
	// page of ordinary names is one call.
	cachedCallFiles = 5000
	cachedCallBytes = 2 << 20
)

// Cached implements activities.CacheIndex.
func (x *GRPCCacheIndex) Cached(ctx context.Context, node activities.NodeRef, files []activities.CacheFile) ([]bool, error) {
	if node.Addr == "" {
		return nil, fmt.Errorf("node %s: no gRPC address on the ring", node.ID)
	}
	if until, ok := x.restingUntil(node.Addr); ok {
		return nil, fmt.Errorf("node %s failed to answer recently, %w again before %s", node.ID, activities.ErrNotAsked, until.Format(time.RFC3339))
	}
	c, err := x.conns.client(node.Addr, x.DialOptions)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.ID, err)
	}
	held := make([]bool, 0, len(files))
	for start := 0; start < len(files); {
		req := &cachenodepb.CachedFilesRequest{}
		size := 0
		for end := start; end < len(files) && len(req.Files) < cachedCallFiles && (len(req.Files) == 0 || size < cachedCallBytes); end++ {
			f := files[end]
			ref := &cachenodepb.FileRef{Size: f.Size, Version: f.Version}
			ref.SetURI(f.URI)
			req.Files = append(req.Files, ref)
			size += len(f.URI) + len(f.Version) + 16
		}
		resp, err := c.CachedFiles(ctx, req)
		if err == nil && len(resp.GetCached()) != len(req.Files) {
			err = fmt.Errorf("answered for %d files of %d", len(resp.GetCached()), len(req.Files))
		}
		if err != nil {
			if ctx.Err() == nil {
				// The node failed, not the caller: leave it alone a while.
				x.rest(node.Addr)
			}
			return nil, fmt.Errorf("node %s: which files are cached: %w", node.ID, err)
		}
		held = append(held, resp.GetCached()...)
		start += len(req.Files)
	}
	return held, nil
}

func (x *GRPCCacheIndex) restingUntil(addr string) (time.Time, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	until, ok := x.resting[addr]
	if ok && !time.Now().Before(until) {
		delete(x.resting, addr)
		return time.Time{}, false
	}
	return until, ok
}

func (x *GRPCCacheIndex) rest(addr string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.resting == nil {
		x.resting = map[string]time.Time{}
	}
	x.resting[addr] = time.Now().Add(restAfterFailure)
}

// Close closes the connections to the nodes.
func (x *GRPCCacheIndex) Close() error { return x.conns.close() }
