package main

import (
	"context"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/storage"
)

// process is what every long-running Ferry process builds once: its
// telemetry, its one Temporal client, its storage backends, and the list of
// parts to stop at the end.
type process struct {
	parts    *parts
	tel      *telemetry.Telemetry
	client   client.Client
	resolver *storage.Resolver
}

// startProcess builds them for the named service ("ferry-api", …). On error
// whatever was started is stopped again.
func startProcess(ctx context.Context, g *globals, service string) (*process, error) {
	tel, err := telemetry.Setup(ctx, service)
	if err != nil {
		return nil, err
	}
	pr := &process{parts: &parts{}, tel: tel}
	pr.parts.add("telemetry", tel.Shutdown)
	sctx, cancel := g.startupContext(ctx)
	defer cancel()
	if pr.client, err = dialTemporal(sctx, g, tel); err != nil {
		return nil, pr.fail(err)
	}
	c := pr.client
	pr.parts.add("temporal client", func(context.Context) error { c.Close(); return nil })
	if pr.resolver, err = newResolver(ctx, g); err != nil {
		return nil, pr.fail(err)
	}
	return pr, nil
}

// fail stops everything started and returns err.
func (pr *process) fail(err error) error {
	_ = pr.parts.stopAll(30 * time.Second)
	return err
}

// startupContext bounds the waits of a process's start-up by
// --startup-timeout. Only start-up calls get it: nothing that lives on may
// keep it.
func (g *globals) startupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.startupTimeout <= 0 {
		return context.WithTimeout(ctx, defaultStartupTimeout)
	}
	return context.WithTimeout(ctx, g.startupTimeout)
}
