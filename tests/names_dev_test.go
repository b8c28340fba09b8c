package tests

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// TestDevNamesAreBytes is issue 11 cases 1, 2 and 3 through `ferry dev`
// and its REST API: a job path with non-ASCII characters holding names
// with glob characters and a name with the byte 0xE9 (not UTF-8) is
// submitted and reported like any other, every file is loaded, and each
// one is read back from the cache node that owns it, by its exact name,
// without read-through.
func TestDevNamesAreBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end in -short mode")
	}
	dataDir := t.TempDir()
	_, c := startFullDev(t, dataDir)
	src := filepath.Join(t.TempDir(), "ünïcødé dir", "日本")
	files := map[string]string{
		"photo[1].jpg":      "jpeg",
		"take [2]/clip.txt": "clip",
		"star*.txt":         "star",
		"what?.txt":         "what",
		"plain.txt":         "plain",
		"caf\xe9.txt":       "latin-1",
	}
	for rel, data := range files {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := "file://" + src
	key := map[string]any{"path": path}
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path})
	if code != http.StatusOK || resp["jobId"] == nil {
		t.Fatalf("submit: %d %v", code, resp)
	}
	rep := waitJobState(t, c, "load", key, 3*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(len(files)) || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("report: %v", rep)
	}
	for rel, data := range files {
		uri := path + "/" + rel
		owner := ownerOf(t, anyNode(c), uri)
		status, got, err := cachedPage(owner, uri, 0)
		if err != nil || status != http.StatusOK || string(got) != data {
			t.Errorf("page 0 of %q on %s: %d %q %v; want %q", uri, owner, status, got, err, data)
		}
	}
	// Stop of the finished job finds it (and answers that it is not running).
	code, resp = call(t, "POST", c.api+"/api/v1/master/stop_job/load", key)
	if code >= 500 {
		t.Fatalf("stop: %d %v", code, resp)
	}

	// A job path that is not UTF-8 itself: a directory and a single file,
	// through the CLI (which sends it in the marked form of package
	// bytesjson) and through the JSON route in that form.
	latin := filepath.Join(t.TempDir(), "r\xe9pertoire \xff")
	if err := os.MkdirAll(latin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(latin, "f\xfe.txt"), []byte("latin dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(ferrytest.Binary(t), append(args, "--api", c.api)...)
		cmd.Env = append(os.Environ(), "FERRY_DATA_DIR="+dataDir)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "Job State: SUCCEEDED") {
			t.Fatalf("ferry %q: %v\n%s\n%s", args, err, out.String(), errb.String())
		}
		return out.String()
	}
	cli("job", "load", "--path", "file://"+latin, "--submit", "--watch")
	latinFile := "file://" + latin + "/f\xfe.txt"
	if status, got, err := cachedPage(ownerOf(t, anyNode(c), latinFile), latinFile, 0); err != nil || status != http.StatusOK || string(got) != "latin dir" {
		t.Errorf("page 0 of %q: %d %q %v", latinFile, status, got, err)
	}
	cli("job", "load", "--path", path+"/caf\xe9.txt", "--submit", "--watch")
	code, resp = call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": bytesjson.Encode(latinFile)})
	if code != http.StatusOK || resp["jobId"] == nil {
		t.Fatalf("submit of a marked path: %d %v", code, resp)
	}
	rep = waitJobState(t, c, "load", map[string]any{"path": bytesjson.Encode(latinFile)}, 3*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != 1.0 {
		t.Fatalf("report of the marked path's job: %v", rep)
	}
}

// TestDevReplicasCarryBytes is issue 11 case 2 on the nodes' gRPC path: a
// load with replicas=2 of a name holding the byte 0xE9 (not UTF-8) asks a
// second node, over gRPC, to load the file under exactly that name: the job
// succeeds and both owners hold the file, read back by its exact name.
func TestDevReplicasCarryBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end in -short mode")
	}
	_, c := startFullDev(t, t.TempDir(), "--nodes", "2")
	src := filepath.Join(t.TempDir(), "rep")
	files := map[string]string{"caf\xe9.txt": "latin-1", "plain.txt": "plain"}
	for rel, data := range files {
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := "file://" + src
	key := map[string]any{"path": path}
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path, "options": map[string]any{"replicas": 2}})
	if code != http.StatusOK || resp["jobId"] == nil {
		t.Fatalf("submit: %d %v", code, resp)
	}
	rep := waitJobState(t, c, "load", key, 3*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mSuccessFileCount"] != float64(len(files)) || rep["mFailedFileCount"] != 0.0 {
		t.Fatalf("report: %v", rep)
	}
	if len(c.nodes) != 2 {
		t.Fatalf("nodes: %v", c.nodes)
	}
	for rel, data := range files {
		uri := path + "/" + rel
		for id, node := range c.nodes {
			status, got, err := cachedPage(node, uri, 0)
			if err != nil || status != http.StatusOK || string(got) != data {
				t.Errorf("page 0 of %q on node %s: %d %q %v; want %q", uri, id, status, got, err, data)
			}
		}
	}
}
