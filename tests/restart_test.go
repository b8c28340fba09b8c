package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// TestDevComesBackAfterRepeatedSIGKILL kills `ferry dev` with SIGKILL at
// random points, 20 times in a row on the same data directory, and after
// every kill restarts it and requires it to come back and serve a load job
// to SUCCEEDED. The kill points (drawn from a logged seed; set
// FERRY_RESTART_SEED to replay a run, FERRY_RESTART_KILLS to change the
// count) are:
//
//   - idle: after the previous restart served its job;
//   - mid-job: while a second load job is running, once it has processed a
//     random number of files; a `ferry job … --progress --watch` started
//     while Ferry is down must ride out the restart and follow that job to
//     SUCCEEDED;
//   - start-up: a further start killed after a random number of its
//     start-up log lines, before or after it is ready.
//
// Every start must be ready within its deadline, whatever state the last
// kill left: that is what failed before (a membership registry whose task
// was "in failed state", a stream reset while Temporal warmed up).
func TestDevComesBackAfterRepeatedSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("repeated restarts in -short mode")
	}
	kills := 20
	if v, err := strconv.Atoi(os.Getenv("FERRY_RESTART_KILLS")); err == nil && v > 0 {
		kills = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("FERRY_RESTART_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("kill points drawn from seed %d (FERRY_RESTART_SEED=%d replays them)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dataDir := t.TempDir()
	src := t.TempDir()
	// The API keeps one port across restarts, so that a watch started while
	// Ferry is down finds it again.
	apiAddr := freeAddr(t)
	api := "http://" + apiAddr
	c := cluster{api: api}
	args := []string{"dev", "--data-dir", dataDir, "--nodes", "2",
		"--temporal-listen", "127.0.0.1:0", "--ui-listen", "", "--metrics-listen", "",
		"--api-listen", apiAddr, "--node-http-port", "0", "--node-grpc-port", "0",
		"--startup-timeout", "90s"}

	start := func() *ferrytest.Proc {
		t.Helper()
		return ferrytest.Start(t, args...)
	}
	ready := func(p *ferrytest.Proc, what string) {
		t.Helper()
		began := time.Now()
		p.WaitFor(readyLine, 120*time.Second)
		t.Logf("%s: ready in %v", what, time.Since(began).Round(time.Millisecond))
	}
	// serve submits a small load job and waits until it SUCCEEDED.
	serve := func(name string, files int) {
		t.Helper()
		dir := writeSmallTree(t, filepath.Join(src, name), files)
		key := map[string]any{"path": "file://" + dir}
		submitJob(t, c, "file://"+dir)
		rep := waitJobState(t, c, "load", key, 3*time.Minute, "SUCCEEDED", "FAILED")
		if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(files) {
			t.Fatalf("%s: %v", name, rep)
		}
	}

	began := time.Now()
	p := start()
	ready(p, "first start")
	serve("first", 10)

	var watches []*ferrytest.Proc
	var victims []string
	counts := map[string]int{}
	for i := 1; i <= kills; i++ {
		point := []string{"idle", "mid-job", "start-up"}[rng.IntN(3)]
		counts[point]++
		switch point {
		case "idle":
			p.Kill()
		case "mid-job":
			const victimFiles = 60
			dir := writeSmallTree(t, filepath.Join(src, fmt.Sprintf("victim-%02d", i)), victimFiles)
			victims = append(victims, "file://"+dir)
			submitJob(t, c, "file://"+dir)
			at := rng.IntN(victimFiles)
			ferrytest.Eventually(t, 2*time.Minute, func() error {
				rep, err := tryProgressJSON(t, c, "load", map[string]any{"path": "file://" + dir})
				if err != nil {
					return err
				}
				if n, _ := rep["mProcessedInodesCount"].(float64); int(n) < at && rep["mJobState"] == "RUNNING" {
					return fmt.Errorf("%v of %d files processed", n, at)
				}
				return nil
			})
			p.Kill()
			// Ferry is down: a watch started now must wait for it.
			watches = append(watches, ferrytest.Start(t, "job", "load", "--api", api, "--path", "file://"+dir,
				"--progress", "--watch", "--api-wait", "3m"))
			t.Logf("kill %d: mid-job, after %d of %d files", i, at, victimFiles)
		case "start-up":
			p.Kill()
			p = start()
			lines := rng.IntN(12)
			p.WaitFor(regexp.MustCompile(fmt.Sprintf(`(?s)^([^\n]*\n){%d}|Press Ctrl-C to stop`, lines)), 120*time.Second)
			p.Kill()
			t.Logf("kill %d: start-up, after %d output lines", i, lines)
		}
		p = start()
		ready(p, fmt.Sprintf("restart %d (after kill point %s)", i, point))
		serve(fmt.Sprintf("served-%02d", i), 10)
	}
	// Every job cut off by a kill finished after a restart, and every
	// watch started while Ferry was down followed its job to the end.
	for _, v := range victims {
		rep := waitJobState(t, c, "load", map[string]any{"path": v}, 2*time.Minute, "SUCCEEDED", "FAILED")
		if rep["mJobState"] != "SUCCEEDED" {
			t.Errorf("job %s after the restarts: %v", v, rep)
		}
	}
	for _, w := range watches {
		if err := w.Wait(2 * time.Minute); err != nil {
			t.Errorf("a watch across a restart exited with %v:\n%s", err, w.Output())
		} else if !regexp.MustCompile(`\tJob State: SUCCEEDED\n`).MatchString(w.Output()) {
			t.Errorf("a watch across a restart ended without the final report:\n%s", w.Output())
		}
	}
	p.Kill()
	t.Logf("%d kills (%v) and restarts in %v", kills, counts, time.Since(began).Round(time.Second))
}

// freeAddr is a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeSmallTree writes n files of a few KiB under dir and returns dir.
func writeSmallTree(t *testing.T, dir string, n int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		data := make([]byte, 1024+i)
		for j := range data {
			data[j] = byte(i + j)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// submitJob submits a load of path with small batches, retrying while the
// API or Temporal is not answering yet (a fresh restart).
func submitJob(t *testing.T, c cluster, path string) {
	t.Helper()
	ferrytest.Eventually(t, time.Minute, func() error {
		code, resp := callErr(c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path, "options": map[string]any{"batchSize": "10"}})
		if code != http.StatusOK {
			return fmt.Errorf("submit %s: %d %v", path, code, resp)
		}
		return nil
	})
}

// callErr posts body as JSON to u and decodes the answer; a request that
// gets no answer is status 0 with the error in "err".
func callErr(u string, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, map[string]any{"err": err.Error()}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}
