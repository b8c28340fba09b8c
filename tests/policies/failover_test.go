package policytest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/policies"
)

// TestPolicyRunSurvivesCoordinatorKill runs Ferry as separate processes
// (temporal-dev, a cache node, a coordinator, the API), SIGKILLs the
// coordinator while a policy run's job is in flight, starts another one, and
// checks that the run finishes with exact counters and that the next
// scheduled run still happens.
func TestPolicyRunSurvivesCoordinatorKill(t *testing.T) {
	if testing.Short() {
		t.Skip("failover in -short mode")
	}
	t.Parallel()
	dataDir := t.TempDir()
	tp := ferrytest.Start(t, "temporal-dev", "--memory", "--listen", "127.0.0.1:0", "--ui-listen", "")
	temporal := tp.WaitFor(frontendLine, 2*time.Minute)[1]
	node := ferrytest.Start(t, "cachenode", "--id", "node-1", "--data-dir", filepath.Join(dataDir, "node-1"),
		"--identity-name", "node-1", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--temporal-address", temporal)
	node.WaitFor(regexp.MustCompile(`Cache node node-1\s+http://`), time.Minute)
	startWorker := func() *ferrytest.Proc {
		w := ferrytest.Start(t, "worker", "--temporal-address", temporal, "--data-dir", dataDir)
		w.WaitFor(runningLine, time.Minute)
		return w
	}
	worker := startWorker()
	ap := ferrytest.Start(t, "api", "--listen", "127.0.0.1:0", "--temporal-address", temporal)
	e := env{t: t, api: "http://" + ap.WaitFor(apiLine, time.Minute)[1], temporal: temporal}

	root := t.TempDir()
	src, dst := filepath.Join(root, "hot"), filepath.Join(root, "cold")
	old := time.Now().Add(-2 * time.Hour)
	files := []file{{"big.bin", 8 << 20, old}, {"a.txt", 10, old}, {"b/c.txt", 20, old}}
	// A young file stays, so that the filter always has something to
	// leave behind and every run lists the same source.
	young := file{"young.txt", 5, time.Now()}
	writeFiles(t, src, append(files, young)...)
	// 1 MB/s for the whole job: the run's job takes about 8 s.
	doc := fmt.Sprintf("name: failover\nschedule: {every: 10s}\naction: move\nsrc: file://%s\ndst: file://%s\nfilter: {olderThan: 1h}\noptions: {bandwidth: 1MB, batchSize: 1}\n", src, dst)
	e.cliOK("policy", "add", "-f", policyYAML(t, doc))

	var inFlight policies.Run
	ferrytest.Eventually(t, 2*time.Minute, func() error {
		in, err := e.describe("failover")
		if err != nil {
			return err
		}
		for _, r := range in.RecentRuns {
			if r.Status == "RUNNING" && r.JobState == "RUNNING" {
				inFlight = r
				return nil
			}
		}
		return fmt.Errorf("no run in flight: %+v", in.RecentRuns)
	})
	worker.Kill()
	startWorker()

	r := e.waitRun("failover", 2*time.Minute, "the run in flight", func(r policies.Run) bool { return r.WorkflowID == inFlight.WorkflowID })
	if r.JobState != "SUCCEEDED" || r.Qualified != 3 || r.Succeeded != 3 || r.Failed != 0 || r.Skipped != 0 || r.BytesDone != bytesOf(files...) {
		t.Fatalf("run after the coordinator was killed: %+v", r)
	}
	expectIn(t, src, dst, "dst", files...)
	expectIn(t, src, dst, "src", young)
	next := e.waitRun("failover", time.Minute, "the next scheduled run", func(x policies.Run) bool { return x.ScheduledTime.After(r.ScheduledTime) })
	if next.JobState != "SUCCEEDED" || next.Qualified != 0 {
		t.Fatalf("next run %+v", next)
	}
}
