package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/internal/startup"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

func newWorkerCommand(g *globals) *cobra.Command {
	var failuresDir, dataDir, manifestRoot string // failuresDir: deprecated, ignored
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a coordinator: the Temporal worker that runs job workflows and their listing and planning",
		Long: `Run a coordinator. It is stateless: every job's state is in Temporal, so any
number of coordinators can run, and a job whose coordinator dies continues on
another one from its recorded history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			root, err := manifestStoreRoot(manifestRoot)
			if err != nil {
				return err
			}
			pr, err := startProcess(ctx, g, "ferry-worker")
			if err != nil {
				return err
			}
			p := pr.parts
			// The coordinator asks the nodes which files they hold, with
			// this process's token and TLS settings.
			acc, err := g.sec.dialAccess(dataDir)
			if err != nil {
				return pr.fail(err)
			}
			sctx, cancel := g.startupContext(ctx)
			defer cancel()
			if err := startCoordinatorContext(sctx, p, pr.client, pr.resolver, root, acc.grpcDialOptions()); err != nil {
				return pr.fail(err)
			}
			_, _ = fmt.Fprintf(cmd.OutOrStdout(), "Ferry coordinator is running (task queue %s, Temporal %s)\n", workflows.CoordinatorTaskQueue, g.temporalAddress)
			<-ctx.Done()
			return p.stopAll(30 * time.Second)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("FERRY_DATA_DIR", ".ferry"), "directory for local state")
	cmd.Flags().StringVar(&failuresDir, "failures-dir", "", "no longer used: failure lists live in the manifest store")
	_ = cmd.Flags().MarkDeprecated("failures-dir", "failure lists are saved in the manifest store (--manifest-store)")
	manifestStoreFlag(cmd.Flags(), &manifestRoot)
	return cmd
}

// startCoordinator is startCoordinatorContext bounded by the default
// start-up timeout, for callers without a start-up context (benchmarks).
func startCoordinator(p *parts, c client.Client, resolver *storage.Resolver, manifestRoot string) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultStartupTimeout)
	defer cancel()
	return startCoordinatorContext(ctx, p, c, resolver, manifestRoot, nil)
}

// startCoordinatorContext runs the coordinator's Temporal workers: job workflows
// with their listing and planning activities on the coordinator queue, and
// the membership registry workflow on its own queue (every coordinator and
// node serves it, so it outlives any one of them).
//
// manifestRoot is the URI of the manifest store, where jobs keep their file
// lists and failure lists; every coordinator and cache node must reach the
// same one. ctx bounds the start-up waits (see package startup). dial are
// the options of the coordinator's gRPC calls to the nodes (TLS, token).
func startCoordinatorContext(ctx context.Context, p *parts, c client.Client, resolver *storage.Resolver, manifestRoot string, dial []grpc.DialOption) error {
	resolver, manifests, err := openManifestStore(resolver, manifestRoot)
	if err != nil {
		return err
	}
	index := &worker.GRPCCacheIndex{DialOptions: dial}
	// A registry that has just moved to a new worker (after a crash) answers
	// its first query only after replaying its history: give queries more
	// time than the default, so placement waits rather than fails.
	view := membership.NewView(c, membership.ViewOptions{QueryTimeout: 15 * time.Second})
	w, err := startup.StartWorker(ctx, "Temporal to start the coordinator worker", func() sdkworker.Worker {
		w := sdkworker.New(c, workflows.CoordinatorTaskQueue, worker.CoordinatorOptions())
		worker.RegisterCoordinator(w, &activities.Coordinator{
			Resolver:  resolver,
			Placement: worker.RingPlacement{Current: view.Current},
			Manifests: manifests,
			Cached:    index,
		})
		return w
	})
	if err != nil {
		return fmt.Errorf("start coordinator worker: %w", err)
	}
	p.add("coordinator worker", func(context.Context) error { w.Stop(); return nil })
	p.add("coordinator connections to the nodes", func(context.Context) error { return index.Close() })
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

// manifestStoreFlag adds --manifest-store, the durable store of the jobs'
// file lists (package manifest), to a command.
func manifestStoreFlag(f *pflag.FlagSet, root *string) {
	f.StringVar(root, "manifest-store", envOr("FERRY_MANIFEST_STORE", ""),
		"directory URI of the store of job file lists and failure lists, shared by every coordinator and cache node, "+
			"e.g. s3://bucket/ferry/manifests (env FERRY_MANIFEST_STORE; default: ferry/manifests in this user's cache "+
			"directory, which only serves processes on one machine)")
}

// manifestStoreRoot returns root, or the default store of this machine's
// user, created private to it.
func manifestStoreRoot(root string) (string, error) {
	if root != "" {
		return root, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "ferry", "manifests")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("manifest store %s: %w", dir, err)
	}
	return "file://" + dir, nil
}

// openManifestStore opens the manifest store at root through a resolver of
// its own, and returns with it the resolver that jobs use: r, except that
// nothing under root is reachable through it (storage.Resolver.Reserving),
// so that no job reads or overwrites other jobs' manifests and failure
// lists, whatever mount covers them.
func openManifestStore(r *storage.Resolver, root string) (*storage.Resolver, *manifest.Store, error) {
	m, err := storage.ParseMount(root)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest store %q: %w", root, err)
	}
	own, err := r.WithMounts(m)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest store %q: %w", root, err)
	}
	manifests, err := manifest.New(own, root)
	if err != nil {
		return nil, nil, err
	}
	jobs, err := r.Reserving(root)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest store %q: %w", root, err)
	}
	return jobs, manifests, nil
}
