package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

func TestVersion(t *testing.T) {
	// Both spellings print the same report: version, commit, Go and the
	// Temporal SDK, one per line.
	long := ok(t, "version")
	if flag := ok(t, "--version"); flag != long {
		t.Errorf("ferry --version printed %q, ferry version %q", flag, long)
	}
	for _, re := range []string{
		`^ferry \S+\n`,
		`\n  commit +([0-9a-f]{40}( \(with uncommitted changes\))?|unknown \(built without VCS information; set it with -ldflags -X main\.commit=\.\.\.\)|\S+)\n`,
		`\n  Go +go1\.\d+`,
		`\n  Temporal SDK +v1\.\d+\.\d+\n`,
		`\n  Temporal server +v1\.\d+\.\d+ `,
	} {
		if !regexp.MustCompile(re).MatchString(long) {
			t.Errorf("ferry version does not match %s:\n%s", re, long)
		}
	}
}

func TestVersionFrom(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/ferryio/ferry", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "go.temporal.io/sdk", Version: "v1.50.0"},
			{Path: "go.temporal.io/server", Version: "v1.32.1"},
		},
	}
	// Built with -buildvcs=false: no revision, said honestly.
	v := versionFrom(bi, "", "")
	if v.Version != "(devel)" || v.Commit != unknownCommit || v.GoVersion != "go1.26.8" || v.TemporalSDK != "v1.50.0" || v.TemporalServer != "v1.32.1" {
		t.Errorf("without VCS: %+v", v)
	}
	// With VCS information.
	bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"}}
	if v := versionFrom(bi, "", ""); v.Commit != "0123456789abcdef0123456789abcdef01234567 (with uncommitted changes)" {
		t.Errorf("with VCS: %+v", v)
	}
	// -ldflags -X wins.
	if v := versionFrom(bi, "v1.2.3", "abc123"); v.Version != "v1.2.3" || v.Commit != "abc123" {
		t.Errorf("with -X: %+v", v)
	}
	// No build information at all.
	if v := versionFrom(nil, "", ""); v.Version != "(devel)" || v.GoVersion != runtime.Version() || v.TemporalSDK != "unknown" {
		t.Errorf("without build info: %+v", v)
	}
}

// TestHelpListsOnlyUsedFlags: each command's help lists the flags it uses,
// not the Temporal and storage flags of the process commands.
func TestHelpListsOnlyUsedFlags(t *testing.T) {
	// hasFlag reports whether help lists flag among its flags (not merely
	// mentions it in the description).
	hasFlag := func(help, flag string) bool {
		return regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(flag) + `\b`).MatchString(help)
	}
	processFlags := []string{"--temporal-address", "--namespace", "--storage-config", "--startup-timeout", "--log-level"}
	for _, args := range [][]string{{"job", "--help"}, {"job", "load", "--help"}, {"job", "copy", "--help"}, {"job", "list", "--help"}, {"version", "--help"}} {
		out := ok(t, args...)
		for _, f := range processFlags {
			if hasFlag(out, f) {
				t.Errorf("ferry %v lists %s, which it never uses:\n%s", args, f, out)
			}
		}
	}
	for _, cmd := range []string{"dev", "worker", "cachenode", "api"} {
		out := ok(t, cmd, "--help")
		for _, f := range processFlags {
			if !hasFlag(out, f) {
				t.Errorf("ferry %s --help lacks %s:\n%s", cmd, f, out)
			}
		}
	}
	if out := ok(t, "temporal-dev", "--help"); !hasFlag(out, "--namespace") || hasFlag(out, "--temporal-address") || hasFlag(out, "--storage-config") {
		t.Errorf("ferry temporal-dev --help:\n%s", out)
	}
	if out := ok(t, "job", "load", "--help"); !hasFlag(out, "--api-wait") || !hasFlag(out, "--api") {
		t.Errorf("ferry job load --help:\n%s", out)
	}
}

func TestJobTableHasSubmittedAndStarted(t *testing.T) {
	raw := json.RawMessage(`{"jobs":[{"jobId":"j1","jobType":"LOAD","jobState":"RUNNING","path":"file:///a",
		"submitTime":"2026-01-02T03:04:05Z","startTime":"2026-01-03T04:05:06Z"},
		{"jobId":"j2","jobType":"COPY","jobState":"SUCCEEDED","path":"file:///b","dst":"file:///c","startTime":"2026-01-04T00:00:00Z"}]}`)
	var buf bytes.Buffer
	if err := printJobTable(&output{w: &buf}, raw); err != nil {
		t.Fatal(err)
	}
	local := func(s string) string {
		tm, _ := time.Parse(time.RFC3339, s)
		return tm.Local().Format("2006-01-02 15:04:05")
	}
	lines := strings.Split(buf.String(), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^JOB ID\s+TYPE\s+STATE\s+SUBMITTED\s+STARTED\s+PATH\s+DESTINATION$`).MatchString(lines[0]) {
		t.Fatalf("table:\n%s", buf.String())
	}
	if want := `^j1\s+LOAD\s+RUNNING\s+` + local("2026-01-02T03:04:05Z") + `\s+` + local("2026-01-03T04:05:06Z") + `\s+file:///a\s+-$`; !regexp.MustCompile(want).MatchString(lines[1]) {
		t.Errorf("row 1 %q does not match %s", lines[1], want)
	}
	// An API without submitTime: the run start stands for both.
	if want := `^j2\s+COPY\s+SUCCEEDED\s+` + local("2026-01-04T00:00:00Z") + `\s+` + local("2026-01-04T00:00:00Z") + `\s+file:///b\s+file:///c$`; !regexp.MustCompile(want).MatchString(lines[2]) {
		t.Errorf("row 2 %q does not match %s", lines[2], want)
	}
}

// TestJobListSubmitTimeIsTheFirstRuns: a job stopped and resumed keeps
// its submit time; its start time is the resumed run's.
func TestJobListSubmitTimeIsTheFirstRuns(t *testing.T) {
	p := newDir(t, "cli-list-resume")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	t.Cleanup(func() { stopQuietly(key) })
	ok(t, "job", "load", "--path", p, "--submit")
	ok(t, "job", "load", "--path", p, "--stop")
	waitStatus(t, key, workflows.StatusStopped)
	ok(t, "job", "load", "--path", p, "--submit")
	waitStatus(t, key, workflows.StatusRunning)
	var row map[string]any
	ferrytest.Eventually(t, 30*time.Second, func() error {
		var list struct {
			Jobs []map[string]any `json:"jobs"`
		}
		out := ok(t, "job", "list", "--type", "load", "--format", "JSON")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, j := range list.Jobs {
			if j["path"] == p && j["jobState"] == "RUNNING" {
				row = j
				return nil
			}
		}
		return errNotListed
	})
	submitted, err1 := time.Parse(time.RFC3339Nano, row["submitTime"].(string))
	started, err2 := time.Parse(time.RFC3339Nano, row["startTime"].(string))
	if err1 != nil || err2 != nil || !submitted.Before(started) {
		t.Errorf("resumed job: submitTime %v, startTime %v (%v %v); want the submit time before the resumed run's start", row["submitTime"], row["startTime"], err1, err2)
	}
}

var errNotListed = os.ErrNotExist

// TestWatchWaitsForAnAPIThatIsNotUpYet: a watch started while the API is
// down (a restart) says it waits, and follows the job once the API is up
// instead of exiting at once.
func TestWatchWaitsForAnAPIThatIsNotUpYet(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the API is "restarting": nothing listens yet
	p := newDir(t, "cli-watch-restart")
	key := jobs.Key{Type: workflows.JobLoad, Path: p}
	t.Cleanup(func() { stopQuietly(key) })
	ok(t, "job", "load", "--path", p, "--submit")

	watch := ferrytest.Start(t, "job", "load", "--api", "http://"+addr, "--path", p, "--progress", "--watch", "--api-wait", "2m")
	watch.WaitFor(regexp.MustCompile(`ferry: waiting for the API: cannot reach the Ferry API at http://`+regexp.QuoteMeta(addr)+`: .* \(retrying for up to \S+\)\n`), 30*time.Second)

	// The API comes up on that address: a real `ferry api` process.
	api := ferrytest.Start(t, "api", "--listen", addr, "--temporal-address", env.TemporalAddress, "--log-level", "warn")
	api.WaitFor(regexp.MustCompile(`REST API\s+http://`), 60*time.Second)
	watch.WaitFor(regexp.MustCompile(`RUNNING LOADING: 1 of 4`), 60*time.Second)
	finish(t, key)
	if err := watch.Wait(60 * time.Second); err != nil {
		t.Fatalf("watch exited with %v:\n%s", err, watch.Output())
	}
	if out := watch.Output(); !strings.Contains(out, "\tJob State: SUCCEEDED\n") {
		t.Errorf("watch output:\n%s", out)
	}
}

// TestWatchGivesUpAfterAPIWait: the wait is bounded by --api-wait and ends
// with one error line after the status line.
func TestWatchGivesUpAfterAPIWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	start := time.Now()
	out, errOut, code := ferryAt(t, closed, "job", "load", "--path", "file:///data", "--progress", "--watch", "--api-wait", "1s")
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if code != 1 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], "ferry: waiting for the API: cannot reach") ||
		!strings.HasPrefix(lines[1], "ferry: cannot reach the Ferry API at "+closed) || !strings.HasSuffix(lines[1], "(waited 1s; --api-wait waits longer)") {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	if took := time.Since(start); took > 45*time.Second {
		t.Errorf("gave up after %v with --api-wait 1s", took)
	}
}

// A token file that cannot be read is the caller's setting at fault: one
// line naming the file, not "cannot reach the API".
func TestUnreadableTokenFileIsNamed(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-token")
	for _, args := range [][]string{
		{"--token-file", missing, "job", "list"},
		{"--token-file", missing, "job", "load", "--path", "file:///data", "--progress"},
		{"--token-file", missing, "policy", "list"},
	} {
		out, errOut, code := ferryAt(t, "http://127.0.0.1:1", args...)
		if code == 0 || out != "" || strings.Count(errOut, "\n") != 1 ||
			!strings.Contains(errOut, "cannot read the token file "+missing) || strings.Contains(errOut, "cannot reach") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
