package security

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ferryio/ferry/cachenode/cachenodepb"
	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/internal/auth"
	"github.com/ferryio/ferry/internal/ferrytest"
)

var (
	apiLine  = regexp.MustCompile(`REST API\s+(https?://\S+)`)
	nodeLine = regexp.MustCompile(`Cache node (\S+)\s+(https?://\S+)\s+grpc (\S+)`)
	ready    = regexp.MustCompile(`Press Ctrl-C to stop`)
)

// fixture is a ferry dev whose only mount is dir/mnt, beside files it must
// never read or change (dir/outside), with a symbolic link in the mount
// that points out of it.
type fixture struct {
	dir, mnt, outside string
	api, node, grpc   string
	write, read       string // tokens
	tokensFile        string
	snapshot          map[string]string
	proc              *ferrytest.Proc
}

const secret = "TOP-SECRET-CONTENT"

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	f.mnt, f.outside = filepath.Join(f.dir, "mnt"), filepath.Join(f.dir, "outside")
	must(t, os.MkdirAll(filepath.Join(f.mnt, "src", "sub"), 0o755))
	must(t, os.MkdirAll(f.outside, 0o755))
	for i := range 5 {
		must(t, os.WriteFile(filepath.Join(f.mnt, "src", "sub", fmt.Sprintf("f%d.txt", i)), bytes.Repeat([]byte{'a' + byte(i)}, 1000+i), 0o644))
	}
	must(t, os.WriteFile(filepath.Join(f.outside, "secret"), []byte(secret), 0o644))
	must(t, os.Symlink(filepath.Join(f.outside, "secret"), filepath.Join(f.mnt, "link")))
	must(t, os.Symlink(f.outside, filepath.Join(f.mnt, "dirlink")))
	f.snapshot = snapshot(t, f.outside)

	var err error
	if f.write, err = auth.NewToken(); err != nil {
		t.Fatal(err)
	}
	if f.read, err = auth.NewToken(); err != nil {
		t.Fatal(err)
	}
	f.tokensFile = filepath.Join(f.dir, "tokens")
	must(t, os.WriteFile(f.tokensFile, []byte("ops:write:"+f.write+"\nviewer:read:"+f.read+"\n"), 0o600))
	env := []string{"FERRY_MOUNTS=file://" + f.mnt, "FERRY_AUTH_TOKENS=", "FERRY_TOKEN="}
	// The data directory lies inside the mount, as ./.ferry does in the
	// working directory ferry dev mounts: its token and database must stay
	// out of reach all the same (deny:<data-dir>).
	p := ferrytest.StartEnv(t, env, "dev", "--data-dir", filepath.Join(f.mnt, ".ferry"),
		"--temporal-listen", "127.0.0.1:0", "--ui-listen", "", "--metrics-listen", "",
		"--api-listen", "127.0.0.1:0", "--node-http-port", "0", "--node-grpc-port", "0", "--nodes", "1",
		"--auth-tokens-file", f.tokensFile)
	p.WaitFor(ready, 90*time.Second)
	f.proc = p
	out := p.Output()
	f.api = apiLine.FindStringSubmatch(out)[1]
	m := nodeLine.FindStringSubmatch(out)
	f.node, f.grpc = m[2], m[3]
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// Nothing outside the mount was changed.
		if got := snapshot(t, f.outside); fmt.Sprint(got) != fmt.Sprint(f.snapshot) {
			t.Errorf("files outside the mount changed:\nbefore %v\nafter  %v", f.snapshot, got)
		}
	})
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot maps every path under dir to its content's digest.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		out[p] = hex.EncodeToString(s[:8])
		return nil
	}))
	return out
}

func fileID(uri string) string {
	s := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(s[:])
}

// req sends one request and returns the status and body.
type req struct {
	method, url, token, ctype, origin, host string
	body                                    string
}

func (r req) do(t *testing.T) (int, string) {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	method := r.method
	if method == "" {
		method = http.MethodGet
	}
	hr, err := http.NewRequest(method, r.url, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	if r.origin != "" {
		hr.Header.Set("Origin", r.origin)
	}
	if r.host != "" {
		hr.Host = r.host
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, r.url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("%s %s sent Access-Control-Allow-Origin %q", method, r.url, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	return resp.StatusCode, string(b)
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// refused asserts an error status in want and that the answer leaks
// nothing of the files outside the mount.
func refused(t *testing.T, name string, r req, want ...int) {
	t.Helper()
	code, body := r.do(t)
	ok := false
	for _, w := range want {
		ok = ok || code == w
	}
	if !ok {
		t.Errorf("%s: %s %s answered %d %.300s; want %v", name, r.method, r.url, code, body, want)
	}
	if strings.Contains(body, secret) || strings.Contains(body, "root:x:0:0") {
		t.Errorf("%s: the answer leaks a file outside the mount: %.300s", name, body)
	}
}

// TestSecurity runs every probe of the attack suite against one ferry dev
// (each must be refused, and nothing outside the mount read or changed),
// then every legitimate operation of the README with valid tokens.
func TestSecurity(t *testing.T) {
	f := setup(t)
	out := "file://" + f.outside
	// A listener standing in for an HDFS namenode or an S3 endpoint named
	// by a URI: Ferry must never connect to it.
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer trap.Close()
	var trapped atomic.Int32
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			trapped.Add(1)
			_ = c.Close()
		}
	}()

	readTargets := []string{
		"file:///etc/passwd",
		out + "/secret",
		"file://" + f.mnt + "/link",
		"file://" + f.mnt + "/dirlink/secret",
		"file://" + f.mnt + "/%2e%2e/outside/secret",
		"hdfs://" + trap.Addr().String() + "/etc/passwd",
		"s3://any-bucket/key",
		"file://" + f.mnt + "/.ferry/token",
		"file://" + f.mnt + "/.ferry/temporal.db",
		// The manifest store (other jobs' lists) is mounted for Ferry itself only.
		"file://" + f.mnt + "/.ferry/manifests",
	}
	readRoutes := func(u string) []string {
		id := fileID(u)
		return []string{
			"/v1/info?path=" + url.QueryEscape(u),
			"/v1/files?path=" + url.QueryEscape(u),
			"/v1/file/" + id + "/page/0?ufsFullPath=" + u,
			"/v1/range/" + id + "?ufsFullPath=" + u + "&offset=0&length=100",
			"/v1/chunk/" + id + "?ufsFullPath=" + u,
			"/v1/head/" + id + "?ufsFullPath=" + u + "&numOfBytes=10",
			"/v1/tail/" + id + "?ufsFullPath=" + u + "&numOfBytes=10",
		}
	}
	t.Run("reads outside the mounts", func(t *testing.T) {
		for _, u := range readTargets {
			for _, route := range readRoutes(u) {
				// With a token, and anonymously as alluxiofs reads.
				refused(t, "read "+u, req{url: f.node + route, token: f.read}, 400, 403, 404)
				refused(t, "anonymous read "+u, req{url: f.node + route}, 400, 403, 404)
			}
		}
		// ".." is refused wherever it appears, decoded or not.
		refused(t, "dot-dot", req{url: f.node + "/v1/info?path=" + url.QueryEscape("file://"+f.mnt+"/../outside/secret"), token: f.read}, 400, 403)
		refused(t, "encoded dot-dot", req{url: f.node + "/v1/info?path=file://" + f.mnt + "/%2e%2e/outside/secret", token: f.read}, 400, 403)
		refused(t, "dot-dot in ufsFullPath", req{url: f.node + "/v1/range/" + fileID("file://"+f.mnt+"/../outside/secret") + "?ufsFullPath=file://" + f.mnt + "/../outside/secret&offset=0&length=10", token: f.read}, 400, 403)
	})

	t.Run("writes and deletes outside the mounts", func(t *testing.T) {
		for _, u := range []string{out + "/planted", out + "/secret", "file://" + f.mnt + "/dirlink/planted", "file:///etc/ferry-planted"} {
			id := fileID(u)
			refused(t, "write chunk", req{method: "POST", url: f.node + "/v1/chunk/" + id + "?ufsFullPath=" + u, token: f.write, ctype: "application/octet-stream", body: "evil"}, 403)
			refused(t, "write page", req{method: "POST", url: f.node + "/v1/file/" + id + "/page/0?ufsFullPath=" + u, token: f.write, ctype: "application/octet-stream", body: "evil"}, 403)
			refused(t, "mkdir", req{method: "POST", url: f.node + "/v1/mkdir/" + id + "?ufsFullPath=" + u, token: f.write}, 403)
			refused(t, "touch", req{method: "POST", url: f.node + "/v1/touch/" + id + "?ufsFullPath=" + u, token: f.write}, 403)
			refused(t, "rm", req{method: "POST", url: f.node + "/v1/rm/" + id + "?ufsFullPath=" + u, token: f.write}, 403, 404)
		}
		in := "file://" + f.mnt + "/src/sub/f0.txt"
		for _, pair := range [][2]string{{out + "/secret", "file://" + f.mnt + "/stolen"}, {in, out + "/planted"}, {"file://" + f.mnt + "/link", "file://" + f.mnt + "/stolen"}} {
			for _, op := range []string{"mv", "copy"} {
				refused(t, op+" "+pair[0]+" → "+pair[1], req{method: "POST", url: f.node + "/v1/" + op + "/" + fileID(pair[0]) + "?srcPath=" + pair[0] + "&dstPath=" + pair[1], token: f.write}, 403)
			}
		}
		if _, err := os.Stat(filepath.Join(f.mnt, "stolen")); err == nil {
			t.Error("a file from outside the mount was copied into it")
		}
	})

	t.Run("jobs from and to system paths", func(t *testing.T) {
		jobs := []struct{ route, body string }{
			{"/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": "file:///etc"})},
			{"/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": "file://" + f.mnt + "/dirlink"})},
			{"/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": out, "dst": "file://" + f.mnt + "/c"})},
			{"/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": "file://" + f.mnt + "/src", "dst": out + "/c"})},
			{"/api/v1/master/submit_job/move", jsonBody(map[string]any{"src": "file://" + f.mnt + "/src", "dst": "file:///tmp/ferry-move-target"})},
			{"/api/v1/master/submit_job/move", jsonBody(map[string]any{"src": "file:///etc", "dst": "file://" + f.mnt + "/etc"})},
			{"/api/v1/jobs", jsonBody(map[string]any{"type": "copy", "src": "file:///etc", "dst": "file://" + f.mnt + "/etc"})},
			{"/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": "hdfs://" + trap.Addr().String() + "/x"})},
			{"/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": "s3://" + trap.Addr().String() + "/x"})},
			{"/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": "file://" + f.mnt + "/src", "options": map[string]any{"indexFile": "file:///etc/passwd"}})},
			// Ferry's manifest store: no job reads or writes it, although a
			// mount covers it for the coordinator and the nodes.
			{"/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": "file://" + f.mnt + "/src", "dst": "file://" + f.mnt + "/.ferry/manifests/x"})},
			{"/api/v1/master/submit_job/copy", jsonBody(map[string]any{"src": "file://" + f.mnt + "/.ferry/manifests", "dst": "file://" + f.mnt + "/stolen"})},
			{"/api/v1/master/submit_job/load", jsonBody(map[string]any{"path": "file://" + f.mnt + "/.ferry/manifests"})},
			{"/api/v1/master/submit_job/move", jsonBody(map[string]any{"src": "file://" + f.mnt + "/.ferry/manifests", "dst": "file://" + f.mnt + "/moved"})},
		}
		for _, j := range jobs {
			refused(t, "job "+j.body, req{method: "POST", url: f.api + j.route, token: f.write, ctype: "application/json", body: j.body}, 403)
		}
		for _, base := range []string{f.api, f.node} {
			refused(t, "worker-style load of /etc", req{url: base + "/v1/load?path=file:///etc&opType=submit", token: f.write}, 403)
		}
		if n := trapped.Load(); n != 0 {
			t.Errorf("Ferry connected %d times to a host named only by a URI", n)
		}
	})

	t.Run("no token, wrong token, read token", func(t *testing.T) {
		body := jsonBody(map[string]any{"path": "file://" + f.mnt + "/src"})
		for _, r := range []req{
			{method: "POST", url: f.api + "/api/v1/master/submit_job/load", ctype: "application/json", body: body},
			{url: f.api + "/api/v1/master/list_job"},
			{url: f.api + "/v1/load?path=file://" + f.mnt + "/src&opType=submit"},
			{method: "POST", url: f.node + "/v1/mkdir/" + fileID("file://"+f.mnt+"/x") + "?ufsFullPath=file://" + f.mnt + "/x", ctype: "application/octet-stream"},
			{url: f.api + "/metrics"},
		} {
			refused(t, "no token", r, 401)
			r.token = "not-a-valid-token-at-all"
			refused(t, "bad token", r, 401)
		}
		refused(t, "read token submits", req{method: "POST", url: f.api + "/api/v1/master/submit_job/load", ctype: "application/json", body: body, token: f.read}, 403)
		refused(t, "read token writes", req{method: "POST", url: f.node + "/v1/touch/" + fileID("file://"+f.mnt+"/t") + "?ufsFullPath=file://" + f.mnt + "/t", token: f.read}, 403)

		c, conn, err := grpcapi.Dial(strings.TrimPrefix(f.grpc, "grpc://"))
		must(t, err)
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: []*pb.FileRef{{Uri: "file:///etc/passwd"}}})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC LoadFiles without a token: %v", err)
		}
		st, err := c.ReadRange(ctx, &pb.ReadRangeRequest{Uri: "file:///etc/passwd"})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("gRPC ReadRange without a token: %v", err)
		}
		withTok := grpc.PerRPCCredsCallOption{Creds: auth.Credentials{Source: auth.StaticToken(f.write)}}
		resp, err := c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: []*pb.FileRef{{Uri: "file:///etc/passwd"}, {Uri: out + "/secret"}}}, withTok)
		if err != nil || resp.GetFailed() != 2 || !strings.Contains(resp.GetResults()[0].GetError(), "mount") {
			t.Errorf("gRPC LoadFiles of files outside the mounts: %v %v", resp, err)
		}
		rd, err := c.ReadRange(ctx, &pb.ReadRangeRequest{Uri: out + "/secret"}, withTok)
		if err == nil {
			_, err = rd.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("gRPC ReadRange outside the mounts: %v", err)
		}
	})

	t.Run("browser", func(t *testing.T) {
		body := jsonBody(map[string]any{"path": "file://" + f.mnt + "/src"})
		submit := f.api + "/api/v1/master/submit_job/load"
		// A page cannot send a token; even with one these are refused.
		refused(t, "GET on a mutating route", req{url: submit, token: f.write}, 405)
		refused(t, "GET /v1/load submit without a token", req{url: f.api + "/v1/load?path=file://" + f.mnt + "/src&opType=submit"}, 401, 405)
		refused(t, "text/plain POST", req{method: "POST", url: submit, ctype: "text/plain", body: body, token: f.write}, 415)
		refused(t, "form POST", req{method: "POST", url: submit, ctype: "application/x-www-form-urlencoded", body: body, token: f.write}, 415)
		refused(t, "text/plain POST without a token", req{method: "POST", url: submit, ctype: "text/plain", body: body}, 401, 415)
		refused(t, "text/plain write to a node", req{method: "POST", url: f.node + "/v1/chunk/" + fileID("file://"+f.mnt+"/w") + "?ufsFullPath=file://" + f.mnt + "/w", ctype: "text/plain", body: "x", token: f.write}, 415)
		refused(t, "anonymous node write", req{method: "POST", url: f.node + "/v1/chunk/" + fileID("file://"+f.mnt+"/w") + "?ufsFullPath=file://" + f.mnt + "/w", ctype: "text/plain", body: "x"}, 401)
		for _, base := range []string{f.api, f.node} {
			refused(t, "foreign Origin", req{url: base + "/v1/load?path=file://" + f.mnt + "/src&opType=progress", token: f.write, origin: "http://evil.example"}, 403)
			refused(t, "null Origin", req{url: base + "/v1/load?path=file://" + f.mnt + "/src&opType=progress", token: f.write, origin: "null"}, 403)
			refused(t, "foreign Host (DNS rebinding)", req{url: base + "/v1/load?path=file://" + f.mnt + "/src&opType=progress", token: f.write, host: "evil.example:80"}, 403)
			refused(t, "CORS preflight", req{method: "OPTIONS", url: base + "/api/v1/master/submit_job/load", origin: "http://evil.example"}, 403, 405)
		}
		refused(t, "foreign Origin on an anonymous read", req{url: f.node + "/v1/info?path=" + url.QueryEscape("file://"+f.mnt+"/src/sub/f0.txt"), origin: "http://evil.example"}, 403)
		if _, err := os.Stat(filepath.Join(f.mnt, "w")); err == nil {
			t.Error("a refused write created a file")
		}
	})

	t.Run("legitimate operations", func(t *testing.T) { legitimate(t, f) })
}

// waitState polls a job's JSON progress until it is in one of states.
func waitState(t *testing.T, f *fixture, typ string, key map[string]any, states ...string) {
	t.Helper()
	body := map[string]any{"format": "JSON"}
	for k, v := range key {
		body[k] = v
	}
	ferrytest.Eventually(t, 90*time.Second, func() error {
		code, resp := req{method: "POST", url: f.api + "/api/v1/master/progress_job/" + typ, token: f.read, ctype: "application/json", body: jsonBody(body)}.do(t)
		if code != 200 {
			return fmt.Errorf("progress: %d %s", code, resp)
		}
		var r struct{ Message string }
		var rep struct{ MJobState string }
		if json.Unmarshal([]byte(resp), &r) != nil || json.Unmarshal([]byte(r.Message), &rep) != nil {
			return fmt.Errorf("progress: %s", resp)
		}
		for _, s := range states {
			if rep.MJobState == s {
				return nil
			}
		}
		return fmt.Errorf("job state %s", rep.MJobState)
	})
}

func ok(t *testing.T, name string, r req, want ...int) string {
	t.Helper()
	if len(want) == 0 {
		want = []int{200}
	}
	code, body := r.do(t)
	for _, w := range want {
		if code == w {
			return body
		}
	}
	t.Errorf("%s: %s %s answered %d %.300s; want %v", name, r.method, r.url, code, body, want)
	return body
}

func legitimate(t *testing.T, f *fixture) {
	src := "file://" + f.mnt + "/src"
	js := "application/json"
	// load, progress, list, stop
	ok(t, "submit load", req{method: "POST", url: f.api + "/api/v1/master/submit_job/load", token: f.write, ctype: js, body: jsonBody(map[string]any{"path": src})})
	waitState(t, f, "load", map[string]any{"path": src}, "SUCCEEDED")
	if body := ok(t, "list", req{url: f.api + "/api/v1/master/list_job?job-type=LOAD&job-state=ALL", token: f.read}); !strings.Contains(body, src) {
		t.Errorf("list does not show the job: %s", body)
	}
	ok(t, "stop", req{method: "POST", url: f.api + "/api/v1/master/stop_job/load", token: f.write, ctype: js, body: jsonBody(map[string]any{"path": src})})
	ok(t, "worker-style progress", req{url: f.api + "/v1/load?path=" + src + "&opType=progress", token: f.read})
	// alluxiofs-style: the Alluxio client submits with GET; with a token it
	// works, through a node (forwarded with the caller's token) too.
	ok(t, "GET /v1/load submit with a token, via a node", req{url: f.node + "/v1/load?path=" + src + "&opType=submit", token: f.write})
	// copy and move inside the mount
	copied, moved := "file://"+f.mnt+"/copied", "file://"+f.mnt+"/moved"
	ok(t, "submit copy", req{method: "POST", url: f.api + "/api/v1/master/submit_job/copy", token: f.write, ctype: js, body: jsonBody(map[string]any{"src": src, "dst": copied})})
	waitState(t, f, "copy", map[string]any{"src": src, "dst": copied}, "SUCCEEDED")
	ok(t, "submit move", req{method: "POST", url: f.api + "/api/v1/master/submit_job/move", token: f.write, ctype: js, body: jsonBody(map[string]any{"src": copied, "dst": moved})})
	waitState(t, f, "move", map[string]any{"src": copied, "dst": moved}, "SUCCEEDED")
	if b, err := os.ReadFile(filepath.Join(f.mnt, "moved", "sub", "f3.txt")); err != nil || len(b) != 1003 {
		t.Errorf("moved file: %d bytes, %v", len(b), err)
	}
	// the CLI, with the dev data directory's token (ferry dev's two commands)
	cli := exec.Command(ferrytest.Binary(t), "job", "load", "--path", src, "--progress", "--api", f.api)
	cli.Env = append(os.Environ(), "FERRY_DATA_DIR="+filepath.Join(f.mnt, ".ferry"), "FERRY_TOKEN=")
	if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), "Job State: SUCCEEDED") {
		t.Errorf("ferry job load --progress with the dev token file: %v\n%s", err, out)
	}
	// cache reads: anonymous from loopback (alluxiofs) and with a token
	file := src + "/sub/f2.txt"
	id := fileID(file)
	for _, tok := range []string{"", f.read} {
		for _, route := range []string{
			"/v1/range/" + id + "?ufsFullPath=" + file + "&offset=0&length=1002",
			"/v1/chunk/" + id + "?ufsFullPath=" + file,
			"/v1/file/" + id + "/page/0?ufsFullPath=" + file,
			"/v1/head/" + id + "?ufsFullPath=" + file + "&numOfBytes=1002",
			"/v1/tail/" + id + "?ufsFullPath=" + file + "&numOfBytes=1002",
		} {
			if body := ok(t, "cache read", req{url: f.node + route, token: tok}); body != strings.Repeat("c", 1002) {
				t.Errorf("%s: %d bytes, not the file", route, len(body))
			}
		}
		ok(t, "info", req{url: f.node + "/v1/info?path=" + url.QueryEscape(file), token: tok})
		ok(t, "files", req{url: f.node + "/v1/files?path=" + url.QueryEscape(src+"/sub"), token: tok})
	}
	// cache writes with the write token (alluxiofs sends no content type)
	w := "file://" + f.mnt + "/written.bin"
	ok(t, "write chunk", req{method: "POST", url: f.node + "/v1/chunk/" + fileID(w) + "?ufsFullPath=" + w, token: f.write, body: "new bytes"}, 200, 201)
	if b, err := os.ReadFile(filepath.Join(f.mnt, "written.bin")); err != nil || string(b) != "new bytes" {
		t.Errorf("written file: %q %v", b, err)
	}
	d := "file://" + f.mnt + "/newdir"
	ok(t, "mkdir", req{method: "POST", url: f.node + "/v1/mkdir/" + fileID(d) + "?ufsFullPath=" + d, token: f.write}, 200, 201, 204)
	touched := d + "/empty"
	ok(t, "touch", req{method: "POST", url: f.node + "/v1/touch/" + fileID(touched) + "?ufsFullPath=" + touched, token: f.write}, 200, 201, 204)
	w2 := "file://" + f.mnt + "/copy-of-written.bin"
	ok(t, "copy", req{method: "POST", url: f.node + "/v1/copy/" + fileID(w) + "?srcPath=" + w + "&dstPath=" + w2, token: f.write}, 200, 201, 204)
	w3 := "file://" + f.mnt + "/renamed.bin"
	ok(t, "mv", req{method: "POST", url: f.node + "/v1/mv/" + fileID(w2) + "?srcPath=" + w2 + "&dstPath=" + w3, token: f.write}, 200, 201, 204)
	ok(t, "rm", req{method: "POST", url: f.node + "/v1/rm/" + fileID(w3) + "?ufsFullPath=" + w3, token: f.write}, 200, 201, 204)
	if _, err := os.Stat(filepath.Join(f.mnt, "renamed.bin")); err == nil {
		t.Error("rm left the file")
	}
	// the audit trail names principals, never tokens
	outp := f.proc.Output()
	if !strings.Contains(outp, "msg=audit principal=ops role=write method=POST route=rm") {
		t.Errorf("no audit line for rm:\n%s", lastLines(outp, 20))
	}
	if strings.Contains(outp, f.write) || strings.Contains(outp, f.read) {
		t.Error("a token appears in the log")
	}
	// rotation without restart: a new file replaces the old token
	fresh, err := auth.NewToken()
	must(t, err)
	tmp := f.tokensFile + ".new"
	must(t, os.WriteFile(tmp, []byte("ops2:write:"+fresh+"\nviewer:read:"+f.read+"\n"), 0o600))
	must(t, os.Rename(tmp, f.tokensFile))
	list := f.api + "/api/v1/master/list_job"
	ferrytest.Eventually(t, 30*time.Second, func() error {
		if c, _ := (req{url: list, token: f.write}).do(t); c != 401 {
			return fmt.Errorf("old token still accepted: %d", c)
		}
		if c, _ := (req{url: list, token: fresh}).do(t); c != 200 {
			return fmt.Errorf("new token refused: %d", c)
		}
		return nil
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runCLI runs the ferry binary with the test token and extra environment.
func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferrytest.Binary(t), args...)
	cmd.Env = append(append(os.Environ(), ferrytest.SecurityEnv()...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
