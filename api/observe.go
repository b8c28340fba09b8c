package api

import (
	"context"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryio/ferry/internal/telemetry"
)

// observer measures and traces requests. It is a few lines instead of the
// contrib otelecho package, which Ferry does not depend on.
type observer struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	duration   metric.Float64Histogram
	requests   metric.Int64Counter
}

func newObserver(tel *telemetry.Telemetry) *observer {
	meter := tel.Meter("github.com/ferryio/ferry/api")
	o := &observer{
		tracer: tel.Tracer("github.com/ferryio/ferry/api"),
		// Explicit rather than otel.GetTextMapPropagator: the API must
		// continue W3C trace context even when nothing set the globals.
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	// Instrument errors only happen with invalid names; a nil instrument
	// would then be skipped rather than fail requests.
	o.duration, _ = meter.Float64Histogram("ferry_api_request_duration",
		metric.WithUnit("ms"),
		metric.WithDescription("Duration of REST API requests, by method, route and status."),
		metric.WithExplicitBucketBoundaries(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 15000))
	o.requests, _ = meter.Int64Counter("ferry_api_requests",
		metric.WithDescription("REST API requests, by method, route and status."))
	return o
}

// middleware runs after routing, so c.Path() is the route pattern: a
// bounded label, unlike the raw URL.
func (o *observer) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		ctx := o.propagator.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		ctx, span := o.tracer.Start(ctx, req.Method+" "+route,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				semconv.HTTPRequestMethodKey.String(req.Method),
				semconv.HTTPRoute(route),
				semconv.URLPath(req.URL.Path),
			))
		defer span.End()
		c.SetRequest(req.WithContext(ctx))

		err := next(c)
		if err != nil {
			// Write the error response now, so the status measured below is
			// the one the client gets.
			c.Error(err)
		}
		status := c.Response().Status
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if status >= 500 {
			span.SetStatus(codes.Error, strconv.Itoa(status))
			if err != nil {
				span.RecordError(err)
			}
		}
		attrs := metric.WithAttributes(
			attribute.String("method", req.Method),
			attribute.String("route", route),
			attribute.String("status", strconv.Itoa(status)),
		)
		// Record with a context that outlives a cancelled request.
		mctx := context.WithoutCancel(ctx)
		if o.duration != nil {
			o.duration.Record(mctx, float64(time.Since(start).Microseconds())/1000, attrs)
		}
		if o.requests != nil {
			o.requests.Add(mctx, 1, attrs)
		}
		return nil
	}
}
