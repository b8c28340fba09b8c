package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests in this file replay requests exactly as the alluxiofs client
// (1.0.x, on python-requests) sends them: route, raw query (URIs pasted
// as they are, '+' kept, spaces and non-ASCII percent-encoded by the HTTP
// library, booleans as True/False) and headers, and check the answer and
// the files on disk.

// alluxiofs sends a request with python-requests' default headers.
func (f *fixture) alluxiofs(method, pathAndQuery string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+pathAndQuery, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "python-requests/2.32.3")
	req.Header.Set("Accept-Encoding", "gzip, deflate")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Connection", "keep-alive")
	if method == http.MethodPost {
		req.Header.Set("Content-Length", "0")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// pyRaw is how the client's HTTP library puts a raw URI on the wire:
// spaces and non-ASCII bytes percent-encoded, everything else as is.
func pyRaw(uri string) string {
	var b strings.Builder
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c == ' ' || c >= 0x80 {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Fault 1: /v1/node decodes path= raw, like ufsFullPath, so a '+' in a
// name is a '+' and the owner is the node that caches the file.
func TestAlluxiofsNodeTakesThePathRaw(t *testing.T) {
	f := newFixture(t, "")
	for _, name := range []string{"plus+sign.txt", "a+b.bin", "eq=1.txt", "semi;colon", "sp ace+plus", "caf\u00e9+\u6587.bin"} {
		uri := "file:///d/" + name
		var got struct {
			Host           string
			HTTPServerPort int `json:"HttpServerPort"`
		}
		code, body := f.alluxiofs("GET", "/v1/node?path="+pyRaw(uri))
		if code != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("%s: %d %s", name, code, body)
		}
		// /v1/cluster is Ferry's own route, form-encoded: the owner of the
		// very same URI string.
		var cl struct{ Owners []string }
		if err := json.Unmarshal(f.get("/v1/cluster?path="+url.QueryEscape(uri)), &cl); err != nil || len(cl.Owners) != 1 {
			t.Fatalf("cluster: %v %+v", err, cl)
		}
		want := map[string]string{"node-1": "127.0.0.1", "node-2": "127.0.0.2", "node-3": "127.0.0.3"}[cl.Owners[0]]
		if got.Host != want {
			t.Errorf("%s: /v1/node says %s, the ring says %s (%s)", name, got.Host, want, cl.Owners[0])
		}
		// A client that escapes '+' as %2B gets the same owner.
		if strings.Contains(name, "+") {
			var esc struct{ Host string }
			_, body := f.alluxiofs("GET", "/v1/node?path="+strings.ReplaceAll(pyRaw(uri), "+", "%2B"))
			if json.Unmarshal(body, &esc) != nil || esc.Host != got.Host {
				t.Errorf("%s: %%2B form answered %s, raw form %s", name, esc.Host, got.Host)
			}
		}
	}
}

// Fault 2: rm with remove_alluxio_only=True drops the cached pages and
// leaves the storage system untouched (a file, and a directory).
func TestAlluxiofsRemoveAlluxioOnlyKeepsTheData(t *testing.T) {
	f := newFixture(t, "")
	uri, data := f.write("keep/a+b file.bin", 2*ps+5)
	other, otherData := f.write("keep/sub/c.bin", 100)
	for _, u := range []string{uri, other} {
		f.get("/v1/chunk/" + id(u) + "?ufsFullPath=" + pyRaw(u)) // cache it
		if !f.store.IsCached(u, "") {
			t.Fatalf("%s not cached", u)
		}
	}
	code, body := f.alluxiofs("POST", "/v1/rm/"+id(uri)+"?ufsFullPath="+pyRaw(uri)+"&recursive=False&remove_alluxio_only=True")
	if code != 200 || !bytes.Contains(body, []byte(`"success":true`)) {
		t.Fatalf("rm remove_alluxio_only: %d %s", code, body)
	}
	if got, err := os.ReadFile(filepath.Join(f.dir, "keep/a+b file.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("remove_alluxio_only changed the file on disk: %v", err)
	}
	if _, ok, _ := f.store.Lookup(uri); ok {
		t.Error("the file is still cached")
	}
	// A directory: everything under it leaves the cache, nothing the disk.
	dir := "file://" + f.dir + "/keep"
	code, body = f.alluxiofs("POST", "/v1/rm/"+id(dir)+"?ufsFullPath="+pyRaw(dir)+"&recursive=True&remove_alluxio_only=True")
	if code != 200 {
		t.Fatalf("rm -r remove_alluxio_only: %d %s", code, body)
	}
	if got, err := os.ReadFile(filepath.Join(f.dir, "keep/sub/c.bin")); err != nil || !bytes.Equal(got, otherData) {
		t.Fatalf("remove_alluxio_only removed a file under the directory: %v", err)
	}
	if _, ok, _ := f.store.Lookup(other); ok {
		t.Error("a file under the directory is still cached")
	}
}

// Fault 3: copy(force=True) sends forced=True; it replaces the
// destination (overwrite=, force= are honoured too), on copy and mv.
func TestAlluxiofsForcedCopyOverwrites(t *testing.T) {
	f := newFixture(t, "")
	src, data := f.write("f/src.bin", 300)
	base := "file://" + f.dir + "/f/"
	for i, flag := range []string{"forced=True", "force=True", "overwrite=true"} {
		dst := base + "dst" + string(rune('0'+i))
		if err := os.WriteFile(strings.TrimPrefix(dst, "file://"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _ := f.alluxiofs("POST", "/v1/copy/"+id(src)+"?srcPath="+src+"&dstPath="+dst); code != 409 {
			t.Fatalf("copy onto an existing file without a flag: %d, want 409", code)
		}
		code, body := f.alluxiofs("POST", "/v1/copy/"+id(src)+"?srcPath="+src+"&dstPath="+dst+"&recursive=False&"+flag)
		if code != 200 {
			t.Fatalf("copy %s: %d %s", flag, code, body)
		}
		if got, _ := os.ReadFile(strings.TrimPrefix(dst, "file://")); !bytes.Equal(got, data) {
			t.Fatalf("copy %s: destination not replaced", flag)
		}
	}
	// mv with forced=True replaces the destination and removes the source.
	dst := base + "dst0"
	if err := os.WriteFile(strings.TrimPrefix(dst, "file://"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := f.alluxiofs("POST", "/v1/mv/"+id(src)+"?srcPath="+src+"&dstPath="+dst+"&forced=True"); code != 200 {
		t.Fatalf("mv forced: %d %s", code, body)
	}
	if got, _ := os.ReadFile(strings.TrimPrefix(dst, "file://")); !bytes.Equal(got, data) {
		t.Fatal("mv forced: destination not replaced")
	}
	if _, err := os.Stat(strings.TrimPrefix(src, "file://")); !os.IsNotExist(err) {
		t.Fatalf("mv left the source: %v", err)
	}
}

// Fault 4: copying or moving a directory (recursive=True) is refused
// with a 400 that says why and what to use instead; nothing changes on
// disk.
func TestAlluxiofsDirectoryCopyAndMoveAreRefusedClearly(t *testing.T) {
	f := newFixture(t, "")
	f.write("tree/a", 10)
	f.write("tree/sub/b", 20)
	src, dst := "file://"+f.dir+"/tree", "file://"+f.dir+"/tree2"
	for _, route := range []string{"copy", "mv"} {
		code, body := f.alluxiofs("POST", "/v1/"+route+"/"+id(src)+"?srcPath="+src+"&dstPath="+dst+"&recursive=True")
		if code != 400 || !bytes.Contains(body, []byte("is a directory")) || !bytes.Contains(body, []byte("submit_job")) {
			t.Fatalf("%s of a directory: %d %s", route, code, body)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "tree2")); !os.IsNotExist(err) {
		t.Fatalf("a refused copy left a destination: %v", err)
	}
	for _, p := range []string{"tree/a", "tree/sub/b"} {
		if _, err := os.Stat(filepath.Join(f.dir, p)); err != nil {
			t.Fatalf("a refused move touched the source: %v", err)
		}
	}
}

// Fault 5: rm of a non-empty directory without recursive says what is
// wrong, and removes nothing.
func TestAlluxiofsRmOfANonEmptyDirectory(t *testing.T) {
	f := newFixture(t, "")
	f.write("full/x", 10)
	dir := "file://" + f.dir + "/full"
	code, body := f.alluxiofs("POST", "/v1/rm/"+id(dir)+"?ufsFullPath="+dir+"&recursive=False&remove_alluxio_only=False")
	if code != 409 || !bytes.Contains(body, []byte("directory not empty; pass recursive=true")) {
		t.Fatalf("rm of a non-empty directory: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "full/x")); err != nil {
		t.Fatalf("a refused rm removed a file: %v", err)
	}
}
