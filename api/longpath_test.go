package api_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// longDir makes a real directory whose file:// URI is about n bytes long,
// of 200-byte segments, the last one non-ASCII.
func longDir(t *testing.T, name string, n int) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	for len(d) < n-250 {
		d = filepath.Join(d, strings.Repeat("l", 200))
	}
	d = filepath.Join(d, "ünïcødé dir 日本")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return "file://" + d
}

// TestLongAndNonASCIIPathsThroughREST is issue 18 point 1 (and issue 11
// point 3) through the real REST API: a copy whose source and destination
// are both ~4,000-byte paths ending in non-ASCII names is submitted, found
// by progress, and stopped; a path over jobs.MaxPathLength is a 400 naming
// the field, before anything starts.
func TestLongAndNonASCIIPathsThroughREST(t *testing.T) {
	src, dst := longDir(t, "long-src", 4000), longDir(t, "long-dst", 4000)+"/out"
	key := jobs.Key{Type: workflows.JobCopy, Path: src, Dst: dst}
	body := jsonBody(map[string]any{"src": src, "dst": dst})
	code, ans := call(t, "POST", "/api/v1/master/submit_job/copy", body)
	want(t, "submit", code, ans, 200, map[string]any{"outcome": "STARTED", "path": src, "dst": dst})
	code, ans = call(t, "POST", "/api/v1/master/progress_job/copy", body)
	want(t, "progress", code, ans, 200, map[string]any{"jobState": "RUNNING"})
	code, ans = call(t, "POST", "/api/v1/master/stop_job/copy", body)
	want(t, "stop", code, ans, 200, map[string]any{"success": true})
	waitStatus(t, key, workflows.StatusStopped)

	tooLong := "file:///" + strings.Repeat("x/", jobs.MaxPathLength/2+10)
	code, ans = call(t, "POST", "/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": tooLong}))
	want(t, "too long", code, ans, 400, map[string]any{"field": "path"})
	if msg, _ := ans["message"].(string); !strings.Contains(msg, "8192") {
		t.Errorf("too long: the message does not state the limit: %q", msg)
	}
}
