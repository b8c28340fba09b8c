package cachenode_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/cachenode/internal/testtemporal"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

func startTemporal(t *testing.T) client.Client {
	c, _ := testtemporal.Start(t)
	return c
}

// source is a directory of files behind a counting file:// store.
type source struct {
	dir      string
	counting *testsource.Counting
	resolver *storage.Resolver
}

func newSource(t *testing.T) *source {
	t.Helper()
	dir := t.TempDir()
	l, err := local.New(local.Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := testsource.NewCounting(l)
	return &source{dir: dir, counting: c, resolver: storage.NewResolver(c)}
}

func (s *source) write(t *testing.T, name string, n int, seed uint64) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(s.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + p, data
}

var tel *telemetry.Telemetry

func TestMain(m *testing.M) {
	var err error
	if tel, err = telemetry.Setup(context.Background(), "cachenode-test"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// fast membership timing keeps the tests short; the stated bound with the
// defaults is measured by the process test in package e2e.
var (
	fastJoin = membership.JoinOptions{HeartbeatInterval: 300 * time.Millisecond, ExpireAfter: 1500 * time.Millisecond}
	fastView = membership.ViewOptions{RefreshInterval: 200 * time.Millisecond}
)

func startNode(t *testing.T, c client.Client, src *source, id, dataDir string, capacity int64) *cachenode.Node {
	t.Helper()
	n, err := cachenode.New(cachenode.Config{
		ID:            id,
		DataDir:       dataDir,
		HTTPAddr:      "127.0.0.1:0",
		GRPCAddr:      "127.0.0.1:0",
		AdvertiseHost: "127.0.0.1",
		IdentityName:  id, // the nodes share a host
		Capacity:      capacity,
		PageSize:      64 << 10,
		Resolver:      src.resolver,
		Temporal:      c,
		Telemetry:     tel,
		Join:          fastJoin,
		View:          fastView,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return n
}

func fileID(uri string) string {
	sum := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(sum[:])
}

func get(t *testing.T, base, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustGet(t *testing.T, base, path string) []byte {
	t.Helper()
	code, b := get(t, base, path)
	if code != 200 {
		t.Fatalf("GET %s%s: %d %s", base, path, code, b)
	}
	return b
}

type cluster struct {
	Nodes []struct {
		ID       string `json:"id"`
		HTTPPort int    `json:"httpPort"`
	}
}

func ringSize(t *testing.T, base string) int {
	code, b := get(t, base, "/v1/cluster")
	if code != 200 {
		return -1
	}
	var c cluster
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return len(c.Nodes)
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("%s: not within %s", what, within)
		case <-tick.C:
		}
	}
	return time.Since(start)
}

// owner asks a node which node owns uri and returns its host:port.
func owner(t *testing.T, base, uri string) string {
	t.Helper()
	var o struct {
		Host           string
		HTTPServerPort int `json:"HttpServerPort"`
	}
	if err := json.Unmarshal(mustGet(t, base, "/v1/node?path="+url.PathEscape(uri)), &o); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s:%d", o.Host, o.HTTPServerPort)
}

func TestThreeNodesServeFilesFromTheirOwner(t *testing.T) {
	c := startTemporal(t)
	src := newSource(t)
	nodes := map[string]*cachenode.Node{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node-%d", i)
		nodes[id] = startNode(t, c, src, id, t.TempDir(), 64<<20)
	}
	byAddr := map[string]*cachenode.Node{}
	for _, n := range nodes {
		byAddr[n.HTTPAddr()] = n
		waitFor(t, 20*time.Second, n.HTTPAddr()+" sees 3 nodes", func() bool { return ringSize(t, n.HTTPAddr()) == 3 })
	}
	entry := nodes["node-1"].HTTPAddr()

	type file struct {
		uri  string
		data []byte
	}
	var files []file
	for i, size := range []int{0, 1, 64<<10 - 1, 64 << 10, 200 << 10, 1<<20 + 7} {
		uri, data := src.write(t, fmt.Sprintf("dir/file-%d.bin", i), size, uint64(i))
		files = append(files, file{uri, data})
	}

	// Listing and info answer from any node.
	var listing []map[string]any
	if err := json.Unmarshal(mustGet(t, entry, "/v1/files?path="+url.QueryEscape("file://"+src.dir+"/dir")), &listing); err != nil || len(listing) != len(files) {
		t.Fatalf("listing: %v %v", listing, err)
	}

	owners := map[string]bool{}
	for _, f := range files {
		addr := owner(t, entry, f.uri)
		n, ok := byAddr[addr]
		if !ok {
			t.Fatalf("%s: owner %s is not a node", f.uri, addr)
		}
		owners[addr] = true
		for _, other := range nodes {
			if got := owner(t, other.HTTPAddr(), f.uri); got != addr {
				t.Fatalf("%s: nodes disagree on the owner (%s vs %s)", f.uri, got, addr)
			}
		}
		id, q := fileID(f.uri), "?ufsFullPath="+f.uri
		var info []map[string]any
		if err := json.Unmarshal(mustGet(t, addr, "/v1/info?path="+url.QueryEscape(f.uri)), &info); err != nil || info[0]["mLength"] != float64(len(f.data)) {
			t.Fatalf("info %v %v", info, err)
		}
		if got := mustGet(t, addr, "/v1/chunk/"+id+q); !bytes.Equal(got, f.data) {
			t.Fatalf("%s: chunk differs", f.uri)
		}
		opens := src.counting.Opens()
		hits := n.PageStore().Stats().Hits
		ps := 64 << 10
		if len(f.data) > 0 {
			last := (len(f.data) - 1) / ps
			if got := mustGet(t, addr, fmt.Sprintf("/v1/file/%s/page/%d%s", id, last, q)); !bytes.Equal(got, f.data[last*ps:]) {
				t.Fatalf("%s: last page differs", f.uri)
			}
			off, length := len(f.data)/3, len(f.data)/2
			if got := mustGet(t, addr, fmt.Sprintf("/v1/range/%s%s&offset=%d&length=%d", id, q, off, length)); !bytes.Equal(got, f.data[off:off+length]) {
				t.Fatalf("%s: range differs", f.uri)
			}
			if src.counting.Opens() != opens {
				t.Fatalf("%s: a cached read reached the source", f.uri)
			}
			if n.PageStore().Stats().Hits <= hits {
				t.Fatalf("%s: hit counter did not rise", f.uri)
			}
		}
	}
	for i := range 60 {
		owners[owner(t, entry, fmt.Sprintf("s3://bucket/object-%d", i))] = true
	}
	if len(owners) < 3 {
		t.Errorf("60 paths spread over %d of 3 nodes", len(owners))
	}

	// The source changes: the owner serves the new bytes.
	f := files[4]
	neu := bytes.Repeat([]byte("changed!"), 3000)
	p := strings.TrimPrefix(f.uri, "file://")
	if err := os.WriteFile(p, neu, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	_ = os.Chtimes(p, later, later)
	if got := mustGet(t, owner(t, entry, f.uri), "/v1/chunk/"+fileID(f.uri)+"?ufsFullPath="+f.uri); !bytes.Equal(got, neu) {
		t.Fatal("stale bytes served after the source changed")
	}

	// Metrics of the node.
	m := string(mustGet(t, entry, "/metrics"))
	for _, want := range []string{"ferry_cache_hits_total{", "ferry_cache_capacity_used_bytes{", "ferry_http_server_call_latency_ms_bucket{", "ferry_http_server_result_total{"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestCapacityIsRespectedThroughTheAPI(t *testing.T) {
	src := newSource(t)
	const capacity = 4 * 64 << 10 // four pages
	n, err := cachenode.New(cachenode.Config{
		ID: "solo", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Capacity: capacity, PageSize: 64 << 10, Resolver: src.resolver, Telemetry: tel,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	var uris []string
	var datas [][]byte
	for i := range 6 {
		uri, data := src.write(t, fmt.Sprintf("f%d", i), 3*64<<10+100, uint64(i))
		uris, datas = append(uris, uri), append(datas, data)
	}
	for round := range 2 {
		for i, uri := range uris {
			got := mustGet(t, n.HTTPAddr(), "/v1/chunk/"+fileID(uri)+"?ufsFullPath="+uri)
			if !bytes.Equal(got, datas[i]) {
				t.Fatalf("round %d file %d: wrong bytes", round, i)
			}
			if used := n.PageStore().Stats().UsedBytes; used > capacity {
				t.Fatalf("used %d over capacity %d", used, capacity)
			}
		}
	}
	if st := n.PageStore().Stats(); st.PagesEvicted == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
	// Without Temporal the ring is the node alone.
	if got := owner(t, n.HTTPAddr(), "s3://b/k"); got != n.HTTPAddr() {
		t.Fatalf("owner %s, want %s", got, n.HTTPAddr())
	}
}

func TestNodeStoppedWithoutLeavingDropsOffAndRejoins(t *testing.T) {
	c := startTemporal(t)
	src := newSource(t)
	dirs := map[string]string{}
	nodes := map[string]*cachenode.Node{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node-%d", i)
		dirs[id] = t.TempDir()
		nodes[id] = startNode(t, c, src, id, dirs[id], 16<<20)
	}
	survivor := nodes["node-1"].HTTPAddr()
	waitFor(t, 20*time.Second, "3 nodes", func() bool { return ringSize(t, survivor) == 3 })
	identity := nodes["node-3"].Member().Identity

	if err := nodes["node-3"].StopWithoutLeaving(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 15*time.Second, "ring of 2", func() bool { return ringSize(t, survivor) == 2 })
	t.Logf("a node stopped without leaving left the ring after %s (expiry %s, refresh %s)", took, fastJoin.ExpireAfter, fastView.RefreshInterval)
	dead := nodes["node-3"].HTTPAddr()
	for i := range 50 {
		if o := owner(t, survivor, fmt.Sprintf("s3://bucket/key-%d", i)); o == dead {
			t.Fatalf("path still owned by the dead node")
		}
	}

	// It comes back with the same id and data directory: same identity, and
	// its cache survived.
	back := startNode(t, c, src, "node-3", dirs["node-3"], 16<<20)
	waitFor(t, 20*time.Second, "ring of 3 again", func() bool { return ringSize(t, survivor) == 3 })
	if back.Member().Identity != identity {
		t.Fatalf("rejoined with identity %s, was %s", back.Member().Identity, identity)
	}

	// A clean stop leaves at once.
	if err := nodes["node-2"].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "clean leave", func() bool { return ringSize(t, survivor) == 2 })
}

func TestNodeWorkerRunsOnItsOwnQueue(t *testing.T) {
	c := startTemporal(t)
	src := newSource(t)
	pong := func(ctx workflow.Context, s string) (string, error) { return "pong " + s, nil }
	n, err := cachenode.New(cachenode.Config{
		ID: "node-w", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Capacity: 1 << 20, Resolver: src.resolver, Temporal: c, Telemetry: tel, Join: fastJoin, View: fastView,
		RegisterNodeWorker: func(r worker.Registry) {
			r.RegisterWorkflowWithOptions(pong, workflow.RegisterOptions{Name: "pong"})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	if n.TaskQueue() != "ferry-node-node-w" || n.Member().Host != "127.0.0.1" {
		t.Fatalf("queue %s member %+v", n.TaskQueue(), n.Member())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: n.TaskQueue()}, "pong", "x")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil || out != "pong x" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := cachenode.Config{ID: "bad id!", HTTPAddr: "nope", RegisterNodeWorker: func(worker.Registry) {}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"node id", "data directory", "HTTP address", "capacity", "resolver", "Temporal"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}
