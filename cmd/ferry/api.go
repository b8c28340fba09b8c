package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/api"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/policies"
	"github.com/ferryio/ferry/storage"
)

// defaultAPIAddress is where `ferry api` listens and where the CLI looks for
// it, the port Alluxio's master serves its REST API on.
const defaultAPIAddress = "127.0.0.1:19999"

func newAPICommand(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Run the REST API: submit, watch, stop and list jobs",
		Long: `Run Ferry's REST API on its own. It is stateless: it holds one Temporal client
and turns requests into workflow starts, queries and signals, so any number of
copies can run behind a load balancer. Routes are listed at /openapi.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAPI(cmd.Context(), g, listen, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", envOr("FERRY_API_LISTEN", defaultAPIAddress), "address of the REST API (env FERRY_API_LISTEN)")
	return cmd
}

func runAPI(ctx context.Context, g *globals, listen string, out io.Writer) error {
	acc, err := g.sec.buildAccess("", "", listen)
	if err != nil {
		return err
	}
	pr, err := startProcess(ctx, g, "ferry-api")
	if err != nil {
		return err
	}
	p, fail := pr.parts, pr.fail
	// The service checks that a job's source exists before starting it,
	// with the same backends as the rest of the process.
	if _, err := startAPI(ctx, p, listen, newServices(pr.client, pr.resolver), pr.tel, acc); err != nil {
		return fail(err)
	}
	p.endpoint("Temporal frontend", g.temporalAddress+"  (namespace "+g.namespace+")")
	if _, err := fmt.Fprintln(out, "Ferry API is running"); err != nil {
		return fail(err)
	}
	p.printEndpoints(out)
	<-ctx.Done()
	slog.Info("stopping")
	return p.stopAll(30 * time.Second)
}

// startAPI serves the REST API for svc on addr (port 0 picks a free one),
// registers its shutdown in p and a banner line, and returns the bound
// address. It fails at once when addr cannot be bound.
func startAPI(ctx context.Context, p *parts, addr string, svc services, tel *telemetry.Telemetry, acc *access) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	srv := api.New(api.Config{Jobs: svc.jobs, Policies: svc.policies, Telemetry: tel, Logger: slog.Default()})
	bound, err := p.serveHTTP("api", addr, acc.apiHandler(srv.Handler()), acc.server)
	if err != nil {
		return "", err
	}
	p.endpoint("REST API", acc.scheme()+"://"+bound+"  (routes: /openapi.json)")
	return bound, nil
}

// services are what the REST API serves: jobs and policies.
type services struct {
	jobs     api.JobService
	policies api.PolicyService
}

// newServices builds the job and policy services on one Temporal client;
// both check that a source exists with the process's storage backends.
func newServices(c client.Client, resolver *storage.Resolver) services {
	view := membership.NewView(c, membership.ViewOptions{})
	js := jobs.NewService(c, resolver).WithLiveNodes(func(ctx context.Context) (int, error) {
		r, err := view.Current(ctx)
		if err != nil {
			return 0, err
		}
		return len(r.Members()), nil
	})
	return services{jobs: js, policies: policies.NewService(c, js, resolver)}
}
