// Package httpapi is a cache node's HTTP data API: the routes the Alluxio
// Python fsspec client (alluxiofs 1.0.x) calls on an Alluxio worker, served
// from the node's page store, plus /v1/cluster, /healthz and /metrics. The
// routes, JSON shapes and encodings follow spec/cache-http.md:
//
//   - path= is percent-decoded normally ('+' is a space); ufsFullPath,
//     srcPath and dstPath arrive raw and are read from the raw query ('+'
//     stays '+'), and ufsFullPath is checked against the file id in the URL.
//   - Reads (page, range, chunk, head, tail) go through the page store:
//     cached pages are served after their checksum is verified, missing ones
//     are fetched from the storage system and stored.
//   - Writes go through to the storage system atomically (Create, Commit)
//     and the written file is cached.
//   - Every error is {"message": "..."} with 400, 403, 404, 409, 412 or 503;
//     bad input never gets a 500, and a handler that panics answers 500
//     rather than killing the node. A read that fails after its first byte
//     was sent aborts the connection, so a client sees a short body (its
//     Content-Length is not met), never a complete wrong one.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/storage"
)

// Config is what the API serves from.
type Config struct {
	// NodeID names this node in /v1/cluster and metrics.
	NodeID string
	// Store is the node's page store. Required.
	Store *pagestore.Store
	// Resolver reaches the storage systems for listings and writes. Required.
	Resolver *storage.Resolver
	// Ring returns the current placement ring. Required.
	Ring func(context.Context) (*ring.Ring, error)
	// Members returns the registry's view with last-seen times, for
	// /v1/cluster. Optional.
	Members func(context.Context) (membership.Snapshot, error)
	// JobAPIURL is where /v1/load is forwarded (its /v1/load). Empty: /v1/load
	// answers 503.
	JobAPIURL string
	// Metrics serves /metrics. Optional.
	Metrics http.Handler
	// Meter creates the HTTP instruments. Default: a no-op meter.
	Meter metric.Meter
	// HTTPClient forwards /v1/load. Default: a client with a 60 s timeout.
	HTTPClient *http.Client
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP API of one node.
type Server struct {
	cfg      Config
	e        *echo.Echo
	log      *slog.Logger
	draining atomic.Bool
	latency  metric.Float64Histogram
	results  metric.Int64Counter
	node     attribute.KeyValue
}

// New builds the API.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("http api: Store is required"))
	}
	if cfg.Resolver == nil {
		errs = append(errs, errors.New("http api: Resolver is required"))
	}
	if cfg.Ring == nil {
		errs = append(errs, errors.New("http api: Ring is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Meter == nil {
		cfg.Meter = noop.NewMeterProvider().Meter("")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, node: attribute.String("node", cfg.NodeID)}
	var err error
	s.latency, err = cfg.Meter.Float64Histogram("ferry_http_server_call_latency_ms",
		metric.WithDescription("Latency of cache node HTTP API calls, in milliseconds."),
		metric.WithExplicitBucketBoundaries(10, 40, 160, 640))
	if err != nil {
		return nil, err
	}
	s.results, err = cfg.Meter.Int64Counter("ferry_http_server_result_total",
		metric.WithDescription("Cache node HTTP API calls by outcome."))
	if err != nil {
		return nil, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.routeError
	e.Use(newLimiter().middleware)
	s.e = e

	e.GET("/v1/files", s.op("list_files", s.listFiles))
	e.GET("/v1/info", s.op("get_file_status", s.info))
	e.GET("/v1/file/:id/page/:n", s.op("get_page", s.getPage))
	e.POST("/v1/file/:id/page/:n", s.op("write_page", s.postPage))
	e.GET("/v1/range/:id", s.op("read_range", s.getRange))
	e.GET("/v1/chunk/:id", s.op("read_chunk", s.getChunk))
	e.POST("/v1/chunk/:id", s.op("write_chunk", s.postChunk))
	e.POST("/v1/mkdir/:id", s.op("mkdir", s.mkdir))
	e.POST("/v1/touch/:id", s.op("touch", s.touch))
	e.POST("/v1/rm/:id", s.op("rm", s.rm))
	e.POST("/v1/mv/:id", s.op("mv", s.mv))
	e.POST("/v1/copy/:id", s.op("copy", s.copyFile))
	e.GET("/v1/head/:id", s.op("head", s.head))
	e.GET("/v1/tail/:id", s.op("tail", s.tail))
	e.GET("/v1/node", s.op("get_node", s.nodeOf))
	e.GET("/v1/cluster", s.op("cluster", s.cluster))
	e.Match([]string{http.MethodGet, http.MethodPost}, "/v1/load", s.op("load", s.load))
	e.GET("/healthz", s.healthz)
	if cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics))
	}
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// Drain makes every data route and /healthz answer 503 from now on, so that
// clients (which fall back to the storage system on any error) stop using a
// node that is shutting down. /metrics keeps answering.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) healthz(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, message("node "+s.cfg.NodeID+" is shutting down"))
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "node": s.cfg.NodeID})
}

func message(m string) map[string]string { return map[string]string{"message": m} }

// op wraps a handler: 503 while draining, one error format, metrics, and a
// recover so that no input can take the node down.
func (s *Server) op(name string, h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler { //nolint:errorlint // sentinel value compared as net/http does
						err = errAborted
						return
					}
					s.log.Error("http api: handler panicked", "op", name, "panic", p, "url", c.Request().URL.String())
					err = statusError(http.StatusInternalServerError, "internal error in %s", name)
				}
			}()
			if s.draining.Load() {
				err = statusError(http.StatusServiceUnavailable, "node %s is shutting down", s.cfg.NodeID)
				return
			}
			err = h(c)
		}()
		status := http.StatusOK
		if err != nil {
			status = s.writeError(c, err)
		} else if c.Response().Committed {
			status = c.Response().Status
		}
		s.record(c.Request().Context(), name, status, time.Since(start))
		if status == statusAborted {
			// Headers (and maybe bytes) are out: cut the connection so the
			// client cannot take a short body for a whole one.
			panic(http.ErrAbortHandler)
		}
		return nil
	}
}

var errAborted = errors.New("response aborted")

// statusAborted and statusCanceled are not sent; they label metrics.
const (
	statusAborted  = -1
	statusCanceled = 499
)

// writeError answers err and returns the status it used.
func (s *Server) writeError(c echo.Context, err error) int {
	if c.Response().Committed || errors.Is(err, errAborted) {
		return statusAborted
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		return statusCanceled // the client went away; nobody to answer
	}
	status, msg := classify(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("http api: request failed", "url", c.Request().URL.String(), "err", err)
	}
	_ = c.JSON(status, message(msg))
	return status
}

// classify maps an error to a status and a message.
func classify(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.msg
	}
	var ee *echo.HTTPError
	if errors.As(err, &ee) {
		return ee.Code, fmt.Sprint(ee.Message)
	}
	if errors.Is(err, pagestore.ErrChanged) {
		return http.StatusPreconditionFailed, err.Error()
	}
	switch kind := storage.Kind(err); {
	case errors.Is(kind, storage.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(kind, storage.ErrPermission):
		return http.StatusForbidden, err.Error()
	case errors.Is(kind, storage.ErrExists):
		return http.StatusConflict, err.Error()
	case errors.Is(kind, storage.ErrInvalidPath) || errors.Is(kind, storage.ErrOutOfRange):
		return http.StatusBadRequest, err.Error()
	case errors.Is(kind, storage.ErrUnavailable):
		return http.StatusServiceUnavailable, err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, "internal error: " + err.Error()
}

// routeError answers what echo rejects before a handler runs (unknown
// route, wrong method) in the API's error format.
func (s *Server) routeError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := classify(err)
	_ = c.JSON(status, message(msg))
	s.record(c.Request().Context(), "unknown", status, 0)
}

func (s *Server) record(ctx context.Context, op string, status int, d time.Duration) {
	ok := status > 0 && status < 400
	s.latency.Record(ctx, float64(d.Microseconds())/1000, metric.WithAttributes(
		attribute.String("method", op), attribute.Bool("success", ok), s.node))
	s.results.Add(ctx, 1, metric.WithAttributes(
		attribute.String("method", op), attribute.String("state", state(status)), s.node))
}

func state(status int) string {
	switch {
	case status == statusAborted:
		return "aborted"
	case status == statusCanceled:
		return "canceled"
	case status < 400:
		return "success"
	}
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusPreconditionFailed:
		return "precondition_failed"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}
