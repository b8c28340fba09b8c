package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/workflows"
)

// procCluster is Ferry as separate processes, the way production runs it.
type procCluster struct {
	t        *testing.T
	temporal string
	dataDir  string
	api      string
	nodes    map[string]*ferrytest.Proc
	nodeURL  map[string]string
	worker   *ferrytest.Proc
}

var runningLine = regexp.MustCompile(`is running`)

func startProcCluster(t *testing.T, nodes int) *procCluster {
	t.Helper()
	c := &procCluster{t: t, dataDir: t.TempDir(), nodes: map[string]*ferrytest.Proc{}, nodeURL: map[string]string{}}
	tp := ferrytest.Start(t, "temporal-dev", "--memory", "--listen", "127.0.0.1:0", "--ui-listen", "")
	c.temporal = tp.WaitFor(frontendLine, 60*time.Second)[1]
	for i := 1; i <= nodes; i++ {
		c.startNode(fmt.Sprintf("node-%d", i))
	}
	c.startWorker()
	ap := ferrytest.Start(t, "api", "--listen", "127.0.0.1:0", "--temporal-address", c.temporal)
	c.api = "http://" + ap.WaitFor(apiLine, 60*time.Second)[1]
	return c
}

func (c *procCluster) startNode(id string) {
	p := ferrytest.Start(c.t, "cachenode", "--id", id, "--data-dir", filepath.Join(c.dataDir, id),
		"--identity-name", id, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--capacity", "4GiB", "--temporal-address", c.temporal,
		"--manifest-store", c.manifestStore())
	m := p.WaitFor(regexp.MustCompile(`Cache node `+id+`\s+http://(\S+)`), 60*time.Second)
	c.nodes[id] = p
	c.nodeURL[id] = "http://" + m[1]
}

// manifestStore is the manifest store every process of the cluster shares.
func (c *procCluster) manifestStore() string {
	return "file://" + filepath.Join(c.dataDir, "manifests")
}

func (c *procCluster) startWorker() {
	c.worker = ferrytest.Start(c.t, "worker", "--temporal-address", c.temporal, "--data-dir", c.dataDir, "--manifest-store", c.manifestStore())
	c.worker.WaitFor(runningLine, 60*time.Second)
}

func (c *procCluster) view() cluster {
	return cluster{api: c.api, nodes: c.nodeURL}
}

func writeSmallFiles(t *testing.T, dir string, n, size int) {
	t.Helper()
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%06d", i))
		if i < 100 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		buf[0] = byte(i)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func waitProcessed(t *testing.T, c cluster, path string, atLeast float64) {
	t.Helper()
	ferrytest.Eventually(t, 2*time.Minute, func() error {
		rep, err := tryProgressJSON(t, c, "load", map[string]any{"path": path})
		if err != nil {
			return err
		}
		if n, _ := rep["mProcessedInodesCount"].(float64); n < atLeast {
			return fmt.Errorf("processed %v", rep["mProcessedInodesCount"])
		}
		return nil
	})
}

func TestCoordinatorKilledMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("failover in -short mode")
	}
	const files = 20_000
	pc := startProcCluster(t, 3)
	c := pc.view()
	src := t.TempDir()
	writeSmallFiles(t, src, files, 1024)
	path := "file://" + src
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path})
	if code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, resp)
	}
	waitProcessed(t, c, path, 2000)
	before := progressJSON(t, c, "load", map[string]any{"path": path})
	pc.worker.Kill() // SIGKILL mid-job
	if n := before["mProcessedInodesCount"].(float64); n >= files || before["mJobState"] != "RUNNING" {
		t.Fatalf("the job was not running mid-way when the coordinator was killed: %v", before)
	}
	// Without a coordinator nobody can answer the progress query: an honest
	// 503, not a guess.
	if code, resp := call(t, "POST", c.api+"/api/v1/master/progress_job/load", map[string]any{"path": path}); code != http.StatusServiceUnavailable {
		t.Logf("progress with no coordinator answered %d %v", code, resp)
	}
	pc.startWorker()
	rep := waitJobState(t, c, "load", map[string]any{"path": path}, 5*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(files) ||
		rep["mLoadedByteCount"] != float64(files*1024) || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("after failover: %v", rep)
	}
	t.Log(auditJob(t, pc.temporal, workflows.JobWorkflowID(workflows.JobLoad, path, ""), files))
}

func TestCacheNodeKilledMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("failover in -short mode")
	}
	const files = 3000
	pc := startProcCluster(t, 3)
	c := pc.view()
	src := t.TempDir()
	writeSmallFiles(t, src, files, 2048)
	path := "file://" + src
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path, "options": map[string]any{"batchSize": "20"}})
	if code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, resp)
	}
	waitProcessed(t, c, path, 300)
	pc.nodes["node-2"].Kill()
	delete(pc.nodeURL, "node-2")
	rep := waitJobState(t, c, "load", map[string]any{"path": path}, 5*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(files) || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("after losing a node: %v", rep)
	}
	// Every file is cached on its current owner, which is a live node.
	node := pc.nodeURL["node-1"]
	live := map[string]bool{pc.nodeURL["node-1"]: true, pc.nodeURL["node-3"]: true}
	ferrytest.Eventually(t, 30*time.Second, func() error {
		if o := ownerOf(t, node, path+"/d000/f000000"); !live[o] {
			return fmt.Errorf("ring still names %s", o)
		}
		return nil
	})
	missing := 0
	err := filepathWalkFiles(strings.TrimPrefix(path, "file://"), func(p string) {
		uri := "file://" + p
		owner := ownerOf(t, node, uri)
		if !live[owner] {
			t.Fatalf("%s is owned by %s, which is not a live node", uri, owner)
		}
		if code, _, err := cachedPage(owner, uri, 0); err != nil || code != http.StatusOK {
			missing++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if missing > 0 {
		t.Fatalf("%d of %d files are not cached on their current owner", missing, files)
	}
	b, _ := json.Marshal(rep)
	t.Logf("final report: %s", b)
}

func filepathWalkFiles(root string, fn func(string)) error {
	return filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			fn(p)
		}
		return err
	})
}

// TestMoveSurvivesCoordinatorAndNodeKill kills the coordinator and one cache
// node in the middle of a move of 20,000 files, restarts both, and checks
// that no file was lost: each one exists, byte for byte, at the source or
// the destination (or both, reported as failed).
func TestMoveSurvivesCoordinatorAndNodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("failover in -short mode")
	}
	const files = 20_000
	pc := startProcCluster(t, 3)
	c := pc.view()
	src := t.TempDir()
	dst := filepath.Join(t.TempDir(), "moved")
	writeSmallFiles(t, src, files, 512)
	key := map[string]any{"src": "file://" + src, "dst": "file://" + dst}
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/move", map[string]any{"src": key["src"], "dst": key["dst"]})
	if code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, resp)
	}
	ferrytest.Eventually(t, 2*time.Minute, func() error {
		rep, err := tryProgressJSON(t, c, "move", key)
		if err != nil {
			return err
		}
		if n, _ := rep["mSuccessFileCount"].(float64); n < 2000 {
			return fmt.Errorf("moved %v", rep["mSuccessFileCount"])
		}
		return nil
	})
	pc.worker.Kill()
	pc.nodes["node-2"].Kill()
	pc.startWorker()
	pc.startNode("node-2")
	rep := waitJobState(t, c, "move", key, 6*time.Minute, "SUCCEEDED", "FAILED")
	t.Logf("move ended %v: succeeded %v, failed %v, skipped %v", rep["mJobState"], rep["mSuccessFileCount"], rep["mFailedFileCount"], rep["mSkippedFileCount"])

	lost, both := 0, 0
	want := make([]byte, 512)
	for i := 0; i < files; i++ {
		rel := filepath.Join(fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%06d", i))
		want[0] = byte(i)
		s, serr := os.ReadFile(filepath.Join(src, rel))
		d, derr := os.ReadFile(filepath.Join(dst, rel))
		switch {
		case serr != nil && derr != nil:
			lost++
		case serr == nil && derr == nil:
			both++
		}
		if serr == nil && !bytes.Equal(s, want) || derr == nil && !bytes.Equal(d, want) {
			t.Fatalf("%s changed in the move", rel)
		}
	}
	if lost > 0 {
		t.Fatalf("%d files are in neither place", lost)
	}
	if rep["mJobState"] == "SUCCEEDED" && both > 0 {
		t.Fatalf("the move succeeded but %d files are in both places", both)
	}
	if f, _ := rep["mFailedFileCount"].(float64); float64(both) > f {
		t.Fatalf("%d files are in both places but only %v failures were reported", both, f)
	}
}
