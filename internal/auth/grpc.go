package auth

import (
	"context"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPCPolicy is the access policy of a gRPC listener: every call carries a
// bearer token in its "authorization" metadata, and the method's role
// (Methods, by full method name; absent: write) is checked.
type GRPCPolicy struct {
	Tokens *Tokens
	// NoAuth lets every call in (--insecure-no-auth, loopback only).
	NoAuth bool
	// Methods maps full method names ("/ferry.cachenode.v1.CacheNode/Stat")
	// to the role they need; a method not listed needs RoleWrite.
	Methods map[string]Role
	// Audit lists the methods that change state: each call is logged.
	Audit  map[string]bool
	Logger *slog.Logger
}

// ServerOptions returns the interceptors that enforce the policy.
func (p *GRPCPolicy) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := p.check(ctx, info.FullMethod)
			if err != nil {
				return nil, err
			}
			resp, err := h(ctx, req)
			if p.Audit[info.FullMethod] {
				who, _ := PrincipalFrom(ctx)
				p.logger().Info("audit", "principal", who.Name, "role", who.Role.String(), "method", "grpc", "route", info.FullMethod,
					"targets", targetsOf(req), "status", status.Code(err).String())
			}
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := p.check(ss.Context(), info.FullMethod)
			if err != nil {
				return err
			}
			return h(srv, &ctxStream{ServerStream: ss, ctx: ctx})
		}),
	}
}

func (p *GRPCPolicy) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

func (p *GRPCPolicy) check(ctx context.Context, method string) (context.Context, error) {
	need, ok := p.Methods[method]
	if !ok {
		need = RoleWrite
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var who Principal
	if vals := md.Get("authorization"); len(vals) > 0 {
		tok, ok := bearer(vals[0])
		if !ok {
			return ctx, p.refuse(method, codes.Unauthenticated, "the authorization metadata must be \"Bearer <token>\"")
		}
		pr, found := p.Tokens.lookup(tok)
		if !found {
			return ctx, p.refuse(method, codes.Unauthenticated, "the bearer token is not valid")
		}
		who = pr
	} else if p.NoAuth {
		who = Principal{Name: Anonymous, Role: RoleWrite}
	} else {
		return ctx, p.refuse(method, codes.Unauthenticated, "authentication required: send a bearer token in the authorization metadata")
	}
	if who.Role < need {
		return ctx, p.refuse(method, codes.PermissionDenied, "principal "+who.Name+" has the "+who.Role.String()+" role; "+method+" needs "+need.String())
	}
	return context.WithValue(ctx, principalKey, who), nil
}

func (p *GRPCPolicy) refuse(method string, code codes.Code, msg string) error {
	p.logger().Warn("request refused", "route", method, "status", code.String(), "reason", msg)
	return status.Error(code, msg)
}

// targetsOf lists the URIs of a request that has them (LoadFiles, Evict).
func targetsOf(req any) []string {
	var out []string
	switch r := req.(type) {
	case interface{ URI() string }:
		out = append(out, r.URI())
	case interface{ Prefix() string }:
		out = append(out, r.Prefix())
	case interface{ GetUri() string }:
		out = append(out, r.GetUri())
	case interface{ GetUriPrefix() string }:
		out = append(out, r.GetUriPrefix())
	}
	if s, ok := req.(interface{ String() string }); ok && len(out) == 0 {
		// Enough to see what was asked without dumping large batches.
		str := s.String()
		if len(str) > 200 {
			str = str[:200] + "…"
		}
		out = append(out, strings.TrimSpace(str))
	}
	return out
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// Credentials are gRPC per-call credentials that send src's token.
type Credentials struct {
	Source *TokenSource
	// Secure requires TLS on the connection (set when TLS is configured).
	Secure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c Credentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := c.Source.Token()
	if err != nil || tok == "" {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (c Credentials) RequireTransportSecurity() bool { return c.Secure }
