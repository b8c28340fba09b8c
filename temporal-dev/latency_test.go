package temporaldev_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/internal/enginetest"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

func stepActivity(ctx context.Context, i int) (int, error) { return i + 1, nil }

// chainWorkflow runs n activities one after the other: each step is a
// workflow task, an activity and the next workflow task, so its time is the
// server's per-step latency.
func chainWorkflow(ctx workflow.Context, n int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	x := 0
	for i := 0; i < n; i++ {
		if err := workflow.ExecuteActivity(ctx, stepActivity, x).Get(ctx, &x); err != nil {
			return 0, err
		}
	}
	return x, nil
}

// BenchmarkActivityChain reports the time of one workflow step (activity
// and workflow task) on the file database `ferry dev` uses, after a warm-up
// chain: the floor under every step of a Ferry job.
func BenchmarkActivityChain(b *testing.B) {
	_, c := enginetest.StartTemporal(b, temporaldev.Config{DatabaseFile: filepath.Join(b.TempDir(), "temporal.db")})
	w := worker.New(c, "chain", worker.Options{})
	w.RegisterWorkflow(chainWorkflow)
	w.RegisterActivity(stepActivity)
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	run := func(n int) {
		r, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{TaskQueue: "chain"}, chainWorkflow, n)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Get(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
	run(20) // warm-up: the first chain also creates the task queues
	b.ResetTimer()
	run(b.N)
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
}
