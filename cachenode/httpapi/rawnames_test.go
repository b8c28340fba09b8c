package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The test in this file replays every route the alluxiofs client calls with
// names that hold '+ = ; ?', spaces and non-ASCII, and '&', '#', '%', the
// way python-requests (urllib3 2.x) puts the client's requests on the wire.

var pyEscape = regexp.MustCompile(`%[0-9a-fA-F]{2}`)

// pyRequests returns the request target python-requests sends for
// pathQuery (the client's URL format filled with raw names) and params (a
// dict it form-encodes, as key, value pairs):
//   - everything after '#' is a fragment and is not sent;
//   - urllib3 percent-encodes the query's bytes outside RFC 3986's query set
//     (space, non-ASCII, '"', '<', …), and '%' too unless every '%' already
//     starts a valid escape (then the escapes are kept, upper-cased);
//   - requests decodes escapes of unreserved characters ("%41" → "A");
//   - params are appended form-encoded ('+' → %2B, space → '+').
func pyRequests(pathQuery string, params ...string) string {
	s, _, _ := strings.Cut(pathQuery, "#")
	path, query, hasQuery := strings.Cut(s, "?")
	valid := 0
	query = pyEscape.ReplaceAllStringFunc(query, func(m string) string { valid++; return strings.ToUpper(m) })
	keepPercent := valid == strings.Count(query, "%")
	var b strings.Builder
	for i := 0; i < len(query); i++ {
		c := query[i]
		if (c == '%' && keepPercent) || (c < 0x80 && c != '%' && strings.IndexByte(pyQueryChars, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	query = pyEscape.ReplaceAllStringFunc(b.String(), func(m string) string {
		var c byte
		_, _ = fmt.Sscanf(m[1:], "%02X", &c)
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			return string(c)
		}
		return m
	})
	var enc []string
	for i := 0; i+1 < len(params); i += 2 {
		enc = append(enc, url.QueryEscape(params[i])+"="+url.QueryEscape(params[i+1]))
	}
	if len(enc) > 0 {
		if query != "" {
			query += "&"
		}
		query += strings.Join(enc, "&")
		hasQuery = true
	}
	if !hasQuery {
		return path
	}
	return path + "?" + query
}

// pyQueryChars are the bytes urllib3 leaves as they are in a query:
// unreserved, sub-delims, ':', '@', '/', '?'.
const pyQueryChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?"

// The alluxiofs client's option dataclasses, as requests encodes their
// __dict__ (None values are dropped).
var (
	rmOption = func(recursive, cacheOnly bool) []string {
		return []string{"recursive", pyBool(recursive), "recursiveAlias", "False", "sync_parent_next_time", "False",
			"remove_unchecked_option", "False", "remove_alluxio_only", pyBool(cacheOnly), "delete_mount_point", "False"}
	}
	cpOption = []string{"recursive", "True", "recursiveAlias", "False", "forced", "False", "preserve", "True"}
)

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// tree lists every file and directory under dir with its content, to show
// that a refused request changed nothing.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every route the client calls, read and write, with names as the client
// sends them: names with '+ = ; ?', spaces, non-ASCII and a '%' the client
// escapes itself work on every route, with the exact bytes on the wire and
// on disk; names the client mangles ('&', '#', a '%' that looks like an
// escape of a letter) get a 400 from every route whose URI is raw and
// change nothing on disk, while the form-encoded routes (/v1/info,
// /v1/files) serve them exactly.
func TestAlluxiofsEveryRouteWithRawNames(t *testing.T) {
	f := newFixture(t, "")
	post := func(t *testing.T, pathQuery string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("POST", f.srv.URL+pathQuery, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "python-requests/2.32.3")
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	ok := func(t *testing.T, what string, code int, body []byte) {
		t.Helper()
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", what, code, body)
		}
	}
	info := func(t *testing.T, uri string) map[string]any {
		t.Helper()
		code, body := f.alluxiofs("GET", pyRequests("/v1/info", "path", uri))
		var got []map[string]any
		if code != 200 || json.Unmarshal(body, &got) != nil || len(got) != 1 {
			t.Fatalf("info %s: %d %s", uri, code, body)
		}
		return got[0]
	}

	good := []string{"plus+sign.bin", "eq=1;semi.bin", "q?mark=x.bin", "sp ace.bin", "caf\u00e9+\u6587 ;=?.bin", "100%.bin", "lit%2Bpct.bin"}
	for i, name := range good {
		t.Run(fmt.Sprintf("good%d", i), func(t *testing.T) {
			base := "file://" + f.dir
			uri, data := f.write(name+"/"+name, 2*ps+100+i)
			dirURI := base + "/" + name
			fid := id(uri)
			q := "?ufsFullPath=" + uri

			// Metadata: path= form-encoded.
			if got := info(t, uri); got["mUfsPath"] != uri || got["mLength"] != float64(len(data)) || got["mName"] != name {
				t.Fatalf("info: %v", got)
			}
			code, body := f.alluxiofs("GET", pyRequests("/v1/files", "path", dirURI))
			var list []map[string]any
			if code != 200 || json.Unmarshal(body, &list) != nil || len(list) != 1 || list[0]["mUfsPath"] != uri {
				t.Fatalf("files: %d %s", code, body)
			}
			// /v1/node: path= raw; the owner of the very same string. It has
			// no file id to tell a literal "%2B" in a name from an escaped
			// '+' (which other clients send): it takes the escape, so that
			// name is placed as "lit+pct.bin" is (a read of it is still
			// exact, through another node).
			nodeURI := uri
			if strings.Contains(name, "%2B") {
				nodeURI = strings.ReplaceAll(uri, "%2B", "+")
			}
			code, body = f.alluxiofs("GET", pyRequests("/v1/node?path="+uri))
			var node struct{ Host string }
			var cl struct{ Owners []string }
			if code != 200 || json.Unmarshal(body, &node) != nil || json.Unmarshal(f.get("/v1/cluster?path="+url.QueryEscape(nodeURI)), &cl) != nil ||
				node.Host != map[string]string{"node-1": "127.0.0.1", "node-2": "127.0.0.2", "node-3": "127.0.0.3"}[cl.Owners[0]] {
				t.Fatalf("node: %d %s, ring owner %v", code, body, cl.Owners)
			}

			// Reads.
			code, body = f.alluxiofs("GET", pyRequests("/v1/chunk/"+fid+q+"&chunkSize=1048576"))
			if ok(t, "chunk", code, body); !bytes.Equal(body, data) {
				t.Fatal("chunk: wrong bytes")
			}
			code, body = f.alluxiofs("GET", pyRequests(fmt.Sprintf("/v1/range/%s%s&offset=%d&length=%d", fid, q, 5, ps)))
			if ok(t, "range", code, body); !bytes.Equal(body, data[5:5+ps]) {
				t.Fatal("range: wrong bytes")
			}
			code, body = f.alluxiofs("GET", pyRequests("/v1/file/"+fid+"/page/1"+q))
			if ok(t, "page", code, body); !bytes.Equal(body, data[ps:2*ps]) {
				t.Fatal("page: wrong bytes")
			}
			// The client's PAGE_URL_FORMAT: offset and length, no URI.
			code, body = f.alluxiofs("GET", pyRequests("/v1/file/"+fid+"/page/2?offset=3&length=10"))
			if ok(t, "page by id", code, body); !bytes.Equal(body, data[2*ps+3:2*ps+13]) {
				t.Fatal("page by id: wrong bytes")
			}
			code, body = f.alluxiofs("GET", pyRequests("/v1/head/"+fid+q, "numOfBytes", "7"))
			if ok(t, "head", code, body); !bytes.Equal(body, data[:7]) {
				t.Fatal("head: wrong bytes")
			}
			code, body = f.alluxiofs("GET", pyRequests("/v1/tail/"+fid+q, "numOfBytes", "9"))
			if ok(t, "tail", code, body); !bytes.Equal(body, data[len(data)-9:]) {
				t.Fatal("tail: wrong bytes")
			}

			// write_page, with and without ufsFullPath: equal bytes 200,
			// others 412; the file on disk never changes.
			code, body = post(t, pyRequests("/v1/file/"+fid+"/page/0"), data[:ps])
			ok(t, "write page", code, body)
			code, body = post(t, pyRequests("/v1/file/"+fid+"/page/1"+q), data[ps:2*ps])
			ok(t, "write page with ufsFullPath", code, body)
			if code, body = post(t, pyRequests("/v1/file/"+fid+"/page/0"), make([]byte, ps)); code != http.StatusPreconditionFailed {
				t.Fatalf("write page of other bytes: %d %s", code, body)
			}
			if got, _ := os.ReadFile(filepath.Join(f.dir, name, name)); !bytes.Equal(got, data) {
				t.Fatal("write page changed the file on disk")
			}

			// write_chunked: the body lands under the exact name.
			wURI := base + "/" + name + "/w " + name
			newData := bytes.Repeat([]byte(name), 1000)
			code, body = post(t, pyRequests("/v1/chunk/"+id(wURI)+"?ufsFullPath="+wURI+"&chunkSize=1048576"), newData)
			ok(t, "write chunk", code, body)
			if got, err := os.ReadFile(filepath.Join(f.dir, name, "w "+name)); err != nil || !bytes.Equal(got, newData) {
				t.Fatalf("write chunk: disk has %q, %v", got, err)
			}
			code, body = f.alluxiofs("GET", pyRequests("/v1/chunk/"+id(wURI)+"?ufsFullPath="+wURI+"&chunkSize=1048576"))
			if ok(t, "read written", code, body); !bytes.Equal(body, newData) {
				t.Fatal("read back of a written file: wrong bytes")
			}

			// mkdir, touch.
			mURI := base + "/" + name + "/m" + name
			code, body = f.alluxiofs("POST", pyRequests("/v1/mkdir/"+id(mURI)+"?ufsFullPath="+mURI))
			if ok(t, "mkdir", code, body); !isDir(filepath.Join(f.dir, name, "m"+name)) {
				t.Fatal("mkdir: no such directory on disk")
			}
			tURI := base + "/" + name + "/t" + name
			code, body = f.alluxiofs("POST", pyRequests("/v1/touch/"+id(tURI)+"?ufsFullPath="+tURI))
			ok(t, "touch", code, body)
			if st, err := os.Stat(filepath.Join(f.dir, name, "t"+name)); err != nil || st.Size() != 0 {
				t.Fatalf("touch: %v", err)
			}

			// cp (with CPOption's flags), then mv of the copy.
			cURI := base + "/" + name + "/c" + name
			code, body = f.alluxiofs("POST", pyRequests("/v1/copy/"+fid+"?srcPath="+uri+"&dstPath="+cURI, cpOption...))
			ok(t, "copy", code, body)
			if got, _ := os.ReadFile(filepath.Join(f.dir, name, "c"+name)); !bytes.Equal(got, data) {
				t.Fatal("copy: wrong bytes on disk")
			}
			mvURI := base + "/" + name + "/mv" + name
			code, body = f.alluxiofs("POST", pyRequests("/v1/mv/"+id(cURI)+"?srcPath="+cURI+"&dstPath="+mvURI))
			ok(t, "mv", code, body)
			if got, _ := os.ReadFile(filepath.Join(f.dir, name, "mv"+name)); !bytes.Equal(got, data) {
				t.Fatal("mv: wrong bytes on disk")
			}
			if _, err := os.Stat(filepath.Join(f.dir, name, "c"+name)); !os.IsNotExist(err) {
				t.Fatalf("mv left its source: %v", err)
			}

			// rm with RMOption's defaults (remove_alluxio_only=True): cache
			// only; then a real rm.
			if !f.store.IsCached(uri, "") {
				t.Fatal("not cached after the reads")
			}
			code, body = f.alluxiofs("POST", pyRequests("/v1/rm/"+fid+q, rmOption(false, true)...))
			ok(t, "rm alluxio only", code, body)
			if got, _ := os.ReadFile(filepath.Join(f.dir, name, name)); !bytes.Equal(got, data) {
				t.Fatal("rm remove_alluxio_only=True changed the file on disk")
			}
			if _, cached, _ := f.store.Lookup(uri); cached {
				t.Fatal("rm remove_alluxio_only=True left the file cached")
			}
			code, body = f.alluxiofs("POST", pyRequests("/v1/rm/"+fid+q, rmOption(false, false)...))
			ok(t, "rm", code, body)
			if _, err := os.Stat(filepath.Join(f.dir, name, name)); !os.IsNotExist(err) {
				t.Fatalf("rm left the file: %v", err)
			}
			code, body = f.alluxiofs("POST", pyRequests("/v1/rm/"+id(dirURI)+"?ufsFullPath="+dirURI, rmOption(true, false)...))
			ok(t, "rm -r", code, body)
			if _, err := os.Stat(filepath.Join(f.dir, name)); !os.IsNotExist(err) {
				t.Fatalf("rm -r left the directory: %v", err)
			}
		})
	}

	// Names the client mangles before they leave it. Every raw route
	// refuses them; nothing changes on disk.
	mangled := []string{"amp&x.bin", "hash#x.bin", "pct%41.bin", "amp&recursive=True.bin"}
	for i, name := range mangled {
		t.Run(fmt.Sprintf("mangled%d", i), func(t *testing.T) {
			base := "file://" + f.dir + "/m" + fmt.Sprint(i)
			uri, data := f.write(fmt.Sprintf("m%d/%s", i, name), ps+1)
			f.write(fmt.Sprintf("m%d/other.bin", i), 10)
			// What the truncated names would hit, if taken at face value.
			for _, decoy := range []string{"amp", "hash", "pctA.bin"} {
				f.write(fmt.Sprintf("m%d/%s", i, decoy), 3)
			}
			before := tree(t, f.dir)
			fid := id(uri)
			q := "?ufsFullPath=" + uri
			dst := base + "/dst&" + name
			for _, req := range []struct{ method, target string }{
				{"GET", pyRequests("/v1/chunk/" + fid + q + "&chunkSize=1048576")},
				{"GET", pyRequests("/v1/range/" + fid + q + "&offset=0&length=10")},
				{"GET", pyRequests("/v1/file/" + fid + "/page/0" + q)},
				{"GET", pyRequests("/v1/head/"+fid+q, "numOfBytes", "7")},
				{"GET", pyRequests("/v1/tail/"+fid+q, "numOfBytes", "7")},
				{"POST", pyRequests("/v1/chunk/" + fid + q + "&chunkSize=1048576")},
				{"POST", pyRequests("/v1/file/" + fid + "/page/0" + q)},
				{"POST", pyRequests("/v1/mkdir/" + fid + q)},
				{"POST", pyRequests("/v1/touch/" + fid + q)},
				{"POST", pyRequests("/v1/rm/"+fid+q, rmOption(true, false)...)},
				{"POST", pyRequests("/v1/copy/"+fid+"?srcPath="+uri+"&dstPath="+base+"/c.bin", cpOption...)},
				{"POST", pyRequests("/v1/mv/" + fid + "?srcPath=" + uri + "&dstPath=" + base + "/mv.bin")},
				// A good source, a destination holding '&'.
				{"POST", pyRequests("/v1/copy/"+id(base+"/other.bin")+"?srcPath="+base+"/other.bin&dstPath="+dst, cpOption...)},
				{"POST", pyRequests("/v1/mv/" + id(base+"/other.bin") + "?srcPath=" + base + "/other.bin&dstPath=" + dst)},
			} {
				if strings.Contains(req.target, "dstPath="+dst) && !strings.Contains(name, "&") {
					continue // only a '&' in dstPath is visible to the server
				}
				if code, body := f.alluxiofs(req.method, req.target); code != http.StatusBadRequest {
					t.Errorf("%s %s: %d %s, want 400", req.method, req.target, code, body)
				}
			}
			if name == "amp&x.bin" {
				if code, body := f.alluxiofs("GET", pyRequests("/v1/node?path="+uri)); code != http.StatusBadRequest {
					t.Errorf("node of a name with '&': %d %s, want 400", code, body)
				}
			}
			if after := tree(t, f.dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a refused request changed the disk:\nbefore %v\nafter  %v", before, after)
			}
			// The form-encoded routes carry every name exactly.
			if got := info(t, uri); got["mUfsPath"] != uri || got["mLength"] != float64(len(data)) {
				t.Fatalf("info: %v", got)
			}
		})
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// /v1/load, as the client's load, submit_load, load_progress and stop_load
// send it (path=, opType=, verbose= form-encoded by requests): the job API
// receives the query byte for byte, so it decodes the very name the client
// meant, whatever it holds.
func TestAlluxiofsLoadForwardsEveryNameExactly(t *testing.T) {
	var got []string
	jobAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RawQuery)
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "path": q.Get("path"), "jobState": "RUNNING"})
	}))
	defer jobAPI.Close()
	f := newFixture(t, jobAPI.URL)
	for _, name := range []string{"plus+sign", "eq=1;semi", "q?mark", "sp ace", "caf\u00e9+\u6587", "100%", "amp&x", "hash#x", "pct%41"} {
		uri := "s3://bucket/dir/" + name
		for _, op := range []string{"submit", "progress", "stop"} {
			target := pyRequests("/v1/load", "path", uri, "opType", op, "verbose", "true")
			code, body := f.alluxiofs("GET", target)
			var ans struct{ Path string }
			if code != 200 || json.Unmarshal(body, &ans) != nil || ans.Path != uri {
				t.Fatalf("%s %s: %d %s, want the job API to see path %q", name, op, code, body, uri)
			}
			if _, q, _ := strings.Cut(target, "?"); got[len(got)-1] != q {
				t.Fatalf("%s %s: forwarded %q, sent %q", name, op, got[len(got)-1], q)
			}
		}
	}
}
