package cachenode_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/ferryio/ferry/cachenode/cachenodepb"
)

// TestKillDuringLargeFileLoad is TestKillDuringSmallFileLoad for files of
// several 1 MiB pages, which a node copies from a local source into their
// data files inside the kernel and checksums where they land: SIGKILL at a
// random point of the load, five times; after each restart every page of
// every file reads back exactly (from the cache or fetched again), and no
// cached page is found damaged. While the load runs the index is synced
// again and again, so that the restart finds pages to serve.
func TestKillDuringLargeFileLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const files, rounds, page = 6, 5, 1 << 20
	src, dataDir := t.TempDir(), t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	uris := make([]string, files)
	want := make([][]byte, files)
	writeFile := func(i, gen int) {
		data := make([]byte, 3*page+1+(i*4099+gen*577)%page)
		for j := range data {
			data[j] = byte(i*31 + j*7 + j>>20 + gen*13)
		}
		p := filepath.Join(src, fmt.Sprintf("big%d", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		uris[i], want[i] = "file://"+p, data
	}
	syncURI := "file://" + filepath.Join(src, "sync")
	if err := os.WriteFile(filepath.Join(src, "sync"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	totalPages := int64(0)
	for i := range files {
		writeFile(i, 0)
		totalPages += int64((len(want[i]) + page - 1) / page)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	ctx := context.Background()
	for round := range rounds {
		node := startCrashNode(t, dataDir, src)
		if _, err := node.c.Evict(ctx, &pb.EvictRequest{UriPrefix: "file://" + src + "/big"}); err != nil {
			t.Fatal(err)
		}
		st, err := node.c.NodeStats(ctx, &pb.NodeStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		target := st.PagesStored + rng.Int64N(totalPages)
		loaded := make(chan struct{})
		go func() {
			defer close(loaded)
			var refs []*pb.FileRef
			for _, u := range uris {
				refs = append(refs, &pb.FileRef{Uri: u})
			}
			_, _ = node.c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: refs, Parallelism: 3}) // fails when killed
		}()
		// Make the index durable so far (an evict syncs it) between polls,
		// so that the restart finds some of the pages copied before the
		// kill: unsynced index writes are lost with the process.
		waitStored(ctx, node.c, target, loaded, func() bool {
			_, err := node.c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: []*pb.FileRef{{Uri: syncURI}}})
			if err == nil {
				_, err = node.c.Evict(ctx, &pb.EvictRequest{UriPrefix: syncURI})
			}
			return err == nil
		})
		node.kill()
		<-loaded
		// One file changes while the node is down.
		writeFile(rng.IntN(files), round+1)

		node = startCrashNode(t, dataDir, src)
		for i, u := range uris {
			for idx := 0; idx*page < len(want[i]); idx++ {
				url := fmt.Sprintf("http://%s/v1/file/%s/page/%d?ufsFullPath=%s", node.http, fileID(u), idx, u)
				resp, err := hc.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				exp := want[i][idx*page : min((idx+1)*page, len(want[i]))]
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, exp) {
					t.Fatalf("round %d: %s page %d: status %d, %d bytes (want %d) %v: wrong bytes after a kill", round, u, idx, resp.StatusCode, len(got), len(exp), err)
				}
			}
		}
		after, err := node.c.NodeStats(ctx, &pb.NodeStatsRequest{})
		node.kill()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: SIGKILL once %d of %d pages were stored; reading every page served %d hits, fetched %d, dropped %d damaged",
			round, target-st.PagesStored, totalPages, after.Hits, after.Misses, after.PagesCorrupt)
		if after.PagesCorrupt != 0 {
			t.Fatalf("round %d: %d cached pages were damaged after the kill", round, after.PagesCorrupt)
		}
	}
}
