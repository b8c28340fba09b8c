package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/internal/admission"
)

// A node serves at most maxConcurrentRequests data requests at once; each
// read holds a page buffer (1 MiB by default) and each write a body, so
// this bounds the memory a burst of clients can take. Up to
// maxWaitingRequests more wait at most requestWait for their turn; the rest
// are answered 429 (queue full) or 503 (wait over) with Retry-After at
// once. Clients such as alluxiofs fall back to the storage system on such
// an answer, and come back to the node when it has room.
const (
	maxConcurrentRequests = 64
	maxWaitingRequests    = 1024
	requestWait           = time.Second
	retryAfter            = time.Second
)

// limiter admits data requests; /healthz and /metrics always pass.
type limiter struct {
	gate *admission.Gate
}

func newLimiter() *limiter {
	return &limiter{gate: admission.New("request slot", maxConcurrentRequests, maxWaitingRequests, requestWait)}
}

func (l *limiter) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	ra := admission.RetryAfter(retryAfter)
	return func(c echo.Context) error {
		res := c.Response()
		res.Before(func() {
			if (res.Status == http.StatusTooManyRequests || res.Status == http.StatusServiceUnavailable) && res.Header().Get("Retry-After") == "" {
				res.Header().Set("Retry-After", ra)
			}
		})
		switch c.Path() {
		case "/healthz", "/metrics":
			return next(c)
		}
		release, err := l.gate.Acquire(c.Request().Context())
		if err != nil {
			var ref *admission.Refused
			if errors.As(err, &ref) {
				return echo.NewHTTPError(ref.Status, "node is "+ref.Message)
			}
			return err
		}
		defer release()
		return next(c)
	}
}
