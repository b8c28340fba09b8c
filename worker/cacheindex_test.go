package worker_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/worker"
)

// The index splits what it asks into calls a node accepts (at most 5,000
// files and about 2 MiB of names each), keeps the answers in order, and
// leaves a node that failed to answer alone for a while.
func TestCacheIndexSplitsCallsAndRestsASilentNode(t *testing.T) {
	dir := t.TempDir()
	l, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(l)
	st, err := pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: 4096, Capacity: 1 << 20, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cached := "file://" + filepath.Join(dir, "cached")
	if err := os.WriteFile(cached[len("file://"):], []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadFile(context.Background(), pagestore.FileRef{URI: cached}, pagestore.LoadOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	f, _, _ := st.Lookup(cached)

	srv := grpc.NewServer()
	(&grpcapi.Service{NodeID: "node-1", Store: st, Resolver: res}).Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	node := activities.NodeRef{ID: "node-1", Addr: lis.Addr().String()}
	index := &worker.GRPCCacheIndex{}
	t.Cleanup(func() { _ = index.Close() })

	// 12,000 files, long names among them: more than one call holds.
	var files []activities.CacheFile
	long := strings.Repeat("n", 3000)
	for i := 0; i < 12_000; i++ {
		uri := "file://" + filepath.Join(dir, "absent", long[:i%3000])
		if i%1000 == 7 {
			uri = cached
		}
		files = append(files, activities.CacheFile{URI: uri, Size: f.Size, Version: f.Version})
	}
	held, err := index.Cached(context.Background(), node, files)
	if err != nil || len(held) != len(files) {
		t.Fatalf("%d answers for %d files: %v", len(held), len(files), err)
	}
	for i, h := range held {
		if h != (i%1000 == 7) {
			t.Fatalf("file %d: cached %v", i, h)
		}
	}

	srv.Stop()
	if _, err := index.Cached(context.Background(), node, files[:1]); err == nil || errors.Is(err, activities.ErrNotAsked) {
		t.Fatalf("a stopped node: %v, want a failed call", err)
	}
	if _, err := index.Cached(context.Background(), node, files[:1]); !errors.Is(err, activities.ErrNotAsked) {
		t.Fatalf("right after a failed call: %v, want ErrNotAsked", err)
	}
	if _, err := index.Cached(context.Background(), activities.NodeRef{ID: "node-2"}, files[:1]); err == nil {
		t.Fatal("a node without an address answered")
	}
}
