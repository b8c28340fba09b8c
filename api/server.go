// Package api is Ferry's REST facade: echo handlers that turn HTTP requests
// into calls on the job service (submit, progress, stop, list) and render
// progress reports (package api/report).
//
// Three families of routes share the same service and the same error rules:
//
//   - worker-style GET|POST /v1/load?path=…&opType=submit|progress|stop, the
//     route Alluxio workers serve and the Python fsspec client calls; cache
//     nodes forward it here unchanged, so it reads everything from the query;
//   - coordinator-style /api/v1/master/{submit_job,progress_job,stop_job}/{type}
//     and /api/v1/master/list_job, the routes of the Alluxio master that the
//     CLI uses;
//   - Ferry's resource-style /api/v1/jobs routes, with status codes that say
//     what happened (201 started, 200 resumed, 409 already running).
//
// Plus /healthz, /metrics and /openapi.json, a hand-written OpenAPI 3
// document of every route.
//
// Errors are JSON {"message": "…"}: 400 for input that can never succeed
// (malformed JSON, a missing path, a bad option — the message names it), 404
// for an unknown job, 503 when Temporal does not answer, 500 for anything
// else — never a stack trace. Each request is measured
// (ferry_api_request_duration_milliseconds, ferry_api_requests_total) and
// traced: a span per request continues the caller's W3C trace context and is
// passed to the Temporal client, so a job's trace starts at the REST call.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// JobService is what the API needs from the job engine; *jobs.Service
// implements it.
type JobService interface {
	// Submit starts, resumes or reports an already running job.
	Submit(ctx context.Context, key jobs.Key, opts workflows.Options) (jobs.SubmitResult, error)
	// Progress returns the job's state; jobs.ErrNotFound for an unknown job.
	Progress(ctx context.Context, key jobs.Key) (workflows.JobState, error)
	// Stop signals a running job; jobs.ErrNotFound when none is running.
	Stop(ctx context.Context, key jobs.Key) error
	// List returns the latest run of every job matching the filter.
	List(ctx context.Context, f jobs.ListFilter) ([]jobs.Summary, error)
	// SetBandwidth changes the bandwidth limit of a running job (0:
	// unlimited); jobs.ErrNotFound when none is running.
	SetBandwidth(ctx context.Context, key jobs.Key, limit int64) (workflows.BandwidthSetting, error)
}

var _ JobService = (*jobs.Service)(nil)

// Config configures a Server.
type Config struct {
	// Jobs is the job service. Required.
	Jobs JobService
	// Policies is the policy service; nil answers the policy routes 503.
	Policies PolicyService
	// Telemetry provides the request metrics, the request spans and the
	// /metrics route. Nil disables all three.
	Telemetry *telemetry.Telemetry
	// Logger receives request errors and recovered panics. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock of progress reports (a running job's elapsed time and
	// throughput). Default time.Now.
	Now func() time.Time
	// Location is the time zone of dates in TEXT reports. Default time.Local.
	Location *time.Location
	// MaxBodyBytes limits request bodies. Default 64 KiB.
	MaxBodyBytes int64
	// Limits bound concurrent work and set the caching of listings and
	// progress (limits.go). Zero fields take their defaults.
	Limits Limits
}

// Server is the REST facade. Serve its Handler with any http.Server.
type Server struct {
	jobs     JobService
	policies PolicyService
	log      *slog.Logger
	report   report.Renderer
	echo     *echo.Echo
}

// New builds the server and registers every route. It panics when
// cfg.Jobs is nil, a programming error.
func New(cfg Config) *Server {
	if cfg.Jobs == nil {
		panic("api.New: Config.Jobs is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	s := &Server{
		jobs:     cfg.Jobs,
		policies: cfg.Policies,
		log:      cfg.Logger,
		report:   report.Renderer{Now: cfg.Now, Location: cfg.Location},
		echo:     echo.New(),
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if cfg.Telemetry != nil {
		e.Use(newObserver(cfg.Telemetry).middleware)
	}
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		// The stack goes to the log, never into a response.
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in API handler", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err, "stack", string(stack))
			return fmt.Errorf("panic: %w", err)
		},
	}))
	e.Use(bodyLimit(cfg.MaxBodyBytes))
	s.jobs = limitJobs(e, cfg.Jobs, cfg.Limits)
	s.routes(cfg.Telemetry)
	return s
}

// Handler serves every route.
func (s *Server) Handler() http.Handler { return s.echo }

// Route is one registered method and path, with path parameters written
// OpenAPI style ("{type}").
type Route struct {
	Method string
	Path   string
}

// Routes lists the registered routes.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.echo.Routes() {
		segs := strings.Split(r.Path, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, ":") {
				segs[i] = "{" + seg[1:] + "}"
			}
		}
		out = append(out, Route{Method: r.Method, Path: strings.Join(segs, "/")})
	}
	return out
}

func (s *Server) routes(tel *telemetry.Telemetry) {
	e := s.echo
	// Worker-style, as Alluxio workers serve it.
	e.GET("/v1/load", s.workerLoad)
	e.POST("/v1/load", s.workerLoad)

	// Coordinator-style, as the Alluxio master serves them.
	e.POST("/api/v1/master/submit_job/:type", s.masterSubmit)
	e.GET("/api/v1/master/progress_job/:type", s.masterProgress)
	e.POST("/api/v1/master/progress_job/:type", s.masterProgress)
	e.POST("/api/v1/master/stop_job/:type", s.masterStop)
	e.GET("/api/v1/master/list_job", s.masterList)

	// Ferry's own.
	e.POST("/api/v1/jobs", s.createJob)
	e.GET("/api/v1/jobs", s.listJobs)
	e.GET("/api/v1/jobs/progress", s.jobProgress)
	e.POST("/api/v1/jobs/stop", s.stopJob)
	e.POST("/api/v1/jobs/bandwidth", s.setBandwidth)
	s.policyRoutes()

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIDocument)
	})
	if tel != nil {
		e.GET("/metrics", echo.WrapHandler(tel.Handler()))
	}
}

// errorBody is every error response.
type errorBody struct {
	Message string `json:"message"`
	// Field names the request field or option at fault, for 400s.
	Field string `json:"field,omitempty"`
}

// inputError is a request the API itself refuses before calling the
// service.
type inputError struct {
	field, message string
}

func (e *inputError) Error() string {
	if e.field == "" {
		return e.message
	}
	return e.field + ": " + e.message
}

func badInput(field, format string, args ...any) error {
	return &inputError{field: field, message: fmt.Sprintf(format, args...)}
}

// classify maps an error to its status code and response body.
func classify(err error) (int, errorBody) {
	var in *inputError
	var ie *jobs.InputError
	var oe *jobs.OptionError
	var fe *jobs.ForbiddenError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &in):
		return http.StatusBadRequest, errorBody{Message: in.Error(), Field: in.field}
	case errors.As(err, &ie):
		return http.StatusBadRequest, errorBody{Message: ie.Error(), Field: ie.Field}
	case errors.As(err, &oe):
		return http.StatusBadRequest, errorBody{Message: oe.Error(), Field: oe.Option}
	case errors.As(err, &fe):
		return http.StatusForbidden, errorBody{Message: fe.Error(), Field: fe.Field}
	case errors.Is(err, jobs.ErrNotFound):
		return http.StatusNotFound, errorBody{Message: err.Error()}
	case errors.Is(err, jobs.ErrUnavailable):
		return http.StatusServiceUnavailable, errorBody{Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, errorBody{Message: "the job service did not answer in time: " + err.Error()}
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		return he.Code, errorBody{Message: msg}
	}
	return http.StatusInternalServerError, errorBody{Message: "internal error: " + oneLine(err.Error())}
}

// handleError is echo's central error handler: handlers return errors and
// this writes the JSON answer.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, body := classify(err)
	if code >= 500 {
		s.log.Error("API request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "status", code, "err", err)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(code)
	} else {
		err = c.JSON(code, body)
	}
	if err != nil {
		s.log.Warn("write error response", "err", err)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// bodyLimit refuses bodies over max bytes with 413, counting what is read so
// chunked bodies without a length are limited too.
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > max {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, max)
			return next(c)
		}
	}
}
