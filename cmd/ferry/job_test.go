package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// env is the API the CLI talks to in these tests: the real REST facade and
// job service over an in-memory Temporal server with the stand-in job
// workflow (api/apitest), started once for the package.
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
	ferrytest.RemoveBinary()
	os.Exit(code)
}

// ferry runs the real binary against apiURL (FERRY_API) and returns its
// stdout, stderr and exit status.
func ferryAt(t *testing.T, apiURL string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferrytest.Binary(t), args...)
	cmd.Env = append(append(os.Environ(), ferrytest.SecurityEnv()...), "FERRY_API="+apiURL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("ferry %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func ferry(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return ferryAt(t, env.URL, args...)
}

// ok runs ferry, requires exit 0 and an empty stderr, and returns stdout.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := ferry(t, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("ferry %v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
	}
	return out
}

// fails runs ferry and requires a non-zero exit with one "ferry: " line on
// stderr that mentions want, and nothing on stdout.
func fails(t *testing.T, want string, args ...string) int {
	t.Helper()
	out, errOut, code := ferry(t, args...)
	if code == 0 {
		t.Fatalf("ferry %v: exit 0, want failure (stdout %q)", args, out)
	}
	if !strings.HasPrefix(errOut, "ferry: ") || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("ferry %v: stderr is not one 'ferry: ' line: %q", args, errOut)
	}
	if !strings.Contains(errOut, want) {
		t.Errorf("ferry %v: stderr %q does not mention %q", args, errOut, want)
	}
	if out != "" {
		t.Errorf("ferry %v: stdout %q on failure", args, out)
	}
	return code
}

func newDir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return "file://" + d
}

func waitStatus(t *testing.T, key jobs.Key, s workflows.JobStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.WaitStatus(ctx, key, s); err != nil {
		t.Fatal(err)
	}
}

func stopQuietly(key jobs.Key) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = env.Jobs.Stop(ctx, key)
}

var submittedRE = regexp.MustCompile(`^Load '(.*)' is successfully submitted\. JobId: ([0-9a-f-]{36})\n$`)

func TestJobLoadSubmitProgressStop(t *testing.T) {
	p := newDir(t, "cli-load")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	t.Cleanup(func() { stopQuietly(key) })

	out := ok(t, "job", "load", "--path", p, "--submit", "--batch-size", "300", "--bandwidth", "10MB", "--verify", "--include", "**/*.csv", "--include", "x/**")
	m := submittedRE.FindStringSubmatch(out)
	if m == nil || m[1] != p {
		t.Fatalf("submit printed %q", out)
	}
	jobID := m[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := env.Jobs.Progress(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Options.BatchSize != 300 || st.Options.Bandwidth != 10<<20 || !st.Options.Verify || len(st.Options.Filter.Include) != 2 {
		t.Errorf("options reached the job as %+v", st.Options)
	}

	if out := ok(t, "job", "load", "--path", p, "--submit"); out != fmt.Sprintf("Load already running for path '%s'\n", p) {
		t.Errorf("second submit printed %q", out)
	}

	out = ok(t, "job", "load", "--path", p, "--progress")
	want := fmt.Sprintf("Progress for loading path '%s':\n\tSettings:\tbandwidth: 10485760\tverify: true\tmetadata-only: false\n\tTime Elapsed: ", p)
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "\tFiles Processed: 1 out of 4\n") || strings.Contains(out, "Stage:") || strings.HasSuffix(out, "\n\n") {
		t.Errorf("progress printed:\n%s", out)
	}
	if out := ok(t, "job", "load", "--path", p, "--progress", "--verbose"); !strings.Contains(out, "\tStage: LOADING\n") {
		t.Errorf("verbose progress printed:\n%s", out)
	}
	out = ok(t, "job", "load", "--path", p, "--progress", "--format", "json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--format JSON printed something that is not JSON (%v): %s", err, out)
	}
	if rep["mJobState"] != "RUNNING" || rep["mJobId"] != jobID || rep["mProcessedInodesCount"] != 1.0 {
		t.Errorf("JSON report = %v", rep)
	}

	// --bandwidth alone changes the running job's limit.
	if out := ok(t, "job", "load", "--path", p, "--bandwidth", "20MB"); !strings.HasPrefix(out, "bandwidth of the running job set to ") {
		t.Errorf("changing the bandwidth printed %q", out)
	}
	if st, err := env.Jobs.Progress(ctx, key); err != nil || st.Options.Bandwidth != 20<<20 {
		t.Errorf("after the change the job's bandwidth is %d (%v)", st.Options.Bandwidth, err)
	}

	if out := ok(t, "job", "load", "--path", p, "--stop"); out != fmt.Sprintf("Load '%s' is successfully stopped.\n", p) {
		t.Errorf("stop printed %q", out)
	}
	waitStatus(t, key, workflows.StatusStopped)
	if code := fails(t, "no run of the job is active", "job", "load", "--path", p, "--bandwidth", "20MB"); code != 1 {
		t.Errorf("changing the bandwidth of a stopped job: exit %d, want 1", code)
	}
	if out := ok(t, "job", "load", "--path", p, "--stop"); out != fmt.Sprintf("Cannot find load job for path %s, it might have already been stopped or finished\n", p) {
		t.Errorf("second stop printed %q", out)
	}
	if out := ok(t, "job", "load", "--path", p, "--submit"); out != fmt.Sprintf("Load '%s' is resumed. JobId: %s\n", p, jobID) {
		t.Errorf("resume printed %q", out)
	}
}

func TestJobCopyAndMoveMessages(t *testing.T) {
	src, dst := newDir(t, "cli-copy-src"), newDir(t, "cli-copy-dst")
	key := jobs.Key{Type: workflows.JobCopy, Path: src, Dst: dst}
	t.Cleanup(func() { stopQuietly(key) })
	out := ok(t, "job", "copy", "--src", src, "--dst", dst, "--submit", "--check-content", "--overwrite")
	if !regexp.MustCompile(`^Copy from '` + regexp.QuoteMeta(src) + `' to '` + regexp.QuoteMeta(dst) + `' is successfully submitted\. JobId: [0-9a-f-]{36}\n$`).MatchString(out) {
		t.Errorf("copy submit printed %q", out)
	}
	if out := ok(t, "job", "copy", "--src", src, "--dst", dst, "--submit"); out != fmt.Sprintf("Copy already running from '%s' to '%s'\n", src, dst) {
		t.Errorf("second copy submit printed %q", out)
	}
	out = ok(t, "job", "copy", "--src", src, "--dst", dst, "--progress")
	if !strings.Contains(out, "copying path '"+src+"' to '"+dst+"':\n\tSettings: \"check-content: true\"\n") {
		t.Errorf("copy progress printed:\n%s", out)
	}
	if out := ok(t, "job", "copy", "--src", src, "--dst", dst, "--stop"); out != fmt.Sprintf("Copy from '%s' to '%s' is successfully stopped.\n", src, dst) {
		t.Errorf("copy stop printed %q", out)
	}

	msrc, mdst := newDir(t, "cli-move-src"), newDir(t, "cli-move-dst")
	mkey := jobs.Key{Type: workflows.JobMove, Path: msrc, Dst: mdst}
	t.Cleanup(func() { stopQuietly(mkey) })
	if out := ok(t, "job", "move", "--src", msrc, "--dst", mdst, "--submit"); !strings.HasPrefix(out, fmt.Sprintf("Move from '%s' to '%s' is successfully submitted. JobId: ", msrc, mdst)) {
		t.Errorf("move submit printed %q", out)
	}
	out = ok(t, "job", "move", "--src", msrc, "--dst", mdst, "--progress", "--format", "JSON", "--verbose")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep["jobType"] != "move" || rep["mRunningStage"] != "COPYING" {
		t.Errorf("move JSON progress (%v): %s", err, out)
	}
	if out := ok(t, "job", "move", "--src", msrc, "--dst", mdst+"-other", "--stop"); !strings.HasPrefix(out, "Cannot find move job for path "+msrc) {
		t.Errorf("stop of an unknown move printed %q", out)
	}
}

func TestJobBadInputExitsNonZeroWithOneLine(t *testing.T) {
	p := newDir(t, "cli-bad")
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--path is required", []string{"job", "load", "--submit"}},
		{"exactly one of --submit, --progress or --stop", []string{"job", "load", "--path", p}},
		{"exactly one of --submit, --progress or --stop", []string{"job", "load", "--path", p, "--submit", "--stop"}},
		{"invalid argument", []string{"job", "load", "--path", p, "--submit", "--batch-size", "abc"}},
		{"unknown flag: --nope", []string{"job", "load", "--path", p, "--submit", "--nope"}},
		{"unknown flag: --metadata-only", []string{"job", "copy", "--src", p, "--dst", p + "-2", "--submit", "--metadata-only"}},
		{"--bandwidth applies only with --submit", []string{"job", "load", "--path", p, "--progress", "--bandwidth", "1MB"}},
		{"or only --bandwidth, to change the limit of a running job", []string{"job", "load", "--path", p, "--bandwidth", "1MB", "--batch-size", "3"}},
		{"--bandwidth applies only with --submit", []string{"job", "load", "--path", p, "--bandwidth", "1MB", "--watch"}},
		{"--watch goes with --submit or --progress", []string{"job", "load", "--path", p, "--stop", "--watch"}},
		{"--format", []string{"job", "load", "--path", p, "--progress", "--format", "XML"}},
		{"--dst is required", []string{"job", "copy", "--src", p, "--submit"}},
		// The API names its fields (bandwidth, fileFilterRegx, job-state);
		// the CLI names the flags that set them.
		{`ferry: --bandwidth: invalid size "abc"`, []string{"job", "load", "--path", p, "--submit", "--bandwidth", "abc"}},
		{"ferry: --file-filter-regx: ", []string{"job", "load", "--path", p, "--submit", "--file-filter-regx", "(a"}},
		{"ferry: --replicas: ", []string{"job", "load", "--path", p, "--submit", "--replicas", "0"}},
		{"ferry: --older-than: ", []string{"job", "load", "--path", p, "--submit", "--older-than", "soon"}},
		{"ferry: --min-size: is larger than --max-size", []string{"job", "load", "--path", p, "--submit", "--min-size", "10", "--max-size", "5"}},
		{"ferry: --bandwidth: is required", []string{"job", "load", "--path", p, "--bandwidth", ""}},
		{"does not exist", []string{"job", "load", "--path", p + "/missing", "--submit"}},
		{"wildcard", []string{"job", "load", "--path", p + "/*.csv", "--submit"}},
		{"inside the source", []string{"job", "copy", "--src", p, "--dst", p + "/sub", "--submit"}},
		{fmt.Sprintf("Load for path '%s' cannot be found.", p), []string{"job", "load", "--path", p, "--progress"}},
		{`ferry: --state: unknown job state "DONE"`, []string{"job", "list", "--state", "DONE"}},
		{`ferry: --type: unknown job type "FETCH"`, []string{"job", "list", "--type", "fetch"}},
		{"--api", []string{"job", "list", "--api", "ftp://host"}},
		{"unknown command", []string{"job", "fetch"}},
		{`unknown command "lst" for "ferry job"; did you mean "list"?`, []string{"job", "lst"}},
		{`unknown command "dve" for "ferry"; did you mean "dev"?`, []string{"dve"}},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if code := fails(t, tc.want, tc.args...); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			out, errOut, _ := ferry(t, tc.args...)
			for _, rest := range []string{"job-state", "job-type", `option "`, "options."} {
				if strings.Contains(errOut, rest) {
					t.Errorf("the error names the REST parameter %s, not the flag: %q", rest, errOut+out)
				}
			}
		})
	}
}

func TestJobUnreachableAPI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close() // nothing listens there any more
	for _, args := range [][]string{
		{"job", "load", "--path", "file:///data", "--submit"},
		{"job", "load", "--path", "file:///data", "--progress", "--watch", "--api-wait", "0"},
		{"job", "load", "--path", "file:///data", "--progress", "--api-wait", "0"},
		{"job", "list"},
	} {
		out, errOut, code := ferryAt(t, closed, args...)
		want := "ferry: cannot reach the Ferry API at " + closed + ": "
		if code != 1 || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("ferry %v against a closed port: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
	}
}

func TestJobWatch(t *testing.T) {
	t.Run("succeeded", func(t *testing.T) {
		p := newDir(t, "cli-watch")
		key := jobs.Key{Type: workflows.JobLoad, Path: p}
		proc := ferrytest.Start(t, "job", "load", "--api", env.URL, "--path", p, "--submit", "--watch")
		// Not a terminal: one plain line per change.
		proc.WaitFor(regexp.MustCompile(`RUNNING LOADING: 1 of 4 files processed, 0 failed, 1024\.00KB of 4096\.00KB\n`), 30*time.Second)
		finish(t, key)
		if err := proc.Wait(30 * time.Second); err != nil {
			t.Fatalf("watch exited with %v:\n%s", err, proc.Output())
		}
		out := proc.Output()
		for _, want := range []string{"is successfully submitted", "SUCCEEDED: 4 of 4 files processed", "\tJob State: SUCCEEDED\n", "\tFiles Processed: 4 out of 4\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("watch output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("failed exits 2", func(t *testing.T) {
		p := newDir(t, "cli-watch-fail")
		key := jobs.Key{Type: workflows.JobLoad, Path: p}
		ok(t, "job", "load", "--path", p, "--submit")
		// --watch alone watches the job already submitted.
		proc := ferrytest.Start(t, "job", "load", "--api", env.URL, "--path", p, "--watch", "--verbose")
		proc.WaitFor(regexp.MustCompile(`RUNNING LOADING: 1 of 4`), 30*time.Second)
		finish(t, key)
		err := proc.Wait(30 * time.Second)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("watch of a failed job exited with %v, want status 2:\n%s", err, proc.Output())
		}
		out := proc.Output()
		for _, want := range []string{"\tJob State: FAILED (Job partially failed.)\n", "Reason: PERMISSION_DENIED", "ferry: the load job ended FAILED: Job partially failed.\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("watch output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("stopped exits 0 with a note", func(t *testing.T) {
		src, dst := newDir(t, "cli-watch-copy"), newDir(t, "cli-watch-dst")
		key := jobs.Key{Type: workflows.JobCopy, Path: src, Dst: dst}
		ok(t, "job", "copy", "--src", src, "--dst", dst, "--submit")
		proc := ferrytest.Start(t, "job", "copy", "--api", env.URL, "--src", src, "--dst", dst, "--progress", "--watch", "--format", "JSON")
		proc.WaitFor(regexp.MustCompile(`RUNNING COPYING`), 30*time.Second)
		ok(t, "job", "copy", "--src", src, "--dst", dst, "--stop")
		if err := proc.Wait(30 * time.Second); err != nil {
			t.Fatalf("watch of a stopped job exited with %v:\n%s", err, proc.Output())
		}
		out := proc.Output()
		if !strings.Contains(out, `"mJobState":"STOPPED"`) || !strings.Contains(out, "The copy job was stopped; submit it again to resume it.\n") {
			t.Errorf("watch output:\n%s", out)
		}
		_ = key
	})
}

// finish ends the stand-in run of key, as if the job had done its work.
func finish(t *testing.T, key jobs.Key) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := env.Finish(ctx, key); err != nil {
		t.Fatal(err)
	}
}

func TestJobList(t *testing.T) {
	p := newDir(t, "cli-list")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	t.Cleanup(func() { stopQuietly(key) })
	ok(t, "job", "load", "--path", p, "--submit")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.WaitListed(ctx, key, workflows.StatusRunning); err != nil {
		t.Fatal(err)
	}
	out := ok(t, "job", "list", "--type", "load", "--state", "running")
	if !regexp.MustCompile(`^JOB ID\s+TYPE\s+STATE\s+SUBMITTED\s+STARTED\s+PATH\s+DESTINATION\n`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^[0-9a-f-]{36}\s+LOAD\s+RUNNING\s+\S+ \S+\s+\S+ \S+\s+`+regexp.QuoteMeta(p)+`\s+-$`).MatchString(out) {
		t.Errorf("list printed:\n%s", out)
	}
	out = ok(t, "job", "list", "--format", "JSON")
	var list struct {
		Jobs []map[string]any `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Jobs) == 0 {
		t.Errorf("list --format JSON (%v): %s", err, out)
	}
	if out := ok(t, "job", "list", "--type", "move", "--state", "VERIFYING"); out != "No jobs.\n" {
		t.Errorf("empty list printed %q", out)
	}
}

// TestAPICommand runs `ferry api` as its own process against the test's
// Temporal server and drives a job through it with the CLI.
func TestAPICommand(t *testing.T) {
	proc := ferrytest.Start(t, "api", "--listen", "127.0.0.1:0", "--temporal-address", env.TemporalAddress, "--log-level", "warn")
	url := proc.WaitFor(regexp.MustCompile(`REST API\s+(http://\S+)`), 60*time.Second)[1]
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	p := newDir(t, "cli-api-process")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	t.Cleanup(func() { stopQuietly(key) })
	out, errOut, code := ferryAt(t, url, "job", "load", "--path", p, "--submit")
	if code != 0 || !strings.HasPrefix(out, "Load '"+p+"' is successfully submitted. JobId: ") {
		t.Fatalf("submit through ferry api: exit %d, %q, %q", code, out, errOut)
	}
	out, _, code = ferryAt(t, url, "job", "load", "--path", p, "--progress")
	if code != 0 || !strings.Contains(out, "\tJob State: RUNNING\n") {
		t.Errorf("progress through ferry api: exit %d:\n%s", code, out)
	}
	proc.Signal(os.Interrupt)
	if err := proc.Wait(30 * time.Second); err != nil {
		t.Errorf("ferry api did not exit cleanly on SIGINT: %v\n%s", err, proc.Output())
	}
}
