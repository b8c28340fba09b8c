package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/bandwidth"
	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/backends"
	"github.com/ferryio/ferry/worker"
)

type cacheNodeOptions struct {
	id, dataDir, httpAddr, grpcAddr string
	manifestRoot                    string
	advertiseHost, identityName     string
	capacity, pageSize              string
	jobAPIURL                       string
	revalidateAfter                 time.Duration
	virtualNodes                    int
}

func newCacheNodeCommand(g *globals) *cobra.Command {
	o := &cacheNodeOptions{}
	cmd := &cobra.Command{
		Use:   "cachenode",
		Short: "Run one cache node: page store, HTTP and gRPC data services, and its Temporal workers",
		Long: `Run one cache node. It caches files from the storage systems as pages on local
disk (--data-dir, at most --capacity bytes), serves them over the
Alluxio-compatible HTTP API (--http-addr) and Ferry's gRPC service
(--grpc-addr), joins the placement ring through the membership registry kept
by Temporal, and runs the job activities for the files it owns on its own task
queue, ferry-node-<id>.

Its ring identity comes from --identity-name, by default the advertised host,
so that clients given only a host list (alluxiofs worker_hosts) compute the
same owners. Nodes that share a host on distinct ports need distinct
--identity-name values. A node restarted with the same --id, identity and
--data-dir rejoins with the same identity and keeps its cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCacheNode(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.id, "id", envOr("FERRY_NODE_ID", ""), "node id, stable across restarts, e.g. node-1 (env FERRY_NODE_ID; required)")
	f.StringVar(&o.dataDir, "data-dir", "", "directory of the page store (default .ferry/<id>)")
	f.StringVar(&o.httpAddr, "http-addr", cachenode.DefaultHTTPAddr, "listen address of the HTTP data API (loopback by default; give an address such as 0.0.0.0:28080 to serve other hosts)")
	f.StringVar(&o.grpcAddr, "grpc-addr", cachenode.DefaultGRPCAddr, "listen address of the gRPC data service (loopback by default)")
	f.StringVar(&o.advertiseHost, "advertise-host", "", "host clients dial (default: the host of --http-addr, or this machine's name)")
	f.StringVar(&o.identityName, "identity-name", "", "string the ring identity is derived from (default: the advertised host)")
	f.StringVar(&o.capacity, "capacity", "10GiB", "most bytes of pages to keep, e.g. 512MiB, 100GiB")
	f.StringVar(&o.pageSize, "page-size", "1MiB", "page size; must match the clients' (Alluxio's 1MB means 1MiB)")
	f.IntVar(&o.virtualNodes, "virtual-nodes", 5, "ring points per node; the same on every node and in the alluxiofs clients (5 is their default; 2000 spreads keys evenly)")
	f.StringVar(&o.jobAPIURL, "job-api-url", envOr("FERRY_JOB_API_URL", ""), "base URL of the REST API that /v1/load is forwarded to (env FERRY_JOB_API_URL)")
	f.DurationVar(&o.revalidateAfter, "revalidate-after", 0, "trust a file's checked source version this long (0: check on every read)")
	manifestStoreFlag(f, &o.manifestRoot)
	return cmd
}

func runCacheNode(cmd *cobra.Command, g *globals, o *cacheNodeOptions) error {
	ctx := cmd.Context()
	if o.id == "" {
		return fmt.Errorf("--id is required (a stable name such as node-1)")
	}
	capacity, err := backends.ParseByteSize(o.capacity)
	if err != nil {
		return fmt.Errorf("--capacity %q: %w", o.capacity, err)
	}
	pageSize, err := backends.ParseByteSize(o.pageSize)
	if err != nil {
		return fmt.Errorf("--page-size %q: %w", o.pageSize, err)
	}
	if o.dataDir == "" {
		o.dataDir = filepath.Join(".ferry", o.id)
	}
	acc, err := g.sec.buildAccess("", "", o.httpAddr, o.grpcAddr)
	if err != nil {
		return err
	}
	root, err := manifestStoreRoot(o.manifestRoot)
	if err != nil {
		return err
	}
	pr, err := startProcess(ctx, g, "ferry-cachenode")
	if err != nil {
		return err
	}
	p, fail := pr.parts, pr.fail
	c, resolver, tel := pr.client, pr.resolver, pr.tel
	sctx, cancel := g.startupContext(ctx)
	defer cancel()
	n, err := startNode(sctx, p, root, cachenode.Config{
		ID:              o.id,
		DataDir:         o.dataDir,
		HTTPAddr:        o.httpAddr,
		GRPCAddr:        o.grpcAddr,
		AdvertiseHost:   o.advertiseHost,
		IdentityName:    o.identityName,
		Capacity:        int64(capacity),
		PageSize:        int64(pageSize),
		RevalidateAfter: o.revalidateAfter,
		VirtualNodes:    o.virtualNodes,
		JobAPIURL:       o.jobAPIURL,
	}, c, resolver, tel, acc)
	if err != nil {
		return fail(err)
	}
	out := cmd.OutOrStdout()
	_, _ = fmt.Fprintf(out, "Ferry cache node %s is running (identity %s, task queue %s)\n", o.id, n.Member().Identity, n.TaskQueue())
	p.printEndpoints(out)
	<-ctx.Done()
	return p.stopAll(30 * time.Second)
}

// startNode starts one cache node with the job engine's activities on its
// own task queue, registers its clean stop in p and its banner lines. Its
// batches are read from the manifest store at manifestRoot. acc, when set,
// is the process's access control (tokens, TLS); nil serves without it
// (in-process benchmarks on loopback). ctx bounds the node's start-up waits
// (Temporal, the membership registry) and nothing after them.
func startNode(ctx context.Context, p *parts, manifestRoot string, cfg cachenode.Config, c client.Client, resolver *storage.Resolver, tel *telemetry.Telemetry, acc *access) (*cachenode.Node, error) {
	resolver, manifests, err := openManifestStore(resolver, manifestRoot)
	if err != nil {
		return nil, err
	}
	var n *cachenode.Node
	cfg.Resolver = resolver
	cfg.Temporal = c
	cfg.Telemetry = tel
	cfg.NodeWorkerOptions = worker.NodeOptions()
	// Called by Start, after New has set n.
	replicator := &worker.GRPCReplicator{Self: cfg.ID}
	scheme := "http"
	if acc != nil {
		acc.nodeSecurity(&cfg)
		replicator.DialOptions = acc.grpcDialOptions()
		scheme = acc.scheme()
	}
	// The node is the bandwidth authority of the jobs whose key it owns on
	// the ring, and asks the others for the leases of their jobs.
	authority := &bandwidth.Authority{Refresh: worker.BandwidthRefresh(c)}
	pacer := &bandwidth.Pacer{Self: cfg.ID, Authority: authority, DialOptions: replicator.DialOptions}
	cfg.RegisterGRPC = (&bandwidth.Service{Authority: authority}).Register
	sourceBytes, err := sourceBytesCounter(tel, cfg.ID)
	if err != nil {
		return nil, err
	}
	cfg.RegisterNodeWorker = func(r sdkworker.Registry) {
		replicator.Ring = n.Ring
		pacer.Ring = n.Ring
		worker.RegisterNode(r, &activities.Node{Cache: worker.PageStoreCache{Store: n.PageStore()}, Resolver: resolver, Replicator: replicator, Manifests: manifests,
			Pacer: pacer, SourceBytes: sourceBytes})
	}
	n, err = cachenode.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	p.add("cache node "+cfg.ID, n.Stop)
	p.add("replica connections of "+cfg.ID, func(context.Context) error { return replicator.Close() })
	p.add("bandwidth connections of "+cfg.ID, func(context.Context) error { return pacer.Close() })
	m := n.Member()
	p.endpoint("Cache node "+cfg.ID, fmt.Sprintf(scheme+"://%s  grpc %s",
		net.JoinHostPort(m.Host, strconv.Itoa(m.HTTPPort)), net.JoinHostPort(m.Host, strconv.Itoa(m.GRPCPort))))
	return n, nil
}

// sourceBytesCounter is the metric ferry_copy_bytes_read_from_source of a
// node: the bytes its copy and move batches read from their sources (loads
// count theirs in ferry_cache_bytes_read_from_storage).
func sourceBytesCounter(tel *telemetry.Telemetry, nodeID string) (func(int64), error) {
	if tel == nil {
		return nil, nil
	}
	c, err := tel.Meter("ferry-cachenode").Int64Counter("ferry_copy_bytes_read_from_source",
		metric.WithDescription("Bytes copy and move batches read from their sources."))
	if err != nil {
		return nil, fmt.Errorf("metric ferry_copy_bytes_read_from_source: %w", err)
	}
	node := metric.WithAttributes(attribute.String("node", nodeID))
	return func(n int64) { c.Add(context.Background(), n, node) }, nil
}

// devNodes are the cache nodes `ferry dev` runs in its own process.
type devNodes struct {
	count    int
	countSet bool
	hosts    string
	httpPort int
	grpcPort int
	capacity string
	// virtualNodes is the ring points per node.
	virtualNodes int
	// jobAPIURL is where the nodes forward /v1/load.
	jobAPIURL string
}

func (d *devNodes) flags(f *pflag.FlagSet) {
	f.IntVar(&d.count, "nodes", 3, "number of cache nodes to run (0: none)")
	f.StringVar(&d.hosts, "node-hosts", "", "run one node per host on the same ports, e.g. 127.0.0.1,127.0.0.2,127.0.0.3 (the alluxiofs worker_hosts layout; identities come from the hosts)")
	f.IntVar(&d.httpPort, "node-http-port", 28080, "HTTP port of the first node; node i uses this + i unless --node-hosts is set (0: free ports)")
	f.IntVar(&d.grpcPort, "node-grpc-port", 29080, "gRPC port of the first node, numbered like --node-http-port")
	f.StringVar(&d.capacity, "node-capacity", "1GiB", "cache capacity of each node")
	f.IntVar(&d.virtualNodes, "node-virtual-nodes", 5, "ring points per node (5: the alluxiofs default; clients must use the same count)")
}

// plan is the configuration of each node, each with its own directory
// under dataDir/nodes. On one host they take consecutive ports and
// identities named after their ids; with --node-hosts each takes one host
// and the same ports, and its identity comes from the host, as an alluxiofs
// client given that host list computes it.
func (d *devNodes) plan(dataDir string) ([]cachenode.Config, error) {
	capacity, err := backends.ParseByteSize(d.capacity)
	if err != nil {
		return nil, fmt.Errorf("--node-capacity %q: %w", d.capacity, err)
	}
	var hosts []string
	count := d.count
	if d.hosts != "" {
		for _, h := range strings.Split(d.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
		if d.countSet && d.count != len(hosts) {
			return nil, fmt.Errorf("--nodes %d and --node-hosts with %d hosts disagree", d.count, len(hosts))
		}
		count = len(hosts)
	}
	if count < 0 {
		return nil, fmt.Errorf("--nodes %d: must not be negative", count)
	}
	port := func(base, i int) string {
		if base == 0 {
			return "0"
		}
		if hosts != nil {
			return strconv.Itoa(base)
		}
		return strconv.Itoa(base + i)
	}
	cfgs := make([]cachenode.Config, 0, count)
	for i := range count {
		id := fmt.Sprintf("node-%d", i+1)
		cfg := cachenode.Config{
			ID:            id,
			DataDir:       filepath.Join(dataDir, "nodes", id),
			AdvertiseHost: "127.0.0.1",
			IdentityName:  id,
			Capacity:      int64(capacity),
			VirtualNodes:  d.virtualNodes,
			JobAPIURL:     d.jobAPIURL,
		}
		if hosts != nil {
			cfg.AdvertiseHost, cfg.IdentityName = hosts[i], ""
		}
		cfg.HTTPAddr = net.JoinHostPort(cfg.AdvertiseHost, port(d.httpPort, i))
		cfg.GRPCAddr = net.JoinHostPort(cfg.AdvertiseHost, port(d.grpcPort, i))
		cfgs = append(cfgs, cfg)
	}
	return cfgs, nil
}

// start runs the nodes of plan.
//
// The nodes read their batches from the manifest store at manifestRoot.
func (d *devNodes) start(ctx context.Context, p *parts, dataDir, manifestRoot string, c client.Client, resolver *storage.Resolver, tel *telemetry.Telemetry, acc *access) error {
	cfgs, err := d.plan(dataDir)
	if err != nil {
		return err
	}
	for _, cfg := range cfgs {
		cfg.JobAPIURL = d.jobAPIURL
		if _, err := startNode(ctx, p, manifestRoot, cfg, c, resolver, tel, acc); err != nil {
			return err
		}
	}
	return nil
}
