package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
)

var (
	apiLine  = regexp.MustCompile(`REST API\s+http://(\S+)`)
	nodeLine = regexp.MustCompile(`Cache node (\S+)\s+http://(\S+)`)
)

// cluster is a running Ferry seen from outside: its REST API and its
// cache nodes' HTTP APIs.
type cluster struct {
	api   string            // http://host:port
	nodes map[string]string // node id → http://host:port
	// frontend is the Temporal frontend (host:port) of a ferry dev.
	frontend string
}

// startFullDev runs `ferry dev` with every part on free ports.
func startFullDev(t *testing.T, dataDir string, extra ...string) (*ferrytest.Proc, cluster) {
	t.Helper()
	return startFullDevEnv(t, nil, dataDir, extra...)
}

// startFullDevEnv is startFullDev with extra environment variables.
func startFullDevEnv(t *testing.T, env []string, dataDir string, extra ...string) (*ferrytest.Proc, cluster) {
	t.Helper()
	p, frontend, _ := startDevEnv(t, env, dataDir, extra...)
	out := p.Output()
	c := cluster{api: "http://" + apiLine.FindStringSubmatch(out)[1], nodes: map[string]string{}, frontend: frontend}
	for _, m := range nodeLine.FindAllStringSubmatch(out, -1) {
		c.nodes[m[1]] = "http://" + m[2]
	}
	return p, c
}

func anyNode(c cluster) string {
	for _, u := range c.nodes {
		return u
	}
	return ""
}

// call sends a request with an optional JSON body and decodes a JSON answer.
func call(t *testing.T, method, u string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// progressJSON returns the JSON progress report of a job (coordinator route).
func progressJSON(t *testing.T, c cluster, typ string, key map[string]any) map[string]any {
	t.Helper()
	rep, err := tryProgressJSON(t, c, typ, key)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// tryProgressJSON is progressJSON returning an error instead, for waits: a
// coordinator that has just started may not answer the query in time (503).
func tryProgressJSON(t *testing.T, c cluster, typ string, key map[string]any) (map[string]any, error) {
	t.Helper()
	body := map[string]any{"format": "JSON"}
	for k, v := range key {
		body[k] = v
	}
	code, resp := call(t, "POST", c.api+"/api/v1/master/progress_job/"+typ, body)
	if code != http.StatusOK {
		return nil, fmt.Errorf("progress: %d %v", code, resp)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(resp["message"].(string)), &rep); err != nil {
		t.Fatalf("JSON report does not parse: %v: %v", err, resp["message"])
	}
	return rep, nil
}

// waitJobState polls the job until its mJobState is one of states.
func waitJobState(t *testing.T, c cluster, typ string, key map[string]any, timeout time.Duration, states ...string) map[string]any {
	t.Helper()
	var rep map[string]any
	ferrytest.Eventually(t, timeout, func() error {
		var err error
		if rep, err = tryProgressJSON(t, c, typ, key); err != nil {
			return err
		}
		for _, s := range states {
			if rep["mJobState"] == s {
				return nil
			}
		}
		return fmt.Errorf("job state %v, processed %v", rep["mJobState"], rep["mProcessedInodesCount"])
	})
	return rep
}

func fileID(uri string) string {
	s := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(s[:])
}

// ownerOf asks a node which node owns uri.
func ownerOf(t *testing.T, node, uri string) string {
	t.Helper()
	code, resp := call(t, "GET", node+"/v1/node?path="+url.PathEscape(uri), nil)
	if code != http.StatusOK {
		t.Fatalf("/v1/node for %s: %d %v", uri, code, resp)
	}
	return fmt.Sprintf("http://%s:%v", resp["Host"], resp["HttpServerPort"])
}

// cachedPage reads page n of uri from node without read-through (no
// ufsFullPath): a miss is an error status, never bytes from the source.
func cachedPage(node, uri string, n int64) (int, []byte, error) {
	resp, err := http.Get(fmt.Sprintf("%s/v1/file/%s/page/%d", node, fileID(uri), n))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// metricSum adds the values of every sample of a Prometheus metric.
func metricSum(t *testing.T, node, name string) float64 {
	t.Helper()
	resp, err := http.Get(node + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			fields := strings.Fields(line)
			fmt.Sscan(fields[len(fields)-1], &v)
			sum += v
		}
	}
	return sum
}
