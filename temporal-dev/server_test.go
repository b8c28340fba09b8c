package temporaldev_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

func echoWorkflow(ctx workflow.Context, in string) (string, error) {
	return "echo: " + in, nil
}

func runEcho(t *testing.T, c client.Client, id string) {
	t.Helper()
	w := worker.New(c, "test-queue", worker.Options{})
	w.RegisterWorkflow(echoWorkflow)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: "test-queue",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("FerryJobType").ValueSet("load"),
		),
	}, echoWorkflow, "hi")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil || out != "echo: hi" {
		t.Fatalf("workflow result %q, %v", out, err)
	}
}

func dial(t *testing.T, s *temporaldev.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: s.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestInMemoryServerRunsAWorkflow(t *testing.T) {
	s, err := temporaldev.Start(context.Background(), temporaldev.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	c := dial(t, s)
	if _, err := c.CheckHealth(context.Background(), &client.CheckHealthRequest{}); err != nil {
		t.Fatal(err)
	}
	runEcho(t, c, "echo-1")

	// Ferry's search attributes are registered, so the UI can filter on them.
	sa, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: s.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	for name := range temporaldev.SearchAttributes {
		if _, ok := sa.GetCustomAttributes()[name]; !ok {
			t.Errorf("search attribute %s is not registered", name)
		}
	}
	desc, err := c.DescribeWorkflowExecution(context.Background(), "echo-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status %v", desc.WorkflowExecutionInfo.Status)
	}
}

func TestFileServerKeepsWorkflowsAndServesUI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "temporal.db")
	cfg := temporaldev.Config{DatabaseFile: db, UIAddress: "127.0.0.1:0"}
	s, err := temporaldev.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runEcho(t, dial(t, s), "kept-1")

	resp, err := http.Get(s.UIURL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("UI answered %d with %.200q", resp.StatusCode, body)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// The database is in WAL mode (bytes 18 and 19 of an SQLite header are
	// 2 for WAL, 1 for the rollback journal): readers do not block the
	// writer, and a commit costs one append instead of a journal round.
	header := make([]byte, 20)
	f, err := os.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadFull(f, header)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if header[18] != 2 || header[19] != 2 {
		t.Fatalf("temporal.db is not in WAL mode: header bytes 18-19 are %d %d", header[18], header[19])
	}

	s2, err := temporaldev.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Stop() })
	desc, err := dial(t, s2).DescribeWorkflowExecution(context.Background(), "kept-1", "")
	if err != nil {
		t.Fatalf("workflow from the first run is gone: %v", err)
	}
	if desc.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status %v", desc.WorkflowExecutionInfo.Status)
	}
}
