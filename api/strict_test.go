package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// routeCase builds a valid request for one route, to which the generated
// cases below add one contradiction at a time.
type routeCase struct {
	// op is "submit", "progress", "stop", "list" or "worker" (/v1/load).
	op string
	// url returns the path (and query) of a valid request for job type t
	// naming source src and destination dst.
	url func(t workflows.JobType, src, dst string) string
	// body returns a valid JSON body as a map, or nil when the route reads
	// only its query.
	body func(t workflows.JobType, src, dst string) map[string]any
	// ferry: the route takes the job type in the request, not the URL.
	ferry bool
}

// target names a job the way the routes want it: path for a load, src and
// dst for a copy or move.
func target(t workflows.JobType, src, dst string) map[string]any {
	if t == workflows.JobLoad {
		return map[string]any{"path": src}
	}
	return map[string]any{"src": src, "dst": dst}
}

func withType(m map[string]any, t workflows.JobType) map[string]any {
	m["type"] = string(t)
	return m
}

// routeCases covers every registered route that takes input; a new route
// fails TestEveryRouteIsStrict until it has a case here.
var routeCases = map[string]routeCase{
	"GET /v1/load": {op: "worker", url: func(_ workflows.JobType, src, _ string) string {
		return "/v1/load?opType=progress&path=" + url.QueryEscape(src)
	}},
	"POST /v1/load": {op: "worker", url: func(_ workflows.JobType, src, _ string) string {
		return "/v1/load?opType=submit&path=" + url.QueryEscape(src)
	}},
	"POST /api/v1/master/submit_job/{type}": {op: "submit",
		url:  func(t workflows.JobType, _, _ string) string { return "/api/v1/master/submit_job/" + string(t) },
		body: target},
	"GET /api/v1/master/progress_job/{type}": {op: "progress",
		url:  func(t workflows.JobType, _, _ string) string { return "/api/v1/master/progress_job/" + string(t) },
		body: target},
	"POST /api/v1/master/progress_job/{type}": {op: "progress",
		url:  func(t workflows.JobType, _, _ string) string { return "/api/v1/master/progress_job/" + string(t) },
		body: target},
	"POST /api/v1/master/stop_job/{type}": {op: "stop",
		url:  func(t workflows.JobType, _, _ string) string { return "/api/v1/master/stop_job/" + string(t) },
		body: target},
	"GET /api/v1/master/list_job": {op: "list",
		url: func(workflows.JobType, string, string) string {
			return "/api/v1/master/list_job?job-type=LOAD&job-state=ALL"
		}},
	"POST /api/v1/jobs": {op: "submit", ferry: true,
		url:  func(workflows.JobType, string, string) string { return "/api/v1/jobs" },
		body: func(t workflows.JobType, src, dst string) map[string]any { return withType(target(t, src, dst), t) }},
	"GET /api/v1/jobs": {op: "list",
		url: func(workflows.JobType, string, string) string { return "/api/v1/jobs?type=load&state=all" }},
	"GET /api/v1/jobs/progress": {op: "progress", ferry: true,
		url:  func(workflows.JobType, string, string) string { return "/api/v1/jobs/progress" },
		body: func(t workflows.JobType, src, dst string) map[string]any { return withType(target(t, src, dst), t) }},
	"POST /api/v1/jobs/stop": {op: "stop", ferry: true,
		url:  func(workflows.JobType, string, string) string { return "/api/v1/jobs/stop" },
		body: func(t workflows.JobType, src, dst string) map[string]any { return withType(target(t, src, dst), t) }},
	"POST /api/v1/jobs/bandwidth": {op: "bandwidth", ferry: true,
		url: func(workflows.JobType, string, string) string { return "/api/v1/jobs/bandwidth" },
		body: func(t workflows.JobType, src, dst string) map[string]any {
			b := withType(target(t, src, dst), t)
			b["options"] = map[string]any{"bandwidth": "1MB"}
			return b
		}},
}

// inputless routes take no input at all; they are not checked.
var inputless = map[string]bool{"GET /healthz": true, "GET /openapi.json": true, "GET /metrics": true}

// refused sends a request and requires a 400 that names field, both in
// the message and (on the routes whose answers have one) in "field".
func refused(t *testing.T, what, method, path string, body any, field string) {
	t.Helper()
	b := ""
	if m, ok := body.(map[string]any); body != nil && (!ok || m != nil) {
		b = jsonBody(body)
	}
	code, ans := call(t, method, path, b)
	if code != 400 {
		t.Errorf("%s: %s %s %s: status %d, want 400: %v", what, method, path, b, code, ans)
		return
	}
	if m, _ := ans["message"].(string); !strings.Contains(m, field) {
		t.Errorf("%s: message %q does not name %q", what, m, field)
	}
	if f, ok := ans["field"]; ok && f != field {
		t.Errorf("%s: field = %v, want %q", what, f, field)
	}
	if s, ok := ans["success"]; ok && s != false {
		t.Errorf("%s: success = %v", what, s)
	}
	if m, _ := ans["message"].(string); strings.Contains(m, "Go ") || strings.Contains(m, "jobRequest") {
		t.Errorf("%s: message %q names Go types", what, m)
	}
}

// notStarted requires that no run of key exists.
func notStarted(t *testing.T, what string, key jobs.Key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.Jobs.Progress(ctx, key); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("%s: a refused request started %s (progress: %v)", what, key.WorkflowID(), err)
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestEveryRouteIsStrict generates, for every route and job type, the
// requests that contradict the route or carry something it does not know,
// and requires a 400 naming the field, with no job started.
func TestEveryRouteIsStrict(t *testing.T) {
	types := []workflows.JobType{workflows.JobLoad, workflows.JobCopy, workflows.JobMove}
	for _, r := range env.Server.Routes() {
		name := r.Method + " " + r.Path
		if inputless[name] || strings.HasPrefix(r.Path, "/api/v1/policies") {
			// Policy routes decode policy documents, whose unknown keys are
			// errors naming them (policies.Decode, tested in policies/).
			continue
		}
		rc, ok := routeCases[name]
		if !ok {
			t.Errorf("route %s has no case in routeCases: say how to send it a valid request", name)
			continue
		}
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			n := 0
			for _, typ := range types {
				if (rc.op == "worker" || rc.op == "list") && typ != workflows.JobLoad {
					continue
				}
				n++
				src := newDir(t, fmt.Sprintf("strict-%d", n))
				dst := src + "-dst"
				key := jobs.Key{Type: typ, Path: src}
				if typ != workflows.JobLoad {
					key.Dst = dst
				}
				u := rc.url(typ, src, dst)
				join := "?"
				if strings.Contains(u, "?") {
					join = "&"
				}
				var valid map[string]any
				if rc.body != nil {
					valid = rc.body(typ, src, dst)
				}
				what := func(s string) string { return fmt.Sprintf("%s %s: %s", name, typ, s) }

				// Anything unknown, in the body or the query.
				withColour := clone(valid)
				withColour["colour"] = "blue"
				refused(t, what("unknown body member"), r.Method, u, withColour, "colour")
				refused(t, what("unknown query parameter"), r.Method, u+join+"colour=blue", valid, "colour")

				switch rc.op {
				case "worker":
					refused(t, what("path twice"), r.Method, u+"&path="+url.QueryEscape(src+"-other"), nil, "path")
					refused(t, what("opType twice"), r.Method, u+"&opType=stop", nil, "opType")
					if strings.Contains(u, "opType=progress") {
						refused(t, what("load option on progress"), r.Method, u+"&bandwidth=1MB", nil, "bandwidth")
					}
					notStarted(t, what("worker"), key)
					continue
				case "list":
					for _, p := range strings.Split(strings.SplitN(u, "?", 2)[1], "&") {
						k, _, _ := strings.Cut(p, "=")
						refused(t, what(k+" twice"), r.Method, u+"&"+k+"=COPY", nil, k)
					}
					refused(t, what("job field on a listing"), r.Method, u, map[string]any{"path": src}, "path")
					continue
				}

				// A type that contradicts the route's (or is no type).
				others := []string{"xyz"}
				if !rc.ferry {
					// On Ferry's routes the request names the type: another
					// one is another job, not a contradiction.
					others = append(others, string(otherType(typ)))
				}
				for _, other := range others {
					b := clone(valid)
					b["type"] = other
					refused(t, what("body type "+other), r.Method, u, b, "type")
					if !rc.ferry {
						refused(t, what("query type "+other), r.Method, u+join+"type="+other, valid, "type")
					}
				}
				// Fields the job type or the operation does not take.
				misfits := map[string]any{}
				if typ == workflows.JobLoad {
					misfits["src"], misfits["dst"] = src, dst
				} else {
					misfits["path"] = src
				}
				switch rc.op {
				case "submit":
				case "bandwidth":
					// Options hold only the bandwidth.
					misfits["options.verify"] = nil
				default:
					misfits["options"] = map[string]any{"bandwidth": "1MB"}
				}
				if rc.op != "progress" {
					misfits["format"], misfits["verbose"] = "JSON", true
				}
				for f, v := range misfits {
					b := clone(valid)
					b[f] = v
					if f == "options.verify" {
						b = clone(valid)
						b["options"] = map[string]any{"bandwidth": "1MB", "verify": "true"}
						refused(t, what(f+" in the body"), r.Method, u, b, f)
						continue
					}
					refused(t, what(f+" in the body"), r.Method, u, b, f)
					if f != "options" {
						refused(t, what(f+" in the query"), r.Method, u+join+f+"="+url.QueryEscape(fmt.Sprint(v)), valid, f)
					}
				}
				// Outside a submit, an index file beside a path would be
				// ignored and the path's job changed.
				if rc.op != "submit" {
					b := clone(valid)
					b["indexFile"] = src + "/index.txt"
					refused(t, what("indexFile beside a path"), r.Method, u, b, "indexFile")
				}
				// Every member of a valid body, given a value of the wrong
				// JSON kind.
				for f, v := range valid {
					wrong := any(12)
					if _, isString := v.(string); !isString {
						wrong = []any{"x"}
					}
					b := clone(valid)
					b[f] = wrong
					refused(t, what(f+" of the wrong kind"), r.Method, u, b, f)
				}
				// verbose, which only progress takes, of a kind no boolean is.
				if rc.op == "progress" && rc.body != nil {
					for _, wrong := range []any{[]any{true}, map[string]any{"a": 1}, "maybe"} {
						b := clone(valid)
						b["verbose"] = wrong
						refused(t, what(fmt.Sprintf("verbose %v", wrong)), r.Method, u, b, "verbose")
					}
				}
				// The body and the query disagree; the query says two things.
				srcField := "path"
				if typ != workflows.JobLoad {
					srcField = "src"
				}
				refused(t, what("body and query disagree"), r.Method, u+join+srcField+"="+url.QueryEscape(src+"-other"), valid, srcField)
				refused(t, what("query twice"), r.Method, u+join+srcField+"=a&"+srcField+"=b", nil, srcField)
				notStarted(t, what("any"), key)
			}
		})
	}
}

func otherType(t workflows.JobType) workflows.JobType {
	if t == workflows.JobLoad {
		return workflows.JobCopy
	}
	return workflows.JobLoad
}

// TestStrictRequestsStillWork checks that the spellings clients rely on
// pass: a field in the body and the same value in the query, the type
// repeated in the body in another case, format as progressFormat, empty
// values of fields a route does not take, include given twice on /v1/load.
func TestStrictRequestsStillWork(t *testing.T) {
	p := newDir(t, "strict-ok")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	code, body := call(t, "POST", "/api/v1/master/submit_job/load?path="+url.QueryEscape(p),
		jsonBody(map[string]any{"type": "LOAD", "path": p, "src": "", "dst": nil, "format": "", "options": map[string]any{"include": []string{"*.csv"}}}))
	want(t, "submit with matching type and empty misfits", code, body, 200, map[string]any{"outcome": "STARTED"})
	code, body = call(t, "GET", "/api/v1/master/progress_job/load?progressFormat=JSON&format=JSON&path="+url.QueryEscape(p)+"&path="+url.QueryEscape(p), "")
	want(t, "progress with aliases and a repeated equal value", code, body, 200, map[string]any{"format": "JSON"})
	code, body = call(t, "GET", "/v1/load?opType=progress&verbose=true&progressFormat=TEXT&path="+url.QueryEscape(p), "{}")
	want(t, "/v1/load progress with an empty JSON body", code, body, 200, map[string]any{"jobState": "RUNNING"})
	code, body = call(t, "POST", "/api/v1/jobs/stop?type=load", jsonBody(map[string]any{"path": p}))
	want(t, "stop", code, body, 200, map[string]any{"success": true})
	waitStatus(t, key, workflows.StatusStopped)

	q := newDir(t, "strict-ok-worker")
	code, body = call(t, "POST", "/v1/load?opType=submit&include=a*&include=b*&path="+url.QueryEscape(q), "")
	want(t, "/v1/load submit with include twice", code, body, 200, map[string]any{"success": true})
	code, body = call(t, "GET", "/v1/load?opType=stop&path="+url.QueryEscape(q), "")
	want(t, "/v1/load stop", code, body, 200, map[string]any{"success": true})
}
