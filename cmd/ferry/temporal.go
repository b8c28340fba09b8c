package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/ferryio/ferry/internal/startup"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// dialTemporal connects the process's one Temporal client to
// --temporal-address and --namespace, with the SDK's metrics and tracing
// wired to tel (nil: neither) and its log to slog. The caller closes it.
//
// It waits until the frontend answers and the namespace exists: at start,
// after a crash or before Temporal itself, both may take a while. The wait
// ends at ctx's deadline (--startup-timeout) with one line naming the
// address, the namespace and the last error.
func dialTemporal(ctx context.Context, g *globals, tel *telemetry.Telemetry) (client.Client, error) {
	opts := client.Options{
		HostPort:  g.temporalAddress,
		Namespace: g.namespace,
		Logger:    sdklog.NewStructuredLogger(slog.Default()),
		Identity:  processIdentity(),
		// Names are bytes: payloads keep names that are not UTF-8.
		DataConverter: bytesjson.DataConverter(),
	}
	if err := g.sec.temporalConnection(&opts); err != nil {
		return nil, err
	}
	if tel != nil {
		interceptors, err := tel.TemporalInterceptors()
		if err != nil {
			return nil, err
		}
		opts.MetricsHandler = tel.TemporalMetrics()
		opts.Interceptors = interceptors
	}
	var c client.Client
	what := fmt.Sprintf("Temporal at %s (namespace %s; set --temporal-address or FERRY_TEMPORAL_ADDRESS)", g.temporalAddress, g.namespace)
	err := startup.Retry(ctx, what, func(ctx context.Context) error {
		if c == nil {
			var err error
			if c, err = client.DialContext(ctx, opts); err != nil {
				return err
			}
		}
		// Workers refuse to start in a namespace that does not exist yet.
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: g.namespace})
		return err
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("cannot reach %w", err)
	}
	return c, nil
}

// processIdentity is the identity of this process's Temporal workers and
// client, "pid@host": the SDK's default ends in a stray "@".
func processIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}
