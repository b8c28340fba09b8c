// Package apitest runs Ferry's REST API for tests of the API and of the CLI:
// an in-memory Temporal server (temporal-dev), a worker on the coordinator
// task queue running StandInJobWorkflow, the real jobs.Service, and the
// api.Server on a kernel-chosen loopback port.
//
// Only tests import this package. The stand-in workflow lets the REST and
// CLI surface be tested on their own, with jobs whose progress and end the
// test controls; the real job workflow is exercised by the end-to-end tests
// in tests/.
package apitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/api"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// Env is a running API with its Temporal server and stand-in worker.
type Env struct {
	// URL is the API's base URL, "http://127.0.0.1:port".
	URL string
	// Temporal is a client of the embedded server.
	Temporal client.Client
	// TemporalAddress is the embedded server's frontend, host:port.
	TemporalAddress string
	// Jobs is the job service behind the API.
	Jobs *jobs.Service
	// Server is the REST facade.
	Server *api.Server

	temporal *temporaldev.Server
	worker   worker.Worker
	http     *http.Server
	tel      *telemetry.Telemetry
}

// Options tune Start.
type Options struct {
	// Now is the clock of progress reports. Default time.Now.
	Now func() time.Time
	// Location is the time zone of report dates. Default UTC, so expected
	// reports do not depend on the machine.
	Location *time.Location
}

// Start starts everything, or returns an error and leaves nothing running.
func Start(ctx context.Context, o Options) (_ *Env, err error) {
	e := &Env{}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.temporal, err = temporaldev.Start(ctx, temporaldev.Config{}); err != nil {
		return nil, err
	}
	e.TemporalAddress = e.temporal.FrontendAddress()
	quiet := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if e.Temporal, err = client.DialContext(ctx, client.Options{
		HostPort: e.temporal.FrontendAddress(), Namespace: e.temporal.Namespace(), Logger: quiet,
		DataConverter: bytesjson.DataConverter(),
	}); err != nil {
		return nil, fmt.Errorf("dial temporal: %w", err)
	}
	e.worker = worker.New(e.Temporal, workflows.CoordinatorTaskQueue, worker.Options{})
	e.worker.RegisterWorkflowWithOptions(StandInJobWorkflow, workflow.RegisterOptions{Name: workflows.JobWorkflowName})
	if err = e.worker.Start(); err != nil {
		return nil, fmt.Errorf("start stand-in worker: %w", err)
	}
	if e.tel, err = telemetry.Setup(ctx, "ferry-api-test"); err != nil {
		return nil, err
	}
	store, err := local.New(local.Options{Root: "/"})
	if err != nil {
		return nil, err
	}
	e.Jobs = jobs.NewService(e.Temporal, storage.NewResolver(store))
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	e.Server = api.New(api.Config{
		Jobs: e.Jobs, Telemetry: e.tel, Now: o.Now, Location: loc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.URL = "http://" + l.Addr().String()
	e.http = &http.Server{Handler: e.Server.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.http.Serve(l) }()
	return e, nil
}

// Close stops everything Start started.
func (e *Env) Close() {
	if e.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = e.http.Shutdown(ctx)
		cancel()
	}
	if e.worker != nil {
		e.worker.Stop()
	}
	if e.Temporal != nil {
		e.Temporal.Close()
	}
	if e.tel != nil {
		_ = e.tel.Shutdown(context.Background())
	}
	if e.temporal != nil {
		_ = e.temporal.Stop()
	}
}

// Finish tells the stand-in run of key to complete: SUCCEEDED, or FAILED
// when its path contains "fail".
func (e *Env) Finish(ctx context.Context, key jobs.Key) error {
	return e.Temporal.SignalWorkflow(ctx, key.WorkflowID(), "", SignalFinish, nil)
}

// WaitStatus waits until the job's state is want, polling its progress,
// and returns that state. It fails at ctx's deadline.
func (e *Env) WaitStatus(ctx context.Context, key jobs.Key, want workflows.JobStatus) (workflows.JobState, error) {
	var last workflows.JobState
	var lastErr error
	for {
		st, err := e.Jobs.Progress(ctx, key)
		if err == nil && st.Status == want {
			return st, nil
		}
		last, lastErr = st, err
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("job %s did not reach %s (last %q, %w): %w", key.WorkflowID(), want, last.Status, lastErr, ctx.Err())
		case <-time.After(25 * time.Millisecond): // poll interval
		}
	}
}

// WaitListed waits until the visibility store lists the job in state want
// (visibility is updated asynchronously).
func (e *Env) WaitListed(ctx context.Context, key jobs.Key, want workflows.JobStatus) error {
	for {
		list, err := e.Jobs.List(ctx, jobs.ListFilter{Type: key.Type})
		if err == nil {
			for _, j := range list {
				if j.Path == key.Path && j.Dst == key.Dst && j.Status == want {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("job %s not listed as %s", key.WorkflowID(), want), err, ctx.Err())
		case <-time.After(25 * time.Millisecond): // poll interval
		}
	}
}
