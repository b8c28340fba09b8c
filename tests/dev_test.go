package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
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
			return fmt.Errorf("UI API answer: %v: %.300s", err, b)
		}
		for _, e := range list.Executions {
			if e.Execution.WorkflowID == "kept-across-kill" {
				return nil
			}
		}
		return fmt.Errorf("UI API lists %d workflows, not kept-across-kill: %.300s", len(list.Executions), b)
	})
}

func TestDevRefusesABusyPort(t *testing.T) {
	dataDir := t.TempDir()
	_, frontend, _ := startDev(t, dataDir)
	p := ferrytest.Start(t, "dev", "--data-dir", t.TempDir(), "--temporal-listen", frontend, "--ui-listen", "", "--metrics-listen", "",
		"--api-listen", "127.0.0.1:0", "--nodes", "0")
	err := p.Wait(60 * time.Second)
	if err == nil {
		t.Fatalf("second ferry dev on a busy port exited 0:\n%s", p.Output())
	}
	out := p.Output()
	if !strings.Contains(out, "not free") || strings.Contains(out, "goroutine ") {
		t.Fatalf("want a one-line 'not free' error, got:\n%s", out)
	}
}
