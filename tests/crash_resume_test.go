package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// TestLoadSIGKILLedAndResumedCachesEveryFile kills the whole `ferry dev`
// (SIGKILL to its process group) while it loads a tree of small files,
// starts it again on the same data directory, and requires the job that
// resumes to end SUCCEEDED with every file of the tree cached whole on a
// node: a file a batch reported done before the kill must be in that
// node's index after it ("what done means"). It kills twice by default:
// kill k once k/(2·kills+1) of the files are processed, so that the job
// ends after a stretch without kills; FERRY_CRASH_KILLS and
// FERRY_CRASH_FILES make a heavier run (more kills, more files).
func TestLoadSIGKILLedAndResumedCachesEveryFile(t *testing.T) {
	if testing.Short() {
		t.Skip("kill and restart in -short mode")
	}
	files, kills := 20_000, 2
	for _, v := range []struct {
		env string
		n   *int
	}{{"FERRY_CRASH_FILES", &files}, {"FERRY_CRASH_KILLS", &kills}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", v.env, s)
			}
			*v.n = n
		}
	}
	const size = 1024
	dataDir := t.TempDir()
	src := t.TempDir()
	writeSmallFiles(t, src, files, size)
	path := "file://" + src
	key := map[string]any{"path": path}

	p, c := startFullDev(t, dataDir)
	if code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", key); code != http.StatusOK {
		t.Fatalf("submit: %d %v", code, resp)
	}
	// Each kill comes once a further share of the files is processed, so
	// that every kill cuts batches that have reported progress.
	step := float64(files) / float64(2*kills+1)
	var at []float64
	for k := 1; k <= kills; k++ {
		var processed float64
		ended := false
		ferrytest.Eventually(t, 3*time.Minute, func() error {
			rep, err := tryProgressJSON(t, c, "load", key)
			if err != nil {
				return err
			}
			processed, _ = rep["mProcessedInodesCount"].(float64)
			if rep["mJobState"] != "RUNNING" {
				ended = true
				return nil
			}
			if processed < float64(k)*step {
				return fmt.Errorf("%v of %d files processed, waiting for %.0f", processed, files, float64(k)*step)
			}
			return nil
		})
		if ended {
			break
		}
		p.Kill()
		at = append(at, processed)
		p, c = startFullDev(t, dataDir)
	}
	if len(at) == 0 {
		t.Fatal("the load ended before the first kill: the test shows nothing")
	}
	rep := waitJobState(t, c, "load", key, 5*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(files) || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("after %d kills: %v", len(at), rep)
	}

	// Every file is cached whole on some node, as the index read after the
	// restarts says (the nodes' file status, no read-through).
	cached := map[string]bool{}
	for d := 0; d < min(files, 100); d++ {
		dir := fmt.Sprintf("%s/d%03d", path, d)
		for _, node := range c.nodes {
			for _, fi := range listCachedFiles(t, node, dir) {
				if fi.Percent == 100 {
					cached[fi.UfsPath] = true
				}
			}
		}
	}
	var missing []string
	for i := 0; i < files; i++ {
		uri := fmt.Sprintf("%s/d%03d/f%06d", path, i%100, i)
		if !cached[uri] {
			missing = append(missing, filepath.Base(uri))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("the job SUCCEEDED after kills at %v processed files, but %d of its %d files are not cached: %.20v",
			at, len(missing), files, missing)
	}
	t.Logf("%d files loaded and cached whole across %d kills (at %v processed files)", files, len(at), at)
}

// cachedInfo is what a node's file status says of one file.
type cachedInfo struct {
	UfsPath string `json:"mUfsPath"`
	Percent int    `json:"mInAlluxioPercentage"`
}

// listCachedFiles asks node for the file status of dir's children.
func listCachedFiles(t *testing.T, node, dir string) []cachedInfo {
	t.Helper()
	resp, err := http.Get(node + "/v1/files?path=" + url.QueryEscape(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []cachedInfo
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/files of %s on %s: %d", dir, node, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("/v1/files of %s on %s: %v", dir, node, err)
	}
	return out
}
