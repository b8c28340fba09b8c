package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// fakeJobs answers every call with err (or panics), and records the
// context of the last call.
type fakeJobs struct {
	err     error
	panics  bool
	lastCtx context.Context
}

func (f *fakeJobs) call(ctx context.Context) error {
	f.lastCtx = ctx
	if f.panics {
		panic("boom in the job service")
	}
	return f.err
}

func (f *fakeJobs) Submit(ctx context.Context, _ jobs.Key, _ workflows.Options) (jobs.SubmitResult, error) {
	return jobs.SubmitResult{Outcome: jobs.Started, JobID: "id"}, f.call(ctx)
}

func (f *fakeJobs) Progress(ctx context.Context, k jobs.Key) (workflows.JobState, error) {
	return workflows.JobState{Type: k.Type, Path: k.Path, Status: workflows.StatusRunning}, f.call(ctx)
}

func (f *fakeJobs) Stop(ctx context.Context, _ jobs.Key) error { return f.call(ctx) }

func (f *fakeJobs) List(ctx context.Context, _ jobs.ListFilter) ([]jobs.Summary, error) {
	return nil, f.call(ctx)
}

func (f *fakeJobs) SetBandwidth(ctx context.Context, _ jobs.Key, limit int64) (workflows.BandwidthSetting, error) {
	return workflows.BandwidthSetting{Limit: limit, Version: 1}, f.call(ctx)
}

func serve(t *testing.T, f *fakeJobs, tel *telemetry.Telemetry) *httptest.Server {
	t.Helper()
	s := New(Config{Jobs: f, Telemetry: tel, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServiceErrorsMapToStatus(t *testing.T) {
	const path = `{"path": "file:///data"}`
	for _, tc := range []struct {
		name    string
		fake    *fakeJobs
		code    int
		message string
	}{
		{"unavailable", &fakeJobs{err: fmt.Errorf("%w: query load:x (is a coordinator running?): deadline", jobs.ErrUnavailable)}, 503, "job service unavailable: query load:x"},
		{"timeout", &fakeJobs{err: context.DeadlineExceeded}, 503, "did not answer in time"},
		{"input error from the service", &fakeJobs{err: &jobs.InputError{Field: "indexFile", Message: "file:///i does not exist"}}, 400, "indexFile: file:///i does not exist"},
		{"anything else", &fakeJobs{err: errors.New("decode progress of load:x:\n  bad payload")}, 500, "internal error: decode progress of load:x: bad payload"},
		{"panic", &fakeJobs{panics: true}, 500, "internal error: panic: boom in the job service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.fake, nil)
			for _, route := range []string{"/api/v1/master/submit_job/load", "/api/v1/master/progress_job/load", "/api/v1/master/stop_job/load"} {
				code, body := do(t, srv, "POST", route, path, nil)
				if code != tc.code || !strings.Contains(body, tc.message) {
					t.Errorf("%s: %d %s, want %d with %q", route, code, body, tc.code, tc.message)
				}
				if strings.Contains(body, "goroutine") || strings.Contains(body, ".go:") {
					t.Errorf("%s: answer shows a stack trace: %s", route, body)
				}
			}
			// The worker-style route keeps its own shape with the same code
			// (a panic can only get the generic error body).
			code, body := do(t, srv, "GET", "/v1/load?opType=progress&path=file:///data", "", nil)
			if code != tc.code || !tc.fake.panics && !strings.Contains(body, `"jobState":"FAILED"`) {
				t.Errorf("/v1/load progress: %d %s", code, body)
			}
		})
	}
}

func TestRequestSpanContinuesTheCallersTrace(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), "ferry-api-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	f := &fakeJobs{}
	srv := serve(t, f, tel)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, body := do(t, srv, "POST", "/api/v1/master/submit_job/load", `{"path": "file:///data"}`,
		http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	if code != 200 {
		t.Fatalf("submit: %d %s", code, body)
	}
	sc := trace.SpanContextFromContext(f.lastCtx)
	if sc.TraceID().String() != traceID {
		t.Errorf("the job service got trace %s, want the caller's %s", sc.TraceID(), traceID)
	}
	if sc.SpanID().String() == "00f067aa0ba902b7" || !sc.IsValid() {
		t.Errorf("the job service should see the API's own span, got %v", sc.SpanID())
	}
}

func TestRoutesUseOpenAPIPathSyntax(t *testing.T) {
	s := New(Config{Jobs: &fakeJobs{}})
	found := false
	for _, r := range s.Routes() {
		if strings.Contains(r.Path, ":") {
			t.Errorf("route %s keeps echo syntax", r.Path)
		}
		found = found || r.Path == "/api/v1/master/submit_job/{type}"
	}
	if !found {
		t.Errorf("routes: %v", s.Routes())
	}
}
