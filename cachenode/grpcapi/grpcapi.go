// Package grpcapi serves a cache node's gRPC data service
// (cachenodepb.CacheNode) from its page store: batch loads with a per-file
// outcome and a per-call bandwidth limit, streamed range reads, stat, evict
// and node statistics. Errors carry gRPC codes mapped from the storage
// sentinels (NotFound, PermissionDenied, InvalidArgument, OutOfRange,
// AlreadyExists, Unavailable, FailedPrecondition for a file that changed
// while being read).
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/ferryio/ferry/cachenode/cachenodepb"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
)

// Service implements cachenodepb.CacheNodeServer.
type Service struct {
	pb.UnimplementedCacheNodeServer
	NodeID   string
	Store    *pagestore.Store
	Resolver *storage.Resolver
}

var _ pb.CacheNodeServer = (*Service)(nil)

// Register adds the service to s.
func (svc *Service) Register(s *grpc.Server) { pb.RegisterCacheNodeServer(s, svc) }

// Dial connects to a node's gRPC address (host:port). Without options the
// connection is plaintext and sends no token; nodes that serve TLS and
// check tokens are dialled with grpc.WithTransportCredentials and
// grpc.WithPerRPCCredentials in opts, which take precedence.
func Dial(target string, opts ...grpc.DialOption) (pb.CacheNodeClient, *grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, nil, err
	}
	return pb.NewCacheNodeClient(conn), conn, nil
}

const (
	defaultParallelism = 4
	maxParallelism     = 64
	maxBatch           = 10000
	// chunkSize bounds one streamed message, well under gRPC's 4 MiB
	// default receive limit.
	chunkSize = 1 << 20
)

// LoadFiles loads a batch of files.
func (svc *Service) LoadFiles(ctx context.Context, req *pb.LoadFilesRequest) (*pb.LoadFilesResponse, error) {
	if len(req.Files) > maxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "%d files in one call; at most %d", len(req.Files), maxBatch)
	}
	if req.BandwidthBytesPerSecond < 0 {
		return nil, status.Error(codes.InvalidArgument, "bandwidth_bytes_per_second must not be negative")
	}
	par := int(req.Parallelism)
	if par <= 0 {
		par = defaultParallelism
	}
	par = min(par, maxParallelism)
	opts := pagestore.LoadOptions{MetadataOnly: req.MetadataOnly, SkipIfExists: req.SkipIfCached}
	if bps := req.BandwidthBytesPerSecond; bps > 0 {
		// The burst must hold the largest WaitN the store makes; a quarter
		// second's worth keeps the pace smooth at high rates.
		opts.Limiter = rate.NewLimiter(rate.Limit(bps), int(max(pagestore.LimiterChunk, bps/4)))
	}

	results := make([]*pb.FileResult, len(req.Files))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, f := range req.Files {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = svc.loadOne(ctx, f, opts)
		}()
	}
	wg.Wait()
	// What the answer reports loaded must survive a kill of this process:
	// the caller (a batch making replicas) counts it done.
	if err := svc.Store.SyncTo(svc.Store.WriteMark()); err != nil {
		return nil, status.Errorf(codes.Unavailable, "make the loaded files durable: %v", err)
	}

	resp := &pb.LoadFilesResponse{Results: results}
	for _, r := range results {
		switch r.Outcome {
		case pb.Outcome_OUTCOME_LOADED:
			resp.Loaded++
		case pb.Outcome_OUTCOME_SKIPPED:
			resp.Skipped++
		case pb.Outcome_OUTCOME_ALREADY_CACHED:
			resp.Skipped++
			resp.AlreadyCached++
		default:
			resp.Failed++
			continue // its partial bytes stay in its own result only
		}
		resp.BytesLoaded += r.BytesLoaded
		resp.BytesSkipped += r.BytesSkipped
	}
	return resp, nil
}

// CachedFiles tells which files are cached complete at exactly the size and
// version given. It reads the page store's index only: no storage system
// is asked, nothing is loaded, and no access is recorded (a load that
// finds a file so reports it ALREADY_CACHED and touches nothing either).
func (svc *Service) CachedFiles(ctx context.Context, req *pb.CachedFilesRequest) (*pb.CachedFilesResponse, error) {
	if len(req.Files) > maxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "%d files in one call; at most %d", len(req.Files), maxBatch)
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	refs := make([]pagestore.FileRef, len(req.Files))
	for i, f := range req.Files {
		refs[i] = pagestore.FileRef{URI: f.URI(), Size: f.GetSize(), Version: f.GetVersion()}
	}
	cached, err := svc.Store.CachedComplete(refs)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CachedFilesResponse{Cached: cached}, nil
}

func (svc *Service) loadOne(ctx context.Context, f *pb.FileRef, opts pagestore.LoadOptions) *pb.FileResult {
	ref := pagestore.FileRef{URI: f.URI(), Size: f.GetSize(), Version: f.GetVersion()}
	res, err := svc.Store.LoadFile(ctx, ref, opts, nil)
	out := &pb.FileResult{BytesLoaded: res.BytesLoaded, BytesSkipped: res.BytesSkipped}
	out.SetURI(ref.URI)
	switch {
	case err != nil:
		out.Outcome = pb.Outcome_OUTCOME_FAILED
		out.Error = err.Error()
		out.Retryable = storage.IsRetryable(err)
		out.ErrorKind = errorKind(err)
	case res.Outcome == pagestore.Skipped:
		out.Outcome = pb.Outcome_OUTCOME_SKIPPED
	case res.Outcome == pagestore.AlreadyCached:
		out.Outcome = pb.Outcome_OUTCOME_ALREADY_CACHED
	default:
		out.Outcome = pb.Outcome_OUTCOME_LOADED
	}
	return out
}

// errorKind names the class of a load failure.
func errorKind(err error) string {
	switch {
	case errors.Is(err, pagestore.ErrChanged):
		return "changed"
	case errors.Is(err, pagestore.ErrTooLarge):
		return "too_large"
	case errors.Is(err, pagestore.ErrEvicted):
		return "evicted"
	}
	switch kind := storage.Kind(err); {
	case errors.Is(kind, storage.ErrNotFound):
		return "not_found"
	case errors.Is(kind, storage.ErrPermission):
		return "permission"
	case errors.Is(kind, storage.ErrExists):
		return "exists"
	case errors.Is(kind, storage.ErrInvalidPath):
		return "invalid_path"
	case errors.Is(kind, storage.ErrOutOfRange):
		return "out_of_range"
	case errors.Is(kind, storage.ErrUnavailable):
		return "unavailable"
	}
	return "internal"
}

// ReadRange streams a range of a file.
func (svc *Service) ReadRange(req *pb.ReadRangeRequest, stream grpc.ServerStreamingServer[pb.ReadRangeChunk]) error {
	ctx := stream.Context()
	uri := req.URI()
	if _, err := storage.ParseURI(uri); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if req.Offset < 0 {
		return status.Errorf(codes.InvalidArgument, "negative offset %d", req.Offset)
	}
	if req.Length != nil && *req.Length < 0 {
		return status.Errorf(codes.InvalidArgument, "negative length %d", *req.Length)
	}
	f, err := svc.Store.Resolve(ctx, uri)
	if err != nil {
		return toStatus(err)
	}
	if req.Offset > f.Size {
		return status.Errorf(codes.OutOfRange, "offset %d is past the end of %s (%d bytes)", req.Offset, f.URI, f.Size)
	}
	n := int64(-1)
	if req.Length != nil {
		n = *req.Length
	}
	w := &chunkWriter{stream: stream, off: req.Offset, first: fileInfo(f)}
	if _, err := svc.Store.ReadRange(ctx, f, req.Offset, n, w); err != nil {
		return toStatus(err)
	}
	if w.first != nil { // nothing was sent: an empty range still says what the file is
		return stream.Send(&pb.ReadRangeChunk{File: w.first, Offset: req.Offset})
	}
	return nil
}

// chunkWriter sends what it is given as chunks of at most chunkSize.
type chunkWriter struct {
	stream grpc.ServerStreamingServer[pb.ReadRangeChunk]
	off    int64
	first  *pb.FileInfo
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunkSize)
		msg := &pb.ReadRangeChunk{File: w.first, Offset: w.off, Data: p[:n]}
		w.first = nil
		if err := w.stream.Send(msg); err != nil {
			return written, err
		}
		w.off += int64(n)
		written += n
		p = p[n:]
	}
	return written, nil
}

// Stat describes a file or directory.
func (svc *Service) Stat(ctx context.Context, req *pb.StatRequest) (*pb.StatResponse, error) {
	uri := req.URI()
	if _, err := storage.ParseURI(uri); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	st, err := svc.Resolver.For(uri)
	if err != nil {
		return nil, toStatus(err)
	}
	e, err := st.Stat(ctx, uri)
	if err != nil {
		return nil, toStatus(err)
	}
	if e.IsDir {
		info := &pb.FileInfo{FileId: pagestore.FileID(uri), IsDir: true, Version: e.Version, ContentHash: e.ContentHash}
		info.SetURI(uri)
		if !e.ModTime.IsZero() {
			info.ModTimeMs = e.ModTime.UnixMilli()
		}
		return &pb.StatResponse{File: info}, nil
	}
	f, err := svc.Store.Resolve(ctx, uri)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.StatResponse{File: fileInfo(f)}, nil
}

func fileInfo(f pagestore.File) *pb.FileInfo {
	info := &pb.FileInfo{
		FileId: f.ID, Size: f.Size, Version: f.Version, ContentHash: f.ContentHash,
		PageSize: f.PageSize, Pages: f.Pages(), CachedPages: f.CachedPages, CachedBytes: f.CachedBytes,
		FullyCached: f.FullyCached(),
	}
	info.SetURI(f.URI)
	if !f.ModTime.IsZero() {
		info.ModTimeMs = f.ModTime.UnixMilli()
	}
	return info
}

// Evict removes a URI prefix from the cache.
func (svc *Service) Evict(ctx context.Context, req *pb.EvictRequest) (*pb.EvictResponse, error) {
	prefix := req.Prefix()
	if _, err := storage.ParseURI(prefix); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "uri_prefix: %v", err)
	}
	res, err := svc.Store.Evict(ctx, prefix)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.EvictResponse{Files: res.Files, Pages: res.Pages, Bytes: res.Bytes}, nil
}

// NodeStats reports the store's counters.
func (svc *Service) NodeStats(ctx context.Context, _ *pb.NodeStatsRequest) (*pb.NodeStatsResponse, error) {
	s := svc.Store.Stats()
	return &pb.NodeStatsResponse{
		NodeId: svc.NodeID, CapacityBytes: s.Capacity, UsedBytes: s.UsedBytes, Pages: s.Pages,
		PageSize: svc.Store.PageSize(), Hits: s.Hits, Misses: s.Misses, BytesServed: s.BytesServed,
		BytesFromStorage: s.BytesFromStorage, PagesStored: s.PagesStored, PagesEvicted: s.PagesEvicted,
		PagesCorrupt: s.PagesCorrupt, IndexWrites: s.IndexWrites, IndexSyncedWrites: s.IndexSyncedWrites,
	}, nil
}

// toStatus maps an error to a gRPC status.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, pagestore.ErrChanged):
		code = codes.FailedPrecondition
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		switch kind := storage.Kind(err); {
		case errors.Is(kind, storage.ErrNotFound):
			code = codes.NotFound
		case errors.Is(kind, storage.ErrPermission):
			code = codes.PermissionDenied
		case errors.Is(kind, storage.ErrExists):
			code = codes.AlreadyExists
		case errors.Is(kind, storage.ErrInvalidPath):
			code = codes.InvalidArgument
		case errors.Is(kind, storage.ErrOutOfRange):
			code = codes.OutOfRange
		case errors.Is(kind, storage.ErrUnavailable):
			code = codes.Unavailable
		}
	}
	return status.Error(code, fmt.Sprint(err))
}
