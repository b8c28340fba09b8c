package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode/internal/testtemporal"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/ferrytest"
)

var bannerLine = regexp.MustCompile(`Cache node (\S+)\s+http://(\S+)\s+grpc (\S+)`)

type node struct {
	id, host, dataDir, http string
	proc                    *ferrytest.Proc
}

// start runs `ferry cachenode` on host (a loopback address) with free
// ports; the node's identity comes from its host, as alluxiofs computes it
// from a worker_hosts list.
func (n *node) start(t *testing.T, temporal string) {
	t.Helper()
	n.proc = ferrytest.Start(t, "cachenode", "--id", n.id, "--data-dir", n.dataDir,
		"--http-addr", n.host+":0", "--grpc-addr", n.host+":0", "--capacity", "64MiB",
		"--temporal-address", temporal, "--log-level", "warn")
	m := n.proc.WaitFor(bannerLine, 60*time.Second)
	n.http = m[2]
}

func get(path string) (int, []byte, error) {
	resp, err := http.Get("http://" + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type clusterView struct {
	Nodes []struct {
		ID       string        `json:"id"`
		Identity ring.Identity `json:"identity"`
		Host     string        `json:"host"`
		HTTPPort int           `json:"httpPort"`
	} `json:"nodes"`
}

func members(addr string) (string, clusterView, error) {
	code, b, err := get(addr + "/v1/cluster")
	if err != nil {
		return "", clusterView{}, err
	}
	if code != 200 {
		return "", clusterView{}, fmt.Errorf("%d %s", code, b)
	}
	var v clusterView
	if err := json.Unmarshal(b, &v); err != nil {
		return "", clusterView{}, err
	}
	var ids []string
	for _, n := range v.Nodes {
		ids = append(ids, n.ID)
	}
	sort.Strings(ids)
	return strings.Join(ids, ","), v, nil
}

func ownerOf(addr, uri string) (string, error) {
	code, b, err := get(addr + "/v1/node?path=" + url.PathEscape(uri))
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("/v1/node: %d %s", code, b)
	}
	var o struct {
		Host           string
		HTTPServerPort int `json:"HttpServerPort"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d", o.Host, o.HTTPServerPort), nil
}

// waitMembers waits until every given node lists exactly want and returns
// how long that took.
func waitMembers(t *testing.T, want string, within time.Duration, nodes ...*node) time.Duration {
	t.Helper()
	start := time.Now()
	ferrytest.Eventually(t, within, func() error {
		for _, n := range nodes {
			got, _, err := members(n.http)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s lists %q, want %q", n.id, got, want)
			}
		}
		return nil
	})
	return time.Since(start)
}

func TestKilledNodeLeavesTheRingAndComesBack(t *testing.T) {
	_, temporal := testtemporal.Start(t)

	src := t.TempDir()
	files := map[string][]byte{}
	for i := range 12 {
		data := bytes.Repeat([]byte(fmt.Sprintf("file %d;", i)), 40000+i*1000)
		p := filepath.Join(src, fmt.Sprintf("f%02d.bin", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files["file://"+p] = data
	}

	nodes := map[string]*node{}
	var all []*node
	for i := 1; i <= 3; i++ {
		n := &node{id: fmt.Sprintf("node-%d", i), host: fmt.Sprintf("127.0.0.%d", i), dataDir: t.TempDir()}
		n.start(t, temporal)
		nodes[n.id] = n
		all = append(all, n)
	}
	waitMembers(t, "node-1,node-2,node-3", 30*time.Second, all...)

	// The owners are the ones an Alluxio client computes from the host list.
	hostRing := ring.New([]ring.Member{
		{ID: "node-1", Identity: ring.IdentityFromName("127.0.0.1")},
		{ID: "node-2", Identity: ring.IdentityFromName("127.0.0.2")},
		{ID: "node-3", Identity: ring.IdentityFromName("127.0.0.3")},
	}, 0)
	for uri, data := range files {
		addr, err := ownerOf(nodes["node-2"].http, uri)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := hostRing.Owner(uri)
		if addr != nodes[want.ID].http {
			t.Fatalf("%s: /v1/node says %s, the host-list ring says %s (%s)", uri, addr, want.ID, nodes[want.ID].http)
		}
		sum := sha256.Sum256([]byte(uri))
		code, got, err := get(addr + "/v1/chunk/" + hex.EncodeToString(sum[:]) + "?ufsFullPath=" + uri)
		if err != nil || code != 200 || !bytes.Equal(got, data) {
			t.Fatalf("%s from its owner: %d, %d bytes, %v", uri, code, len(got), err)
		}
	}

	// SIGKILL node-3: no leave signal, no clean shutdown.
	dead := nodes["node-3"]
	killed := time.Now()
	dead.proc.Kill()
	survivors := []*node{nodes["node-1"], nodes["node-2"]}
	waitMembers(t, "node-1,node-2", membership.FailureBound+5*time.Second, survivors...)
	took := time.Since(killed)
	t.Logf("SIGKILLed node left both survivors' rings after %s (stated bound %s)", took.Round(10*time.Millisecond), membership.FailureBound)
	if took > membership.FailureBound {
		t.Errorf("a killed node left the ring after %s, over the stated bound %s", took, membership.FailureBound)
	}
	for uri := range files {
		for _, s := range survivors {
			addr, err := ownerOf(s.http, uri)
			if err != nil {
				t.Fatal(err)
			}
			if addr == dead.http || (addr != nodes["node-1"].http && addr != nodes["node-2"].http) {
				t.Fatalf("%s: %s points to %s, not a live node", uri, s.id, addr)
			}
		}
	}

	// It comes back with the same id, host and directory: same identity.
	dead.start(t, temporal)
	waitMembers(t, "node-1,node-2,node-3", 30*time.Second, all...)
	_, v, err := members(nodes["node-1"].http)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range v.Nodes {
		if m.ID == "node-3" && m.Identity != ring.IdentityFromName("127.0.0.3") {
			t.Fatalf("node-3 rejoined as %s", m.Identity)
		}
	}

	// A clean stop (SIGTERM) sends the leave signal: gone within a refresh.
	stopped := time.Now()
	nodes["node-2"].proc.Signal(syscall.SIGTERM)
	if err := nodes["node-2"].proc.Wait(30 * time.Second); err != nil {
		t.Fatalf("node-2 exit after SIGTERM: %v\n%s", err, nodes["node-2"].proc.Output())
	}
	waitMembers(t, "node-1,node-3", 2*membership.DefaultRefreshInterval+3*time.Second, nodes["node-1"], nodes["node-3"])
	t.Logf("cleanly stopped node left the ring after %s", time.Since(stopped).Round(10*time.Millisecond))
}
