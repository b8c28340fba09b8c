package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/internal/admission"
)

// TestLimiterRefusesAtOnceWithRetryAfter holds the only request slot and
// checks that the next data request is refused at once with 429 and
// Retry-After, while /healthz still answers.
func TestLimiterRefusesAtOnceWithRetryAfter(t *testing.T) {
	l := &limiter{gate: admission.New("request slot", 1, 0, time.Hour)}
	e := echo.New()
	e.Use(l.middleware)
	entered, release := make(chan struct{}), make(chan struct{})
	e.GET("/v1/range/:id", func(c echo.Context) error {
		if c.Param("id") == "hold" {
			close(entered)
			<-release
		}
		return c.String(http.StatusOK, "ok")
	})
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	srv := httptest.NewServer(e)
	defer srv.Close()

	held := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/v1/range/hold")
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Get(srv.URL + "/v1/range/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while full: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	select {
	case code := <-held:
		t.Fatalf("the held request ended early: %d", code)
	default:
	}
	close(release)
	if code := <-held; code != http.StatusOK {
		t.Errorf("held request: %d", code)
	}
}
