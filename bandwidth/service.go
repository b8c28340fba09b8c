package bandwidth

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ferryio/ferry/bandwidth/bandwidthpb"
)

// maxLease bounds the bytes of one Acquire call.
const maxLease = 1 << 30

// AcquireMethod is the full gRPC name of Acquire, for access policies.
const AcquireMethod = "/ferry.bandwidth.v1.Bandwidth/Acquire"

// Service serves an Authority over gRPC.
type Service struct {
	pb.UnimplementedBandwidthServer
	Authority *Authority
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) { pb.RegisterBandwidthServer(g, s) }

// Acquire grants bytes of a job's budget.
func (s *Service) Acquire(_ context.Context, req *pb.AcquireRequest) (*pb.AcquireResponse, error) {
	switch {
	case req.GetJobId() == "":
		return nil, status.Error(codes.InvalidArgument, "job_id is required")
	case req.GetBytes() < 1 || req.GetBytes() > maxLease:
		return nil, status.Errorf(codes.InvalidArgument, "bytes must be between 1 and %d", maxLease)
	case req.GetLimit() < 1:
		return nil, status.Error(codes.InvalidArgument, "limit must be at least 1")
	}
	g := s.Authority.Acquire(req.GetJobId(), req.GetWorkflowId(), req.GetBytes(), req.GetLimit(), req.GetLimitVersion())
	return &pb.AcquireResponse{DelayNanos: int64(g.Delay), Limit: g.Limit, LimitVersion: g.Version}, nil
}
