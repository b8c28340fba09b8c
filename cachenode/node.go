// Package cachenode runs one Ferry cache node: a page store (package
// pagestore) served over the Alluxio-compatible HTTP data API (package
// httpapi) and Ferry's gRPC data service (package grpcapi), a place on the
// placement ring (package ring) kept by the membership registry (package
// membership), and two Temporal workers: one on the registry's task queue,
// so the registry outlives any single process, and one on the node's own
// task queue (ferry-node-<id>), where the job engine's per-file activities
// for the files this node owns run against its disk.
//
// Lifecycle: New validates the configuration and opens the page store; Start
// listens, serves, starts the workers and joins the ring; Stop answers 503
// to new requests, leaves the ring at once (a leave signal), stops the
// workers and the servers, and closes the store. A node that dies without
// Stop leaves every reader's ring within membership.FailureBound (15 s).
package cachenode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/cachenode/httpapi"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/startup"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// Defaults.
const (
	// Loopback unless told otherwise: a node reachable from the network is
	// a choice, made with an address and, then, tokens and TLS.
	DefaultHTTPAddr = "127.0.0.1:28080"
	DefaultGRPCAddr = "127.0.0.1:29080"
)

// Config describes one node. Validate fills the defaults.
type Config struct {
	// ID is the node's stable name ("node-1"): letters, digits, '.', '_'
	// and '-'. Its task queue is ring.TaskQueueFor(ID). Required.
	ID string
	// DataDir holds the page store. Required.
	DataDir string
	// HTTPAddr is where the HTTP data API listens. Default DefaultHTTPAddr
	// (port 0 picks a free port).
	HTTPAddr string
	// GRPCAddr is where the gRPC data service listens. Default
	// DefaultGRPCAddr.
	GRPCAddr string
	// AdvertiseHost is the host clients dial. Default: the host of HTTPAddr,
	// or the machine's host name when HTTPAddr listens on all interfaces.
	AdvertiseHost string
	// IdentityName is the string the ring identity is derived from. Default
	// AdvertiseHost, which makes the ring equal to the one an Alluxio client
	// computes from a host list; nodes that share a host (distinct ports)
	// need distinct names.
	IdentityName string
	// Capacity is the most page bytes the node keeps. Required.
	Capacity int64
	// PageSize in bytes. Default pagestore.DefaultPageSize (1 MiB).
	PageSize int64
	// VirtualNodes is the number of ring points per node. Every node of a
	// cluster must use the same count, and so must the alluxiofs clients
	// (alluxio.user.consistent.hash.virtual.node.count.per.worker); nodes
	// advertise it in the registry, so Ferry's own readers follow it.
	// Default ring.DefaultVirtualNodes (5, the Alluxio clients' default);
	// more points spread keys more evenly (see the README).
	VirtualNodes int
	// RevalidateAfter: see pagestore.Options. Default 0 (check the source's
	// version on every read).
	RevalidateAfter time.Duration
	// Resolver reaches the storage systems. Required.
	Resolver *storage.Resolver
	// Temporal is the process's Temporal client. Nil (unit tests): no
	// membership and no workers; the ring holds this node alone.
	Temporal client.Client
	// Telemetry provides metrics. Nil: the node sets up its own.
	Telemetry *telemetry.Telemetry
	// JobAPIURL is where /v1/load is forwarded. Empty: /v1/load answers 503.
	JobAPIURL string
	// RegisterNodeWorker, when set, registers activities on the node's own
	// task queue; it is called before that worker starts. Needs Temporal.
	RegisterNodeWorker func(r worker.Registry)
	// NodeWorkerOptions configure the worker on the node's task queue.
	NodeWorkerOptions worker.Options
	// Join and View tune membership timing; zero values are the defaults
	// of package membership.
	Join membership.JoinOptions
	View membership.ViewOptions
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// WrapHTTP, when set, wraps the HTTP API (the access policy of package
	// internal/auth).
	WrapHTTP func(http.Handler) http.Handler
	// GRPCOptions are extra options of the gRPC server (the access policy's
	// interceptors).
	GRPCOptions []grpc.ServerOption
	// RegisterGRPC, when set, registers further services on the node's
	// gRPC server (the bandwidth authority), under its access policy.
	RegisterGRPC func(s *grpc.Server)
	// TLS, when set, makes both listeners serve TLS (mutual TLS when it
	// asks for client certificates).
	TLS *tls.Config
	// ForwardClient forwards /v1/load. Default: httpapi's.
	ForwardClient *http.Client
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Validate fills defaults and reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if !idPattern.MatchString(c.ID) {
		errs = append(errs, fmt.Errorf("node id %q: want 1-64 letters, digits, '.', '_' or '-'", c.ID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data directory is required"))
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	for _, a := range [][2]string{{"HTTP", c.HTTPAddr}, {"gRPC", c.GRPCAddr}} {
		if _, _, err := net.SplitHostPort(a[1]); err != nil {
			errs = append(errs, fmt.Errorf("%s address %q: %w", a[0], a[1], err))
		}
	}
	if c.PageSize == 0 {
		c.PageSize = pagestore.DefaultPageSize
	}
	if c.VirtualNodes == 0 {
		c.VirtualNodes = ring.DefaultVirtualNodes
	}
	if c.VirtualNodes < 1 || c.VirtualNodes > ring.MaxVirtualNodes {
		errs = append(errs, fmt.Errorf("virtual nodes %d: want 1 to %d", c.VirtualNodes, ring.MaxVirtualNodes))
	}
	if c.View.VirtualNodes == 0 {
		c.View.VirtualNodes = c.VirtualNodes
	}
	if c.Capacity <= 0 {
		errs = append(errs, errors.New("capacity must be positive"))
	}
	if c.Resolver == nil {
		errs = append(errs, errors.New("a storage resolver is required"))
	}
	if c.RegisterNodeWorker != nil && c.Temporal == nil {
		errs = append(errs, errors.New("RegisterNodeWorker needs a Temporal client"))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// Node is one cache node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    *pagestore.Store
	tel      *telemetry.Telemetry
	ownTel   bool
	view     *membership.View
	selfRing *ring.Ring
	member   ring.Member

	api        *httpapi.Server
	httpServer *http.Server
	httpAddr   string
	grpcServer *grpc.Server
	grpcAddr   string
	workers    []worker.Worker
	reg        *membership.Registration
	metrics    metric.Registration

	mu      sync.Mutex
	started bool
	stopped bool
}

// New validates cfg and opens the page store.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cache node: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID), tel: cfg.Telemetry}
	store, err := pagestore.Open(pagestore.Options{
		Dir:             filepath.Join(cfg.DataDir, "cache"),
		PageSize:        cfg.PageSize,
		Capacity:        cfg.Capacity,
		Resolver:        cfg.Resolver,
		RevalidateAfter: cfg.RevalidateAfter,
		Logger:          n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("cache node %s: %w", cfg.ID, err)
	}
	n.store = store
	if cfg.Temporal != nil {
		n.view = membership.NewView(cfg.Temporal, cfg.View)
	}
	return n, nil
}

// PageStore is the node's page store, for the activities that load into it.
func (n *Node) PageStore() *pagestore.Store { return n.store }

// TaskQueue is the node's own Temporal task queue.
func (n *Node) TaskQueue() string { return ring.TaskQueueFor(n.cfg.ID) }

// HTTPAddr is the address the HTTP API listens on (after Start).
func (n *Node) HTTPAddr() string { return n.httpAddr }

// GRPCAddr is the address the gRPC service listens on (after Start).
func (n *Node) GRPCAddr() string { return n.grpcAddr }

// Member is the node's ring record (after Start).
func (n *Node) Member() ring.Member { return n.member }

// Ring returns the current ring: the registry's view, or this node alone
// when the node runs without Temporal.
func (n *Node) Ring(ctx context.Context) (*ring.Ring, error) {
	if n.view == nil {
		return n.selfRing, nil
	}
	return n.view.Current(ctx)
}

// Start listens, serves, starts the workers and joins the ring. On failure
// everything started is stopped again.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started {
		return errors.New("cache node: already started")
	}
	n.started = true
	defer func() {
		if err != nil {
			_ = n.shutdown(context.WithoutCancel(ctx), false)
			err = fmt.Errorf("cache node %s: %w", n.cfg.ID, err)
		}
	}()

	if n.tel == nil {
		if n.tel, err = telemetry.Setup(ctx, "ferry-cachenode"); err != nil {
			return err
		}
		n.ownTel = true
	}
	if n.metrics, err = registerCacheMetrics(n.tel.Meter("ferry-cachenode"), n.cfg.ID, n.store); err != nil {
		return err
	}

	httpL, err := new(net.ListenConfig).Listen(ctx, "tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP API: %w", err)
	}
	grpcL, err := new(net.ListenConfig).Listen(ctx, "tcp", n.cfg.GRPCAddr)
	if err != nil {
		_ = httpL.Close()
		return fmt.Errorf("gRPC service: %w", err)
	}
	n.httpAddr, n.grpcAddr = httpL.Addr().String(), grpcL.Addr().String()
	if n.member, err = n.self(); err != nil {
		_ = httpL.Close()
		_ = grpcL.Close()
		return err
	}
	n.selfRing = ring.New([]ring.Member{n.member}, n.cfg.VirtualNodes)

	api, err := httpapi.New(httpapi.Config{
		NodeID:    n.cfg.ID,
		Store:     n.store,
		Resolver:  n.cfg.Resolver,
		Ring:      n.Ring,
		Members:   n.members,
		JobAPIURL: n.cfg.JobAPIURL,
		Metrics:   n.tel.Handler(),
		Meter:     n.tel.Meter("ferry-cachenode"),
		Logger:    n.log,

		HTTPClient: n.cfg.ForwardClient,
	})
	if err != nil {
		_ = httpL.Close()
		_ = grpcL.Close()
		return err
	}
	n.api = api
	var handler http.Handler = api
	if n.cfg.WrapHTTP != nil {
		handler = n.cfg.WrapHTTP(api)
	}
	if n.cfg.TLS != nil {
		httpL = tls.NewListener(httpL, n.cfg.TLS)
	}
	n.httpServer = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests with ';' in their query make net/http log a warning;
		// the API reads such queries itself, so that is noise.
		ErrorLog: log.New(slogWriter{n.log}, "", 0),
	}
	go func() {
		if err := n.httpServer.Serve(httpL); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("HTTP API stopped", "err", err)
		}
	}()
	gopts := n.cfg.GRPCOptions
	if n.cfg.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(n.cfg.TLS)))
	}
	n.grpcServer = grpc.NewServer(gopts...)
	(&grpcapi.Service{NodeID: n.cfg.ID, Store: n.store, Resolver: n.cfg.Resolver}).Register(n.grpcServer)
	if n.cfg.RegisterGRPC != nil {
		n.cfg.RegisterGRPC(n.grpcServer)
	}
	go func() {
		if err := n.grpcServer.Serve(grpcL); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("gRPC service stopped", "err", err)
		}
	}()

	c := n.cfg.Temporal
	if c == nil {
		n.log.Info("cache node started without Temporal: no membership, no workers", "http", n.httpAddr, "grpc", n.grpcAddr)
		return nil
	}
	// The workers start before the first registry query: after a crash the
	// registry's task may wait for a membership worker, maybe this one.
	mw, err := startup.StartWorker(ctx, "Temporal to start the membership worker", func() worker.Worker {
		mw := worker.New(c, membership.TaskQueue, membership.WorkerOptions())
		workflows.RegisterMembership(mw)
		return mw
	})
	if err != nil {
		return fmt.Errorf("membership worker: %w", err)
	}
	n.workers = append(n.workers, mw)
	if n.cfg.RegisterNodeWorker != nil {
		nw, err := startup.StartWorker(ctx, "Temporal to start the worker on "+n.TaskQueue(), func() worker.Worker {
			nw := worker.New(c, n.TaskQueue(), n.cfg.NodeWorkerOptions)
			n.cfg.RegisterNodeWorker(nw)
			return nw
		})
		if err != nil {
			return fmt.Errorf("worker on %s: %w", n.TaskQueue(), err)
		}
		n.workers = append(n.workers, nw)
	}
	if err := membership.CheckIdentity(ctx, n.view, n.member); err != nil {
		return err
	}
	if n.reg, err = membership.Join(ctx, c, n.member, n.cfg.Join); err != nil {
		return err
	}
	n.view.Refresh()
	n.log.Info("cache node joined the ring", "http", n.httpAddr, "grpc", n.grpcAddr,
		"identity", n.member.Identity.String(), "task_queue", n.TaskQueue())
	return nil
}

// self is the node's ring record, from its configuration and the ports it
// actually got.
func (n *Node) self() (ring.Member, error) {
	_, httpPort, err := splitPort(n.httpAddr)
	if err != nil {
		return ring.Member{}, err
	}
	_, grpcPort, err := splitPort(n.grpcAddr)
	if err != nil {
		return ring.Member{}, err
	}
	host := n.cfg.AdvertiseHost
	if host == "" {
		// The configured listen host when it names one interface, else
		// the machine's name (the bound address of a wildcard is useless).
		cfgHost, _, _ := net.SplitHostPort(n.cfg.HTTPAddr)
		if ip := net.ParseIP(cfgHost); cfgHost != "" && (ip == nil || !ip.IsUnspecified()) {
			host = cfgHost
		} else if host, err = os.Hostname(); err != nil {
			return ring.Member{}, fmt.Errorf("advertise host: %w (set it explicitly)", err)
		}
	}
	name := n.cfg.IdentityName
	if name == "" {
		name = host
	}
	return ring.Member{
		ID:           n.cfg.ID,
		Identity:     ring.IdentityFromName(name),
		Host:         host,
		HTTPPort:     httpPort,
		GRPCPort:     grpcPort,
		TaskQueue:    n.TaskQueue(),
		VirtualNodes: n.cfg.VirtualNodes,
	}, nil
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, port, err
}

func (n *Node) members(ctx context.Context) (membership.Snapshot, error) {
	if n.view == nil {
		return membership.Snapshot{}, errors.New("no membership registry")
	}
	return n.view.Snapshot(ctx)
}

// Stop stops the node cleanly: it answers 503 to new requests, leaves the
// ring at once, stops its workers and servers (waiting for in-flight
// requests until ctx ends) and closes the page store.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shutdown(ctx, true)
}

// StopWithoutLeaving stops the node as a crash looks to the cluster: no
// leave signal, so the registry drops it only when its heartbeats are
// missed. For tests of the failure bound.
func (n *Node) StopWithoutLeaving(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.shutdown(ctx, false)
}

func (n *Node) shutdown(ctx context.Context, leave bool) error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	var errs []error
	if n.api != nil {
		n.api.Drain()
	}
	if n.reg != nil {
		if leave {
			if err := n.reg.Leave(ctx); err != nil {
				errs = append(errs, err)
			}
		} else {
			n.reg.Abandon()
		}
	}
	for i := len(n.workers) - 1; i >= 0; i-- {
		n.workers[i].Stop()
	}
	if n.httpServer != nil {
		if err := n.httpServer.Shutdown(ctx); err != nil {
			_ = n.httpServer.Close()
		}
	}
	if n.grpcServer != nil {
		stopGRPC(ctx, n.grpcServer)
	}
	if n.metrics != nil {
		_ = n.metrics.Unregister()
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, err)
	}
	if n.ownTel {
		_ = n.tel.Shutdown(ctx)
	}
	return errors.Join(errs...)
}

// stopGRPC lets in-flight calls finish until ctx ends, then cuts them.
func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}

// slogWriter turns net/http's error log into debug records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(string(p), "component", "http")
	return len(p), nil
}
