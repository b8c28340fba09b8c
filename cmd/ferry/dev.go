package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

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
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	sec, err := devSecurity(g, o.dataDir, append(nodeListeners(o.nodes.hosts), o.apiListen, o.metricsListen)...)
	if err != nil {
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
	c, err := dialTemporal(ctx, &dg, tel)
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
	if err := startCoordinator(p, c, resolver, manifestRoot); err != nil {
		return fail(err)
	}
	apiAddr, err := startAPI(ctx, p, o.apiListen, newServices(c, resolver), tel, sec.acc)
	if err != nil {
		return fail(err)
	}
	o.nodes.jobAPIURL = sec.acc.scheme() + "://" + apiAddr
	if err := o.nodes.start(ctx, p, o.dataDir, manifestRoot, c, resolver, tel, sec.acc); err != nil {
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
	fmt.Fprintf(out, "Ferry dev is running (state in %s)\n", absData)
	p.printEndpoints(out)
	sec.print(out)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")

	<-ctx.Done()
	slog.Info("stopping")
	if err := p.stopAll(30 * time.Second); err != nil {
		return err
	}
	fmt.Fprintln(out, "Ferry dev stopped.")
	return nil
}
