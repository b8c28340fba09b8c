package httpapi_test

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
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode/httpapi"
	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

const ps = 4096

type fixture struct {
	t      *testing.T
	dir    string // the source directory (the local store's root)
	source *testsource.Counting
	store  *pagestore.Store
	api    *httpapi.Server
	srv    *httptest.Server
	tel    *telemetry.Telemetry
}

func newFixture(t *testing.T, jobAPI string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	l, err := local.New(local.Options{Root: f.dir})
	if err != nil {
		t.Fatal(err)
	}
	f.source = testsource.NewCounting(l)
	resolver := storage.NewResolver(f.source)
	f.store, err = pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: ps, Capacity: 1 << 20, Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.store.Close() })
	f.tel, err = telemetry.Setup(context.Background(), "httpapi-test")
	if err != nil {
		t.Fatal(err)
	}
	members := []ring.Member{
		{ID: "node-1", Identity: ring.IdentityFromName("127.0.0.1"), Host: "127.0.0.1", HTTPPort: 28080},
		{ID: "node-2", Identity: ring.IdentityFromName("127.0.0.2"), Host: "127.0.0.2", HTTPPort: 28080},
		{ID: "node-3", Identity: ring.IdentityFromName("127.0.0.3"), Host: "127.0.0.3", HTTPPort: 28080},
	}
	rg := ring.New(members, 0)
	f.api, err = httpapi.New(httpapi.Config{
		NodeID:    "node-1",
		Store:     f.store,
		Resolver:  resolver,
		Ring:      func(context.Context) (*ring.Ring, error) { return rg, nil },
		JobAPIURL: jobAPI,
		Metrics:   f.tel.Handler(),
		Meter:     f.tel.Meter("httpapi-test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.api)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) write(name string, n int) (string, []byte) {
	f.t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return "file://" + p, data
}

func id(uri string) string {
	sum := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(sum[:])
}

// raw pastes a URI into a query the way the Python client does: as is,
// except what its HTTP library escapes (spaces).
func raw(uri string) string { return strings.ReplaceAll(uri, " ", "%20") }

func (f *fixture) do(method, path string, body []byte) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

func (f *fixture) get(path string) []byte {
	f.t.Helper()
	code, b := f.do("GET", path, nil)
	if code != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return b
}

func TestReadsReturnTheFilesBytes(t *testing.T) {
	f := newFixture(t, "")
	uri, data := f.write("data/part 1+2.bin", 2*ps+123)
	f.write("data/small.txt", 10)
	if err := os.MkdirAll(filepath.Join(f.dir, "data/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	fid := id(uri)
	q := "?ufsFullPath=" + raw(uri)

	// Listing and info (path= is encoded normally).
	var infos []map[string]any
	if err := json.Unmarshal(f.get("/v1/files?path="+url.QueryEscape("file://"+f.dir+"/data")), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Fatalf("listing has %d entries: %v", len(infos), infos)
	}
	byName := map[string]map[string]any{}
	for _, in := range infos {
		byName[in["mName"].(string)] = in
		for _, k := range []string{"mType", "mName", "mPath", "mUfsPath", "mLastModificationTimeMs", "mLength", "mHumanReadableFileSize", "mContentHash", "mInAlluxioPercentage"} {
			if _, ok := in[k]; !ok {
				t.Errorf("file info lacks %s: %v", k, in)
			}
		}
	}
	if in := byName["part 1+2.bin"]; in["mType"] != "file" || in["mLength"] != float64(len(data)) || in["mUfsPath"] != uri ||
		in["mPath"] != f.dir+"/data/part 1+2.bin" || in["mHumanReadableFileSize"] != "8.12KB" {
		t.Errorf("file info %v", in)
	}
	if in := byName["sub"]; in["mType"] != "directory" || in["mLength"] != float64(0) {
		t.Errorf("directory info %v", in)
	}
	var one []map[string]any
	if err := json.Unmarshal(f.get("/v1/info?path="+url.QueryEscape(uri)), &one); err != nil || len(one) != 1 || one[0]["mName"] != "part 1+2.bin" {
		t.Fatalf("info %v %v", one, err)
	}
	if one[0]["mInAlluxioPercentage"] != float64(0) {
		t.Errorf("percentage before any read: %v", one[0]["mInAlluxioPercentage"])
	}

	check := func(what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the file's %d", what, len(got), len(want))
		}
	}
	check("page 0", f.get("/v1/file/"+fid+"/page/0"+q), data[:ps])
	check("page 2 (short)", f.get("/v1/file/"+fid+"/page/2"+q), data[2*ps:])
	check("page 1 slice", f.get("/v1/file/"+fid+"/page/1"+q+"&offset=100&length=50"), data[ps+100:ps+150])
	check("page 1 offset only", f.get(fmt.Sprintf("/v1/file/%s/page/1?offset=%d&length=%d&ufsFullPath=%s", fid, ps-10, 999, raw(uri))), data[2*ps-10:2*ps])
	check("range", f.get(fmt.Sprintf("/v1/range/%s%s&offset=%d&length=%d", fid, q, ps-5, ps+10)), data[ps-5:2*ps+5])
	check("range to end", f.get(fmt.Sprintf("/v1/range/%s%s&offset=%d", fid, q, 2*ps)), data[2*ps:])
	check("chunk", f.get("/v1/chunk/"+fid+q+"&chunkSize=1024"), data)
	check("head", f.get("/v1/head/"+fid+q+"&numOfBytes=100"), data[:100])
	check("tail", f.get("/v1/tail/"+fid+q+"&numOfBytes=100"), data[len(data)-100:])
	check("page by id only", f.get("/v1/file/"+fid+"/page/1"), data[ps:2*ps])

	// Everything since the first page read came from the cache.
	if n := f.source.Opens(); n != 3 {
		t.Errorf("the source was opened %d times, want once per page (3)", n)
	}
	hits := f.store.Stats().Hits
	check("chunk again", f.get("/v1/chunk/"+fid+q), data)
	if f.source.Opens() != 3 || f.store.Stats().Hits != hits+3 {
		t.Errorf("second whole read: opens %d, hits %d (was %d)", f.source.Opens(), f.store.Stats().Hits, hits)
	}
	if err := json.Unmarshal(f.get("/v1/info?path="+url.QueryEscape(uri)), &one); err != nil || one[0]["mInAlluxioPercentage"] != float64(100) {
		t.Errorf("percentage after reading: %v %v", one, err)
	}

	// The source changes: the new bytes are served.
	p := filepath.Join(f.dir, "data/part 1+2.bin")
	neu := bytes.Repeat([]byte{0xAB}, ps+1)
	if err := os.WriteFile(p, neu, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	check("chunk after change", f.get("/v1/chunk/"+fid+q), neu)
	check("page after change", f.get("/v1/file/"+fid+"/page/1"+q), neu[ps:])

	// Names with ';' and a literal '%' survive the raw query.
	u4, d4 := f.write("data/semi;colon%41.txt", 100)
	check("name with ; and %", f.get("/v1/range/"+id(u4)+"?offset=0&length=100&ufsFullPath="+u4), d4)

	// Page at the very end of a file whose size is a page multiple: empty.
	u2, d2 := f.write("data/even", 2*ps)
	check("page after the last full page", f.get("/v1/file/"+id(u2)+"/page/2?ufsFullPath="+raw(u2)), nil)
	check("page 1 of even", f.get("/v1/file/"+id(u2)+"/page/1?ufsFullPath="+raw(u2)), d2[ps:])
	u3, _ := f.write("data/empty", 0)
	check("page 0 of an empty file", f.get("/v1/file/"+id(u3)+"/page/0?ufsFullPath="+raw(u3)), nil)
}

func TestBadInputGetsAClearError(t *testing.T) {
	f := newFixture(t, "")
	uri, _ := f.write("f.bin", 3*ps)
	other, _ := f.write("g.bin", 10)
	fid := id(uri)
	q := "?ufsFullPath=" + raw(uri)
	outside := "file:///etc/hostname"
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/info?path=" + url.QueryEscape("/no/scheme"), 400},
		{"GET", "/v1/info?path=relative.txt", 400},
		{"GET", "/v1/files", 400},
		{"GET", "/v1/files?path=" + url.QueryEscape("nope://x/y"), 400},
		{"GET", "/v1/info?path=" + url.QueryEscape("file://"+f.dir+"/missing"), 404},
		{"GET", "/v1/info?path=" + url.QueryEscape(outside), 403},
		{"GET", "/v1/file/" + fid + "/page/0?ufsFullPath=" + raw(other), 400}, // id does not match
		{"GET", "/v1/file/" + id(other) + "/page/0?ufsFullPath=no-scheme", 400},
		{"GET", "/v1/file/" + fid + "/page/9" + q, 400},  // past the end
		{"GET", "/v1/file/" + fid + "/page/-1" + q, 400}, // negative index
		{"GET", "/v1/file/" + fid + "/page/x" + q, 400},
		{"GET", "/v1/file/" + fid + "/page/0" + q + "&offset=-5", 400},
		{"GET", "/v1/file/" + fid + "/page/0" + q + "&offset=99999", 400},
		{"GET", "/v1/file/" + fid + "/page/0" + q + "&length=-1", 400},
		{"GET", "/v1/file/" + fid + "/page/0" + q + "&offset=abc", 400},
		{"GET", "/v1/range/" + fid + q + "&offset=-1&length=10", 400},
		{"GET", "/v1/range/" + fid + q + "&offset=999999&length=10", 400},
		{"GET", "/v1/file/nothex/page/0" + q, 400},
		{"GET", "/v1/file/" + strings.ToUpper(fid) + "/page/0" + q, 400},
		{"GET", "/v1/file/" + id("file:///never/seen") + "/page/0", 404}, // no ufsFullPath, not cached
		{"GET", "/v1/chunk/" + id("file://"+f.dir+"/missing") + "?ufsFullPath=file://" + f.dir + "/missing", 404},
		{"GET", "/v1/chunk/" + id("file://"+f.dir) + "?ufsFullPath=file://" + f.dir, 400}, // a directory
		{"GET", "/v1/chunk/" + id(outside) + "?ufsFullPath=" + outside, 403},
		{"GET", "/v1/head/" + fid + q + "&numOfBytes=-3", 400},
		{"GET", "/v1/node", 400},
		{"GET", "/v1/node?path=bucket/key", 400},
		{"POST", "/v1/rm/" + fid + q + "&recursive=maybe", 400},
		{"POST", "/v1/mv/" + fid + "?srcPath=" + raw(uri), 400}, // no dstPath
		{"POST", "/v1/copy/" + fid + "?srcPath=" + raw(uri) + "&dstPath=" + raw(other), 409},
		{"POST", "/v1/mkdir/" + fid, 400}, // no ufsFullPath
		{"GET", "/v1/nope", 404},
		{"DELETE", "/v1/info", 405},
	} {
		code, body := f.do(tc.method, tc.path, nil)
		var msg struct {
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(body, &msg); err != nil || msg.Message == nil || *msg.Message == "" {
			t.Errorf("%s %s: body %q is not {\"message\": …}", tc.method, tc.path, body)
		}
		if code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		}
	}
}

func TestWritesGoThroughToStorage(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	base := "file://" + f.dir
	uri := base + "/out/new file+1.bin"
	data := bytes.Repeat([]byte("0123456789abcdef"), ps/8+3) // 2 pages and a bit
	code, body := f.do("POST", "/v1/chunk/"+id(uri)+"?ufsFullPath="+raw(uri)+"&chunkSize=1024", data)
	if code != 200 || !bytes.Contains(body, []byte(`"success":true`)) {
		t.Fatalf("write chunk: %d %s", code, body)
	}
	got, err := os.ReadFile(filepath.Join(f.dir, "out/new file+1.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("written file: %v", err)
	}
	// It is cached: reading it does not open the source again.
	opens := f.source.Opens()
	if b := f.get("/v1/chunk/" + id(uri) + "?ufsFullPath=" + raw(uri)); !bytes.Equal(b, data) {
		t.Fatal("read back differs")
	}
	if f.source.Opens() != opens {
		t.Errorf("written file was not cached: %d more opens", f.source.Opens()-opens)
	}

	// POST page: the storage system's bytes are the truth.
	if code, body := f.do("POST", "/v1/file/"+id(uri)+"/page/1?ufsFullPath="+raw(uri), data[ps:2*ps]); code != 200 {
		t.Errorf("post matching page: %d %s", code, body)
	}
	bad := bytes.Repeat([]byte{1}, ps)
	if code, _ := f.do("POST", "/v1/file/"+id(uri)+"/page/1?ufsFullPath="+raw(uri), bad); code != 412 {
		t.Errorf("post differing page: %d, want 412", code)
	}
	if code, _ := f.do("POST", "/v1/file/"+id(uri)+"/page/0?ufsFullPath="+raw(uri), bad[:10]); code != 400 {
		t.Errorf("post short page: %d, want 400", code)
	}
	nf := base + "/nothing"
	if code, _ := f.do("POST", "/v1/file/"+id(nf)+"/page/0?ufsFullPath="+nf, bad); code != 404 {
		t.Errorf("post page of a missing file: %d, want 404", code)
	}

	dir := base + "/made/deep"
	if code, body := f.do("POST", "/v1/mkdir/"+id(dir)+"?ufsFullPath="+dir, nil); code != 200 {
		t.Fatalf("mkdir: %d %s", code, body)
	}
	touched := dir + "/t"
	for range 2 {
		if code, body := f.do("POST", "/v1/touch/"+id(touched)+"?ufsFullPath="+touched, nil); code != 200 {
			t.Fatalf("touch: %d %s", code, body)
		}
	}
	if fi, err := os.Stat(filepath.Join(f.dir, "made/deep/t")); err != nil || fi.Size() != 0 {
		t.Fatalf("touched file: %v", err)
	}

	cp := base + "/out/copy.bin"
	if code, body := f.do("POST", "/v1/copy/"+id(uri)+"?srcPath="+raw(uri)+"&dstPath="+cp, nil); code != 200 {
		t.Fatalf("copy: %d %s", code, body)
	}
	if code, _ := f.do("POST", "/v1/copy/"+id(uri)+"?srcPath="+raw(uri)+"&dstPath="+cp, nil); code != 409 {
		t.Errorf("copy onto an existing file: %d, want 409", code)
	}
	if code, body := f.do("POST", "/v1/copy/"+id(uri)+"?srcPath="+raw(uri)+"&dstPath="+cp+"&overwrite=True", nil); code != 200 {
		t.Errorf("copy with overwrite=True: %d %s", code, body)
	}
	mv := base + "/out/moved.bin"
	if code, body := f.do("POST", "/v1/mv/"+id(cp)+"?srcPath="+cp+"&dstPath="+mv, nil); code != 200 {
		t.Fatalf("mv: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "out/copy.bin")); !os.IsNotExist(err) {
		t.Errorf("mv left the source: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(f.dir, "out/moved.bin")); !bytes.Equal(got, data) {
		t.Error("moved file differs")
	}

	// rm: a file, then a non-empty directory (409 without recursive).
	if code, body := f.do("POST", "/v1/rm/"+id(uri)+"?ufsFullPath="+raw(uri), nil); code != 200 {
		t.Fatalf("rm: %d %s", code, body)
	}
	if _, ok, _ := f.store.Lookup(uri); ok {
		t.Error("removed file still cached")
	}
	out := base + "/out"
	if code, _ := f.do("POST", "/v1/rm/"+id(out)+"?ufsFullPath="+out, nil); code != 409 {
		t.Errorf("rm of a non-empty directory: %d, want 409", code)
	}
	if code, body := f.do("POST", "/v1/rm/"+id(out)+"?ufsFullPath="+out+"&recursive=True", nil); code != 200 {
		t.Fatalf("rm -r: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "out")); !os.IsNotExist(err) {
		t.Errorf("rm -r left the directory: %v", err)
	}
	_ = ctx
}

func TestNodeAndClusterAnswerTheOwner(t *testing.T) {
	f := newFixture(t, "")
	for _, p := range []string{"s3://bucket/a", "s3://bucket/b c", "gs://x/y+z"} {
		var got struct {
			Host           string
			HTTPServerPort int `json:"HttpServerPort"`
		}
		if err := json.Unmarshal(f.get("/v1/node?path="+raw(p)), &got); err != nil { // path= raw, as alluxiofs sends it
			t.Fatal(err)
		}
		var cl struct {
			Self   string
			Nodes  []map[string]any
			Owners []string
		}
		if err := json.Unmarshal(f.get("/v1/cluster?replicas=2&path="+url.QueryEscape(p)), &cl); err != nil {
			t.Fatal(err)
		}
		if len(cl.Nodes) != 3 || len(cl.Owners) != 2 || cl.Self != "node-1" {
			t.Fatalf("cluster %+v", cl)
		}
		want := map[string]string{"node-1": "127.0.0.1", "node-2": "127.0.0.2", "node-3": "127.0.0.3"}[cl.Owners[0]]
		if got.Host != want || got.HTTPServerPort != 28080 {
			t.Errorf("%s: node %+v, cluster says %s", p, got, cl.Owners[0])
		}
	}
}

func TestLoadIsForwarded(t *testing.T) {
	f := newFixture(t, "")
	code, body := f.do("GET", "/v1/load?path=s3://b/k&opType=submit", nil)
	if code != 503 || !bytes.Contains(body, []byte("job API not available")) {
		t.Fatalf("without a job API: %d %s", code, body)
	}

	var gotMethod, gotQuery, gotBody string
	jobs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotMethod, gotQuery, gotBody = r.Method, r.URL.RawQuery, string(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"success": true}`)
	}))
	defer jobs.Close()
	f = newFixture(t, jobs.URL)
	code, body = f.do("POST", "/v1/load?path=s3://b/a+b&opType=submit&verbose=True", []byte("x=1"))
	if code != 202 || string(body) != `{"success": true}` {
		t.Fatalf("forwarded: %d %s", code, body)
	}
	if gotMethod != "POST" || gotQuery != "path=s3://b/a+b&opType=submit&verbose=True" || gotBody != "x=1" {
		t.Fatalf("job API saw %s %q %q", gotMethod, gotQuery, gotBody)
	}
}

func TestMetricsAndDrain(t *testing.T) {
	f := newFixture(t, "")
	uri, _ := f.write("m", 10)
	f.get("/v1/chunk/" + id(uri) + "?ufsFullPath=" + raw(uri))
	f.do("GET", "/v1/info?path=nope", nil)
	m := string(f.get("/metrics"))
	for _, want := range []string{
		`ferry_http_server_call_latency_ms_bucket{method="read_chunk",node="node-1",success="true",le="10"}`,
		`ferry_http_server_call_latency_ms_bucket{method="read_chunk",node="node-1",success="true",le="640"}`,
		`ferry_http_server_result_total{method="read_chunk",node="node-1",state="success"} 1`,
		`ferry_http_server_result_total{method="get_file_status",node="node-1",state="bad_request"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code, _ := f.do("GET", "/healthz", nil); code != 200 {
		t.Errorf("healthz %d", code)
	}
	f.api.Drain()
	for _, p := range []string{"/healthz", "/v1/chunk/" + id(uri) + "?ufsFullPath=" + raw(uri)} {
		if code, body := f.do("GET", p, nil); code != 503 || !bytes.Contains(body, []byte("message")) {
			t.Errorf("draining %s: %d %s", p, code, body)
		}
	}
	if code, _ := f.do("GET", "/metrics", nil); code != 200 {
		t.Errorf("metrics while draining: %d", code)
	}
}
