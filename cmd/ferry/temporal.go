package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/ferryio/ferry/internal/startup"
	"github.com/ferryio/ferry/internal/telemetry"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
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
	if err := checkSearchAttributes(ctx, c, g.namespace); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// checkSearchAttributes refuses a namespace that lacks a search attribute
// Ferry's workflows set: every upsert of it would fail the job's workflow
// task, and the job would hang instead of saying why. A server that does
// not let this client list them is not checked.
func checkSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		slog.Debug("search attributes not checked", "namespace", namespace, "error", err)
		return nil
	}
	var missing, commands []string
	for _, name := range slices.Sorted(maps.Keys(temporaldev.SearchAttributes)) {
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		typ := temporaldev.SearchAttributes[name].String()
		missing = append(missing, name)
		commands = append(commands, fmt.Sprintf("temporal operator search-attribute create --namespace %s --name %s --type %s", namespace, name, typ))
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("namespace %s lacks the search attribute(s) %s that Ferry's jobs set; add them once: %s",
		namespace, strings.Join(missing, ", "), strings.Join(commands, "; "))
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
