package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/internal/startup"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

func newWorkerCommand(g *globals) *cobra.Command {
	var failuresDir, dataDir string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a coordinator: the Temporal worker that runs job workflows and their listing and planning",
		Long: `Run a coordinator. It is stateless: every job's state is in Temporal, so any
number of coordinators can run, and a job whose coordinator dies continues on
another one from its recorded history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pr, err := startProcess(ctx, g, "ferry-worker")
			if err != nil {
				return err
			}
			p := pr.parts
			if failuresDir == "" {
				abs, _ := filepath.Abs(filepath.Join(dataDir, "failures"))
				failuresDir = "file://" + abs
			}
			sctx, cancel := g.startupContext(ctx)
			defer cancel()
			if err := startCoordinatorContext(sctx, p, pr.client, pr.resolver, failuresDir); err != nil {
				return pr.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Ferry coordinator is running (task queue %s, Temporal %s)\n", workflows.CoordinatorTaskQueue, g.temporalAddress)
			<-ctx.Done()
			return p.stopAll(30 * time.Second)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("FERRY_DATA_DIR", ".ferry"), "directory for local state (failure lists by default)")
	cmd.Flags().StringVar(&failuresDir, "failures-dir", "", "directory URI where lists of failed files are saved (default <data-dir>/failures)")
	return cmd
}

// startCoordinator is startCoordinatorContext bounded by the default
// start-up timeout, for callers without a start-up context (benchmarks).
func startCoordinator(p *parts, c client.Client, resolver *storage.Resolver, failuresDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultStartupTimeout)
	defer cancel()
	return startCoordinatorContext(ctx, p, c, resolver, failuresDir)
}

// startCoordinatorContext runs the coordinator's Temporal workers: job workflows
// with their listing and planning activities on the coordinator queue, and
// the membership registry workflow on its own queue (every coordinator and
// node serves it, so it outlives any one of them).
//
// ctx bounds the start-up waits (see package startup).
func startCoordinatorContext(ctx context.Context, p *parts, c client.Client, resolver *storage.Resolver, failuresDir string) error {
	// A registry that has just moved to a new worker (after a crash) answers
	// its first query only after replaying its history: give queries more
	// time than the default, so placement waits rather than fails.
	view := membership.NewView(c, membership.ViewOptions{QueryTimeout: 15 * time.Second})
	w, err := startup.StartWorker(ctx, "Temporal to start the coordinator worker", func() sdkworker.Worker {
		w := sdkworker.New(c, workflows.CoordinatorTaskQueue, worker.CoordinatorOptions())
		worker.RegisterCoordinator(w, &activities.Coordinator{
			Resolver:    resolver,
			Placement:   worker.RingPlacement{Current: view.Current},
			FailuresDir: failuresDir,
		})
		return w
	})
	if err != nil {
		return fmt.Errorf("start coordinator worker: %w", err)
	}
	p.add("coordinator worker", func(context.Context) error { w.Stop(); return nil })
	mw, err := startup.StartWorker(ctx, "Temporal to start the membership worker", func() sdkworker.Worker {
		mw := sdkworker.New(c, membership.TaskQueue, membership.WorkerOptions())
		workflows.RegisterMembership(mw)
		return mw
	})
	if err != nil {
		return fmt.Errorf("start membership worker: %w", err)
	}
	p.add("membership worker", func(context.Context) error { mw.Stop(); return nil })
	return nil
}
