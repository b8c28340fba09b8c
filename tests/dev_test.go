package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/internal/ferrytest"
)

var (
	frontendLine = regexp.MustCompile(`Temporal frontend\s+(\S+)`)
	uiLine       = regexp.MustCompile(`Temporal Web UI\s+(\S+)`)
	readyLine    = regexp.MustCompile(`Press Ctrl-C to stop`)
)

func helloWorkflow(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

// startDev runs `ferry dev` on free ports and returns the process, the
// frontend address and the UI URL.
func startDev(t *testing.T, dataDir string, extra ...string) (*ferrytest.Proc, string, string) {
	t.Helper()
	return startDevEnv(t, nil, dataDir, extra...)
}

// startDevEnv is startDev with extra environment variables.
func startDevEnv(t *testing.T, env []string, dataDir string, extra ...string) (*ferrytest.Proc, string, string) {
	t.Helper()
	// Every listener on a free port: tests run beside each other and beside
	// a developer's own ferry dev.
	args := append([]string{"dev", "--data-dir", dataDir,
		"--temporal-listen", "127.0.0.1:0", "--ui-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--api-listen", "127.0.0.1:0", "--node-http-port", "0", "--node-grpc-port", "0"}, extra...)
	start := time.Now()
	p := ferrytest.StartEnv(t, env, args...)
	p.WaitFor(readyLine, 60*time.Second)
	frontend := p.WaitFor(frontendLine, time.Second)[1]
	ui := p.WaitFor(uiLine, time.Second)[1]
	t.Logf("ferry dev ready in %v (frontend %s, UI %s)", time.Since(start).Round(time.Millisecond), frontend, ui)
	return p, frontend, ui
}

func TestDevSurvivesSIGKILL(t *testing.T) {
	dataDir := t.TempDir()
	dev, frontend, ui := startDev(t, dataDir)
	checkBannerAsInREADME(t, dev.Output())

	c, err := client.Dial(client.Options{HostPort: frontend})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		t.Fatalf("health check: %v", err)
	}
	w := worker.New(c, "dev-test", worker.Options{})
	w.RegisterWorkflow(helloWorkflow)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "kept-across-kill", TaskQueue: "dev-test"}, helloWorkflow, "ferry")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello ferry" {
		t.Fatalf("workflow result %q, %v", got, err)
	}
	w.Stop()
	c.Close()

	// The Web UI serves its page.
	resp, err := http.Get(ui + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("UI / answered %d: %.200q", resp.StatusCode, body)
	}

	dev.Kill() // SIGKILL: no clean shutdown

	_, frontend, ui = startDev(t, dataDir)
	c2, err := client.Dial(client.Options{HostPort: frontend})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	desc, err := c2.DescribeWorkflowExecution(ctx, "kept-across-kill", "")
	if err != nil {
		t.Fatalf("after SIGKILL and restart the workflow is gone: %v", err)
	}
	if s := desc.WorkflowExecutionInfo.Status; s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("workflow status %v after restart", s)
	}

	// The UI's API lists it too (visibility survived as well).
	ferrytest.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(ui + "/api/v1/namespaces/default/workflows")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var list struct {
			Executions []struct {
				Execution struct {
					WorkflowID string `json:"workflowId"`
				} `json:"execution"`
			} `json:"executions"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("UI API answered %d: %.300s", resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("UI API answer: %w: %.300s", err, b)
		}
		for _, e := range list.Executions {
			if e.Execution.WorkflowID == "kept-across-kill" {
				return nil
			}
		}
		return fmt.Errorf("UI API lists %d workflows, not kept-across-kill: %.300s", len(list.Executions), b)
	})
}

// TestDevRefusesABusyPortOrDataDir: a second ferry dev on a taken port or
// data directory prints exactly one line naming the port (or directory)
// and the flag, before it starts or logs anything.
func TestDevRefusesABusyPortOrDataDir(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	free := []string{"--temporal-listen", "127.0.0.1:0", "--ui-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--api-listen", "127.0.0.1:0", "--node-http-port", "0", "--node-grpc-port", "0"}
	lockedDir := t.TempDir()
	lock, err := os.OpenFile(filepath.Join(lockedDir, "ferry-dev.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	portNum, _ := strconv.Atoi(port)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"temporal", []string{"--temporal-listen", addr}, []string{"--temporal-listen", "port " + port, "not free"}},
		{"ui", []string{"--ui-listen", addr}, []string{"--ui-listen", "port " + port}},
		{"api", []string{"--api-listen", addr}, []string{"--api-listen", "port " + port, "the REST API"}},
		{"node http", []string{"--node-http-port", port}, []string{"--node-http-port", "port " + port, "node-1"}},
		{"second node grpc", []string{"--node-grpc-port", strconv.Itoa(portNum - 1)}, []string{"--node-grpc-port", "port " + port, "node-2"}},
		{"data dir", []string{"--data-dir", lockedDir}, []string{"--data-dir " + lockedDir, "in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"dev", "--data-dir", t.TempDir()}, free...)
			args = append(args, tc.args...) // later flags win
			p := ferrytest.Start(t, args...)
			if err := p.Wait(60 * time.Second); err == nil {
				t.Fatalf("ferry dev with a busy %s exited 0:\n%s", tc.name, p.Output())
			}
			out := p.Output()
			if !strings.HasPrefix(out, "ferry: ") || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("want exactly one 'ferry: ' line, got:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the line does not name %q: %s", w, out)
				}
			}
		})
	}
}

// checkBannerAsInREADME compares what ferry dev printed (stderr and stdout
// in order) with the Quick start's example: the same banner lines, after
// every start-up log line, and worker identities without a stray "@".
func checkBannerAsInREADME(t *testing.T, out string) {
	t.Helper()
	root, err := ferrytest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile(`(?s)\n(Ferry dev is running \(state in [^\n]*\)\n.*?Press Ctrl-C to stop\.\n)`).FindStringSubmatch(string(readme))
	if example == nil {
		t.Fatal("README has no ferry dev banner")
	}
	start := strings.Index(out, "Ferry dev is running")
	if start < 0 {
		t.Fatalf("no banner in:\n%s", out)
	}
	got := strings.Split(strings.TrimSuffix(out[start:], "\n"), "\n")
	want := strings.Split(strings.TrimSuffix(example[1], "\n"), "\n")
	if len(got) < len(want) {
		t.Fatalf("banner has %d lines, the README's %d:\n%s", len(got), len(want), out[start:])
	}
	// Addresses and the state directory differ (free ports, temp dirs);
	// the rest must be the same, line for line, with nothing in between.
	addr := regexp.MustCompile(`127\\\.0\\\.0\\\.1:\d+`)
	for i, w := range want {
		re := regexp.QuoteMeta(w)
		re = addr.ReplaceAllString(re, `127\.0\.0\.1:\d+`)
		// The state directory, the working directory (a mount), and
		// whether this start created the token or found it.
		re = strings.ReplaceAll(re, regexp.QuoteMeta("/home/you/ferry/.ferry"), `/[^,\s]+`)
		re = strings.ReplaceAll(re, regexp.QuoteMeta("/home/you/ferry"), `/[^,\s]+`)
		re = strings.Replace(re, "API token created in", "API token (created|kept) in", 1)
		if !regexp.MustCompile("^" + re + "$").MatchString(got[i]) {
			t.Errorf("banner line %d is %q; the README shows %q", i+1, got[i], w)
		}
	}
	if ids := regexp.MustCompile(`WorkerID=(\S*)`).FindAllStringSubmatch(out[:start], -1); len(ids) == 0 {
		t.Errorf("no worker start-up log line before the banner:\n%s", out)
	} else {
		for _, id := range ids {
			if strings.HasSuffix(id[1], "@") {
				t.Errorf("worker identity %q ends in @", id[1])
			}
		}
	}
}
