package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/internal/telemetry"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

type devOptions struct {
	dataDir        string
	temporalListen string
	uiListen       string
	metricsListen  string
	apiListen      string
	nodes          devNodes
}

func newDevCommand(g *globals) *cobra.Command {
	o := &devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on this machine: embedded Temporal with its Web UI and every Ferry part",
		Long: `Run Ferry on one machine in one process: an embedded Temporal server (state in
a SQLite file under --data-dir, kept across restarts) with its Web UI, and every
Ferry part, ready to take a job. Stop it with Ctrl-C.

With --temporal-address, no embedded server is started and Ferry uses that
Temporal cluster instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			external := cmd.Flags().Changed("temporal-address")
			o.nodes.countSet = cmd.Flags().Changed("nodes")
			return runDev(cmd.Context(), g, o, external)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", envOr("FERRY_DATA_DIR", ".ferry"), "directory for all state (env FERRY_DATA_DIR)")
	f.StringVar(&o.temporalListen, "temporal-listen", "127.0.0.1:7233", "address of the embedded Temporal frontend")
	f.StringVar(&o.uiListen, "ui-listen", "127.0.0.1:8233", "address of the Temporal Web UI (empty: no UI)")
	f.StringVar(&o.metricsListen, "metrics-listen", "127.0.0.1:9464", "address of the Prometheus /metrics endpoint (empty: none)")
	f.StringVar(&o.apiListen, "api-listen", envOr("FERRY_API_LISTEN", "127.0.0.1:19999"), "address of the REST API")
	o.nodes.flags(f)
	return cmd
}

func runDev(ctx context.Context, g *globals, o *devOptions, externalTemporal bool) error {
	// Everything that can make this start fail at once is checked before
	// anything starts or logs: a second ferry dev gets one line.
	unlock, err := lockDataDir(o.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	nodeCfgs, err := o.nodes.plan(o.dataDir)
	if err != nil {
		return err
	}
	// Refusals of the security settings (--insecure-no-auth off loopback)
	// come before the port checks: they hold whatever the ports.
	sec, err := devSecurity(g, o.dataDir, append(nodeListeners(o.nodes.hosts), o.apiListen, o.metricsListen)...)
	if err != nil {
		return err
	}
	if err := o.checkPorts(externalTemporal, nodeCfgs); err != nil {
		return err
	}

	tel, err := telemetry.Setup(ctx, "ferry-dev")
	if err != nil {
		return err
	}
	p := &parts{}
	p.add("telemetry", tel.Shutdown)
	fail := func(err error) error {
		_ = p.stopAll(30 * time.Second)
		return err
	}
	// Start-up waits (Temporal, the registry) are bounded by
	// --startup-timeout; the parts started keep the process's ctx.
	sctx, cancel := g.startupContext(ctx)
	defer cancel()

	temporalAddr := g.temporalAddress
	if !externalTemporal {
		srv, err := temporaldev.Start(ctx, temporaldev.Config{
			DatabaseFile:    filepath.Join(o.dataDir, "temporal.db"),
			Namespace:       g.namespace,
			FrontendAddress: o.temporalListen,
			UIAddress:       o.uiListen,
			LogFile:         filepath.Join(o.dataDir, "temporal.log"),
		})
		if err != nil {
			return fail(err)
		}
		p.add("temporal", func(context.Context) error { return srv.Stop() })
		temporalAddr = srv.FrontendAddress()
		p.endpoint("Temporal frontend", temporalAddr+"  (namespace "+g.namespace+")")
		if srv.UIURL() != "" {
			p.endpoint("Temporal Web UI", srv.UIURL())
		}
	} else {
		p.endpoint("Temporal frontend", temporalAddr+"  (external, namespace "+g.namespace+")")
	}

	// The process's one Temporal client, for every part that runs here.
	dg := *g
	dg.temporalAddress = temporalAddr
	c, err := dialTemporal(sctx, &dg, tel)
	if err != nil {
		return fail(err)
	}
	p.add("temporal client", func(context.Context) error { c.Close(); return nil })
	absData, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fail(err)
	}
	resolver, err := newResolver(ctx, g)
	if err != nil {
		return fail(err)
	}
	manifestRoot := "file://" + filepath.Join(absData, "manifests")
	// Jobs, the API's checks among them, never reach the manifest store
	// (the coordinator and the nodes open it through a resolver of its own).
	if resolver, err = resolver.Reserving(manifestRoot); err != nil {
		return fail(err)
	}
	// The coordinator's workers, the membership worker among them, start
	// before the nodes wait for the registry, which they may have to run.
	if err := startCoordinatorContext(sctx, p, c, resolver, manifestRoot, sec.acc.grpcDialOptions()); err != nil {
		return fail(err)
	}
	apiAddr, err := startAPI(ctx, p, o.apiListen, newServices(c, resolver), tel, sec.acc)
	if err != nil {
		return fail(err)
	}
	o.nodes.jobAPIURL = sec.acc.scheme() + "://" + apiAddr
	if err := o.nodes.start(sctx, p, o.dataDir, manifestRoot, c, resolver, tel, sec.acc); err != nil {
		return fail(err)
	}

	if o.metricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", tel.Handler())
		addr, err := p.serveHTTP("metrics", o.metricsListen, sec.acc.apiHandler(mux), sec.acc.server)
		if err != nil {
			return fail(err)
		}
		p.endpoint("Metrics", sec.acc.scheme()+"://"+addr+"/metrics")
	}

	out := os.Stdout
	// The banner comes last, after every start-up log line.
	_, _ = fmt.Fprintf(out, "Ferry dev is running (state in %s)\n", absData)
	p.printEndpoints(out)
	sec.print(out)
	_, _ = fmt.Fprintln(out, "Press Ctrl-C to stop.")

	<-ctx.Done()
	slog.Info("stopping")
	if err := p.stopAll(30 * time.Second); err != nil {
		return err
	}
	_, _ = fmt.Fprintln(out, "Ferry dev stopped.")
	return nil
}

// lockDataDir takes --data-dir for this process (creating it), so that a
// second ferry dev on it fails at once with one line, before it starts
// anything. The lock goes with the process, also on SIGKILL.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "ferry-dev.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		abs, _ := filepath.Abs(dir)
		return nil, fmt.Errorf("--data-dir %s is in use by another ferry dev; stop it or choose another --data-dir", abs)
	}
	return func() { _ = f.Close() }, nil
}

// checkPorts fails, naming the port and its flag, when an address this
// ferry dev is to listen on is taken. Port 0 (a free port) is not checked.
func (o *devOptions) checkPorts(externalTemporal bool, nodes []cachenode.Config) error {
	type want struct{ flag, addr, what string }
	var wants []want
	if !externalTemporal {
		wants = append(wants, want{"--temporal-listen", o.temporalListen, "the Temporal frontend"},
			want{"--ui-listen", o.uiListen, "the Temporal Web UI"})
	}
	wants = append(wants, want{"--api-listen", o.apiListen, "the REST API"}, want{"--metrics-listen", o.metricsListen, "metrics"})
	for _, n := range nodes {
		wants = append(wants, want{"--node-http-port", n.HTTPAddr, "the HTTP API of " + n.ID},
			want{"--node-grpc-port", n.GRPCAddr, "the gRPC service of " + n.ID})
	}
	for _, w := range wants {
		if w.addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(w.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %w", w.flag, w.addr, err)
		}
		if port == "0" {
			continue
		}
		l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", w.addr)
		if err != nil {
			if host == "" {
				host = "*"
			}
			return fmt.Errorf("%s: port %s on %s (%s) is not free (is another ferry dev running?); choose another with %s",
				w.flag, port, host, w.what, w.flag)
		}
		_ = l.Close()
	}
	return nil
}
