package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"text/tabwriter"
	"time"
)

// parts is what a long-running command started, stopped in reverse order.
type parts struct {
	stops     []namedStop
	endpoints [][2]string
}

type namedStop struct {
	name string
	stop func(context.Context) error
}

func (p *parts) add(name string, stop func(context.Context) error) {
	p.stops = append(p.stops, namedStop{name, stop})
}

// endpoint records a line of the start-up banner.
func (p *parts) endpoint(what, where string) {
	p.endpoints = append(p.endpoints, [2]string{what, where})
}

func (p *parts) printEndpoints(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, e := range p.endpoints {
		_, _ = fmt.Fprintf(tw, "  %s\t%s\n", e[0], e[1])
	}
	_ = tw.Flush()
}

// stopAll stops everything, last started first, within timeout.
func (p *parts) stopAll(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for i := len(p.stops) - 1; i >= 0; i-- {
		s := p.stops[i]
		if err := s.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// serveHTTP serves h on addr in the background and registers its shutdown.
// It fails at once when addr cannot be bound.
func (p *parts) serveHTTP(name, addr string, h http.Handler, tlsCfg ...*tls.Config) (string, error) {
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	if len(tlsCfg) > 0 && tlsCfg[0] != nil {
		l = tls.NewListener(l, tlsCfg[0])
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("http server stopped", "server", name, "err", err)
		}
	}()
	p.add(name, srv.Shutdown)
	return l.Addr().String(), nil
}
