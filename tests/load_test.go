package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// writeMixedTree writes n files: empty, 1 byte, small, some of 1 MiB + 1,
// and one of 50 MiB, with spaces and '+' in names. It returns their URIs
// with contents' sizes, and the total.
func writeMixedTree(t *testing.T, dir string, n int) (map[string]int64, int64) {
	t.Helper()
	files := map[string]int64{}
	var total int64
	for i := 0; i < n; i++ {
		var size int64
		switch {
		case i == 0:
			size = 50 << 20
		case i%40 == 1:
			size = 1<<20 + 1
		case i%3 == 0:
			size = 0
		case i%3 == 1:
			size = 1
		default:
			size = int64(1000 + i)
		}
		p := filepath.Join(dir, fmt.Sprintf("part=%02d", i%13), fmt.Sprintf("file %05d+v.dat", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*31 + j*7)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files["file://"+p] = size
		total += size
	}
	return files, total
}

func TestDevLoadEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end load in -short mode")
	}
	dataDir := t.TempDir()
	_, c := startFullDev(t, dataDir, "--node-capacity", "2GiB")
	src := filepath.Join(t.TempDir(), "data set")
	files, total := writeMixedTree(t, src, 2000)
	path := "file://" + src
	key := map[string]any{"path": path}

	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path, "options": map[string]any{"batchSize": "100"}})
	if code != http.StatusOK || resp["jobId"] == nil {
		t.Fatalf("submit: %d %v", code, resp)
	}
	// Second submit while running.
	code, resp = call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path})
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(resp["message"]), "already running") && resp["outcome"] != "ALREADY_RUNNING" {
		t.Logf("second submit answered %d %v (the job may already have ended)", code, resp)
	}
	rep := waitJobState(t, c, "load", key, 5*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != 2000.0 || rep["mLoadedByteCount"] != float64(total) || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("report: %v", rep)
	}

	// The TEXT report says the same.
	code, resp = call(t, "POST", c.api+"/api/v1/master/progress_job/load", map[string]any{"path": path})
	text := fmt.Sprint(resp["message"])
	if code != http.StatusOK || !strings.Contains(text, "Job State: SUCCEEDED") || !strings.Contains(text, "Files Processed: 2000") {
		t.Fatalf("TEXT report: %d\n%s", code, text)
	}

	// Every file's bytes come from its owner's cache, without the source.
	node := anyNode(c)
	before := metricSum(t, node, "ferry_cache_bytes_read_from_storage_total")
	checked := 0
	for uri, size := range files {
		owner := ownerOf(t, node, uri)
		want, err := os.ReadFile(strings.TrimPrefix(uri, "file://"))
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for pg := int64(0); pg*(1<<20) < size || (size == 0 && pg == 0); pg++ {
			code, b, err := cachedPage(owner, uri, pg)
			if err != nil || code != http.StatusOK {
				t.Fatalf("page %d of %s from its owner %s: %d %v %s", pg, uri, owner, code, err, b)
			}
			got = append(got, b...)
			if size == 0 {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the cache served %d bytes that differ from the %d of the file", uri, len(got), len(want))
		}
		checked++
	}
	after := metricSum(t, node, "ferry_cache_bytes_read_from_storage_total")
	if after != before {
		t.Fatalf("serving %d cached files read %v bytes from storage", checked, after-before)
	}

	// A second load of the unchanged tree reads nothing from storage on
	// any node, and reports every file as skipped (already cached).
	readByAll := func() float64 {
		var sum float64
		for _, u := range c.nodes {
			sum += metricSum(t, u, "ferry_cache_bytes_read_from_storage_total")
		}
		return sum
	}
	before = readByAll()
	code, resp = call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path, "options": map[string]any{"batchSize": "100"}})
	if code != http.StatusOK {
		t.Fatalf("second submit: %d %v", code, resp)
	}
	rep = waitJobState(t, c, "load", key, 5*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != 2000.0 || rep["mSkippedFileCount"] != 2000.0 || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("second load report: %v", rep)
	}
	if after := readByAll(); after != before {
		t.Fatalf("a second load of the unchanged tree read %v bytes from storage", after-before)
	}
	// The coordinator asked the nodes (with ferry dev's token) which files
	// they hold: the second job sent them no batch at all.
	if n := batchesOfLatestRun(t, c, jobs.Key{Type: workflows.JobLoad, Path: path}); n != 0 {
		t.Fatalf("the second load of the unchanged tree scheduled %d batches", n)
	}
}

// batchesOfLatestRun counts the LoadBatch activities the latest run of a
// job scheduled, from its Temporal history.
func batchesOfLatestRun(t *testing.T, c cluster, key jobs.Key) int {
	t.Helper()
	tc, err := client.Dial(client.Options{HostPort: c.frontend})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	n := 0
	iter := tc.GetWorkflowHistory(context.Background(), key.WorkflowID(), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == workflows.ActivityLoadBatch {
			n++
		}
	}
	return n
}

func TestDevLoadThroughTheCLI(t *testing.T) {
	dataDir := t.TempDir()
	_, c := startFullDev(t, dataDir)
	src := t.TempDir()
	_, total := writeMixedTree(t, src, 120)
	path := "file://" + src
	ferry := func(args ...string) (string, string, error) {
		cmd := exec.Command(ferrytest.Binary(t), append(args, "--api", c.api)...)
		// The CLI finds ferry dev's token in its data directory, as a user's does.
		cmd.Env = append(os.Environ(), "FERRY_DATA_DIR="+dataDir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, stderr, err := ferry("job", "load", "--path", path, "--submit", "--watch")
	if err != nil || !strings.Contains(out, "Job State: SUCCEEDED") {
		t.Fatalf("submit --watch: %v\n%s\n%s", err, out, stderr)
	}
	text, _, err := ferry("job", "load", "--path", path, "--progress")
	if err != nil {
		t.Fatal(err)
	}
	js, _, err := ferry("job", "load", "--path", path, "--progress", "--format", "JSON")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("--format JSON does not parse: %v\n%s", err, js)
	}
	if !strings.Contains(text, fmt.Sprintf("Files Processed: %v out of %v", rep["mProcessedInodesCount"], rep["mProcessedInodesCount"])) ||
		rep["mLoadedByteCount"] != float64(total) || rep["mJobState"] != "SUCCEEDED" {
		t.Fatalf("TEXT and JSON disagree:\n%s\n%v", text, rep)
	}

	// Bad input: exit status ≠ 0 with one line, and no job is left behind.
	for _, bad := range [][]string{
		{"job", "load", "--submit"},
		{"job", "load", "--path", path, "--submit", "--bandwidth", "abc"},
		{"job", "load", "--path", path, "--submit", "--file-filter-regx", "("},
		{"job", "load", "--path", "file:///no/such/source", "--submit"},
	} {
		out, stderr, err := ferry(bad...)
		if err == nil || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "ferry: ") {
			t.Fatalf("ferry %v: err %v\nstdout %q\nstderr %q", bad, err, out, stderr)
		}
	}
	code, resp := call(t, "GET", c.api+"/api/v1/master/list_job?job-type=LOAD&job-state=RUNNING", nil)
	if code != http.StatusOK || len(resp["jobs"].([]any)) != 0 {
		t.Fatalf("bad submits left running jobs: %v", resp)
	}
	// The REST routes name the problem.
	for _, tc := range []struct {
		body any
		want string
	}{
		{map[string]any{}, "path"},
		{map[string]any{"path": path, "options": map[string]any{"nope": "1"}}, "nope"},
		{map[string]any{"path": path, "options": map[string]any{"bandwidth": "abc"}}, "bandwidth"},
		{map[string]any{"path": path, "options": map[string]any{"fileFilterRegx": "("}}, "fileFilterRegx"},
		{map[string]any{"path": path + "/no/such/source"}, "does not exist"},
	} {
		code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", tc.body)
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(resp["message"]), tc.want) {
			t.Fatalf("submit %v: %d %v; want 400 naming %q", tc.body, code, resp, tc.want)
		}
	}
}

func TestDevLoadWithReplicas(t *testing.T) {
	_, c := startFullDev(t, t.TempDir())
	src := t.TempDir()
	files, _ := writeMixedTree(t, src, 30)
	path := "file://" + src
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path, "options": map[string]any{"replicas": "2"}})
	if code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, resp)
	}
	rep := waitJobState(t, c, "load", map[string]any{"path": path}, 3*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != 30.0 {
		t.Fatalf("report: %v", rep)
	}
	// Each file is cached (no read-through) on at least two distinct nodes.
	for uri := range files {
		held := 0
		for _, node := range c.nodes {
			if code, _, err := cachedPage(node, uri, 0); err == nil && code == http.StatusOK {
				held++
			}
		}
		if held < 2 {
			t.Fatalf("%s is cached on %d nodes, want 2", uri, held)
		}
	}
}
