package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryio/ferry/api"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// slowTemporal is the real job service with a gate in front of List and
// Progress: the fault a test cannot produce otherwise, a Temporal that
// takes as long as the test wants. It counts the calls that reach the
// service.
type slowTemporal struct {
	*jobs.Service
	gate              chan struct{} // closed: calls pass
	lists, progresses atomic.Int64
	entered           chan struct{} // one value per call that reached the gate
}

func newSlowTemporal(open bool) *slowTemporal {
	s := &slowTemporal{Service: env.Jobs, gate: make(chan struct{}), entered: make(chan struct{}, 1024)}
	if open {
		close(s.gate)
	}
	return s
}

func (s *slowTemporal) wait(ctx context.Context) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowTemporal) List(ctx context.Context, f jobs.ListFilter) ([]jobs.Summary, error) {
	s.lists.Add(1)
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Service.List(ctx, f)
}

func (s *slowTemporal) Progress(ctx context.Context, k jobs.Key) (workflows.JobState, error) {
	s.progresses.Add(1)
	if err := s.wait(ctx); err != nil {
		return workflows.JobState{}, err
	}
	return s.Service.Progress(ctx, k)
}

// serveWith runs a second API over the shared Temporal with these limits.
func serveWith(t *testing.T, svc api.JobService, lim api.Limits) string {
	t.Helper()
	s := api.New(api.Config{Jobs: svc, Limits: lim, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

type answer struct {
	code       int
	retryAfter string
	body       string
}

func get(ctx context.Context, base, path string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return answer{body: err.Error()}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
}

func progressPath(p string) string {
	return "/api/v1/master/progress_job/load?path=" + url.QueryEscape(p)
}

// TestOverloadIsRefusedAtOnceWithRetryAfter holds every call to the job
// service and checks that the requests beyond the limits are answered
// 429 or 503 with Retry-After while the held calls are still held: refused
// at once, not after a timeout.
func TestOverloadIsRefusedAtOnceWithRetryAfter(t *testing.T) {
	ctx := ctxT(t)
	slow := newSlowTemporal(false)
	defer close(slow.gate)
	base := serveWith(t, slow, api.Limits{MaxInFlight: 1, MaxWaiting: 1, MaxWait: time.Hour, MaxAnswerWait: time.Hour})

	// One call holds the only slot...
	answers := make(chan answer, 8)
	go func() { answers <- get(ctx, base, progressPath("file:///held-1")) }()
	<-slow.entered
	// ...then of three more, one waits for it and two find the queue full.
	for i := range 3 {
		go func() { answers <- get(ctx, base, progressPath(fmt.Sprintf("file:///more-%d", i))) }()
	}
	for range 2 {
		a := <-answers
		if a.code != http.StatusTooManyRequests || a.retryAfter != "1" || !strings.Contains(a.body, "busy") {
			t.Fatalf("over the queue: %d Retry-After %q: %s", a.code, a.retryAfter, a.body)
		}
	}
	// Listing shares the limits: also refused at once.
	if a := get(ctx, base, "/api/v1/master/list_job"); a.code != http.StatusTooManyRequests || a.retryAfter == "" {
		t.Errorf("list while full: %d %q %s", a.code, a.retryAfter, a.body)
	}
	// So is the worker-style route, in its own answer shape.
	if a := get(ctx, base, "/v1/load?opType=progress&path=file:///w"); a.code != http.StatusTooManyRequests || a.retryAfter == "" || !strings.Contains(a.body, `"jobState":"FAILED"`) {
		t.Errorf("/v1/load while full: %d %q %s", a.code, a.retryAfter, a.body)
	}
	select {
	case a := <-answers:
		t.Fatalf("a held request was answered before the service was released: %+v", a)
	default:
	}

	// A request that waits for a slot longer than MaxWait gets 503.
	slow503 := newSlowTemporal(false)
	defer close(slow503.gate)
	base503 := serveWith(t, slow503, api.Limits{MaxInFlight: 1, MaxWaiting: 8, MaxWait: 20 * time.Millisecond, MaxAnswerWait: time.Hour})
	go get(ctx, base503, progressPath("file:///held-3"))
	<-slow503.entered
	if a := get(ctx, base503, progressPath("file:///fourth")); a.code != http.StatusServiceUnavailable || a.retryAfter != "1" || !strings.Contains(a.body, "no call slot free") {
		t.Errorf("waited past MaxWait: %d Retry-After %q: %s", a.code, a.retryAfter, a.body)
	}

	// A request that waits for a shared answer longer than MaxAnswerWait
	// gets 503 too, while the call goes on.
	slowAnswer := newSlowTemporal(false)
	defer close(slowAnswer.gate)
	baseAnswer := serveWith(t, slowAnswer, api.Limits{MaxAnswerWait: 20 * time.Millisecond, RetryAfter: 3 * time.Second})
	if a := get(ctx, baseAnswer, "/api/v1/jobs"); a.code != http.StatusServiceUnavailable || a.retryAfter != "3" || !strings.Contains(a.body, "did not answer within") {
		t.Errorf("waited past MaxAnswerWait: %d Retry-After %q: %s", a.code, a.retryAfter, a.body)
	}

	// Too many requests at once, whatever they ask.
	slowReq := newSlowTemporal(false)
	defer close(slowReq.gate)
	baseReq := serveWith(t, slowReq, api.Limits{MaxRequests: 1, MaxAnswerWait: time.Hour})
	go get(ctx, baseReq, progressPath("file:///held-5"))
	<-slowReq.entered
	if a := get(ctx, baseReq, "/api/v1/jobs/progress?type=load&path=file:///x"); a.code != http.StatusTooManyRequests || a.retryAfter == "" || !strings.Contains(a.body, "too many requests") {
		t.Errorf("over MaxRequests: %d %q %s", a.code, a.retryAfter, a.body)
	}
	if a := get(ctx, baseReq, "/healthz"); a.code != http.StatusOK {
		t.Errorf("/healthz is never limited: %d %s", a.code, a.body)
	}
}

// TestListingUnderConcurrencyIsCorrectAndShared sends many concurrent list
// and progress requests: every answer is complete and correct, and they
// share far fewer calls to the job service than there are requests.
func TestListingUnderConcurrencyIsCorrectAndShared(t *testing.T) {
	ctx := ctxT(t)
	var keys []jobs.Key
	for i := range 5 {
		k := jobs.Key{Type: workflows.JobLoad, Path: newDir(t, fmt.Sprintf("many-%d", i))}
		if _, err := env.Jobs.Submit(ctx, k, workflows.Options{}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	defer func() {
		for _, k := range keys {
			_ = env.Jobs.Stop(context.Background(), k)
		}
	}()
	for _, k := range keys {
		if err := env.WaitListed(ctx, k, workflows.StatusRunning); err != nil {
			t.Fatal(err)
		}
	}
	counted := newSlowTemporal(true)
	base := serveWith(t, counted, api.Limits{})

	const clients, each = 50, 4
	var wg sync.WaitGroup
	errs := make(chan string, clients*each*2)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				a := get(ctx, base, "/api/v1/master/list_job?job-type=LOAD&job-state=RUNNING")
				var list struct {
					Jobs []struct{ Path, JobState, JobType string }
				}
				if a.code != 200 || json.Unmarshal([]byte(a.body), &list) != nil {
					errs <- fmt.Sprintf("list: %d %s", a.code, a.body)
					continue
				}
				seen := map[string]bool{}
				for _, j := range list.Jobs {
					if j.JobState != "RUNNING" || j.JobType != "LOAD" {
						errs <- fmt.Sprintf("list filtered wrongly: %+v", j)
					}
					seen[j.Path] = true
				}
				for _, k := range keys {
					if !seen[k.Path] {
						errs <- "list lacks " + k.Path
					}
				}
				k := keys[c%len(keys)]
				a = get(ctx, base, progressPath(k.Path))
				if a.code != 200 || !strings.Contains(a.body, `"jobState":"RUNNING"`) || !strings.Contains(a.body, k.Path) {
					errs <- fmt.Sprintf("progress of %s: %d %s", k.Path, a.code, a.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 5 {
			t.Error(e)
		}
	}
	if got := counted.lists.Load(); got >= clients*each/2 {
		t.Errorf("%d list requests made %d listing calls: not shared", clients*each, got)
	}
	if got := counted.progresses.Load(); got >= clients*each/2 {
		t.Errorf("%d progress requests made %d progress calls: not shared", clients*each, got)
	}
	t.Logf("%d list and %d progress requests made %d listing and %d progress calls", clients*each, clients*each, counted.lists.Load(), counted.progresses.Load())

	// A stop through the API is seen by the next progress request at once,
	// not after the reuse time.
	resp, err := http.Post(base+"/api/v1/master/stop_job/load", "application/json", strings.NewReader(jsonBody(map[string]any{"path": keys[0].Path})))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stop: %d", resp.StatusCode)
	}
	waitStatus(t, keys[0], workflows.StatusStopped)
	if a := get(ctx, base, progressPath(keys[0].Path)); a.code != 200 || !strings.Contains(a.body, `"jobState":"STOPPED"`) {
		t.Errorf("progress after a stop through the API: %d %s", a.code, a.body)
	}
}
