package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// temporalDialTimeout bounds the first contact with Temporal, so a wrong
// --temporal-address fails the command instead of hanging it.
const temporalDialTimeout = 15 * time.Second

// dialTemporal connects the process's one Temporal client to
// --temporal-address and --namespace, with the SDK's metrics and tracing
// wired to tel (nil: neither) and its log to slog. The caller closes it.
func dialTemporal(ctx context.Context, g *globals, tel *telemetry.Telemetry) (client.Client, error) {
	opts := client.Options{
		HostPort:  g.temporalAddress,
		Namespace: g.namespace,
		Logger:    sdklog.NewStructuredLogger(slog.Default()),
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
	dctx, cancel := context.WithTimeout(ctx, temporalDialTimeout)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (namespace %s; set --temporal-address or FERRY_TEMPORAL_ADDRESS): %w",
			g.temporalAddress, g.namespace, err)
	}
	return c, nil
}
