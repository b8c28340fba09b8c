package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/api/apitest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// env is one API over one in-memory Temporal server for the whole package;
// every test uses its own paths, so tests do not see each other's jobs.
var env *apitest.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	e, err := apitest.Start(ctx, apitest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start test API:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	e.Close()
	os.Exit(code)
}

// call sends a request with an optional body (also on GET) and returns the
// status and the decoded JSON object.
func call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, raw := callRaw(t, method, path, body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object (%v): %s", method, path, err, raw)
	}
	return code, out
}

func callRaw(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, env.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// want checks a status code and that each field of the answer has a value.
func want(t *testing.T, what string, code int, body map[string]any, wantCode int, fields map[string]any) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: status %d, want %d: %v", what, code, wantCode, body)
	}
	for k, v := range fields {
		if fmt.Sprint(body[k]) != fmt.Sprint(v) {
			t.Errorf("%s: %s = %v, want %v (answer %v)", what, k, body[k], v, body)
		}
	}
}

// newDir makes a real directory (the service checks that sources exist)
// and returns its file:// URI.
func newDir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return "file://" + d
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitStatus(t *testing.T, key jobs.Key, s workflows.JobStatus) workflows.JobState {
	t.Helper()
	st, err := env.WaitStatus(ctxT(t), key, s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestWorkerLoadLifecycle(t *testing.T) {
	p := newDir(t, "worker")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	q := func(op string, extra ...string) string {
		v := url.Values{"path": {p}, "opType": {op}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return "/v1/load?" + v.Encode()
	}

	code, body := call(t, "GET", q("submit", "batchSize", "300", "verify", "true", "bandwidth", "10MB", "verbose", "true"), "")
	jobID, _ := body["jobId"].(string)
	want(t, "submit", code, body, 200, map[string]any{"success": true, "path": p,
		"message": fmt.Sprintf("Load '%s' is successfully submitted. JobId: %s", p, jobID)})
	if !uuidRE.MatchString(jobID) {
		t.Errorf("jobId %q is not a UUID", jobID)
	}
	if len(body) != 4 {
		t.Errorf("submit answer has fields beyond success, jobId, path, message: %v", body)
	}

	code, body = call(t, "POST", q("submit"), "")
	want(t, "submit again", code, body, 200, map[string]any{"success": true, "message": fmt.Sprintf("Load already running for path '%s'", p)})

	code, body = call(t, "GET", q("progress", "verbose", "true"), "")
	want(t, "progress", code, body, 200, map[string]any{"jobState": "RUNNING", "path": p})
	msg := body["message"].(string)
	wantPrefix := fmt.Sprintf("Progress for loading path '%s':\n\tSettings:\tbandwidth: 10485760\tverify: true\tmetadata-only: false\n", p)
	if !strings.HasPrefix(msg, wantPrefix) || !strings.Contains(msg, "\tStage: LOADING\n") || !strings.Contains(msg, "\tFiles Processed: 1 out of 4\n") {
		t.Errorf("progress report:\n%s", msg)
	}
	props, _ := body["respProperties"].(map[string]any)
	if props["Job State"] != "RUNNING" || props["Files Processed"] != "1 out of 4" || props["verify"] != "true" {
		t.Errorf("respProperties = %v", props)
	}

	code, body = call(t, "GET", q("progress", "progressFormat", "json"), "")
	want(t, "JSON progress", code, body, 200, map[string]any{"jobState": "RUNNING"})
	var rep map[string]any
	if err := json.Unmarshal([]byte(body["message"].(string)), &rep); err != nil {
		t.Fatalf("progressFormat=JSON message is not JSON: %v", err)
	}
	if rep["mJobState"] != "RUNNING" || rep["mJobId"] != jobID || rep["mProcessedInodesCount"] != 1.0 || rep["mVerificationEnabled"] != true {
		t.Errorf("JSON report = %v", rep)
	}

	code, body = call(t, "GET", q("stop"), "")
	want(t, "stop", code, body, 200, map[string]any{"success": true, "path": p, "message": fmt.Sprintf("Load '%s' is successfully stopped.", p)})
	waitStatus(t, key, workflows.StatusStopped)
	code, body = call(t, "GET", q("stop"), "")
	want(t, "stop again", code, body, 200, map[string]any{"success": false,
		"message": fmt.Sprintf("Cannot find load job for path %s, it might have already been stopped or finished", p)})

	code, body = call(t, "GET", q("submit"), "")
	want(t, "resume", code, body, 200, map[string]any{"success": true, "jobId": jobID,
		"message": fmt.Sprintf("Load '%s' is resumed. JobId: %s", p, jobID)})
	st := waitStatus(t, key, workflows.StatusRunning)
	if st.JobID != jobID || st.Runs != 2 || st.Options.BatchSize != 300 {
		t.Errorf("resumed state: job id %s runs %d batch size %d", st.JobID, st.Runs, st.Options.BatchSize)
	}
	if err := env.Finish(ctxT(t), key); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, key, workflows.StatusSucceeded)
	code, body = call(t, "GET", q("progress"), "")
	want(t, "final progress", code, body, 200, map[string]any{"jobState": "SUCCEEDED"})
	if m := body["message"].(string); !strings.Contains(m, "\tFiles Processed: 4 out of 4\n") || strings.Contains(m, "Stage:") {
		t.Errorf("final report:\n%s", m)
	}

	unknown := newDir(t, "never-submitted")
	code, body = call(t, "GET", "/v1/load?opType=progress&path="+url.QueryEscape(unknown), "")
	want(t, "unknown job", code, body, 200, map[string]any{"jobState": "FAILED", "path": unknown,
		"message": fmt.Sprintf("Load for path '%s' cannot be found.", unknown)})
}

// TestWorkerLoadQueryEncoding checks that path= is decoded as clients
// encode it ('+' and %20 are spaces) and that a ';' in it is kept, where
// url.ParseQuery would drop the whole pair.
func TestWorkerLoadQueryEncoding(t *testing.T) {
	semi := newDir(t, "semi;colon")
	code, body := call(t, "GET", "/v1/load?opType=progress&path="+semi, "")
	want(t, "path with ;", code, body, 200, map[string]any{"path": semi, "message": fmt.Sprintf("Load for path '%s' cannot be found.", semi)})

	spaced := newDir(t, "a b")
	key := jobs.Key{Type: workflows.JobLoad, Path: spaced}
	code, body = call(t, "GET", "/v1/load?opType=submit&path="+strings.ReplaceAll(spaced, " ", "+"), "")
	want(t, "path with +", code, body, 200, map[string]any{"success": true, "path": spaced})
	code, body = call(t, "GET", "/v1/load?opType=stop&path="+strings.ReplaceAll(spaced, " ", "%20"), "")
	want(t, "path with %20", code, body, 200, map[string]any{"success": true, "path": spaced})
	waitStatus(t, key, workflows.StatusStopped)
}

func TestWorkerLoadBadInput(t *testing.T) {
	p := newDir(t, "worker-bad")
	for _, tc := range []struct {
		name, query, mention string
	}{
		{"missing path", "opType=submit", "path"},
		{"missing opType", "path=" + p, "opType"},
		{"bad opType", "path=" + p + "&opType=load", "opType"},
		{"bad bandwidth", "path=" + p + "&opType=submit&bandwidth=abc", "bandwidth"},
		{"unknown option", "path=" + p + "&opType=submit&colour=blue", "colour"},
		{"copy option", "path=" + p + "&opType=submit&overwrite=true", "overwrite"},
		{"bad regex", "path=" + p + "&opType=submit&fileFilterRegx=" + url.QueryEscape("(a"), "fileFilterRegx"},
		{"bad replicas", "path=" + p + "&opType=submit&replicas=0", "replicas"},
		{"wildcard", "opType=submit&path=" + url.QueryEscape(p+"/*.csv"), "wildcard"},
		{"not a URI", "opType=submit&path=data/x", "path"},
		{"missing source", "opType=submit&path=" + url.QueryEscape(p+"/nope"), "does not exist"},
		{"bad progressFormat", "path=" + p + "&opType=progress&progressFormat=xml", "progressFormat"},
		{"bad verbose", "path=" + p + "&opType=progress&verbose=maybe", "verbose"},
		{"bad escape", "opType=submit&path=file:///data/%zz", "path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, "GET", "/v1/load?"+tc.query, "")
			if code != 400 {
				t.Fatalf("status %d, want 400: %v", code, body)
			}
			if m, _ := body["message"].(string); !strings.Contains(m, tc.mention) {
				t.Errorf("message %q does not mention %q", m, tc.mention)
			}
			if s, ok := body["success"]; ok && s != false {
				t.Errorf("success = %v", s)
			}
		})
	}
}

func TestMasterLoadLifecycle(t *testing.T) {
	p := newDir(t, "master")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	submit := jsonBody(map[string]any{"path": p, "options": map[string]any{"batchSize": "300", "verify": true, "replicas": 2, "skipIfExists": "true"}})

	code, body := call(t, "POST", "/api/v1/master/submit_job/load", submit)
	jobID, _ := body["jobId"].(string)
	want(t, "submit", code, body, 200, map[string]any{"success": true, "outcome": "STARTED", "jobType": "load",
		"message": fmt.Sprintf("Load '%s' is successfully submitted. JobId: %s", p, jobID)})
	code, body = call(t, "POST", "/api/v1/master/submit_job/LOAD", submit)
	want(t, "submit again", code, body, 200, map[string]any{"outcome": "ALREADY_RUNNING", "jobId": jobID,
		"message": fmt.Sprintf("Load already running for path '%s'", p)})

	// A GET with a JSON body, as Alluxio clients send it.
	code, body = call(t, "GET", "/api/v1/master/progress_job/load", jsonBody(map[string]any{"path": p, "format": "JSON", "verbose": "true"}))
	want(t, "progress GET+body", code, body, 200, map[string]any{"jobState": "RUNNING", "jobId": jobID, "format": "JSON"})
	var rep map[string]any
	if err := json.Unmarshal([]byte(body["message"].(string)), &rep); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	if rep["mVerbose"] != true || rep["mRunningStage"] != "LOADING" || rep["mSkipIfExists"] != true || rep["mTotalByteCount"] != float64(apitest.StandInFiles*apitest.StandInFileSize) {
		t.Errorf("JSON report = %v", rep)
	}
	opts, _ := rep["options"].(map[string]any)
	if opts["batchSize"] != 300.0 || opts["replicas"] != 2.0 {
		t.Errorf("options in report = %v", opts)
	}

	// Query parameters work too; the default format is TEXT.
	code, body = call(t, "GET", "/api/v1/master/progress_job/load?path="+url.QueryEscape(p), "")
	want(t, "progress GET+query", code, body, 200, map[string]any{"format": "TEXT"})
	if m := body["message"].(string); !strings.HasPrefix(m, "Progress for loading path '"+p+"':\n") || !strings.Contains(m, "\tBytes Skipped: 0B out of 4096.00KB\n") || strings.Contains(m, "Stage:") {
		t.Errorf("TEXT report:\n%s", m)
	}
	if prog, _ := body["progress"].(map[string]any); prog["processed"] != 1.0 || prog["totalFiles"] != 4.0 {
		t.Errorf("progress object = %v", prog)
	}
	code, _ = call(t, "POST", "/api/v1/master/progress_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "progress POST", code, nil, 200, nil)

	code, body = call(t, "POST", "/api/v1/master/stop_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "stop", code, body, 200, map[string]any{"success": true, "message": fmt.Sprintf("Load '%s' is successfully stopped.", p)})
	waitStatus(t, key, workflows.StatusStopped)
	code, body = call(t, "POST", "/api/v1/master/stop_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "stop again", code, body, 200, map[string]any{"success": false,
		"message": fmt.Sprintf("Cannot find load job for path %s, it might have already been stopped or finished", p)})
	code, body = call(t, "POST", "/api/v1/master/progress_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "progress stopped", code, body, 200, map[string]any{"jobState": "STOPPED"})

	code, body = call(t, "POST", "/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "resume", code, body, 200, map[string]any{"outcome": "RESUMED", "jobId": jobID,
		"message": fmt.Sprintf("Load '%s' is resumed. JobId: %s", p, jobID)})
	st := waitStatus(t, key, workflows.StatusRunning)
	if !st.Options.Verify || st.Options.BatchSize != 300 {
		t.Errorf("a resumed job keeps its options: %+v", st.Options)
	}
	if err := env.Finish(ctxT(t), key); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, key, workflows.StatusSucceeded)

	// After SUCCEEDED a submit starts a new run with a new job id.
	code, body = call(t, "POST", "/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "submit after success", code, body, 200, map[string]any{"outcome": "STARTED"})
	if body["jobId"] == jobID {
		t.Errorf("new run kept job id %s", jobID)
	}
	call(t, "POST", "/api/v1/master/stop_job/load", jsonBody(map[string]any{"path": p}))
}

func TestMasterCopyAndMove(t *testing.T) {
	src, dst := newDir(t, "copy-src"), newDir(t, "copy-dst")+"/out"
	ckey := jobs.Key{Type: workflows.JobCopy, Path: src, Dst: dst}
	code, body := call(t, "POST", "/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": src, "dst": dst, "options": map[string]any{"check_content": "true", "overwrite": false}}))
	jobID, _ := body["jobId"].(string)
	want(t, "copy submit", code, body, 200, map[string]any{"outcome": "STARTED", "path": src, "dst": dst,
		"message": fmt.Sprintf("Copy from '%s' to '%s' is successfully submitted. JobId: %s", src, dst, jobID)})
	code, body = call(t, "POST", "/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": src, "dst": dst}))
	want(t, "copy again", code, body, 200, map[string]any{"message": fmt.Sprintf("Copy already running from '%s' to '%s'", src, dst)})
	if err := env.Finish(ctxT(t), ckey); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ckey, workflows.StatusSucceeded)
	code, body = call(t, "GET", "/api/v1/master/progress_job/copy", jsonBody(map[string]any{"src": src, "dst": dst}))
	want(t, "copy progress", code, body, 200, map[string]any{"jobState": "SUCCEEDED"})
	m := body["message"].(string)
	for _, line := range []string{
		fmt.Sprintf("Progress for jobId %s copying path '%s' to '%s':\n", jobID, src, dst),
		"\tSettings: \"check-content: true\"\n",
		"\tJob Id: " + jobID + "\n",
		"\tJob State: SUCCEEDED, finished at ",
		"\tFiles qualified: 4, 4096.00KB\n\tFiles Failed: 0\n\tFiles Skipped: 0\n\tFiles Succeeded: 4\n\tBytes Copied: 4096.00KB\n",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("copy report lacks %q:\n%s", line, m)
		}
	}

	msrc, mdst := newDir(t, "move-fail-src"), newDir(t, "move-dst")
	mkey := jobs.Key{Type: workflows.JobMove, Path: msrc, Dst: mdst}
	code, body = call(t, "POST", "/api/v1/master/submit_job/move", jsonBody(map[string]any{"src": msrc, "dst": mdst}))
	want(t, "move submit", code, body, 200, map[string]any{"outcome": "STARTED"})
	code, body = call(t, "POST", "/api/v1/master/stop_job/move", jsonBody(map[string]any{"src": msrc, "dst": mdst}))
	want(t, "move stop", code, body, 200, map[string]any{"success": true, "message": fmt.Sprintf("Move from '%s' to '%s' is successfully stopped.", msrc, mdst)})
	waitStatus(t, mkey, workflows.StatusStopped)
	code, body = call(t, "POST", "/api/v1/master/submit_job/move", jsonBody(map[string]any{"src": msrc, "dst": mdst}))
	want(t, "move resume", code, body, 200, map[string]any{"outcome": "RESUMED",
		"message": fmt.Sprintf("Move from '%s' to '%s' is resumed. JobId: %s", msrc, mdst, body["jobId"])})
	waitStatus(t, mkey, workflows.StatusRunning)
	if err := env.Finish(ctxT(t), mkey); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, mkey, workflows.StatusFailed)
	code, body = call(t, "GET", "/api/v1/master/progress_job/move", jsonBody(map[string]any{"src": msrc, "dst": mdst, "verbose": true}))
	want(t, "move progress", code, body, 200, map[string]any{"jobState": "FAILED"})
	m = body["message"].(string)
	for _, line := range []string{
		"moving path '" + msrc + "' to '" + mdst + "':\n",
		"\tFiles qualified: 4, 4096.00KB\n\tFiles Failed: 1\n\tFiles Succeeded: 3\n\tBytes Moved: 3072.00KB\n",
		"\tFiles failure rate: 25.00%\n",
		"\t\t" + msrc + "/broken: Reason: PERMISSION_DENIED, message: open broken: permission denied\n",
		"\tFailed files saved to: file:///tmp/ferry-failures/",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("move report lacks %q:\n%s", line, m)
		}
	}
	if strings.Contains(m, "Files Skipped") {
		t.Errorf("move report shows Files Skipped:\n%s", m)
	}
	code, body = call(t, "POST", "/api/v1/master/stop_job/move", jsonBody(map[string]any{"src": msrc, "dst": mdst}))
	want(t, "stop finished move", code, body, 200, map[string]any{"success": false})
	if m := body["message"].(string); !strings.HasPrefix(m, "Cannot find move job for path "+msrc) {
		t.Errorf("stop message %q", m)
	}
}

// TestJobRunsOnCanonicalFilePath: every spelling of a local directory is
// one job, and the job runs on the canonical spelling, so that a load of
// FILE://localhost/a//b/ names (and caches) its files as file:///a/b does.
func TestJobRunsOnCanonicalFilePath(t *testing.T) {
	p := newDir(t, "spelt")
	d := strings.TrimPrefix(p, "file://")
	odd := "FILE://localhost" + strings.Replace(d, "/", "//", 1) + "/"
	for _, tc := range []struct{ typ, body string }{
		{"load", jsonBody(map[string]any{"path": odd})},
		{"copy", jsonBody(map[string]any{"src": odd, "dst": "file://" + strings.Replace(d, "/", "//", 2) + "-out/"})},
	} {
		code, body := call(t, "POST", "/api/v1/master/submit_job/"+tc.typ, tc.body)
		want(t, tc.typ, code, body, 200, map[string]any{"outcome": "STARTED"})
		key := jobs.Key{Type: workflows.JobType(tc.typ), Path: p}
		if tc.typ == "copy" {
			key.Dst = p + "-out"
		}
		st := waitStatus(t, key, workflows.StatusRunning)
		if st.Path != key.Path || st.Dst != key.Dst {
			t.Errorf("%s of %q runs on %q -> %q, want %q -> %q", tc.typ, odd, st.Path, st.Dst, key.Path, key.Dst)
		}
		if err := env.Finish(ctxT(t), key); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, key, workflows.StatusSucceeded)
	}
}

func TestProgressOfUnknownJobIs404(t *testing.T) {
	p := newDir(t, "unknown")
	code, body := call(t, "GET", "/api/v1/master/progress_job/load", jsonBody(map[string]any{"path": p}))
	want(t, "load", code, body, 404, map[string]any{"jobState": "FAILED", "message": fmt.Sprintf("Load for path '%s' cannot be found.", p)})
	code, body = call(t, "POST", "/api/v1/master/progress_job/copy", jsonBody(map[string]any{"src": p, "dst": p + "-x"}))
	want(t, "copy", code, body, 404, map[string]any{"jobState": "FAILED", "message": fmt.Sprintf("Copy from '%s' to '%s' cannot be found.", p, p+"-x")})
	code, body = call(t, "GET", "/api/v1/jobs/progress?type=move&src="+url.QueryEscape(p)+"&dst="+url.QueryEscape(p+"-y"), "")
	want(t, "ferry route", code, body, 404, map[string]any{"jobState": "FAILED", "message": fmt.Sprintf("Move from '%s' to '%s' cannot be found.", p, p+"-y")})
}

func TestBadInputIs400(t *testing.T) {
	p := newDir(t, "bad")
	load := func(opts map[string]any) string { return jsonBody(map[string]any{"path": p, "options": opts}) }
	for _, tc := range []struct {
		name, method, path, body, mention string
	}{
		{"missing path", "POST", "/api/v1/master/submit_job/load", `{}`, "path"},
		{"missing path (no body)", "POST", "/api/v1/master/submit_job/load", ``, "path"},
		{"unknown option", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"colour": "blue"}), "colour"},
		{"bandwidth abc", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"bandwidth": "abc"}), "bandwidth"},
		{"invalid regex", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"fileFilterRegx": "(unclosed"}), "fileFilterRegx"},
		{"batch size zero", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"batchSize": 0}), "batchSize"},
		{"batch size fraction", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"batchSize": 2.5}), "batchSize"},
		{"bool option not bool", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"verify": "sometimes"}), "verify"},
		{"object option", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"indexFile": map[string]any{"a": 1}}), "indexFile"},
		{"copy option on load", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"check_content": true}), "check_content"},
		{"load option on copy", "POST", "/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": p, "dst": p + "2", "options": map[string]any{"replicas": 2}}), "replicas"},
		{"malformed JSON", "POST", "/api/v1/master/submit_job/load", `{"path": `, "malformed JSON"},
		{"JSON array", "POST", "/api/v1/master/submit_job/load", `[1,2]`, "malformed JSON"},
		{"two JSON values", "POST", "/api/v1/master/submit_job/load", `{} {}`, "malformed JSON"},
		{"misspelt member", "POST", "/api/v1/master/submit_job/load", `{"path": "` + p + `", "optoins": {}}`, "optoins"},
		{"unknown type", "POST", "/api/v1/master/submit_job/fetch", `{"path": "` + p + `"}`, "fetch"},
		{"copy without dst", "POST", "/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": p}), "dst"},
		{"copy into itself", "POST", "/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": p, "dst": p + "/sub"}), "inside the source"},
		{"relative path", "POST", "/api/v1/master/submit_job/load", `{"path": "data/x"}`, "path"},
		{"wildcard", "POST", "/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": p + "/*"}), "wildcard"},
		{"source missing", "POST", "/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": p + "/nope"}), "does not exist"},
		{"unknown scheme", "POST", "/api/v1/master/submit_job/load", `{"path": "ftp://host/x"}`, "ftp"},
		{"min over max", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"minSize": "2MB", "maxSize": "1MB"}), "minSize"},
		{"bad duration", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"olderThan": "soon"}), "olderThan"},
		{"bad glob", "POST", "/api/v1/master/submit_job/load", load(map[string]any{"include": []any{"[a"}}), "include"},
		{"GET with malformed JSON body", "GET", "/api/v1/master/progress_job/load", `{bad`, "malformed JSON"},
		{"progress bad format", "GET", "/api/v1/master/progress_job/load", jsonBody(map[string]any{"path": p, "format": "XML"}), "format"},
		{"progress bad verbose", "POST", "/api/v1/master/progress_job/load", `{"path": "` + p + `", "verbose": "maybe"}`, "verbose"},
		{"progress missing path", "GET", "/api/v1/master/progress_job/load", ``, "path"},
		{"stop missing path", "POST", "/api/v1/master/stop_job/load", `{}`, "path"},
		{"stop malformed", "POST", "/api/v1/master/stop_job/load", `{"path"`, "malformed JSON"},
		{"list bad type", "GET", "/api/v1/master/list_job?job-type=FETCH", ``, "job-type"},
		{"list bad state", "GET", "/api/v1/master/list_job?job-state=DONE", ``, "job-state"},
		{"ferry submit no type", "POST", "/api/v1/jobs", jsonBody(map[string]any{"path": p}), "type"},
		{"ferry submit bad option", "POST", "/api/v1/jobs", jsonBody(map[string]any{"type": "load", "path": p, "options": map[string]any{"bandwidth": "-5"}}), "bandwidth"},
		{"ferry progress no type", "GET", "/api/v1/jobs/progress?path=" + url.QueryEscape(p), ``, "type"},
		{"ferry stop malformed", "POST", "/api/v1/jobs/stop", `nope`, "malformed JSON"},
		{"ferry list bad state", "GET", "/api/v1/jobs?state=nope", ``, "state"},
		{"bandwidth change null", "POST", "/api/v1/jobs/bandwidth", jsonBody(map[string]any{"type": "load", "path": p, "options": map[string]any{"bandwidth": nil}}), "options.bandwidth"},
		{"bandwidth change empty", "POST", "/api/v1/jobs/bandwidth", jsonBody(map[string]any{"type": "load", "path": p, "options": map[string]any{"bandwidth": " "}}), "options.bandwidth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, tc.path, tc.body)
			if code != 400 {
				t.Fatalf("status %d, want 400: %v", code, body)
			}
			m, _ := body["message"].(string)
			if !strings.Contains(m, tc.mention) {
				t.Errorf("message %q does not mention %q", m, tc.mention)
			}
		})
	}
}

func TestFerryRoutes(t *testing.T) {
	p := newDir(t, "ferry")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	submit := jsonBody(map[string]any{"type": "load", "path": p, "options": map[string]any{"bandwidth": "1MB"}})

	ctx := ctxT(t)
	req, _ := http.NewRequestWithContext(ctx, "POST", env.URL+"/api/v1/jobs", strings.NewReader(submit))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	code, body := call(t, "GET", loc, "")
	want(t, "progress at Location", code, body, 200, map[string]any{"jobState": "RUNNING", "jobType": "load", "path": p})
	jobID := body["jobId"]

	code, body = call(t, "POST", "/api/v1/jobs", submit)
	want(t, "create again", code, body, 409, map[string]any{"success": false, "outcome": "ALREADY_RUNNING", "jobId": jobID})

	code, body = call(t, "GET", "/api/v1/jobs/progress?type=LOAD&format=json&verbose=true&path="+url.QueryEscape(p), "")
	want(t, "JSON progress", code, body, 200, map[string]any{"format": "JSON"})
	if !json.Valid([]byte(body["message"].(string))) {
		t.Errorf("message is not JSON: %v", body["message"])
	}

	setBW := func(v any) (int, map[string]any) {
		return call(t, "POST", "/api/v1/jobs/bandwidth", jsonBody(map[string]any{"type": "load", "path": p, "options": map[string]any{"bandwidth": v}}))
	}
	code, body = setBW("4MB")
	want(t, "bandwidth of a running job", code, body, 200, map[string]any{"success": true, "bandwidth": float64(4 << 20), "version": float64(1)})
	code, body = setBW("unlimited")
	want(t, "bandwidth removed", code, body, 200, map[string]any{"success": true, "bandwidth": nil, "version": float64(2)})
	code, body = setBW("abc")
	want(t, "bad bandwidth", code, body, 400, map[string]any{"field": "bandwidth"})
	code, body = call(t, "POST", "/api/v1/jobs/bandwidth", jsonBody(map[string]any{"type": "load", "path": p}))
	want(t, "no bandwidth", code, body, 400, map[string]any{"field": "options.bandwidth"})

	code, body = call(t, "POST", "/api/v1/jobs/stop", jsonBody(map[string]any{"type": "load", "path": p}))
	want(t, "stop", code, body, 200, map[string]any{"success": true})
	waitStatus(t, key, workflows.StatusStopped)
	code, body = call(t, "POST", "/api/v1/jobs/stop", jsonBody(map[string]any{"type": "load", "path": p}))
	want(t, "stop again", code, body, 404, map[string]any{"success": false})
	code, body = setBW("1MB")
	want(t, "bandwidth of a stopped job", code, body, 404, map[string]any{"success": false})

	code, body = call(t, "POST", "/api/v1/jobs", submit)
	want(t, "resume", code, body, 200, map[string]any{"outcome": "RESUMED", "jobId": jobID})
	waitStatus(t, key, workflows.StatusRunning)
	if err := env.Finish(ctx, key); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, key, workflows.StatusSucceeded)
}

func TestListJobFilters(t *testing.T) {
	running := jobs.Key{Type: workflows.JobLoad, Path: newDir(t, "list-running")}
	stopped := jobs.Key{Type: workflows.JobLoad, Path: newDir(t, "list-stopped")}
	copied := jobs.Key{Type: workflows.JobCopy, Path: newDir(t, "list-copy"), Dst: newDir(t, "list-copy-dst")}
	ctx := ctxT(t)
	for _, k := range []jobs.Key{running, stopped, copied} {
		if _, err := env.Jobs.Submit(ctx, k, workflows.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Jobs.Stop(ctx, stopped); err != nil {
		t.Fatal(err)
	}
	if err := env.Finish(ctx, copied); err != nil {
		t.Fatal(err)
	}
	for k, s := range map[jobs.Key]workflows.JobStatus{running: workflows.StatusRunning, stopped: workflows.StatusStopped, copied: workflows.StatusSucceeded} {
		if err := env.WaitListed(ctx, k, s); err != nil {
			t.Fatal(err)
		}
	}

	list := func(query string) map[string]string {
		t.Helper()
		code, body := call(t, "GET", query, "")
		if code != 200 {
			t.Fatalf("%s: status %d: %v", query, code, body)
		}
		out := map[string]string{}
		for _, j := range body["jobs"].([]any) {
			m := j.(map[string]any)
			out[m["path"].(string)] = m["jobType"].(string) + " " + m["jobState"].(string)
			if !uuidRE.MatchString(m["jobId"].(string)) {
				t.Errorf("jobId %v", m["jobId"])
			}
		}
		return out
	}
	check := func(query string, in, out []jobs.Key) {
		t.Helper()
		got := list(query)
		for _, k := range in {
			if _, ok := got[k.Path]; !ok {
				t.Errorf("%s does not list %s: %v", query, k.Path, got)
			}
		}
		for _, k := range out {
			if _, ok := got[k.Path]; ok {
				t.Errorf("%s lists %s", query, k.Path)
			}
		}
	}
	check("/api/v1/master/list_job", []jobs.Key{running, stopped, copied}, nil)
	check("/api/v1/master/list_job?job-type=ALL&job-state=ALL", []jobs.Key{running, stopped, copied}, nil)
	check("/api/v1/master/list_job?job-type=LOAD", []jobs.Key{running, stopped}, []jobs.Key{copied})
	check("/api/v1/master/list_job?job-type=LOAD&job-state=RUNNING", []jobs.Key{running}, []jobs.Key{stopped, copied})
	check("/api/v1/master/list_job?job-state=STOPPED", []jobs.Key{stopped}, []jobs.Key{running, copied})
	check("/api/v1/master/list_job?job-type=copy&job-state=succeeded", []jobs.Key{copied}, []jobs.Key{running, stopped})
	check("/api/v1/jobs?type=load&state=running", []jobs.Key{running}, []jobs.Key{stopped, copied})
	if got := list("/api/v1/master/list_job?job-type=LOAD")[running.Path]; got != "LOAD RUNNING" {
		t.Errorf("list_job entry = %q", got)
	}
	if got := list("/api/v1/jobs?type=copy")[copied.Path]; got != "copy SUCCEEDED" {
		t.Errorf("jobs entry = %q", got)
	}

	// The state filter applies to each job's latest run: once the stopped
	// job resumes, it is RUNNING and no longer STOPPED.
	if _, err := env.Jobs.Submit(ctx, stopped, workflows.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitListed(ctx, stopped, workflows.StatusRunning); err != nil {
		t.Fatal(err)
	}
	// Listings are reused for a moment (api.Limits.ListTTL) and the
	// submit above bypassed the API, so the change shows within a deadline.
	ferrytest.Eventually(t, 20*time.Second, func() error {
		if _, listed := list("/api/v1/master/list_job?job-state=STOPPED")[stopped.Path]; listed {
			return errors.New("the resumed job is still listed as STOPPED")
		}
		return nil
	})
	for _, k := range []jobs.Key{running, stopped} {
		_ = env.Jobs.Stop(ctx, k)
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	code, raw := callRaw(t, "GET", "/openapi.json", "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, r := range env.Server.Routes() {
		registered[strings.ToLower(r.Method)+" "+r.Path] = true
		if _, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s is not in openapi.json", r.Method, r.Path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not a route", method, path)
			}
		}
	}
	// Every $ref points at something that exists.
	var whole map[string]any
	_ = json.Unmarshal(raw, &whole)
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/([^"]+)"`).FindAllStringSubmatch(string(raw), -1) {
		var node any = whole
		for _, part := range strings.Split(ref[1], "/") {
			m, _ := node.(map[string]any)
			node = m[part]
		}
		if node == nil {
			t.Errorf("dangling $ref #/%s", ref[1])
		}
	}
}

func TestHealthzMetricsAndUnknownRoutes(t *testing.T) {
	code, body := call(t, "GET", "/healthz", "")
	want(t, "healthz", code, body, 200, map[string]any{"status": "ok"})
	code, body = call(t, "GET", "/no/such/route", "")
	want(t, "unknown route", code, body, 404, map[string]any{"message": "Not Found"})
	code, body = call(t, "DELETE", "/api/v1/jobs", "")
	want(t, "wrong method", code, body, 405, map[string]any{"message": "Method Not Allowed"})
	code, raw := callRaw(t, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, name := range []string{"ferry_api_request_duration_milliseconds_bucket", "ferry_api_requests_total", `route="/healthz"`, `status="404"`} {
		if !strings.Contains(string(raw), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
