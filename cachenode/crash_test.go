package cachenode_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode"
	pb "github.com/ferryio/ferry/cachenode/cachenodepb"
	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// Environment of the child process of TestKillDuringSmallFileLoad.
const (
	crashChildData = "FERRY_CRASHTEST_DATA"
	crashChildSrc  = "FERRY_CRASHTEST_SRC"
)

// TestCrashChildNode is not a test of its own: run by
// TestKillDuringSmallFileLoad as a separate process, it is the cache node
// that gets killed. It serves until it is killed (or its parent is gone).
func TestCrashChildNode(t *testing.T) {
	dataDir, src := os.Getenv(crashChildData), os.Getenv(crashChildSrc)
	if dataDir == "" {
		t.Skip("run by TestKillDuringSmallFileLoad")
	}
	l, err := local.New(local.Options{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	n, err := cachenode.New(cachenode.Config{
		ID: "crash", DataDir: dataDir, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Capacity: 1 << 30, Resolver: storage.NewResolver(l), Telemetry: tel,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Tell the parent where to reach the node: written whole, then renamed.
	addrs := filepath.Join(dataDir, "addrs")
	if err := os.WriteFile(addrs+".tmp", []byte(n.HTTPAddr()+" "+n.GRPCAddr()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(addrs+".tmp", addrs); err != nil {
		t.Fatal(err)
	}
	// Serve until killed; if the parent dies first, its end of stdin
	// closes and the node goes too.
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(3)
}

// crashNode is a cache node in a child process, with a gRPC client.
type crashNode struct {
	cmd    *exec.Cmd
	exited chan error
	http   string
	c      pb.CacheNodeClient
}

func startCrashNode(t *testing.T, dataDir, src string) *crashNode {
	t.Helper()
	addrs := filepath.Join(dataDir, "addrs")
	_ = os.Remove(addrs)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildNode$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildData+"="+dataDir, crashChildSrc+"="+src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close() })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addrs); err == nil {
			f := strings.Fields(string(b))
			n := &crashNode{cmd: cmd, exited: exited, http: f[0]}
			t.Cleanup(n.kill) // a test that fails leaves no process behind
			c, conn, err := grpcapi.Dial(f[1])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			n.c = c
			return n
		}
		select {
		case err := <-exited:
			t.Fatalf("cache node process ended before serving: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("cache node process did not serve within a minute\n%s", out.String())
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone (again: a no-op).
func (n *crashNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	// The first call receives the exit status (killed) and closes the
	// channel, so that a later call returns at once.
	if _, ok := <-n.exited; ok {
		close(n.exited)
	}
}

// TestKillDuringSmallFileLoad kills a cache node process with SIGKILL at
// random points of a load of small files, ten times; after each restart
// every file either reads back exactly (from the cache or fetched again)
// — never wrong bytes. Between rounds some source files change, so that
// pages of an older version are in the cache when the node dies.
func TestKillDuringSmallFileLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const files, rounds = 400, 10
	src, dataDir := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	uris := make([]string, files)
	want := make([][]byte, files)
	writeFile := func(i int, gen int) {
		size := 1 + (i*997+gen*131)%(20<<10)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i*31 + j*7 + gen*13)
		}
		p := filepath.Join(src, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%04d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		uris[i], want[i] = "file://"+p, data
	}
	for i := range files {
		writeFile(i, 0)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	var cachedAfterKill, total int
	for round := range rounds {
		node := startCrashNode(t, dataDir, src)
		c := node.c
		ctx := context.Background()
		// Start from an empty cache, so the load has everything to write.
		if _, err := c.Evict(ctx, &pb.EvictRequest{UriPrefix: "file://" + src}); err != nil {
			t.Fatal(err)
		}
		st, err := c.NodeStats(ctx, &pb.NodeStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		// Kill once a random number of pages has been stored.
		target := st.PagesStored + rng.Int64N(files)
		var wg sync.WaitGroup
		wg.Add(1)
		loaded := make(chan struct{})
		go func() {
			defer wg.Done()
			defer close(loaded)
			for b := 0; b < files; b += 50 {
				var refs []*pb.FileRef
				for _, u := range uris[b:min(b+50, files)] {
					refs = append(refs, &pb.FileRef{Uri: u})
				}
				if _, err := c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: refs, Parallelism: 8}); err != nil {
					return // the node was killed
				}
			}
		}()
		waitStored(ctx, c, target, loaded, nil)
		node.kill()
		wg.Wait()

		// Some files change while the node is down.
		for range 20 {
			writeFile(rng.IntN(files), round+1)
		}

		node = startCrashNode(t, dataDir, src)
		c = node.c
		before, err := c.NodeStats(ctx, &pb.NodeStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		cached := 0
		for i, u := range uris {
			if st, err := c.Stat(ctx, &pb.StatRequest{Uri: u}); err == nil && st.File.FullyCached {
				cached++
			}
			url := fmt.Sprintf("http://%s/v1/file/%s/page/0?ufsFullPath=%s", node.http, fileID(u), u)
			resp, err := hc.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, want[i]) {
				t.Fatalf("round %d: %s: status %d, %d bytes (want %d) %v: wrong bytes after a kill", round, u, resp.StatusCode, len(got), len(want[i]), err)
			}
		}
		after, err := c.NodeStats(ctx, &pb.NodeStatsRequest{})
		node.kill()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: SIGKILL once %d pages were stored; %d of %d files cached after the restart (some changed since); reading all served %d hits, fetched %d, dropped %d damaged",
			round, target-st.PagesStored, cached, files, after.Hits-before.Hits, after.Misses-before.Misses, after.PagesCorrupt)
		// A record never names bytes that are gone: the cache at the kill
		// held the pages of this round's load only (the evict that started
		// the round is durable before any space is freed).
		if after.PagesCorrupt != 0 {
			t.Fatalf("round %d: %d cached pages were damaged after the kill", round, after.PagesCorrupt)
		}
		cachedAfterKill += cached
		total += files
	}
	t.Logf("%d rounds: %d of %d files were found cached after a kill; every file read back exactly", rounds, cachedAfterKill, total)
}

// waitStored polls the node's stored-page counter until it reaches target,
// the node fails, or loaded is closed (the load ended first); each, when
// set, runs between polls and stops the wait when it returns false.
func waitStored(ctx context.Context, c pb.CacheNodeClient, target int64, loaded <-chan struct{}, each func() bool) {
	for {
		st, err := c.NodeStats(ctx, &pb.NodeStatsRequest{})
		if err != nil || st.PagesStored >= target || (each != nil && !each()) {
			return
		}
		select {
		case <-loaded:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// TestKilledNodeKeepsWhatItLoaded: the index's writes reach the disk within
// a second (pagestore.IndexSyncInterval), so a node killed with SIGKILL
// after a load still holds the files that load cached. (A fresh-user run
// found every file loaded since the node's start loaded again after a
// kill -9: the index's records waited in the process for a sync that only
// an eviction made.)
func TestKilledNodeKeepsWhatItLoaded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	src, dataDir := t.TempDir(), t.TempDir()
	var refs []*pb.FileRef
	for i := range 20 {
		p := filepath.Join(src, fmt.Sprintf("f%02d", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, &pb.FileRef{Uri: "file://" + p})
	}
	ctx := context.Background()
	node := startCrashNode(t, dataDir, src)
	if _, err := node.c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: refs}); err != nil {
		t.Fatal(err)
	}
	st, err := node.c.NodeStats(ctx, &pb.NodeStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	written := st.IndexWrites
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for st.IndexSyncedWrites < written {
		select {
		case <-deadline:
			t.Fatalf("%d of the index's %d writes synced after 30 s", st.IndexSyncedWrites, written)
		case <-tick.C:
		}
		if st, err = node.c.NodeStats(ctx, &pb.NodeStatsRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	node.kill()
	node = startCrashNode(t, dataDir, src)
	res, err := node.c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: refs})
	if err != nil {
		t.Fatal(err)
	}
	if int(res.AlreadyCached) != len(refs) || res.BytesLoaded != 0 {
		t.Fatalf("after a kill -9: %d of %d files already cached, %d bytes loaded again", res.AlreadyCached, len(refs), res.BytesLoaded)
	}
}
