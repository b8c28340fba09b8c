// Package policytest runs Ferry's policies end to end: real `ferry dev` (or
// separate processes), real HTTP, the real CLI, Temporal Schedules deciding
// when runs start. Tests wait for conditions with deadlines, never for a
// fixed time.
package policytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/policies"
)

var (
	readyLine    = regexp.MustCompile(`Press Ctrl-C to stop`)
	apiLine      = regexp.MustCompile(`REST API\s+http://(\S+)`)
	frontendLine = regexp.MustCompile(`Temporal frontend\s+(\S+)`)
	runningLine  = regexp.MustCompile(`is running`)
)

// env is a running Ferry seen from outside.
type env struct {
	t        *testing.T
	api      string // http://host:port
	temporal string // host:port
}

// startDev runs `ferry dev` with every listener on a free port.
func startDev(t *testing.T) env {
	t.Helper()
	p := ferrytest.Start(t, "dev", "--data-dir", t.TempDir(),
		"--temporal-listen", "127.0.0.1:0", "--ui-listen", "", "--metrics-listen", "",
		"--api-listen", "127.0.0.1:0", "--node-http-port", "0", "--node-grpc-port", "0", "--nodes", "2")
	p.WaitFor(readyLine, 120*time.Second)
	return env{t: t, api: "http://" + p.WaitFor(apiLine, time.Second)[1], temporal: p.WaitFor(frontendLine, time.Second)[1]}
}

// call sends a request (body: nil, a string sent as is, or a value sent as
// JSON) and decodes the JSON answer into out when out is not nil.
func (e env) call(method, path string, body any, out any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.api+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, m
}

// cli runs `ferry ARGS --api URL` and returns stdout, stderr and the exit
// status.
func (e env) cli(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferrytest.Binary(e.t), append(args, "--api", e.api)...)
	cmd.Env = append(os.Environ(), ferrytest.SecurityEnv()...) // the processes' token
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("ferry %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// cliOK runs the CLI and fails the test unless it exits 0.
func (e env) cliOK(args ...string) string {
	e.t.Helper()
	out, errs, code := e.cli(args...)
	if code != 0 {
		e.t.Fatalf("ferry %v: exit %d: %s%s", args, code, out, errs)
	}
	return out
}

// cliFails runs the CLI and checks that it fails with one line naming want.
func (e env) cliFails(want string, args ...string) {
	e.t.Helper()
	out, errs, code := e.cli(args...)
	lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
	if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ferry: ") || !strings.Contains(lines[0], want) {
		e.t.Fatalf("ferry %v: exit %d, stderr %q, stdout %q; want exit != 0 and one line naming %q", args, code, errs, out, want)
	}
}

// describe returns the policy's description (REST).
func (e env) describe(name string) (policies.Info, error) {
	var in policies.Info
	code, m := e.call("GET", "/api/v1/policies/"+name, nil, &in)
	if code != http.StatusOK {
		return in, fmt.Errorf("describe %s: %d %v", name, code, m)
	}
	return in, nil
}

// waitRun waits until the oldest recent run matching pick has ended, and
// returns it.
func (e env) waitRun(name string, timeout time.Duration, what string, pick func(policies.Run) bool) policies.Run {
	e.t.Helper()
	var got policies.Run
	ferrytest.Eventually(e.t, timeout, func() error {
		in, err := e.describe(name)
		if err != nil {
			return err
		}
		// Oldest first: the first run that matches.
		for i := len(in.RecentRuns) - 1; i >= 0; i-- {
			r := in.RecentRuns[i]
			if pick(r) {
				if r.Status == "RUNNING" {
					return fmt.Errorf("%s: still running: %+v", what, r)
				}
				got = r
				return nil
			}
		}
		return fmt.Errorf("%s: no such run among %+v", what, in.RecentRuns)
	})
	return got
}

// file is one source file with its modification time.
type file struct {
	rel   string
	size  int
	mtime time.Time
}

func writeFiles(t *testing.T, dir string, files ...file) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, f.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content(f), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func content(f file) []byte {
	b := bytes.Repeat([]byte(f.rel+"|"), f.size/(len(f.rel)+1)+1)
	return b[:f.size]
}

// where says whether f is in src only, in dst only (with its content), or
// elsewhere.
func where(t *testing.T, src, dst string, f file) string {
	t.Helper()
	_, errSrc := os.Stat(filepath.Join(src, f.rel))
	b, errDst := os.ReadFile(filepath.Join(dst, f.rel))
	switch {
	case errSrc == nil && os.IsNotExist(errDst):
		return "src"
	case os.IsNotExist(errSrc) && errDst == nil && bytes.Equal(b, content(f)):
		return "dst"
	}
	return fmt.Sprintf("src: %v, dst: %v (content ok: %v)", errSrc, errDst, bytes.Equal(b, content(f)))
}

func expectIn(t *testing.T, src, dst, want string, files ...file) {
	t.Helper()
	for _, f := range files {
		if got := where(t, src, dst, f); got != want {
			t.Errorf("%s: in %s, want %s", f.rel, got, want)
		}
	}
}

func bytesOf(files ...file) int64 {
	var n int64
	for _, f := range files {
		n += int64(f.size)
	}
	return n
}

// policyYAML writes a policy document to a file and returns its path.
func policyYAML(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
